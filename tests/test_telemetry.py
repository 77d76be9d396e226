"""telemetry.py: each instrument moves as the table in instruments.py documents.

The real OpenTelemetry SDK with in-memory readers; no global provider is touched.
"""

from __future__ import annotations

import gc
import sys
from typing import NoReturn

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from fastapi_isp_jwt.instruments import (
    DOWNLOAD_RESULTS,
    DOWNLOAD_SPAN,
    INSTRUMENTS,
    REFUSAL_EVENT,
    REFUSAL_EVENT_REASON,
)
from fastapi_isp_jwt.keycache.health import KeyCacheHealth
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.telemetry import Telemetry, outcome_of
from tests.support.telemetry import BrokenProviders, Recorded, RecordingSpanThatRaises, attrs

ISSUER = "https://tenant.example.auth0.com/"
OTHER_ISSUER = "https://login.example.com/"


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


def health(issuer: str = ISSUER, **changes: object) -> KeyCacheHealth:
    fields: dict[str, object] = {
        "issuer": issuer,
        "keys_known": 2,
        "age_seconds": 120.0,
        "stale": False,
        "ready": True,
        "failures": 0,
        "last_error": None,
        "next_attempt_in": 360.0,
    }
    fields.update(changes)
    return KeyCacheHealth(**fields)  # type: ignore[arg-type]


# -- verifications --------------------------------------------------------------------------


def test_an_accepted_token_counts_one_verification_with_no_reason(recorded: Recorded) -> None:
    recorded.telemetry.verified("accepted", None, 0.0002)
    assert recorded.values("isp_jwt.verifications") == {attrs(outcome="accepted"): 1}


def test_a_refused_token_counts_by_outcome_and_reason(recorded: Recorded) -> None:
    recorded.telemetry.verified("refused", Reason.EXPIRED, 0.0001)
    recorded.telemetry.verified("refused", Reason.EXPIRED, 0.0001)
    recorded.telemetry.verified("refused", Reason.AUDIENCE, 0.0001)
    assert recorded.values("isp_jwt.verifications") == {
        attrs(outcome="refused", reason="expired"): 2,
        attrs(outcome="refused", reason="audience"): 1,
    }


def test_an_unreachable_issuer_counts_as_unavailable(recorded: Recorded) -> None:
    recorded.telemetry.verified("unavailable", Reason.ISSUER_UNAVAILABLE, 5.0)
    assert recorded.values("isp_jwt.verifications") == {
        attrs(outcome="unavailable", reason="issuer_unavailable"): 1
    }


def test_verification_time_is_recorded_in_seconds_by_outcome(recorded: Recorded) -> None:
    recorded.telemetry.verified("accepted", None, 0.0002)
    recorded.telemetry.verified("accepted", None, 0.0004)
    recorded.telemetry.verified("refused", Reason.SIGNATURE, 0.003)
    points = recorded.histogram("isp_jwt.verification.duration")
    accepted, refused = points[attrs(outcome="accepted")], points[attrs(outcome="refused")]
    assert accepted.count == 2
    assert accepted.sum == pytest.approx(0.0006)
    assert refused.count == 1
    assert refused.sum == pytest.approx(0.003)


def test_verification_time_uses_buckets_made_for_microseconds(recorded: Recorded) -> None:
    recorded.telemetry.verified("accepted", None, 0.00003)
    (point,) = recorded.histogram("isp_jwt.verification.duration").values()
    assert point.explicit_bounds[0] == pytest.approx(1e-5)


def test_a_refusal_adds_an_event_with_its_reason_to_the_current_span(
    recorded: Recorded,
) -> None:
    with recorded.tracer_provider.get_tracer("tests").start_as_current_span("request"):
        recorded.telemetry.verified("refused", Reason.UNKNOWN_KEY, 0.001)
    (span,) = recorded.finished()
    (event,) = span.events
    assert event.name == REFUSAL_EVENT
    assert dict(event.attributes or {}) == {REFUSAL_EVENT_REASON: "unknown_key"}


