"""What the key cache reports: metrics and a span per download, refetches, log events, health.

A real issuer on 127.0.0.1 misbehaves on demand (tests/support/issuer_server.py); the metrics
go to the real OpenTelemetry SDK with in-memory readers, the log records to caplog.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from fastapi_isp_jwt.errors import InvalidTokenError, IssuerUnavailableError
from fastapi_isp_jwt.instruments import DOWNLOAD_SPAN
from fastapi_isp_jwt.keycache import JWKSCache
from fastapi_isp_jwt.keys import MAX_JWKS_KEYS
from fastapi_isp_jwt.logs import KEY_CACHE_EVENT_LEVELS
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.clock import FakeClock
from tests.support.faults import Reply, garbage, not_a_jwks, server_error, slow
from tests.support.issuer_server import DISCOVERY_PATH, IssuerServer, closed_port_url
from tests.support.telemetry import Recorded, attrs
from tests.support.timing import wait_until

TTL = 600.0
COOLDOWN = 30.0
MAX_STALE = 3600.0
TIMEOUT = 0.5


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


def make_cache(
    server: IssuerServer, clock: FakeClock, recorded: Recorded, **options: Any
) -> JWKSCache:
    jwks_url = options.pop("jwks_url", server.jwks_url)
    settings: dict[str, Any] = {
        "issuer": server.url,
        "ttl": TTL,
        "cooldown": COOLDOWN,
        "max_stale": MAX_STALE,
        "timeout": TIMEOUT,
        "clock": clock,
        "telemetry": recorded.telemetry,
    }
    settings.update(options)
    return JWKSCache(jwks_url, **settings)


@pytest.fixture
def cache(server: IssuerServer, clock: FakeClock, recorded: Recorded) -> JWKSCache:
    return make_cache(server, clock, recorded)


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="fastapi_isp_jwt.jwks")
    return caplog


def events(log: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in log.records if getattr(r, "event", None) == name]


def fields(record: logging.LogRecord, *names: str) -> tuple[object, ...]:
    """The record's ``extra`` fields ``names``."""
    return tuple(getattr(record, name) for name in names)


def the_event(log: pytest.LogCaptureFixture, name: str) -> logging.LogRecord:
    (record,) = events(log, name)
    assert record.levelno == KEY_CACHE_EVENT_LEVELS[name]
    return record


# -- one download of each kind ------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_good_download_counts_as_ok_and_is_timed(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, recorded: Recorded
) -> None:
    await cache.get_key(issuer.signing_key.kid)

    assert recorded.values("isp_jwt.key_downloads") == {attrs(issuer=server.url, result="ok"): 1}
    (point,) = recorded.histogram("isp_jwt.key_download.duration").values()
    assert point.count == 1


@pytest.mark.parametrize(
    ("fault", "result"),
    [
        (server_error(), "http_error"),
        (slow(3 * TIMEOUT), "timeout"),
        (garbage(), "invalid_document"),
        (not_a_jwks(), "invalid_document"),
        (Reply(body=json.dumps({"keys": [{}] * (MAX_JWKS_KEYS + 1)}).encode()), "invalid_document"),
    ],
    ids=["http-500", "too-slow", "not-json", "not-a-jwks", "too-many-keys"],
)
@pytest.mark.anyio
async def test_a_failed_download_counts_under_its_result(
    issuer: TestIssuer,
    server: IssuerServer,
    cache: JWKSCache,
    recorded: Recorded,
    fault: Any,
    result: str,
) -> None:
    server.fault = fault

    with pytest.raises(IssuerUnavailableError):
        await cache.get_key(issuer.signing_key.kid)

    assert recorded.values("isp_jwt.key_downloads") == {attrs(issuer=server.url, result=result): 1}


@pytest.mark.anyio
async def test_a_document_nested_too_deeply_to_parse_counts_as_an_invalid_document(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, recorded: Recorded
) -> None:
    # The issuer answered; what it sent is no usable document, as for any unparseable JSON.
    server.fault = Reply(body=b'{"keys": ' + b"[" * 100_000)

    with pytest.raises(IssuerUnavailableError):
        await cache.get_key(issuer.signing_key.kid)

    assert recorded.values("isp_jwt.key_downloads") == {
        attrs(issuer=server.url, result="invalid_document"): 1
    }
    assert cache.health().last_error == "the response is not JSON"


