"""keycache: how the key cache fetches, keeps and hands out the issuer's keys.

Every test talks to a real JWKS server on 127.0.0.1; time moves by hand, never by sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from fastapi_isp_jwt import Settings
from fastapi_isp_jwt.errors import (
    ConfigurationError,
    InvalidTokenError,
    IssuerUnavailableError,
)
from fastapi_isp_jwt.keycache import JWKSCache
from fastapi_isp_jwt.keys import VerificationKey
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.clock import FakeClock
from tests.support.faults import server_error
from tests.support.issuer_server import IssuerServer
from tests.support.timing import wait_until, without_suspending

TTL = 600.0
COOLDOWN = 30.0


@pytest.fixture
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="module")
def running_server() -> Iterator[IssuerServer]:
    with IssuerServer() as running:
        yield running


@pytest.fixture
def server(running_server: IssuerServer, issuer: TestIssuer) -> IssuerServer:
    running_server.reset()
    running_server.serve(issuer.jwks)
    return running_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(server: IssuerServer, clock: FakeClock) -> JWKSCache:
    return JWKSCache(server.jwks_url, ttl=TTL, cooldown=COOLDOWN, timeout=5.0, clock=clock)


# -- configuration -------------------------------------------------------------------------


def test_needs_a_jwks_url_or_an_issuer() -> None:
    with pytest.raises(ConfigurationError, match="jwks_url or issuer"):
        JWKSCache()


@pytest.mark.anyio
async def test_jwks_url_defaults_to_the_issuers_well_known_path(
    issuer: TestIssuer, server: IssuerServer
) -> None:
    cache = JWKSCache(issuer=server.url)

    key = await cache.get_key(issuer.signing_key.kid)

    assert key.kid == issuer.signing_key.kid
    assert cache.source == server.jwks_url


@pytest.mark.parametrize(
    "url",
    ["http://issuer.example/.well-known/jwks.json", "ftp://127.0.0.1/jwks.json", "not a url"],
)
def test_keys_must_come_over_https_unless_from_loopback(url: str) -> None:
    with pytest.raises(ConfigurationError, match="https"):
        JWKSCache(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://istreamplanet.auth0.com/.well-known/jwks.json",
        "http://127.0.0.1:8000/.well-known/jwks.json",
        "http://localhost:8000/.well-known/jwks.json",
        "http://[::1]:8000/.well-known/jwks.json",
    ],
)
def test_https_urls_and_loopback_http_urls_are_accepted(url: str) -> None:
    assert JWKSCache(url).source == url


def test_discovery_needs_the_issuer() -> None:
    with pytest.raises(ConfigurationError, match="issuer"):
        JWKSCache(discovery=True)


def test_discovery_and_an_explicit_jwks_url_exclude_each_other(server: IssuerServer) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        JWKSCache(server.jwks_url, issuer=server.url, discovery=True)


@pytest.mark.parametrize(
    "option",
    [{"ttl": 0}, {"timeout": 0}, {"cooldown": -1}, {"max_stale": -1}, {"max_bytes": 0}],
)
def test_limits_out_of_range_are_refused(server: IssuerServer, option: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        JWKSCache(server.jwks_url, **option)


TIMING_OPTIONS = ("ttl", "cooldown", "max_stale", "timeout")
NOT_FINITE_NUMBERS = [
    pytest.param(float("inf"), id="inf"),
    pytest.param(float("nan"), id="nan"),
    pytest.param("5", id="text"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="none"),
    pytest.param(10**400, id="too-large-for-a-float"),
    pytest.param(10**5000, id="too-large-to-print"),
]


@pytest.mark.parametrize("value", NOT_FINITE_NUMBERS)
@pytest.mark.parametrize("option", TIMING_OPTIONS)
def test_a_timing_option_that_is_not_a_finite_number_is_refused_naming_it(
    server: IssuerServer, option: str, value: Any
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{option} must be a finite number"):
        JWKSCache(server.jwks_url, **{option: value})


@pytest.mark.parametrize("option", TIMING_OPTIONS)
def test_a_negative_timing_option_is_refused_naming_it(server: IssuerServer, option: str) -> None:
    negative: dict[str, Any] = {option: -1}
    with pytest.raises(ConfigurationError, match=f"^{option} must be"):
        JWKSCache(server.jwks_url, **negative)


def test_a_timeout_longer_than_any_wait_the_platform_can_make_is_refused(
    server: IssuerServer,
) -> None:
    with pytest.raises(ConfigurationError, match=r"^timeout must be at most"):
        JWKSCache(server.jwks_url, timeout=threading.TIMEOUT_MAX * 2)


BOUNDARY_VALUES = [
    pytest.param(0, id="zero"),
    pytest.param(-0.0, id="minus-zero"),
    pytest.param(1e-9, id="just-above-zero"),
    pytest.param(-1e-9, id="just-below-zero"),
    pytest.param(threading.TIMEOUT_MAX, id="longest-wait"),
    pytest.param(threading.TIMEOUT_MAX * 2, id="beyond-longest-wait"),
]


@pytest.mark.parametrize("value", BOUNDARY_VALUES + NOT_FINITE_NUMBERS)
@pytest.mark.parametrize("option", TIMING_OPTIONS)
def test_a_timing_option_is_refused_exactly_where_settings_refuses_its_jwks_option(
    server: IssuerServer, option: str, value: Any
) -> None:
    def refused(build: Callable[[], object]) -> bool:
        try:
            build()
        except ConfigurationError:
            return True
        return False

    by_settings = refused(
        lambda: Settings(
            issuer=server.url, audience="https://api.example/x", **{f"jwks_{option}": value}
        )
    )
    by_cache = refused(lambda: JWKSCache(server.jwks_url, **{option: value}))

    assert by_cache == by_settings


# -- lookups -----------------------------------------------------------------------------


def test_nothing_is_fetched_before_the_first_lookup(cache: JWKSCache) -> None:
    assert cache.fetch_count == 0


@pytest.mark.anyio
async def test_first_lookup_fetches_the_key_set(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache
) -> None:
    key = await cache.get_key(issuer.signing_key.kid)

    assert key.kid == issuer.signing_key.kid
    assert cache.fetch_count == 1


@pytest.mark.anyio
async def test_lookups_while_the_set_is_fresh_fetch_nothing(
    issuer: TestIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    first = await cache.get_key(issuer.signing_key.kid)
    clock.advance(TTL * 0.7)

    again = [await cache.get_key(issuer.signing_key.kid) for _ in range(50)]

    assert all(key is first for key in again)
    assert cache.fetch_count == 1


@pytest.mark.anyio
async def test_lookup_of_a_cached_key_never_suspends(issuer: TestIssuer, cache: JWKSCache) -> None:
    await cache.get_key(issuer.signing_key.kid)

    key = without_suspending(cache.get_key(issuer.signing_key.kid))

    assert key.kid == issuer.signing_key.kid


@pytest.mark.anyio
async def test_token_without_kid_uses_the_only_published_key(
    issuer: TestIssuer, cache: JWKSCache
) -> None:
    key = await cache.get_key(None)

    assert key.kid == issuer.signing_key.kid


@pytest.mark.anyio
async def test_token_without_kid_is_refused_while_several_keys_are_published(
    issuer: TestIssuer, cache: JWKSCache
) -> None:
    issuer.rotate()

    with pytest.raises(InvalidTokenError, match="which key"):
        await cache.get_key(None)


@pytest.mark.anyio
async def test_unknown_kid_is_refused_without_repeating_it(
    issuer: TestIssuer, cache: JWKSCache
) -> None:
    await cache.get_key(issuer.signing_key.kid)

    with pytest.raises(InvalidTokenError) as refused:
        await cache.get_key("attacker-chosen-kid")

    assert refused.value.status_code == 401
    assert "attacker-chosen-kid" not in str(refused.value)


@pytest.mark.anyio
async def test_unchanged_key_stays_the_same_object_across_refreshes(
    issuer: TestIssuer, cache: JWKSCache
) -> None:
    before = await cache.get_key(issuer.signing_key.kid)

    await cache.refresh()

    assert await cache.get_key(issuer.signing_key.kid) is before
    assert cache.fetch_count == 2


# -- lifetime ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_key_set_is_fetched_again_once_the_ttl_has_passed(
    issuer: TestIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    await cache.get_key(issuer.signing_key.kid)
    clock.advance(TTL)

    await cache.get_key(issuer.signing_key.kid)

    assert cache.fetch_count == 2


@pytest.mark.anyio
async def test_refresh_starts_in_the_background_before_expiry(
    issuer: TestIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    await cache.get_key(issuer.signing_key.kid)
    clock.advance(TTL * 0.9)

    key = without_suspending(cache.get_key(issuer.signing_key.kid))

    assert key.kid == issuer.signing_key.kid
    clock.advance(TTL * 0.5)  # past the first set's expiry: only a new set can answer
    wait_until(lambda: cache.cached_key(issuer.signing_key.kid) is not None)
    assert cache.fetch_count == 2


@pytest.mark.anyio
async def test_cache_control_max_age_sets_the_lifetime(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, clock: FakeClock
) -> None:
    server.cache_control = "public, max-age=120"
    await cache.get_key(issuer.signing_key.kid)

    clock.advance(95)  # inside the fresh part of 120 s
    await cache.get_key(issuer.signing_key.kid)
    assert cache.fetch_count == 1

    clock.advance(25)
    await cache.get_key(issuer.signing_key.kid)
    assert cache.fetch_count == 2


@pytest.mark.parametrize(
    ("cache_control", "lifetime"),
    [
        ("max-age=5", 60.0),
        ("max-age=999999", 86400.0),
        ("no-cache", 60.0),
        ("max-age=x", TTL),
        ("max-age=\u00b2", TTL),
    ],
)
@pytest.mark.anyio
async def test_cache_control_is_kept_within_bounds(
    issuer: TestIssuer,
    server: IssuerServer,
    cache: JWKSCache,
    clock: FakeClock,
    cache_control: str,
    lifetime: float,
) -> None:
    server.cache_control = cache_control
    await cache.get_key(issuer.signing_key.kid)

    clock.advance(lifetime - 1)
    assert cache.cached_key(issuer.signing_key.kid) is not None
    clock.advance(1)
    assert cache.cached_key(issuer.signing_key.kid) is None


# -- cached_key ----------------------------------------------------------------------------


def test_cached_key_is_none_before_anything_is_loaded(issuer: TestIssuer, cache: JWKSCache) -> None:
    assert cache.cached_key(issuer.signing_key.kid) is None
    assert cache.fetch_count == 0


@pytest.mark.anyio
async def test_cached_key_is_the_trusted_key_and_fetches_nothing(
    issuer: TestIssuer, cache: JWKSCache
) -> None:
    key = await cache.get_key(issuer.signing_key.kid)

    assert cache.cached_key(issuer.signing_key.kid) is key
    assert cache.cached_key("another") is None
    assert cache.fetch_count == 1


@pytest.mark.anyio
async def test_cached_key_is_none_once_the_ttl_has_passed(
    issuer: TestIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    await cache.get_key(issuer.signing_key.kid)
    clock.advance(TTL)

    assert cache.cached_key(issuer.signing_key.kid) is None


def test_cached_key_during_an_outage_starts_the_due_retry(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, clock: FakeClock
) -> None:
    old_kid = issuer.signing_key.kid
    stale = cache.get_key_sync(old_kid)
    server.fault = server_error()
    clock.advance(TTL)
    cache.get_key_sync(old_kid)  # one failed fetch: the outage has begun
    new_kid = issuer.rotate().kid
    server.reset()
    server.serve(issuer.jwks)
    clock.advance(1)  # the first retry is due

    assert cache.cached_key(old_kid) is stale

    wait_until(lambda: cache.cached_key(new_kid) is not None)


# -- event loops and threads ---------------------------------------------------------------


def test_one_cache_serves_several_event_loops_in_turn(
    issuer: TestIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    kid = issuer.signing_key.kid

    first = asyncio.run(cache.get_key(kid))
    clock.advance(TTL)
    second = asyncio.run(cache.get_key(kid))

    assert first.kid == second.kid == kid
    assert cache.fetch_count == 2


def test_background_refresh_outlives_the_event_loop_that_started_it(
    issuer: TestIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    kid = issuer.signing_key.kid
    asyncio.run(cache.get_key(kid))
    clock.advance(TTL * 0.9)

    async def lookup() -> VerificationKey:
        return without_suspending(cache.get_key(kid))

    asyncio.run(lookup())  # starts the refresh; its loop ends right after
    clock.advance(TTL * 0.5)  # past the first set's expiry: only a new set can answer
    wait_until(lambda: cache.cached_key(kid) is not None)

    assert cache.fetch_count == 2


def test_fetch_pending_in_another_event_loop_is_not_awaited(
    issuer: TestIssuer, cache: JWKSCache
) -> None:
    kid = issuer.signing_key.kid
    stalled = asyncio.new_event_loop()

    async def start_a_fetch() -> None:
        asyncio.get_running_loop().create_task(cache.warm_up())

    try:
        # The loop stops right after warm_up has started its fetch task, before it runs.
        stalled.run_until_complete(start_a_fetch())
        key = asyncio.run(cache.get_key(kid))
    finally:
        pending = asyncio.all_tasks(stalled)
        for task in pending:
            task.cancel()
        stalled.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        stalled.close()

    assert key.kid == kid
    assert cache.fetch_count == 1  # only the new loop fetched


def test_blocking_lookup_fetches_and_shares_the_cache_with_async_lookups(
    issuer: TestIssuer, cache: JWKSCache
) -> None:
    kid = issuer.signing_key.kid

    blocking = cache.get_key_sync(kid)

    assert asyncio.run(cache.get_key(kid)) is blocking
    assert cache.fetch_count == 1


def test_blocking_lookups_from_many_threads_on_a_cold_cache_make_one_fetch(
    issuer: TestIssuer, cache: JWKSCache
) -> None:
    kid = issuer.signing_key.kid

    with ThreadPoolExecutor(max_workers=16) as pool:
        keys = list(pool.map(lambda _: cache.get_key_sync(kid), range(64)))

    assert len({id(key) for key in keys}) == 1
    assert cache.fetch_count == 1


def test_blocking_lookup_refreshes_ahead_of_expiry_in_a_background_thread(
    issuer: TestIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    kid = issuer.signing_key.kid
    cache.get_key_sync(kid)
    clock.advance(TTL * 0.9)

    assert cache.get_key_sync(kid).kid == kid

    clock.advance(TTL * 0.5)  # past the first set's expiry: only a new set can answer
    wait_until(lambda: cache.cached_key(kid) is not None)
    assert cache.fetch_count == 2


# -- lifecycle ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_warm_up_loads_the_key_set(issuer: TestIssuer, cache: JWKSCache) -> None:
    await cache.warm_up()

    assert cache.cached_key(issuer.signing_key.kid) is not None
    assert cache.fetch_count == 1


@pytest.mark.anyio
async def test_warm_up_with_keys_loaded_fetches_nothing(
    issuer: TestIssuer, cache: JWKSCache
) -> None:
    await cache.warm_up()

    await cache.warm_up()

    assert cache.fetch_count == 1


@pytest.mark.anyio
async def test_warm_up_failure_is_logged_not_raised(
    server: IssuerServer, cache: JWKSCache, caplog: pytest.LogCaptureFixture
) -> None:
    server.fault = server_error()

    await cache.warm_up()

    assert "fetch failed (the issuer answered HTTP 500); no key is known yet" in caplog.text


@pytest.mark.anyio
async def test_failed_refresh_raises_issuer_unavailable_and_keeps_the_keys(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache
) -> None:
    key = await cache.get_key(issuer.signing_key.kid)
    server.fault = server_error()

    with pytest.raises(IssuerUnavailableError) as unavailable:
        await cache.refresh()

    assert unavailable.value.retry_after >= 1
    assert cache.cached_key(issuer.signing_key.kid) is key


@pytest.mark.anyio
async def test_given_http_client_is_used_and_never_closed(
    issuer: TestIssuer, server: IssuerServer
) -> None:
    requested: list[str] = []

    async def record(request: httpx.Request) -> None:
        requested.append(str(request.url))

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        cache = JWKSCache(server.jwks_url, http_client=client)
        await cache.get_key(issuer.signing_key.kid)
        await cache.aclose()

        assert requested == [server.jwks_url]
        assert not client.is_closed


def test_given_blocking_http_client_is_used_and_never_closed(
    issuer: TestIssuer, server: IssuerServer
) -> None:
    requested: list[str] = []

    with httpx.Client(event_hooks={"request": [lambda r: requested.append(str(r.url))]}) as client:
        cache = JWKSCache(server.jwks_url, sync_http_client=client)
        cache.get_key_sync(issuer.signing_key.kid)
        cache.close()

        assert requested == [server.jwks_url]
        assert not client.is_closed


@pytest.mark.anyio
async def test_with_a_given_client_the_background_refresh_is_a_task_of_its_loop(
    issuer: TestIssuer, server: IssuerServer, clock: FakeClock
) -> None:
    kid = issuer.signing_key.kid
    async with httpx.AsyncClient() as client:
        cache = JWKSCache(server.jwks_url, ttl=TTL, http_client=client, clock=clock)
        await cache.get_key(kid)
        clock.advance(TTL * 0.9)
        without_suspending(cache.get_key(kid))  # starts the background refresh

        await cache.refresh()  # joins it rather than starting another

    assert cache.fetch_count == 2


@pytest.mark.anyio
async def test_aclose_stops_a_background_refresh_of_its_loop(
    issuer: TestIssuer, server: IssuerServer, clock: FakeClock
) -> None:
    kid = issuer.signing_key.kid
    async with httpx.AsyncClient() as client:
        cache = JWKSCache(server.jwks_url, ttl=TTL, http_client=client, clock=clock)
        await cache.get_key(kid)
        clock.advance(TTL * 0.9)
        without_suspending(cache.get_key(kid))  # starts the background refresh

        await cache.aclose()

    assert cache.fetch_count == 1  # stopped before it sent anything


# -- discovery ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_discovery_finds_the_jwks_in_the_openid_configuration(
    issuer: TestIssuer, server: IssuerServer
) -> None:
    cache = JWKSCache(issuer=server.url, discovery=True)

    key = await cache.get_key(issuer.signing_key.kid)

    assert key.kid == issuer.signing_key.kid
    assert cache.source == server.url + ".well-known/openid-configuration"
    assert cache.fetch_count == 1


@pytest.mark.anyio
async def test_discovery_refuses_metadata_naming_another_issuer(
    issuer: TestIssuer, server: IssuerServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.discovery_issuer = "https://impostor.example/"
    cache = JWKSCache(issuer=server.url, discovery=True)

    with pytest.raises(IssuerUnavailableError):
        await cache.get_key(issuer.signing_key.kid)

    assert cache.fetch_count == 0
    assert "names another issuer" in caplog.text


# -- logging -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_rotation_is_logged_with_the_kids_added_and_removed(
    issuer: TestIssuer, cache: JWKSCache, caplog: pytest.LogCaptureFixture
) -> None:
    old = issuer.signing_key.kid
    await cache.get_key(old)
    new = issuer.rotate().kid
    issuer.retire(old)
    caplog.set_level(logging.INFO, logger="fastapi_isp_jwt.jwks")

    await cache.refresh()

    assert f"keys rotated, added ['{new}'], removed ['{old}']" in caplog.text


@pytest.mark.anyio
async def test_a_failure_streak_warns_once_and_recovery_is_logged(
    issuer: TestIssuer,
    server: IssuerServer,
    cache: JWKSCache,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await cache.get_key(issuer.signing_key.kid)
    caplog.set_level(logging.INFO, logger="fastapi_isp_jwt.jwks")
    server.fault = server_error()
    for _ in range(4):
        clock.advance(120)
        with pytest.raises(IssuerUnavailableError):
            await cache.refresh()
    server.reset()

    await cache.refresh()

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "fetched again after 4 failed attempt(s)" in caplog.text
