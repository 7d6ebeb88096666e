"""The flow that decides, sans-IO.

``engine.py``: :class:`FailoverFlow`, one request's decisions: which model next, retry or
fail over, how long to back off, when to bench, which event to emit. ``hedging.py``: the
pure hedging policy (when to hedge, how many hedges the budget allows). Nothing here
sleeps, calls a model or touches the network; the drivers (``failover_core.drivers``) do.
"""
