"""Structured log records for refusals and key-cache events.

Every record carries its facts as ``extra`` fields (a JSON formatter emits them as keys):
the `Reason` code, the issuer, the key id, the client id, and ``token_sha256``, the first
12 hex digits of the token's SHA-256, which correlates the records of one token without
revealing it. The token itself is never logged. Text read from a token (it is not verified
when it is refused) is cut short and stripped of anything but printable ASCII, so a forged
token cannot forge log lines.

Floods of one refusal fold into one summary line per interval (`RateLimitedLogger`), and
each key-cache event is a function with a fixed level.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from fastapi_isp_jwt.reasons import Reason

__all__ = [
    "KEY_CACHE_EVENT_LEVELS",
    "KEY_CACHE_LOGGER",
    "REFUSAL_LOGGER",
    "RateLimitedLogger",
    "download_failed_again",
    "giving_up",
    "keys_loaded",
    "keys_rotated",
    "keys_skipped",
    "keys_unchanged",
    "no_usable_key",
    "outage_ended",
    "outage_started",
    "refusal_level",
    "refusal_record_fields",
    "serving_stale",
    "token_digest",
    "unknown_key_refetch",
]

REFUSAL_LOGGER: Final = logging.getLogger("fastapi_isp_jwt.refusals")
# The name operators already route and filter; it predates the cache being a package.
KEY_CACHE_LOGGER: Final = logging.getLogger("fastapi_isp_jwt.jwks")

_TEXT_LIMIT = 100
_DIGEST_HEX_DIGITS = 12
_HINTS_REMEMBERED = 256
# A record of skipped keys names this many of them: a document may list up to 100.
_SKIPPED_KEYS_NAMED = 5

# Most refusals are a client's business (an expired token is routine); these usually mean
# the service, the tenant or an attacker needs a look.
_REFUSAL_LEVELS: Final[Mapping[Reason, int]] = {
    Reason.CREDENTIALS_MISSING: logging.DEBUG,
    Reason.ALGORITHM: logging.WARNING,
    Reason.ISSUER: logging.WARNING,
    Reason.UNKNOWN_KEY: logging.WARNING,
    Reason.KEY_MISMATCH: logging.WARNING,
    Reason.SIGNATURE: logging.WARNING,
    Reason.AUDIENCE: logging.WARNING,
    Reason.ISSUER_UNAVAILABLE: logging.WARNING,
}


def refusal_level(reason: Reason) -> int:
    """The level a refusal for ``reason`` is logged at (INFO unless it needs a look)."""
    return _REFUSAL_LEVELS.get(reason, logging.INFO)


def token_digest(token: str | bytes) -> str:
    """The first 12 hex digits of the token's SHA-256: enough to correlate, nothing to replay."""
    raw = token if isinstance(token, bytes) else token.encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()[:_DIGEST_HEX_DIGITS]


def _loggable(value: object) -> str | None:
    """Text from a token made safe for a log line: short, printable ASCII only."""
    if not isinstance(value, str):
        return None
    cut = value[:_TEXT_LIMIT]
    return "".join(c if " " <= c <= "~" else "?" for c in cut)


def refusal_record_fields(
    reason: Reason,
    issuer: object,
    kid: object,
    client_id: object,
    token: str | bytes | None,
) -> dict[str, object]:
    """The ``extra`` fields of a refusal record.

    ``issuer``, ``kid`` and ``client_id`` may come straight from the refused token: a value
    that is not text becomes ``None``, and text is cut and sanitized.
    """
    return {
        "reason": reason.value,
        "issuer": _loggable(issuer),
        "key_id": _loggable(kid),
        "client_id": _loggable(client_id),
        "token_sha256": None if token is None else token_digest(token),
    }


@dataclass(slots=True)
class _Window:
    started: float
    suppressed: int = 0


