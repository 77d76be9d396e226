"""The metrics the library reports, as data: name, kind, unit, attributes, meter.

This table is what the Operations docs list and what `fastapi_isp_jwt.telemetry` creates
(a test holds the two together). Attribute values come from bounded sets only: the
outcomes and download results below, `Reason` codes, and issuers from the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "DOWNLOAD_RESULTS",
    "DOWNLOAD_SPAN",
    "INSTRUMENTS",
    "OUTCOMES",
    "REFUSAL_EVENT",
    "REFUSAL_EVENT_REASON",
    "DownloadResult",
    "Instrument",
    "VerificationOutcome",
]

VerificationOutcome = Literal["accepted", "refused", "unavailable"]
DownloadResult = Literal["ok", "http_error", "timeout", "invalid_document"]
OUTCOMES: Final[tuple[VerificationOutcome, ...]] = ("accepted", "refused", "unavailable")
DOWNLOAD_RESULTS: Final[tuple[DownloadResult, ...]] = (
    "ok",
    "http_error",
    "timeout",
    "invalid_document",
)

VERIFIER_SCOPE: Final = "fastapi_isp_jwt.verifier"
SECURITY_SCOPE: Final = "fastapi_isp_jwt.security"
DPOP_SCOPE: Final = "fastapi_isp_jwt.dpop"
KEYCACHE_SCOPE: Final = "fastapi_isp_jwt.keycache"

REFUSAL_EVENT: Final = "isp_jwt.refusal"
"""Name of the span event added to the current span for each refusal."""
REFUSAL_EVENT_REASON: Final = "isp_jwt.reason"
"""The event's one attribute: the `Reason` code."""
DOWNLOAD_SPAN: Final = "isp_jwt.key_download"
"""Name of the short span around one download of an issuer's keys."""


# Verification takes microseconds from the token cache and up to the download timeout when
# it waits for keys; the SDK's default buckets are made for milliseconds.
VERIFICATION_BUCKETS: Final = (
    1e-5,
    2.5e-5,
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    0.01,
    0.05,
    0.25,
    1.0,
    5.0,
)
DOWNLOAD_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class Instrument:
    """One metric as the docs describe it: what it counts, in which unit, split by what."""

    name: str
    kind: Literal["counter", "histogram", "gauge"]
    unit: str
    attributes: tuple[str, ...]
    meter: str
    description: str
    buckets: tuple[float, ...] = ()
    """A histogram's advised bucket boundaries, in its unit."""


INSTRUMENTS: Final[tuple[Instrument, ...]] = (
    Instrument(
        "isp_jwt.verifications",
        "counter",
        "{verification}",
        ("outcome", "reason"),
        VERIFIER_SCOPE,
        "Tokens verified; reason (a Reason code) is present on refusals only",
    ),
    Instrument(
        "isp_jwt.verification.duration",
        "histogram",
        "s",
        ("outcome",),
        VERIFIER_SCOPE,
        "Time to verify one token, key downloads it waited for included",
        VERIFICATION_BUCKETS,
    ),
    Instrument(
        "isp_jwt.token_cache.lookups",
        "counter",
        "{lookup}",
        ("result",),
        VERIFIER_SCOPE,
        "Verified-token cache lookups; result is hit or miss",
    ),
    Instrument(
        "isp_jwt.scope_refusals",
        "counter",
        "{refusal}",
        (),
        SECURITY_SCOPE,
        "Valid tokens refused for lacking a scope the route requires",
    ),
    Instrument(
        "isp_jwt.dpop_refusals",
        "counter",
        "{refusal}",
        ("reason",),
        DPOP_SCOPE,
        "DPoP proofs refused, by Reason code",
    ),
    Instrument(
        "isp_jwt.key_downloads",
        "counter",
        "{download}",
        ("issuer", "result"),
        KEYCACHE_SCOPE,
        "Downloads of an issuer's keys; result is ok, http_error, timeout or invalid_document",
    ),
    Instrument(
        "isp_jwt.key_download.duration",
        "histogram",
        "s",
        ("issuer", "result"),
        KEYCACHE_SCOPE,
        "Time one download of an issuer's keys took, discovery included",
        DOWNLOAD_BUCKETS,
    ),
    Instrument(
        "isp_jwt.unknown_key_refetches",
        "counter",
        "{refetch}",
        ("issuer", "suppressed"),
        KEYCACHE_SCOPE,
        "Tokens naming a key not held; suppressed=true when the cooldown held the refetch back",
    ),
    Instrument(
        "isp_jwt.keys.known",
        "gauge",
        "{key}",
        ("issuer",),
        KEYCACHE_SCOPE,
        "Usable keys in the issuer's key set now held",
    ),
    Instrument(
        "isp_jwt.keys.age",
        "gauge",
        "s",
        ("issuer",),
        KEYCACHE_SCOPE,
        "Age of the issuer's key set now held; absent before the first download",
    ),
    Instrument(
        "isp_jwt.keys.stale",
        "gauge",
        "1",
        ("issuer",),
        KEYCACHE_SCOPE,
        "1 while the issuer's key set is past its lifetime and served through an outage",
    ),
    Instrument(
        "isp_jwt.keys.next_refresh",
        "gauge",
        "s",
        ("issuer",),
        KEYCACHE_SCOPE,
        "Seconds until the issuer's keys are next fetched (a retry, during an outage)",
    ),
)
