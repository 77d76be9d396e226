"""OpenTelemetry metrics and span events for verifications and the key cache.

Only the OpenTelemetry *API* is used (the optional extra ``otel``): the application chooses
an SDK and exporters, or none. Without the API installed, `Telemetry` is inert and each of
its methods returns after one attribute check. Meters and the tracer are named after the
module whose work they measure, as OpenTelemetry advises for instrumentation libraries.

Every attribute value comes from a bounded set: an outcome, a `Reason` code, a download
result, or an issuer from the configuration. Nothing read from a token (subject, key id,
its own ``iss``) ever becomes an attribute: a flood of forged tokens cannot grow the
number of time series.

A broken SDK (a meter, tracer or span that raises) loses its measurements and changes no
answer: what it raises is dropped here, as the OpenTelemetry API itself never raises.

`fastapi_isp_jwt.instruments.INSTRUMENTS` is the table of what is created here, the one
the Operations docs are checked against.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext, suppress
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Final

from fastapi_isp_jwt.instruments import (
    DOWNLOAD_RESULTS,
    DOWNLOAD_SPAN,
    DPOP_SCOPE,
    INSTRUMENTS,
    KEYCACHE_SCOPE,
    OUTCOMES,
    REFUSAL_EVENT,
    REFUSAL_EVENT_REASON,
    SECURITY_SCOPE,
    VERIFIER_SCOPE,
    DownloadResult,
    VerificationOutcome,
)
from fastapi_isp_jwt.reasons import Outcome, Reason

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import Span, TracerProvider

    from fastapi_isp_jwt.keycache.health import KeyCacheHealth

__all__ = ["Telemetry", "outcome_of", "shared"]

_ACCEPTED_ATTRIBUTES: Final[Mapping[str, str]] = {"outcome": "accepted"}
# Around each call into the SDK: a broken one must not turn a request into a 500.
_SDK_FAILURES: Final = suppress(Exception)


def outcome_of(reason: Reason | None) -> VerificationOutcome:
    """The ``outcome`` attribute for a verification that ended with ``reason`` (None: accepted)."""
    if reason is None:
        return "accepted"
    return "unavailable" if reason.outcome is Outcome.ISSUER_UNAVAILABLE else "refused"


def _load_api() -> tuple[ModuleType, ModuleType] | None:
    """The OpenTelemetry metrics and trace API modules, or None when not installed."""
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        return None
    return metrics, trace


def _sdk_installed(metrics: ModuleType, trace: ModuleType) -> bool:
    """Whether a global meter or tracer provider is an SDK's rather than the API's stand-in."""
    api_modules = ("opentelemetry.metrics", "opentelemetry.trace")
    providers = (metrics.get_meter_provider(), trace.get_tracer_provider())
    return any(not type(p).__module__.startswith(api_modules) for p in providers)


def _library_version() -> str:
    try:
        return importlib.metadata.version("fastapi-isp-jwt")
    except importlib.metadata.PackageNotFoundError:
        return ""


HealthSource = Callable[[], Iterable["KeyCacheHealth"]]


class _Instruments:
    """The OpenTelemetry objects, made only when the API is installed."""

    def __init__(
        self,
        metrics: ModuleType,
        trace: ModuleType,
        meter_provider: MeterProvider | None,
        tracer_provider: TracerProvider | None,
        gauges: Callable[[str], Callable[[CallbackOptions], Iterable[Observation]]],
    ) -> None:
        version = _library_version()
        self.trace = trace
        self.observation = metrics.Observation
        self.tracer = trace.get_tracer(KEYCACHE_SCOPE, version, tracer_provider)
        meters = {
            scope: metrics.get_meter(scope, version, meter_provider)
            for scope in (VERIFIER_SCOPE, SECURITY_SCOPE, DPOP_SCOPE, KEYCACHE_SCOPE)
        }
        made: dict[str, Any] = {}
        for spec in INSTRUMENTS:
            meter = meters[spec.meter]
            if spec.kind == "counter":
                made[spec.name] = meter.create_counter(spec.name, spec.unit, spec.description)
            elif spec.kind == "histogram":
                made[spec.name] = meter.create_histogram(
                    spec.name,
                    spec.unit,
                    spec.description,
                    explicit_bucket_boundaries_advisory=spec.buckets,
                )
            else:
                made[spec.name] = meter.create_observable_gauge(
                    spec.name, [gauges(spec.name)], spec.unit, spec.description
                )
        self.verifications = made["isp_jwt.verifications"]
        self.verification_time = made["isp_jwt.verification.duration"]
        self.token_cache = made["isp_jwt.token_cache.lookups"]
        self.scope_refusals = made["isp_jwt.scope_refusals"]
        self.dpop_refusals = made["isp_jwt.dpop_refusals"]
        self.key_downloads = made["isp_jwt.key_downloads"]
        self.key_download_time = made["isp_jwt.key_download.duration"]
        self.unknown_key_refetches = made["isp_jwt.unknown_key_refetches"]


def _gauge_value(name: str, health: KeyCacheHealth) -> float | None:
    if name == "isp_jwt.keys.known":
        return float(health.keys_known)
    if name == "isp_jwt.keys.age":
        return health.age_seconds
    if name == "isp_jwt.keys.stale":
        return 1.0 if health.stale else 0.0
    return health.next_attempt_in


class Telemetry:
    """The instruments the verifier, the FastAPI layer and the key cache report to.

    Built with no arguments it reports to the global meter and tracer providers (use
    `shared()` for the one process-wide instance); tests and applications with their own
    providers pass them in. ``active`` is false, and every method a no-op, when the API is
    not installed, when ``enabled=False``, or while the global providers are still the
    API's stand-ins (no SDK installed): recent FastAPI releases bring the API along, and a
    service that never installs an SDK must not pay for instruments nobody reads. An SDK
    installed after this was built is picked up by `refresh` (the verifier calls it when it
    warms up). Callers on a hot path check ``active`` before measuring time, so an inactive
    instance costs them one attribute read.
    """

    active: bool
    """Whether calls are reported; read it before timing anything."""

    def __init__(
        self,
        *,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
        enabled: bool = True,
    ) -> None:
        self._sources: list[Callable[[], HealthSource | None]] = []
        self._sources_lock = threading.Lock()
        self._verification_attributes: dict[tuple[str, Reason | None], Mapping[str, str]] = {}
        self._outcome_attributes: dict[str, Mapping[str, str]] = {
            outcome: {"outcome": outcome} for outcome in OUTCOMES
        }
        self._dpop_attributes = {reason: {"reason": reason.value} for reason in Reason}
        self._given_providers = meter_provider is not None or tracer_provider is not None
        self._api = _load_api() if enabled else None
        # Made whenever the API is there: on the global providers they are the API's
        # proxies, which forward to an SDK installed later.
        self._made: _Instruments | None = None
        if self._api is not None:
            with _SDK_FAILURES:  # a provider that cannot make instruments: nothing reported
                self._made = _Instruments(
                    *self._api, meter_provider, tracer_provider, self._gauge_callback
                )
        self._instruments: _Instruments | None = None
        self.active = False
        self.refresh()

    def refresh(self) -> bool:
        """Start reporting if an SDK is installed now; returns ``active``."""
        if self._made is not None and not self.active:
            assert self._api is not None
            if self._given_providers or _sdk_installed(*self._api):
                self._instruments = self._made
                self.active = True
        return self.active

    # -- verifications ---------------------------------------------------------------------

    def verified(self, outcome: VerificationOutcome, reason: Reason | None, seconds: float) -> None:
        """One token verified: counted by outcome and reason, timed, and a refusal event."""
        instruments = self._instruments
        if instruments is None:
            return
        attributes = self._verification_attributes.get((outcome, reason))
        if attributes is None:
            attributes = self._remember_attributes(outcome, reason)
        with _SDK_FAILURES:
            instruments.verifications.add(1, attributes)
            instruments.verification_time.record(seconds, self._outcome_attributes[outcome])
        if reason is not None:
            self._refusal_event(instruments, reason)

    def token_cache(self, hit: bool) -> None:
        """One lookup in the verified-token cache."""
        instruments = self._instruments
        if instruments is None:
            return
        with _SDK_FAILURES:
            instruments.token_cache.add(1, _HIT if hit else _MISS)

    def scope_refused(self) -> None:
        """A valid token lacked a scope the route requires."""
        instruments = self._instruments
        if instruments is None:
            return
        with _SDK_FAILURES:
            instruments.scope_refusals.add(1)
        self._refusal_event(instruments, Reason.SCOPE)

    def dpop_refused(self, reason: Reason) -> None:
        """A DPoP proof was refused for ``reason``."""
        instruments = self._instruments
        if instruments is None:
            return
        with _SDK_FAILURES:
            instruments.dpop_refusals.add(1, self._dpop_attributes[reason])
        self._refusal_event(instruments, reason)

    # -- the key cache ---------------------------------------------------------------------

    def key_download(self, result: DownloadResult, seconds: float, *, issuer: str) -> None:
        """One download of ``issuer``'s keys ended with ``result`` after ``seconds``."""
        instruments = self._instruments
        if instruments is None:
            return
        if result not in DOWNLOAD_RESULTS:
            raise ValueError(f"unknown download result {result!r}")
        attributes = {"issuer": issuer, "result": result}
        with _SDK_FAILURES:
            instruments.key_downloads.add(1, attributes)
            instruments.key_download_time.record(seconds, attributes)

    def unknown_key_refetch(self, suppressed: bool, *, issuer: str) -> None:
        """A token named a key not held; ``suppressed`` when the cooldown held the refetch."""
        instruments = self._instruments
        if instruments is None:
            return
        with _SDK_FAILURES:
            instruments.unknown_key_refetches.add(1, {"issuer": issuer, "suppressed": suppressed})

    def download_span(self, *, issuer: str) -> AbstractContextManager[object]:
        """A short span around one key download (a no-op context when inactive)."""
        instruments = self._instruments
        if instruments is None:
            return nullcontext()
        return _GuardedSpan(instruments, issuer)

    def watch_key_caches(self, source: HealthSource) -> None:
        """Feed the key-cache gauges from ``source``, called at each collection.

        A bound method is held weakly: a verifier that is dropped stops being observed,
        and is not kept alive by the process-wide instance.
        """
        if self._made is None:
            return
        reference: Callable[[], HealthSource | None] = (
            weakref.WeakMethod(source) if inspect.ismethod(source) else _strong(source)
        )
        with self._sources_lock:
            # Sources are otherwise pruned at collection: without an SDK, never.
            self._sources = [ref for ref in self._sources if ref() is not None]
            self._sources.append(reference)

    # -- inside ----------------------------------------------------------------------------

    def _remember_attributes(
        self, outcome: VerificationOutcome, reason: Reason | None
    ) -> Mapping[str, str]:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown verification outcome {outcome!r}")
        if (reason is None) != (outcome == "accepted"):
            raise ValueError("a refusal needs its reason, and an accepted token has none")
        attributes = (
            _ACCEPTED_ATTRIBUTES if reason is None else {"outcome": outcome, "reason": reason.value}
        )
        self._verification_attributes[(outcome, reason)] = attributes
        return attributes

    @staticmethod
    def _refusal_event(instruments: _Instruments, reason: Reason) -> None:
        with _SDK_FAILURES:
            span: Span = instruments.trace.get_current_span()
            if span.is_recording():
                span.add_event(REFUSAL_EVENT, {REFUSAL_EVENT_REASON: reason.value})

    def _healths(self) -> Iterator[KeyCacheHealth]:
        with self._sources_lock:
            live = [(ref, ref()) for ref in self._sources]
            self._sources = [ref for ref, source in live if source is not None]
        for _, source in live:
            if source is not None:
                yield from source()

    def _gauge_callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            instruments = self._made
            assert instruments is not None
            observations = []
            for health in self._healths():
                value = _gauge_value(name, health)
                if value is not None:
                    observations.append(instruments.observation(value, {"issuer": health.issuer}))
            return observations

        return observe