class RateLimitedLogger:
    """Logs the first refusal of each reason, then one summary line per interval.

    Within ``interval`` seconds of a logged refusal, more refusals of the same reason are
    only counted; the first refusal of any reason after the interval has passed writes a
    summary for every reason whose count is pending, and `flush` writes them at once.
    Hints (probable configuration mistakes, see `fastapi_isp_jwt.explain`) given with a
    written line are logged once each for the life of the logger. ``clock`` is injected
    for tests.
    """

    def __init__(
        self,
        logger: logging.Logger = REFUSAL_LOGGER,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval > 0:
            raise ValueError("interval must be positive")
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._windows: dict[Reason, _Window] = {}
        self._next_summary_at = float("inf")
        self._hints_logged: set[str] = set()
        # Refusals are logged from the event loop and from verify_sync's threads alike.
        self._lock = threading.Lock()

    def refusal(
        self,
        reason: Reason,
        fields: Mapping[str, object] | Callable[[], Mapping[str, object]],
        hints: Iterable[str] | Callable[[], Iterable[str]] = (),
    ) -> bool:
        """Log a refusal with its ``fields``, or count it; True when a line was written.

        ``fields`` and ``hints`` may be given as functions: they are called only when a
        line is written, so a flood of refusals costs a count, not a token decoding each.
        """
        now = self._clock()
        with self._lock:
            if now >= self._next_summary_at:
                self._summarize(now, only_due=True)
            window = self._windows.get(reason)
            if window is not None and now - window.started < self._interval:
                window.suppressed += 1
                self._next_summary_at = min(self._next_summary_at, window.started + self._interval)
                return False
            self._windows[reason] = _Window(now)
        record = fields() if callable(fields) else fields
        self._logger.log(
            refusal_level(reason), "Token refused: %s", reason.value, extra=dict(record)
        )
        for hint in hints() if callable(hints) else hints:
            if self._first_time(hint):
                self._logger.warning(
                    "Token refused (%s), probably a configuration mistake: %s",
                    reason.value,
                    hint,
                    extra={"reason": reason.value, "hint": hint},
                )
        return True

    def _first_time(self, hint: str) -> bool:
        with self._lock:
            if hint in self._hints_logged:
                return False
            if len(self._hints_logged) < _HINTS_REMEMBERED:
                self._hints_logged.add(hint)
            return True

    def flush(self) -> None:
        """Write the summary of every reason with refusals counted but not yet reported."""
        with self._lock:
            self._summarize(self._clock(), only_due=False)

    def _summarize(self, now: float, *, only_due: bool) -> None:
        next_due = float("inf")
        for reason, window in self._windows.items():
            if not window.suppressed:
                continue
            due_at = window.started + self._interval
            if only_due and now < due_at:
                next_due = min(next_due, due_at)
                continue
            self._logger.log(
                refusal_level(reason),
                "Token refused: %s, %d more time(s) in %.0f s",
                reason.value,
                window.suppressed,
                max(now - window.started, 0.0),
                extra={"reason": reason.value, "suppressed": window.suppressed},
            )
            window.suppressed = 0
        self._next_summary_at = next_due


# -- key-cache events ----------------------------------------------------------------------

KEY_CACHE_EVENT_LEVELS: Final[Mapping[str, int]] = {
    "first_download": logging.INFO,
    "rotation": logging.INFO,
    "keys_unchanged": logging.DEBUG,
    "key_skipped": logging.WARNING,
    "no_usable_key": logging.WARNING,
    "unknown_key_refetch": logging.INFO,
    "outage_started": logging.WARNING,
    "download_failed_again": logging.DEBUG,
    "outage_ended": logging.INFO,
    "serving_stale": logging.WARNING,
    "giving_up": logging.ERROR,
}
"""The ``event`` field of each key-cache record and the level it is logged at."""


def _event(event: str, message: str, *args: object, **fields: object) -> None:
    KEY_CACHE_LOGGER.log(
        KEY_CACHE_EVENT_LEVELS[event], message, *args, extra={"event": event, **fields}
    )


def _kids(kids: Iterable[str]) -> list[str]:
    return sorted(str(_loggable(kid)) for kid in kids)


def keys_loaded(issuer: str, kids: Iterable[str]) -> None:
    """The first key set of ``issuer`` was downloaded."""
    loaded = _kids(kids)
    _event("first_download", "JWKS %s: loaded keys %s", issuer, loaded, issuer=issuer, kids=loaded)


def keys_rotated(issuer: str, added: Iterable[str], removed: Iterable[str]) -> None:
    """A download brought a key set that differs from the one held."""
    new, gone = _kids(added), _kids(removed)
    _event(
        "rotation",
        "JWKS %s: keys rotated, added %s, removed %s",
        issuer,
        new,
        gone,
        issuer=issuer,
        added=new,
        removed=gone,
    )


def keys_unchanged(issuer: str) -> None:
    """A download brought the key set already held."""
    _event("keys_unchanged", "JWKS %s: fetched, keys unchanged", issuer, issuer=issuer)


def keys_skipped(issuer: str, skipped: Sequence[tuple[object, str]]) -> None:
    """Published keys were left out of the key set: one record per download that has any.

    Tokens signed with them are refused as signed by an unknown key, so it is a warning.
    ``skipped`` holds each key's ``kid`` (made safe here) and the key loader's fixed sentence
    saying why; the record gives their count and the first five, however many there are.
    """
    named = [
        {"key_id": _loggable(kid), "skip_reason": reason}
        for kid, reason in skipped[:_SKIPPED_KEYS_NAMED]
    ]
    listed = "; ".join(
        f"{'(no kid)' if key['key_id'] is None else repr(key['key_id'])}: {key['skip_reason']}"
        for key in named
    )
    rest = len(skipped) - len(named)
    _event(
        "key_skipped",
        "JWKS %s: skipping the published key%s %s%s",
        issuer,
        "" if len(skipped) == 1 else "s",
        listed,
        f"; and {rest} more ({len(skipped)} in all)" if rest else "",
        issuer=issuer,
        skipped_count=len(skipped),
        skipped_keys=named,
    )


def no_usable_key(issuer: str) -> None:
    """A download succeeded but none of the published keys can be used."""
    _event("no_usable_key", "JWKS %s: the issuer publishes no usable key", issuer, issuer=issuer)


def unknown_key_refetch(issuer: str, kid: object) -> None:
    """A token named a key not held, and the keys are downloaded again to look for it."""
    key_id = _loggable(kid)
    _event(
        "unknown_key_refetch",
        "JWKS %s: refetching for unknown key %r",
        issuer,
        key_id,
        issuer=issuer,
        key_id=key_id,
    )


def outage_started(
    issuer: str, error: str, age_seconds: float | None, *, serving: bool = True
) -> None:
    """The first of a run of failed downloads; ``age_seconds`` of the keys still held.

    ``serving`` is false when those keys are past ``max_stale`` and no longer used.
    """
    if age_seconds is None:
        consequence = "no key is known yet"
    elif serving:
        consequence = f"serving the key set fetched {age_seconds:.0f} s ago"
    else:
        consequence = f"the key set fetched {age_seconds:.0f} s ago is too old to serve"
    _event(
        "outage_started",
        "JWKS %s: fetch failed (%s); %s",
        issuer,
        error,
        consequence,
        issuer=issuer,
        error=error,
        age_seconds=age_seconds,
    )


def download_failed_again(issuer: str, error: str, failures: int) -> None:
    """Another failed download in a run already reported by `outage_started`."""
    _event(
        "download_failed_again",
        "JWKS %s: fetch failed again (%s), %d failure(s) in a row",
        issuer,
        error,
        failures,
        issuer=issuer,
        error=error,
        failures=failures,
    )


def outage_ended(issuer: str, failures: int, seconds: float) -> None:
    """A download succeeded after ``failures`` failed ones over ``seconds``."""
    _event(
        "outage_ended",
        "JWKS %s: fetched again after %d failed attempt(s) over %.0f s",
        issuer,
        failures,
        seconds,
        issuer=issuer,
        failures=failures,
        seconds=seconds,
    )


def serving_stale(issuer: str, age_seconds: float, max_stale: float) -> None:
    """The held key set expired and is served past its lifetime (log once per outage)."""
    _event(
        "serving_stale",
        "JWKS %s: serving keys past their lifetime, fetched %.0f s ago (limit %.0f s)",
        issuer,
        age_seconds,
        max_stale,
        issuer=issuer,
        age_seconds=age_seconds,
        max_stale=max_stale,
    )


def giving_up(issuer: str, age_seconds: float, max_stale: float) -> None:
    """The held keys are older than ``max_stale``: tokens are answered 503 until a fetch works."""
    _event(
        "giving_up",
        "JWKS %s: keys fetched %.0f s ago exceed max_stale %.0f s; answering 503 until the "
        "issuer is back",
        issuer,
        age_seconds,
        max_stale,
        issuer=issuer,
        age_seconds=age_seconds,
        max_stale=max_stale,
    )