def test_an_accepted_token_adds_no_span_event(recorded: Recorded) -> None:
    with recorded.tracer_provider.get_tracer("tests").start_as_current_span("request"):
        recorded.telemetry.verified("accepted", None, 0.001)
    (span,) = recorded.finished()
    assert span.events == ()


def test_a_refusal_outside_any_span_is_still_counted(recorded: Recorded) -> None:
    recorded.telemetry.verified("refused", Reason.MALFORMED, 0.00001)
    assert recorded.values("isp_jwt.verifications") == {
        attrs(outcome="refused", reason="malformed"): 1
    }


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [("maybe", None), ("accepted", Reason.EXPIRED), ("refused", None)],
)
def test_an_outcome_outside_the_documented_set_is_a_programming_error(
    recorded: Recorded, outcome: str, reason: Reason | None
) -> None:
    with pytest.raises(ValueError, match=r"outcome|reason"):
        recorded.telemetry.verified(outcome, reason, 0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reason", "outcome"),
    [(None, "accepted"), (Reason.EXPIRED, "refused"), (Reason.ISSUER_UNAVAILABLE, "unavailable")],
)
def test_outcome_of_a_reason(reason: Reason | None, outcome: str) -> None:
    assert outcome_of(reason) == outcome


def test_token_cache_lookups_count_hits_and_misses(recorded: Recorded) -> None:
    recorded.telemetry.token_cache(hit=True)
    recorded.telemetry.token_cache(hit=True)
    recorded.telemetry.token_cache(hit=False)
    assert recorded.values("isp_jwt.token_cache.lookups") == {
        attrs(result="hit"): 2,
        attrs(result="miss"): 1,
    }


# -- scopes and DPoP --------------------------------------------------------------------------


def test_a_scope_refusal_is_counted_and_added_to_the_span(recorded: Recorded) -> None:
    with recorded.tracer_provider.get_tracer("tests").start_as_current_span("request"):
        recorded.telemetry.scope_refused()
    assert recorded.values("isp_jwt.scope_refusals") == {attrs(): 1}
    (span,) = recorded.finished()
    assert [dict(e.attributes or {}) for e in span.events] == [{REFUSAL_EVENT_REASON: "scope"}]


def test_a_dpop_refusal_is_counted_by_reason(recorded: Recorded) -> None:
    recorded.telemetry.dpop_refused(Reason.SIGNATURE)
    assert recorded.values("isp_jwt.dpop_refusals") == {attrs(reason="signature"): 1}


# -- the key cache ----------------------------------------------------------------------------


@pytest.mark.parametrize("result", DOWNLOAD_RESULTS)
def test_a_key_download_is_counted_by_issuer_and_result(recorded: Recorded, result: str) -> None:
    recorded.telemetry.key_download(result, 0.08, issuer=ISSUER)  # type: ignore[arg-type]
    assert recorded.values("isp_jwt.key_downloads") == {attrs(issuer=ISSUER, result=result): 1}


def test_key_download_time_is_recorded_in_seconds(recorded: Recorded) -> None:
    recorded.telemetry.key_download("timeout", 5.0, issuer=ISSUER)
    (point,) = recorded.histogram("isp_jwt.key_download.duration").values()
    assert (point.count, point.sum) == (1, 5.0)


def test_a_download_result_outside_the_documented_set_is_refused(recorded: Recorded) -> None:
    with pytest.raises(ValueError, match="download result"):
        recorded.telemetry.key_download("dns", 0.1, issuer=ISSUER)  # type: ignore[arg-type]


def test_unknown_key_refetches_count_those_the_cooldown_held_back_apart(
    recorded: Recorded,
) -> None:
    recorded.telemetry.unknown_key_refetch(False, issuer=ISSUER)
    recorded.telemetry.unknown_key_refetch(True, issuer=ISSUER)
    recorded.telemetry.unknown_key_refetch(True, issuer=ISSUER)
    assert recorded.values("isp_jwt.unknown_key_refetches") == {
        attrs(issuer=ISSUER, suppressed=False): 1,
        attrs(issuer=ISSUER, suppressed=True): 2,
    }


