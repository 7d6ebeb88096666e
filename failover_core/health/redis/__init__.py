"""Fleet-wide health on Redis (the ``redis`` extra); public as ``failover_core.redis_store``.

``store.py``: :class:`RedisHealthStore`, optimistic transactions and the in-process copy
that the server's invalidations keep in sync; ``codec.py``: records on the wire;
``tally.py``: the hedge budget's fleet-wide counts.
"""