class _GuardedSpan:
    """The download span, or nothing when the tracer raises; the download's own errors pass."""

    def __init__(self, instruments: _Instruments, issuer: str) -> None:
        self._instruments = instruments
        self._issuer = issuer
        self._span: AbstractContextManager[object] | None = None

    def __enter__(self) -> object:
        with _SDK_FAILURES:
            span = self._instruments.tracer.start_as_current_span(
                DOWNLOAD_SPAN, attributes={"isp_jwt.issuer": self._issuer}
            )
            entered = span.__enter__()
            self._span = span
            return entered
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        span, self._span = self._span, None
        if span is not None:
            with _SDK_FAILURES:
                span.__exit__(kind, error, traceback)


_HIT: Final[Mapping[str, str]] = {"result": "hit"}
_MISS: Final[Mapping[str, str]] = {"result": "miss"}


def _strong(source: HealthSource) -> Callable[[], HealthSource]:
    return lambda: source


_shared: Telemetry | None = None
_shared_lock = threading.Lock()


def shared() -> Telemetry:
    """The process-wide `Telemetry` on the global providers, made on first use.

    One instance for every verifier in the process, as OpenTelemetry wants one instrument
    per name. Its instruments are the API's proxies, so an SDK installed after the verifiers
    were built is reported to once `Telemetry.refresh` has seen it.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Telemetry()
        return _shared
