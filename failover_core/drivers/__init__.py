"""The drivers that carry out the flow's commands.

``chain.py``: :class:`FailoverChain` and its four mirrored drivers (sync and async calls,
sync and async streams). ``deadlines.py``: how long an attempt may take and how a late one
is abandoned. ``race.py``: how an attempt and its hedge are raced.
"""
