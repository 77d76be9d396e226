"""The state of one issuer's key cache, as a readiness probe or a dashboard reads it.

`key_cache_health` reads a `FreshnessPolicy` at a given time and changes nothing, so it is
safe to call from a health route or a metrics collection at any rate.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from fastapi_isp_jwt.keycache.policy import FreshnessPolicy

__all__ = ["KeyCacheHealth", "key_cache_health"]


@dataclass(frozen=True, slots=True)
class KeyCacheHealth:
    """What one issuer's key cache holds and when it will next fetch.

    ``age_seconds`` is ``None`` before the first successful download. ``stale`` is true
    while the key set is past its lifetime yet still trusted (within ``max_stale``), as
    happens while the issuer is failing.
    ``ready`` says whether a token signed by a published key can be verified now without
    waiting: keys are held and may still be trusted. ``last_error`` is the cache's own
    description of the last failed download (``None`` once a download succeeds).
    ``next_attempt_in`` is the number of seconds until the next download may start: the
    refresh ahead of expiry, or the retry after a failure; 0 when one may start now.
    """

    issuer: str
    keys_known: int
    age_seconds: float | None
    stale: bool
    ready: bool
    failures: int
    last_error: str | None
    next_attempt_in: float

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready data, for a health route."""
        return dataclasses.asdict(self)


def key_cache_health(
    issuer: str, policy: FreshnessPolicy, now: float, *, last_error: str | None = None
) -> KeyCacheHealth:
    """The health of ``policy``'s key cache at ``now`` (the cache's own clock)."""
    snapshot = policy.snapshot
    failures = policy.failures
    if failures:
        next_at = policy.next_attempt_at
    elif snapshot is not None:
        next_at = snapshot.refresh_at
    else:
        next_at = -math.inf  # nothing held: the first lookup fetches
    if snapshot is None:
        return KeyCacheHealth(
            issuer=issuer,
            keys_known=0,
            age_seconds=None,
            stale=False,
            ready=False,
            failures=failures,
            last_error=last_error,
            next_attempt_in=max(next_at - now, 0.0),
        )
    age = max(now - snapshot.fetched_at, 0.0)
    expired = now >= snapshot.expires_at
    # The same rule the lookups answer by: an expired set is trusted up to max_stale.
    trusted = not expired or age <= policy.max_stale
    return KeyCacheHealth(
        issuer=issuer,
        keys_known=len(snapshot.keys),
        age_seconds=age,
        stale=expired and trusted,
        ready=trusted and len(snapshot.keys) > 0,
        failures=failures,
        last_error=last_error,
        next_attempt_in=max(next_at - now, 0.0),
    )
