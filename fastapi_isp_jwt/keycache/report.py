"""What one key cache tells operators: its events logged, its downloads measured.

`JWKSCache` tells a `CacheReport` what happened (a download succeeded or failed, a lookup
asked for a key the set lacks, keys are served past their lifetime) and the report turns
it into key-cache log records at fixed levels (`fastapi_isp_jwt.logs`) and metrics
(`fastapi_isp_jwt.telemetry`). It also keeps the one thing the health check needs that
the freshness policy does not hold: the description of the last failed download.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager

import httpx

from fastapi_isp_jwt import logs
from fastapi_isp_jwt.instruments import DownloadResult
from fastapi_isp_jwt.keycache.flow import FetchError
from fastapi_isp_jwt.keycache.policy import FreshnessPolicy
from fastapi_isp_jwt.keys import KeySet
from fastapi_isp_jwt.telemetry import Telemetry

__all__ = ["CacheReport", "describe", "result_of"]

_ERROR_TEXT_LIMIT = 200


def result_of(exc: Exception) -> DownloadResult:
    """The ``result`` a failed download is counted under."""
    if isinstance(exc, FetchError):
        return exc.kind
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return "timeout"
    # No HTTP answer at all (refused, reset, unresolvable) is counted with the bad answers:
    # either way the issuer's endpoint is what failed, not the document.
    return "http_error"


def describe(exc: Exception) -> str:
    """A download failure in one line, for the log and the health check."""
    if isinstance(exc, FetchError):
        return str(exc)
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text[:_ERROR_TEXT_LIMIT]}" if text else name


class CacheReport:
    """The log records and metrics of one issuer's key cache, and its last error.

    ``issuer`` names the cache in every record and as the metrics' ``issuer`` attribute:
    the configured issuer, or the JWKS URL when the cache was given no issuer. Outage
    events are logged once per outage: its start, keys served past their lifetime,
    giving up on them, and its end.
    """

    def __init__(self, issuer: str, telemetry: Telemetry) -> None:
        self.issuer = issuer
        self.telemetry = telemetry
        self.last_error: str | None = None
        """What the last download that failed said; ``None`` once one succeeds."""
        self._outage_started_at = 0.0
        self._stale_reported = False
        self._gave_up_reported = False

    # -- one download ----------------------------------------------------------------------

    def download_span(self) -> AbstractContextManager[object]:
        """The short span one download runs in (nothing when telemetry is inactive)."""
        return self.telemetry.download_span(issuer=self.issuer)

    def start_timer(self) -> float:
        """A start time for `succeeded`/`failed` to measure from; read only when reported."""
        return time.perf_counter() if self.telemetry.active else 0.0

    def succeeded(
        self, before: KeySet | None, after: KeySet, failures: int, started: float, now: float
    ) -> None:
        """A download brought ``after`` while ``before`` was held, ending ``failures`` failures."""
        self._measure("ok", started)
        if failures:
            logs.outage_ended(self.issuer, failures, max(now - self._outage_started_at, 0.0))
        self.last_error = None
        self._stale_reported = self._gave_up_reported = False
        if after.skipped:
            logs.keys_skipped(self.issuer, [(key.kid, key.reason) for key in after.skipped])
        if not after.keys:
            logs.no_usable_key(self.issuer)
        if before is None:
            logs.keys_loaded(self.issuer, after.kids)
        elif after.kids != before.kids:
            logs.keys_rotated(self.issuer, after.kids - before.kids, before.kids - after.kids)
        else:
            logs.keys_unchanged(self.issuer)

    def failed(self, exc: Exception, policy: FreshnessPolicy, started: float, now: float) -> None:
        """A download failed with ``exc``; ``policy`` has recorded the failure already."""
        self._measure(result_of(exc), started)
        error = describe(exc)
        self.last_error = error
        if policy.failures > 1:
            logs.download_failed_again(self.issuer, error, policy.failures)
        else:
            self._outage_started_at = now
            held = policy.snapshot
            if held is None:
                logs.outage_started(self.issuer, error, None)
            else:
                age = now - held.fetched_at
                serving = now < held.expires_at or age <= policy.max_stale
                logs.outage_started(self.issuer, error, age, serving=serving)
        self.keys_in_use(policy, now)

    def _measure(self, result: DownloadResult, started: float) -> None:
        if self.telemetry.active:
            self.telemetry.key_download(result, time.perf_counter() - started, issuer=self.issuer)

    # -- lookups ---------------------------------------------------------------------------

    def refetching_for(self, kid: str) -> None:
        """A download starts because a token named ``kid``, which the fresh set lacks."""
        self.telemetry.unknown_key_refetch(False, issuer=self.issuer)
        logs.unknown_key_refetch(self.issuer, kid)

    def refetch_held_back(self) -> None:
        """A token named a key the fresh set lacks and no download may start for it now."""
        self.telemetry.unknown_key_refetch(True, issuer=self.issuer)

    def keys_in_use(self, policy: FreshnessPolicy, now: float) -> None:
        """Log, once per outage, that expired keys are served, and that they are given up."""
        held = policy.snapshot
        if held is None or not policy.failures or now < held.expires_at:
            return
        age = now - held.fetched_at
        if age <= policy.max_stale:
            if not self._stale_reported:
                self._stale_reported = True
                logs.serving_stale(self.issuer, age, policy.max_stale)
        elif not self._gave_up_reported:
            self._gave_up_reported = True
            logs.giving_up(self.issuer, age, policy.max_stale)