def test_a_download_span_names_the_issuer(recorded: Recorded) -> None:
    with recorded.telemetry.download_span(issuer=ISSUER):
        pass
    (span,) = recorded.finished()
    assert (span.name, dict(span.attributes or {})) == (DOWNLOAD_SPAN, {"isp_jwt.issuer": ISSUER})


def test_gauges_report_each_watched_issuer(recorded: Recorded) -> None:
    recorded.telemetry.watch_key_caches(
        lambda: [health(), health(OTHER_ISSUER, stale=True, age_seconds=90000.0)]
    )
    assert recorded.values("isp_jwt.keys.known") == {
        attrs(issuer=ISSUER): 2,
        attrs(issuer=OTHER_ISSUER): 2,
    }
    assert recorded.values("isp_jwt.keys.stale") == {
        attrs(issuer=ISSUER): 0,
        attrs(issuer=OTHER_ISSUER): 1,
    }


def test_key_age_and_next_refresh_are_reported_in_seconds(recorded: Recorded) -> None:
    recorded.telemetry.watch_key_caches(lambda: [health(age_seconds=120.0, next_attempt_in=4.0)])
    assert recorded.values("isp_jwt.keys.age") == {attrs(issuer=ISSUER): 120.0}
    assert recorded.values("isp_jwt.keys.next_refresh") == {attrs(issuer=ISSUER): 4.0}


def test_no_age_is_reported_before_the_first_download(recorded: Recorded) -> None:
    recorded.telemetry.watch_key_caches(lambda: [health(keys_known=0, age_seconds=None)])
    assert recorded.values("isp_jwt.keys.known") == {attrs(issuer=ISSUER): 0}
    assert recorded.values("isp_jwt.keys.age") == {}


class _Owner:
    def healths(self) -> list[KeyCacheHealth]:
        return [health()]


def test_a_watched_bound_method_does_not_keep_its_owner_alive(recorded: Recorded) -> None:
    owner = _Owner()
    recorded.telemetry.watch_key_caches(owner.healths)
    assert recorded.values("isp_jwt.keys.known") == {attrs(issuer=ISSUER): 2}
    del owner
    gc.collect()
    assert recorded.values("isp_jwt.keys.known") == {}


# -- the documented table ---------------------------------------------------------------------


def _exercise_everything(telemetry: Telemetry) -> None:
    telemetry.verified("refused", Reason.EXPIRED, 0.001)
    telemetry.token_cache(hit=True)
    telemetry.scope_refused()
    telemetry.dpop_refused(Reason.SIGNATURE)
    telemetry.key_download("ok", 0.05, issuer=ISSUER)
    telemetry.unknown_key_refetch(False, issuer=ISSUER)
    telemetry.watch_key_caches(lambda: [health()])


def test_every_documented_instrument_is_exported_with_its_meter_and_unit(
    recorded: Recorded,
) -> None:
    _exercise_everything(recorded.telemetry)
    exported = {
        name: (meter, metric.unit, metric.description)
        for name, (meter, metric) in recorded.metrics().items()
    }
    assert exported == {i.name: (i.meter, i.unit, i.description) for i in INSTRUMENTS}


def test_every_attribute_exported_is_a_documented_one(recorded: Recorded) -> None:
    _exercise_everything(recorded.telemetry)
    documented = {i.name: set(i.attributes) for i in INSTRUMENTS}
    for name, (_, metric) in recorded.metrics().items():
        for point in metric.data.data_points:
            assert set(point.attributes or {}) <= documented[name], name


