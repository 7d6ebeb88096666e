"""Pools: interchangeable deployments of one model that count as one entry of a chain.

``pool.py`` is the public :class:`Pool` and how it expands into member entries;
``balancer.py`` the pure policy that orders a pool's members for one request
(power-of-two-choices over a peak-EWMA of latency times in-flight requests, rate-limit
headroom); ``ratelimits.py`` reads the providers' rate-limit headers.
"""
