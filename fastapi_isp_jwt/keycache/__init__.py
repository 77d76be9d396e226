"""The key cache: the issuer's signing keys, downloaded lazily and kept fresh.

`policy` decides when to fetch and what may be trusted, `flow` is one download written once,
and `cache` holds `JWKSCache`, which schedules downloads and runs them.
"""

from fastapi_isp_jwt.keycache.cache import JWKSCache
from fastapi_isp_jwt.keycache.flow import MAX_CACHE_SECONDS, MIN_CACHE_SECONDS

__all__ = ["MAX_CACHE_SECONDS", "MIN_CACHE_SECONDS", "JWKSCache"]