@pytest.mark.anyio
async def test_discovery_naming_a_jwks_uri_that_is_not_unicode_text_counts_as_an_invalid_document(
    issuer: TestIssuer, server: IssuerServer, clock: FakeClock, recorded: Recorded
) -> None:
    # JSON may escape a lone surrogate; no URL can hold one.
    metadata = json.dumps({"issuer": server.url, "jwks_uri": "https://keys.example/\ud800"})
    server.inject(DISCOVERY_PATH, Reply(body=metadata.encode()))
    cache = make_cache(server, clock, recorded, jwks_url=None, discovery=True)

    with pytest.raises(IssuerUnavailableError):
        await cache.get_key(issuer.signing_key.kid)

    assert recorded.values("isp_jwt.key_downloads") == {
        attrs(issuer=server.url, result="invalid_document"): 1
    }


@pytest.mark.anyio
async def test_an_issuer_nobody_answers_for_counts_as_an_http_error(
    issuer: TestIssuer, server: IssuerServer, clock: FakeClock, recorded: Recorded
) -> None:
    cache = make_cache(server, clock, recorded, jwks_url=closed_port_url())

    with pytest.raises(IssuerUnavailableError):
        await cache.get_key(issuer.signing_key.kid)

    assert recorded.values("isp_jwt.key_downloads") == {
        attrs(issuer=server.url, result="http_error"): 1
    }


def test_a_download_without_an_event_loop_is_counted_too(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, recorded: Recorded
) -> None:
    cache.get_key_sync(issuer.signing_key.kid)

    assert recorded.values("isp_jwt.key_downloads") == {attrs(issuer=server.url, result="ok"): 1}


@pytest.mark.anyio
async def test_each_download_runs_in_a_short_span_naming_the_issuer(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, recorded: Recorded
) -> None:
    await cache.get_key(issuer.signing_key.kid)

    (span,) = recorded.finished()
    assert (span.name, dict(span.attributes or {})) == (
        DOWNLOAD_SPAN,
        {"isp_jwt.issuer": server.url},
    )


@pytest.mark.anyio
async def test_a_cache_given_no_issuer_is_reported_under_its_jwks_url(
    issuer: TestIssuer, server: IssuerServer, recorded: Recorded
) -> None:
    cache = JWKSCache(server.jwks_url, telemetry=recorded.telemetry)

    await cache.get_key(issuer.signing_key.kid)

    assert recorded.values("isp_jwt.key_downloads") == {
        attrs(issuer=server.jwks_url, result="ok"): 1
    }


# -- unknown keys ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_token_naming_an_unknown_key_refetches_once(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, recorded: Recorded
) -> None:
    await cache.get_key(issuer.signing_key.kid)

    with pytest.raises(InvalidTokenError):
        await cache.get_key("made-up")

    assert recorded.values("isp_jwt.unknown_key_refetches") == {
        attrs(issuer=server.url, suppressed=False): 1
    }
    assert recorded.values("isp_jwt.key_downloads") == {attrs(issuer=server.url, result="ok"): 2}


@pytest.mark.anyio
async def test_unknown_keys_within_the_cooldown_count_as_suppressed(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, recorded: Recorded
) -> None:
    await cache.get_key(issuer.signing_key.kid)
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        with pytest.raises(InvalidTokenError):
            await cache.get_key(kid)

    assert recorded.values("isp_jwt.unknown_key_refetches") == {
        attrs(issuer=server.url, suppressed=False): 1,
        attrs(issuer=server.url, suppressed=True): 2,
    }


def test_unknown_keys_are_counted_the_same_without_an_event_loop(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, recorded: Recorded
) -> None:
    cache.get_key_sync(issuer.signing_key.kid)
    for kid in ("made-up-1", "made-up-2"):
        with pytest.raises(InvalidTokenError):
            cache.get_key_sync(kid)

    assert recorded.values("isp_jwt.unknown_key_refetches") == {
        attrs(issuer=server.url, suppressed=False): 1,
        attrs(issuer=server.url, suppressed=True): 1,
    }


# -- gauges ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_key_gauges_report_the_cache_at_collection(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, recorded: Recorded, clock: FakeClock
) -> None:
    await cache.get_key(issuer.signing_key.kid)
    clock.advance(100)

    assert recorded.values("isp_jwt.keys.known") == {
        attrs(issuer=server.url): len(issuer.jwks()["keys"])
    }
    assert recorded.values("isp_jwt.keys.age") == {attrs(issuer=server.url): 100.0}
    assert recorded.values("isp_jwt.keys.stale") == {attrs(issuer=server.url): 0.0}
    assert recorded.values("isp_jwt.keys.next_refresh") == {
        attrs(issuer=server.url): pytest.approx(TTL * 0.8 - 100)
    }


# -- log events -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_first_download_logs_the_keys_loaded(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, log: pytest.LogCaptureFixture
) -> None:
    await cache.get_key(issuer.signing_key.kid)

    record = the_event(log, "first_download")
    assert fields(record, "issuer", "kids") == (server.url, [issuer.signing_key.kid])


