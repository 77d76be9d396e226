"""docs/operations.md says what the code reports: metrics, query labels, log fields, health.

The tables are compared with the tables the code keeps (`instruments.INSTRUMENTS`,
`logs.KEY_CACHE_EVENT_LEVELS`...), every PromQL name and label value on the page must exist,
and the readiness probe example runs against a real key cache.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_isp_jwt import IssuerUnavailableError, Settings, Verifier
from fastapi_isp_jwt.instruments import DOWNLOAD_RESULTS, INSTRUMENTS, OUTCOMES, Instrument
from fastapi_isp_jwt.keycache.health import KeyCacheHealth
from fastapi_isp_jwt.logs import KEY_CACHE_EVENT_LEVELS, refusal_record_fields
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.faults import server_error
from tests.support.issuer_server import IssuerServer
from tests.test_docs import DOCS, ROOT, code_blocks, code_spans, section, table_rows

PAGE = DOCS / "operations.md"

QUESTIONS = (
    "Are tokens simply expired?",
    "Is one client asking for the wrong audience?",
    "Did the tenant rotate its keys?",
    "Is it an attack?",
    "Is the tenant down?",
)


def prometheus_name(instrument: Instrument) -> str:
    """The name OpenTelemetry's Prometheus compatibility rules give ``instrument``."""
    name = instrument.name.replace(".", "_")
    if instrument.unit == "s":
        name += "_seconds"
    elif instrument.unit == "1" and instrument.kind == "gauge":
        name += "_ratio"
    return name + "_total" if instrument.kind == "counter" else name


def series_names() -> dict[str, Instrument]:
    """Every series name Prometheus shows for the instruments, with its instrument."""
    names: dict[str, Instrument] = {}
    for instrument in INSTRUMENTS:
        base = prometheus_name(instrument)
        suffixes = ("_bucket", "_sum", "_count") if instrument.kind == "histogram" else ("",)
        names.update({base + suffix: instrument for suffix in suffixes})
    return names


def queries() -> list[str]:
    return [block.text for block in code_blocks(PAGE) if block.language == "promql"]


_MATCHER = re.compile(r'(?P<label>\w+)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>[^"]*)"')
_SERIES = re.compile(r"\bisp_jwt_\w+")


# -- metrics ------------------------------------------------------------------------------------


def test_the_metrics_table_lists_every_instrument_with_its_kind_unit_and_attributes() -> None:
    documented = {
        (code_spans(name)[0], kind, code_spans(unit)[0], tuple(code_spans(attributes)))
        for name, kind, unit, attributes, _ in table_rows(section(PAGE, "Metrics"))
    }
    assert documented == {(i.name, i.kind, i.unit, i.attributes) for i in INSTRUMENTS}


def test_every_prometheus_name_on_the_page_is_a_series_of_an_instrument() -> None:
    used = set(_SERIES.findall(PAGE.read_text(encoding="utf-8")))
    assert used, "the page names no series"
    assert used <= set(series_names()), used - set(series_names())


@pytest.mark.parametrize("question", QUESTIONS)
def test_each_question_has_a_promql_query(question: str) -> None:
    assert "```promql" in section(PAGE, question)


