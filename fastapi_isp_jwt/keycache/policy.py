"""When the key cache may answer from what it holds, and when it must fetch: no I/O, no clock.

Every question takes the time as an argument and every outcome is recorded with the time it
happened, so the whole policy can be exercised with a number that a test moves by hand.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from fastapi_isp_jwt.errors import InvalidTokenError, IssuerUnavailableError
from fastapi_isp_jwt.keys import KeySet, VerificationKey
from fastapi_isp_jwt.reasons import Reason

__all__ = ["Action", "FreshnessPolicy", "Snapshot"]

# The last fifth of the TTL is when a background refresh starts, so no request waits on it.
REFRESH_AHEAD = 0.2
# Failed fetches are retried after 1, 2, 4... seconds, never more than a minute apart.
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 60.0


class Action(enum.Enum):
    """What a lookup must do before (or while) it answers."""

    ANSWER = "answer from what is held"
    FETCH = "fetch, then answer"
    FETCH_IN_BACKGROUND = "answer from what is held while a fetch runs"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One successfully loaded key set and the times that govern it."""

    keys: KeySet
    fetched_at: float
    refresh_at: float
    expires_at: float


class FreshnessPolicy:
    """The key set in hand, the history of fetch attempts, and the rules that read them.

    A key set is fresh until its TTL has passed; in the last fifth of the TTL a lookup asks
    for a refresh in the background. After a failed fetch no other starts until the backoff
    (1, 2, 4... s, at most 60) has passed, and an expired set keeps being trusted for up to
    ``max_stale`` seconds after it was fetched. A kid the fresh set lacks asks for a
    refetch, except within ``cooldown`` of a download that was asked for a kid and did not
    bring it: a flood of made-up kids costs one download per cooldown, while a key
    published just after any other download is found at once. A lookup that comes while a
    fetch runs waits for that fetch instead of being refused beside it.
    """

    def __init__(self, *, cooldown: float, max_stale: float) -> None:
        self._cooldown = cooldown
        self._max_stale = max_stale
        self.snapshot: Snapshot | None = None
        self.failures = 0
        """Fetches failed since the last one that succeeded."""
        # When the last download that a lookup waited for turned out not to hold its kid.
        self._kid_missed_at = -math.inf
        self._next_attempt_at = -math.inf
        # From the moment a lookup decides to fetch until that fetch ends: later lookups
        # for a kid the set lacks join it rather than being refused while it runs.
        self._fetching = False

    @property
    def max_stale(self) -> float:
        """How long after its download an expired key set may stand in for a failing issuer."""
        return self._max_stale

    @property
    def next_attempt_at(self) -> float:
        """When a fetch may start again after a failure (``-inf``: no backoff is running)."""
        return self._next_attempt_at

    # -- questions -----------------------------------------------------------------------

    def settled_key(self, kid: str | None, now: float) -> VerificationKey | None:
        """The key ``kid`` names while the set is fresh and no refresh is due yet.

        The common case, and every request's: answered with the least work. ``None`` says
        to ask `lookup` or `trusted`, which know the rest.
        """
        snapshot = self.snapshot
        if snapshot is None or now >= snapshot.refresh_at:
            return None
        return snapshot.keys.find(kid)

    def lookup(self, kid: str | None, now: float) -> tuple[VerificationKey | None, Action]:
        """The key ``kid`` names in the fresh set, if any, and what must be done.

        With a key, the action is to answer, or to answer while a refresh ahead of expiry
        runs; without one, it is `next_step`, to be followed by `answer`.
        """
        snapshot = self.snapshot
        if snapshot is not None and now < snapshot.expires_at:
            key = snapshot.keys.find(kid)
            if key is not None:
                return key, self._refresh_ahead(snapshot, now)
        return None, self.next_step(kid, now)

    def trusted(self, kid: str | None, now: float) -> tuple[VerificationKey | None, Action]:
        """The key ``kid`` names if it may be trusted now, without waiting for any fetch.

        Trusted means in a set that has not expired or, while the issuer is failing, one not
        older than ``max_stale``. The action asks for a background fetch when a refresh
        ahead of expiry, or a retry during an outage, is due.
        """
        snapshot = self.snapshot
        if snapshot is None:
            return None, Action.ANSWER
        if now < snapshot.expires_at:
            key = snapshot.keys.find(kid)
            return key, Action.ANSWER if key is None else self._refresh_ahead(snapshot, now)
        if not self._serving_stale(snapshot, now):
            return None, Action.ANSWER
        retry = Action.FETCH_IN_BACKGROUND if now >= self._next_attempt_at else Action.ANSWER
        return snapshot.keys.find(kid), retry

    def next_step(self, kid: str | None, now: float) -> Action:
        """What a lookup of ``kid`` that the fresh set cannot answer must do first."""
        if now < self._next_attempt_at:
            return Action.ANSWER  # backing off after a failure
        snapshot = self.snapshot
        if snapshot is None:
            return Action.FETCH
        if now >= snapshot.expires_at:
            if self._serving_stale(snapshot, now):
                # The issuer is down: serve the last good set rather than wait on a retry.
                return Action.FETCH_IN_BACKGROUND
            return Action.FETCH
        if snapshot.keys.find(kid) is not None:
            return Action.ANSWER
        if kid is None and len(snapshot.keys) > 1:
            return Action.ANSWER  # no fetch can tell which of several keys was meant
        if self._fetching or now - self._kid_missed_at >= self._cooldown:
            self._fetching = True
            return Action.FETCH  # perhaps a key published since the last fetch
        return Action.ANSWER

    def answer(self, kid: str | None, now: float) -> VerificationKey:
        """The key ``kid`` names, or the refusal a lookup of it gets now."""
        snapshot = self.snapshot
        if snapshot is None or (
            now >= snapshot.expires_at and now - snapshot.fetched_at > self._max_stale
        ):
            raise IssuerUnavailableError(retry_after=self.retry_after(now))
        key = snapshot.keys.find(kid)
        if key is not None:
            return key
        if kid is None and len(snapshot.keys) > 1:
            raise InvalidTokenError(Reason.KEY_ID_MISSING)
        self._kid_missed_at = max(self._kid_missed_at, snapshot.fetched_at)
        raise InvalidTokenError(Reason.UNKNOWN_KEY)

    def retry_after(self, now: float) -> int:
        """Whole seconds until the next fetch may start, at least one."""
        # Before any failure the next attempt is due since forever (-inf): ceil() refuses it.
        return max(1, math.ceil(max(self._next_attempt_at - now, 0.0)))

    # -- outcomes ------------------------------------------------------------------------

    def begin_attempt(self, now: float) -> None:
        """A fetch starts: lookups for kids the set lacks wait for it until it ends."""
        self._fetching = True

    def record_success(self, keys: KeySet, ttl: float, now: float) -> None:
        """A fetch brought ``keys``, to be trusted for ``ttl`` seconds; the outage is over."""
        self.snapshot = Snapshot(
            keys=keys,
            fetched_at=now,
            refresh_at=now + ttl * (1 - REFRESH_AHEAD),
            expires_at=now + ttl,
        )
        self.failures = 0
        self._next_attempt_at = -math.inf
        self._fetching = False

    def record_failure(self, now: float) -> None:
        """A fetch failed: no other starts before the backoff has passed."""
        self.failures += 1
        backoff = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(self.failures - 1, 16))
        self._next_attempt_at = now + backoff
        self._fetching = False

    # -- rules ---------------------------------------------------------------------------

    def _refresh_ahead(self, snapshot: Snapshot, now: float) -> Action:
        if now >= snapshot.refresh_at and now >= self._next_attempt_at:
            return Action.FETCH_IN_BACKGROUND
        return Action.ANSWER

    def _serving_stale(self, snapshot: Snapshot, now: float) -> bool:
        """Whether an expired set still stands in for the issuer while it fails."""
        return bool(self.failures) and now - snapshot.fetched_at <= self._max_stale