@pytest.mark.anyio
async def test_a_rotation_logs_the_keys_added_and_removed(
    fresh_issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, log: pytest.LogCaptureFixture
) -> None:
    old = fresh_issuer.signing_key.kid
    await cache.get_key(old)
    new = fresh_issuer.rotate().kid
    fresh_issuer.retire(old)
    server.serve(fresh_issuer.jwks)

    await cache.refresh()

    record = the_event(log, "rotation")
    assert fields(record, "added", "removed") == ([new], [old])


@pytest.mark.anyio
async def test_a_download_of_the_same_keys_is_logged_at_debug(
    issuer: TestIssuer, cache: JWKSCache, log: pytest.LogCaptureFixture
) -> None:
    await cache.get_key(issuer.signing_key.kid)

    await cache.refresh()

    the_event(log, "keys_unchanged")


@pytest.mark.anyio
async def test_a_refetch_for_an_unknown_key_is_logged_with_the_key_id(
    issuer: TestIssuer, cache: JWKSCache, log: pytest.LogCaptureFixture
) -> None:
    await cache.get_key(issuer.signing_key.kid)

    with pytest.raises(InvalidTokenError):
        await cache.get_key("made-up\r\nforged line")

    record = the_event(log, "unknown_key_refetch")
    assert fields(record, "key_id") == ("made-up??forged line",)


@pytest.mark.anyio
async def test_unknown_keys_held_back_by_the_cooldown_are_not_logged_each(
    issuer: TestIssuer, cache: JWKSCache, log: pytest.LogCaptureFixture
) -> None:
    await cache.get_key(issuer.signing_key.kid)
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        with pytest.raises(InvalidTokenError):
            await cache.get_key(kid)

    assert len(events(log, "unknown_key_refetch")) == 1


@pytest.mark.anyio
async def test_the_first_failed_download_starts_an_outage_as_a_warning(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, log: pytest.LogCaptureFixture
) -> None:
    server.fault = server_error()

    with pytest.raises(IssuerUnavailableError):
        await cache.get_key(issuer.signing_key.kid)

    record = the_event(log, "outage_started")
    assert fields(record, "error", "age_seconds") == ("the issuer answered HTTP 500", None)


@pytest.mark.anyio
async def test_further_failures_of_an_outage_are_logged_at_debug(
    issuer: TestIssuer,
    server: IssuerServer,
    cache: JWKSCache,
    clock: FakeClock,
    log: pytest.LogCaptureFixture,
) -> None:
    server.fault = server_error()
    for _ in range(3):
        with pytest.raises(IssuerUnavailableError):
            await cache.refresh()
        clock.advance(120)

    assert len(events(log, "outage_started")) == 1
    again = events(log, "download_failed_again")
    assert [fields(r, "failures") for r in again] == [(2,), (3,)]


@pytest.mark.anyio
async def test_the_end_of_an_outage_is_logged_with_its_failures_and_length(
    issuer: TestIssuer,
    server: IssuerServer,
    cache: JWKSCache,
    clock: FakeClock,
    log: pytest.LogCaptureFixture,
) -> None:
    server.fault = server_error()
    for _ in range(2):
        with pytest.raises(IssuerUnavailableError):
            await cache.refresh()
        clock.advance(45)
    server.reset()
    server.serve(issuer.jwks)

    await cache.refresh()

    record = the_event(log, "outage_ended")
    assert fields(record, "failures", "seconds") == (2, 90.0)


@pytest.mark.anyio
async def test_expired_keys_served_through_an_outage_are_logged_once(
    issuer: TestIssuer,
    server: IssuerServer,
    cache: JWKSCache,
    clock: FakeClock,
    log: pytest.LogCaptureFixture,
) -> None:
    kid = issuer.signing_key.kid
    await cache.get_key(kid)
    server.fault = server_error()
    clock.advance(TTL)
    await cache.get_key(kid)  # fails, and serves the expired keys
    clock.advance(2)  # past the backoff: the next lookup retries in the background
    await cache.get_key(kid)
    wait_until(lambda: cache.health().failures == 2)

    record = the_event(log, "serving_stale")
    assert fields(record, "age_seconds", "max_stale") == (TTL, MAX_STALE)


@pytest.mark.anyio
async def test_keys_older_than_max_stale_are_given_up_as_an_error(
    issuer: TestIssuer,
    server: IssuerServer,
    cache: JWKSCache,
    clock: FakeClock,
    log: pytest.LogCaptureFixture,
) -> None:
    kid = issuer.signing_key.kid
    await cache.get_key(kid)
    server.fault = server_error()
    clock.advance(MAX_STALE + 1)

    with pytest.raises(IssuerUnavailableError):
        await cache.get_key(kid)

    assert fields(the_event(log, "giving_up"), "age_seconds") == (MAX_STALE + 1,)
    assert "is too old to serve" in the_event(log, "outage_started").getMessage()