def label_values(query: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for match in _MATCHER.finditer(query):
        values = match["value"].split("|") if "~" in match["op"] else [match["value"]]
        found.extend((match["label"], value) for value in values)
    return found


ALLOWED_VALUES: dict[str, set[str]] = {
    "reason": {reason.value for reason in Reason},
    "result": set(DOWNLOAD_RESULTS) | {"hit", "miss"},
    "outcome": set(OUTCOMES),
    "suppressed": {"true", "false"},
}


def test_every_label_in_the_queries_is_an_attribute_with_a_value_it_takes() -> None:
    attributes = {a for instrument in INSTRUMENTS for a in instrument.attributes}
    for query in queries():
        for label, value in label_values(query):
            assert label in attributes, (label, query)
            if label in ALLOWED_VALUES:
                assert value in ALLOWED_VALUES[label], (label, value)


def test_every_label_a_query_filters_a_series_by_is_one_of_that_series() -> None:
    names = series_names()
    for query in queries():
        for series, matchers in re.findall(r"(isp_jwt_\w+)\{([^}]*)\}", query):
            labels = {label for label, _ in label_values("{" + matchers + "}")}
            assert labels <= set(names[series].attributes), (series, labels)


# -- logs -----------------------------------------------------------------------------------------


def test_the_refusal_fields_table_lists_the_fields_each_refusal_record_has() -> None:
    documented = [
        code_spans(row[0])[0]
        for row in table_rows(section(PAGE, "Refusals: `fastapi_isp_jwt.refusals`"))
    ]
    fields = refusal_record_fields(Reason.EXPIRED, "i", "k", "c", "t.t.t")
    assert documented == list(fields)


def test_the_key_cache_events_table_lists_every_event_at_its_level() -> None:
    rows = table_rows(section(PAGE, "Key-cache events: `fastapi_isp_jwt.jwks`"))
    documented = {code_spans(event)[0]: code_spans(level)[0] for event, level, *_ in rows}
    assert documented == {
        event: logging.getLevelName(level) for event, level in KEY_CACHE_EVENT_LEVELS.items()
    }


# -- health ---------------------------------------------------------------------------------------


def test_the_health_table_lists_every_field_of_key_cache_health() -> None:
    documented = [code_spans(row[0])[0] for row in table_rows(section(PAGE, "Health check"))]
    assert documented == [field.name for field in dataclasses.fields(KeyCacheHealth)]


class _HealthOf:
    """``Verifier.health()`` as the page describes it, built from the verifier's key caches."""

    def __init__(self, verifier: Verifier) -> None:
        self.key_sources = verifier.key_sources

    def health(self) -> tuple[KeyCacheHealth, ...]:
        return tuple(cache.health() for cache in self.key_sources.values())


def readiness_app(verifier: Verifier) -> FastAPI:
    (example,) = [b for b in code_blocks(PAGE) if b.language == "python" and "/ready" in b.text]
    namespace: dict[str, Any] = {"app": FastAPI(), "verifier": _HealthOf(verifier)}
    exec(compile(example.text, example.where, "exec"), namespace)  # noqa: S102 - the docs' code
    app: FastAPI = namespace["app"]
    return app


@pytest.fixture
def verifier(server: IssuerServer, issuer: TestIssuer) -> Verifier:
    return Verifier(Settings(issuer=server.url, audience=issuer.audience))


def test_the_readiness_probe_answers_503_before_the_keys_are_downloaded(
    verifier: Verifier,
) -> None:
    answer = TestClient(readiness_app(verifier)).get("/ready")
    assert (answer.status_code, answer.json()["issuers"][0]["ready"]) == (503, False)


def test_the_readiness_probe_answers_200_once_the_keys_are_held(
    verifier: Verifier, issuer: TestIssuer
) -> None:
    verifier.verify_sync(issuer.mint())

    answer = TestClient(readiness_app(verifier)).get("/ready")

    assert answer.status_code == 200
    assert answer.json()["issuers"][0]["keys_known"] >= 1


def test_the_readiness_probe_answers_503_and_says_why_when_the_issuer_fails(
    verifier: Verifier, server: IssuerServer, issuer: TestIssuer
) -> None:
    server.fault = server_error()
    with pytest.raises(IssuerUnavailableError):
        verifier.verify_sync(issuer.mint())

    answer = TestClient(readiness_app(verifier)).get("/ready")

    assert answer.status_code == 503
    assert answer.json()["issuers"][0]["last_error"] == "the issuer answered HTTP 500"


# -- the site -------------------------------------------------------------------------------------


def test_the_page_is_in_the_site_navigation() -> None:
    assert "operations.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


def test_the_troubleshooting_page_covers_skipped_keys() -> None:
    page = Path(DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    assert "skipping the published key" in page