def test_meters_are_named_after_the_modules_whose_work_they_measure() -> None:
    assert {i.meter for i in INSTRUMENTS} == {
        "fastapi_isp_jwt.verifier",
        "fastapi_isp_jwt.security",
        "fastapi_isp_jwt.dpop",
        "fastapi_isp_jwt.keycache",
    }


# -- without OpenTelemetry ----------------------------------------------------------------------


@pytest.fixture
def without_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import opentelemetry`` fail, as when the otel extra is not installed."""
    for name in list(sys.modules):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)


@pytest.mark.usefixtures("without_api")
def test_without_the_api_telemetry_is_inactive() -> None:
    assert Telemetry().active is False


@pytest.mark.usefixtures("without_api")
def test_without_the_api_every_method_does_nothing() -> None:
    telemetry = Telemetry()
    _exercise_everything(telemetry)
    with telemetry.download_span(issuer=ISSUER) as span:
        assert span is None


def test_disabled_telemetry_reports_nothing() -> None:
    reader = InMemoryMetricReader()
    telemetry = Telemetry(meter_provider=MeterProvider(metric_readers=[reader]), enabled=False)
    _exercise_everything(telemetry)
    assert telemetry.active is False
    assert reader.get_metrics_data() is None


def test_with_providers_given_telemetry_is_active(recorded: Recorded) -> None:
    assert recorded.telemetry.active is True


def test_on_the_global_providers_without_an_sdk_telemetry_is_inactive() -> None:
    # The API alone (FastAPI brings it along) must cost the hot path nothing.
    assert Telemetry().active is False


def test_refresh_starts_reporting_once_an_sdk_provides_meters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    telemetry = Telemetry()
    monkeypatch.setattr(metrics, "get_meter_provider", MeterProvider)
    assert telemetry.refresh() is True
    assert telemetry.active is True


def test_refresh_starts_reporting_once_an_sdk_provides_tracers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    telemetry = Telemetry()
    monkeypatch.setattr(trace, "get_tracer_provider", TracerProvider)
    assert telemetry.refresh() is True


def test_refresh_without_an_sdk_leaves_telemetry_inactive() -> None:
    telemetry = Telemetry()
    assert telemetry.refresh() is False


def test_refresh_never_activates_disabled_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    telemetry = Telemetry(enabled=False)
    monkeypatch.setattr(metrics, "get_meter_provider", MeterProvider)
    assert telemetry.refresh() is False


# -- a broken SDK ---------------------------------------------------------------------------


def test_a_meter_that_raises_loses_the_measurements_and_raises_nothing() -> None:
    telemetry = BrokenProviders().telemetry
    telemetry.verified("accepted", None, 0.001)
    _exercise_everything(telemetry)
    assert telemetry.active


def test_a_tracer_that_raises_gives_a_download_span_that_does_nothing() -> None:
    with BrokenProviders().telemetry.download_span(issuer=ISSUER):
        ran = True
    assert ran


def test_a_download_span_whose_tracer_raises_lets_the_downloads_own_error_through() -> None:
    with pytest.raises(KeyError), BrokenProviders().telemetry.download_span(issuer=ISSUER):
        raise KeyError("the download's own")


def test_a_current_span_that_raises_on_an_event_does_not_stop_a_refusal_being_reported(
    recorded: Recorded,
) -> None:
    with trace.use_span(RecordingSpanThatRaises(), record_exception=False):
        recorded.telemetry.verified("refused", Reason.SIGNATURE, 0.001)
    assert recorded.values("isp_jwt.verifications") == {
        attrs(outcome="refused", reason="signature"): 1
    }


def test_a_meter_provider_that_cannot_make_instruments_leaves_telemetry_inactive() -> None:
    class CannotMakeMeters:
        def get_meter(self, *args: object, **kwargs: object) -> NoReturn:
            raise RuntimeError("broken SDK: get_meter")

    telemetry = Telemetry(meter_provider=CannotMakeMeters())  # type: ignore[arg-type]
    telemetry.verified("accepted", None, 0.001)
    assert not telemetry.active