# -- skipped keys ---------------------------------------------------------------------------------


def publish_with(issuer: TestIssuer, server: IssuerServer, *extra: dict[str, Any]) -> None:
    server.serve(lambda: {"keys": [*issuer.jwks()["keys"], *extra]})


SHARED_SECRET = {"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldA"}
SYMMETRIC = "symmetric keys are never trusted"


@pytest.mark.anyio
async def test_a_skipped_published_key_is_a_warning_with_its_kid_and_reason(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, log: pytest.LogCaptureFixture
) -> None:
    publish_with(issuer, server, SHARED_SECRET)

    await cache.get_key(issuer.signing_key.kid)

    record = the_event(log, "key_skipped")
    assert fields(record, "skipped_count", "skipped_keys") == (
        1,
        [{"key_id": "shared", "skip_reason": SYMMETRIC}],
    )
    assert SHARED_SECRET["k"] not in log.text


@pytest.mark.anyio
async def test_the_keys_one_download_skips_are_one_warning_with_their_count(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, log: pytest.LogCaptureFixture
) -> None:
    publish_with(issuer, server, *({**SHARED_SECRET, "kid": f"shared-{n}"} for n in range(40)))

    await cache.get_key(issuer.signing_key.kid)

    record = the_event(log, "key_skipped")
    assert fields(record, "skipped_count", "skipped_keys") == (
        40,
        [{"key_id": f"shared-{n}", "skip_reason": SYMMETRIC} for n in range(5)],
    )


@pytest.mark.anyio
async def test_a_skipped_key_is_warned_about_once_per_download(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, log: pytest.LogCaptureFixture
) -> None:
    publish_with(issuer, server, SHARED_SECRET)
    await cache.get_key(issuer.signing_key.kid)
    await cache.get_key(issuer.signing_key.kid)  # answered from the cache

    await cache.refresh()

    assert len(events(log, "key_skipped")) == 2


@pytest.mark.anyio
async def test_a_private_key_is_skipped_without_logging_its_secret(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, log: pytest.LogCaptureFixture
) -> None:
    private = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    private["kid"] = "leaky"
    publish_with(issuer, server, private)

    await cache.get_key(issuer.signing_key.kid)

    record = the_event(log, "key_skipped")
    assert fields(record, "skipped_keys") == (
        [{"key_id": "leaky", "skip_reason": "the JWK holds private key material"}],
    )
    assert private["d"] not in log.text


@pytest.mark.anyio
async def test_a_key_set_with_no_usable_key_is_a_warning(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, log: pytest.LogCaptureFixture
) -> None:
    server.serve(lambda: {"keys": [SHARED_SECRET]})

    with pytest.raises(InvalidTokenError):
        await cache.get_key(issuer.signing_key.kid)

    the_event(log, "no_usable_key")


# -- health ---------------------------------------------------------------------------------------


def test_before_any_download_the_cache_is_not_ready(server: IssuerServer, cache: JWKSCache) -> None:
    health = cache.health()
    assert (health.issuer, health.keys_known, health.ready) == (server.url, 0, False)


@pytest.mark.anyio
async def test_after_a_download_the_cache_is_ready_with_its_keys(
    issuer: TestIssuer, cache: JWKSCache
) -> None:
    await cache.get_key(issuer.signing_key.kid)

    health = cache.health()
    assert (health.keys_known, health.ready, health.last_error) == (
        len(issuer.jwks()["keys"]),
        True,
        None,
    )


@pytest.mark.anyio
async def test_health_keeps_the_last_error_until_a_download_succeeds(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, clock: FakeClock
) -> None:
    server.fault = server_error()
    with pytest.raises(IssuerUnavailableError):
        await cache.refresh()
    failed = cache.health()
    server.reset()
    server.serve(issuer.jwks)
    clock.advance(2)

    await cache.refresh()

    assert (failed.last_error, failed.failures) == ("the issuer answered HTTP 500", 1)
    assert cache.health().last_error is None


@pytest.mark.anyio
async def test_the_key_set_held_is_readable_with_its_skipped_keys(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache
) -> None:
    publish_with(issuer, server, SHARED_SECRET)
    assert cache.key_set is None

    await cache.get_key(issuer.signing_key.kid)

    assert cache.key_set is not None
    assert issuer.signing_key.kid in cache.key_set.kids
    assert [s.kid for s in cache.key_set.skipped] == ["shared"]
