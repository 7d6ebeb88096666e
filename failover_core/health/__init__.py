"""Health: which models are benched, shared by every chain in the process or the fleet.

``registry.py`` holds the rules (when a failure benches, for how long, probes, manual
benches); ``records.py`` the record and the store ``Protocol``; one module per store
(``memory.py``, ``failopen.py``, ``redis/``), none importing the registry; ``default.py``
is the one seam where the process-wide registry and its store are chosen.
"""
