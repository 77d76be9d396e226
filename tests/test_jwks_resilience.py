"""The key cache against a misbehaving issuer: faults on a real socket, and counted fetches.

Each fault is served by a real HTTP server on 127.0.0.1. Fetch counts are printed as well as
asserted (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from fastapi_isp_jwt.errors import InvalidTokenError, IssuerUnavailableError
from fastapi_isp_jwt.keycache import JWKSCache
from fastapi_isp_jwt.keys import MAX_JWKS_KEYS
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.clock import FakeClock
from tests.support.faults import (
    Reply,
    endless,
    garbage,
    huge,
    not_a_jwks,
    redirect,
    server_error,
    slow,
    trickle,
    trickled_head,
)
from tests.support.issuer_server import IssuerServer, closed_port_url
from tests.support.timing import wait_until, without_suspending

TTL = 600.0
COOLDOWN = 30.0
MAX_STALE = 3600.0
TIMEOUT = 0.5


@pytest.fixture(scope="module")
def running_server() -> Iterator[IssuerServer]:
    with IssuerServer() as running:
        yield running


@pytest.fixture
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture
def server(running_server: IssuerServer, issuer: TestIssuer) -> IssuerServer:
    running_server.reset()
    running_server.serve(issuer.jwks)
    return running_server


@pytest.fixture
def private_server(issuer: TestIssuer) -> Iterator[IssuerServer]:
    """A server of the test's own, whose request count no other test's fetch can touch."""
    with IssuerServer(issuer.jwks) as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_cache(url: str, clock: FakeClock, **options: Any) -> JWKSCache:
    settings: dict[str, Any] = {
        "ttl": TTL,
        "cooldown": COOLDOWN,
        "max_stale": MAX_STALE,
        "timeout": TIMEOUT,
    }
    settings.update(options)
    return JWKSCache(url, clock=clock, **settings)


@pytest.fixture
def cache(server: IssuerServer, clock: FakeClock) -> JWKSCache:
    return make_cache(server.jwks_url, clock)


# -- every way a fetch can fail ---------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """How to make the issuer misbehave, and the reason the cache should log."""

    name: str
    apply: Callable[[IssuerServer], str]  # returns the JWKS URL to use
    reason: str


def _serve(fault: Any) -> Callable[[IssuerServer], str]:
    def apply(server: IssuerServer) -> str:
        server.fault = fault
        return server.jwks_url

    return apply


def _listing(entries: int) -> Reply:
    """A JWKS of ``entries`` empty entries, written as tightly as JSON allows."""
    return Reply(body=b'{"keys":[' + b",".join([b"{}"] * entries) + b"]}")


# What a real issuer never publishes, and what would cost a download seconds of CPU, one
# entry at a time: a JWKS filling the 1 MiB a response may have with some 350,000 entries.
TOO_MANY_KEYS = f"lists more than {MAX_JWKS_KEYS} keys"
FAULTS = [
    Fault("server-error", _serve(server_error()), "HTTP 500"),
    Fault("not-json", _serve(garbage()), "not JSON"),
    Fault("not-a-jwks", _serve(not_a_jwks()), 'no "keys" array'),
    Fault("one-entry-too-many", _serve(_listing(MAX_JWKS_KEYS + 1)), TOO_MANY_KEYS),
    Fault("a-mebibyte-of-entries", _serve(_listing(340_000)), TOO_MANY_KEYS),
    Fault("slower-than-timeout", _serve(slow(3 * TIMEOUT)), "did not answer within"),
    Fault("redirect", _serve(redirect()), "HTTP 302"),
    Fault("announced-huge-body", _serve(huge()), "larger than"),
    Fault("endless-body", _serve(endless()), "larger than"),
    Fault("trickling-body", _serve(trickle(TIMEOUT / 10)), "did not answer within"),
]
CLOSED_PORT = Fault("closed-port", lambda server: closed_port_url(), "ConnectError")


@pytest.mark.parametrize(
    "fault", [*FAULTS, CLOSED_PORT], ids=[fault.name for fault in [*FAULTS, CLOSED_PORT]]
)
@pytest.mark.anyio
async def test_cold_cache_answers_503_with_retry_after_when_the_fetch_fails(
    fault: Fault,
    issuer: TestIssuer,
    server: IssuerServer,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = make_cache(fault.apply(server), clock)

    with pytest.raises(IssuerUnavailableError) as unavailable:
        await cache.get_key(issuer.signing_key.kid)

    assert unavailable.value.status_code == 503
    assert unavailable.value.retry_after >= 1
    assert fault.reason in caplog.text
    assert "no key is known yet" in caplog.text


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
@pytest.mark.anyio
async def test_every_kind_of_failed_refresh_keeps_the_last_good_key_set(
    fault: Fault,
    issuer: TestIssuer,
    server: IssuerServer,
    cache: JWKSCache,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kid = issuer.signing_key.kid
    good = await cache.get_key(kid)
    fault.apply(server)
    clock.advance(TTL)

    assert await cache.get_key(kid) is good
    assert fault.reason in caplog.text
    assert "serving the key set fetched 600 s ago" in caplog.text


@pytest.mark.anyio
async def test_issuer_gone_from_its_port_leaves_the_last_good_key_set_in_use(
    issuer: TestIssuer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    kid = issuer.signing_key.kid
    vanishing = IssuerServer(issuer.jwks).start()
    cache = make_cache(vanishing.jwks_url, clock)
    good = await cache.get_key(kid)
    vanishing.stop()
    clock.advance(TTL)

    assert await cache.get_key(kid) is good
    assert CLOSED_PORT.reason in caplog.text


@pytest.mark.anyio
async def test_redirect_is_not_followed_even_to_a_good_jwks(
    issuer: TestIssuer, server: IssuerServer, clock: FakeClock
) -> None:
    with IssuerServer(issuer.jwks) as elsewhere:
        server.fault = redirect(elsewhere.jwks_url)
        cache = make_cache(server.jwks_url, clock)

        with pytest.raises(IssuerUnavailableError):
            await cache.get_key(issuer.signing_key.kid)

        assert elsewhere.jwks_requests == 0


@pytest.mark.anyio
async def test_endless_body_is_abandoned_once_max_bytes_have_been_read(
    issuer: TestIssuer, server: IssuerServer, clock: FakeClock
) -> None:
    server.fault = endless()
    cache = make_cache(server.jwks_url, clock, max_bytes=64 * 1024)

    with pytest.raises(IssuerUnavailableError):
        await cache.get_key(issuer.signing_key.kid)

    assert server.stream_ended.wait(10)
    print(f"\nendless body: {server.streamed_bytes} bytes written before the cache hung up")
    # The server would write 256 MiB to a reader that never stops; socket buffers on
    # both ends take a few MiB whatever the reader does.
    assert server.streamed_bytes < 32 * 1024 * 1024


# -- counted fetches ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_cold_burst_of_100_concurrent_lookups_makes_one_fetch(
    issuer: TestIssuer, private_server: IssuerServer, clock: FakeClock
) -> None:
    cache = make_cache(private_server.jwks_url, clock)
    kid = issuer.signing_key.kid

    keys = await asyncio.gather(*(cache.get_key(kid) for _ in range(100)))

    print(f"\ncold burst of 100: {cache.fetch_count} fetch(es)")
    assert all(key is keys[0] for key in keys)
    assert cache.fetch_count == private_server.jwks_requests == 1


@pytest.mark.anyio
async def test_cold_burst_while_the_issuer_is_down_makes_one_fetch(
    issuer: TestIssuer, private_server: IssuerServer, clock: FakeClock
) -> None:
    private_server.fault = server_error()
    cache = make_cache(private_server.jwks_url, clock)
    kid = issuer.signing_key.kid

    outcomes = await asyncio.gather(
        *(cache.get_key(kid) for _ in range(100)), return_exceptions=True
    )

    assert all(isinstance(outcome, IssuerUnavailableError) for outcome in outcomes)
    assert cache.fetch_count == private_server.jwks_requests == 1


@pytest.mark.anyio
async def test_200_random_kids_within_one_cooldown_make_at_most_one_extra_fetch(
    issuer: TestIssuer, private_server: IssuerServer, clock: FakeClock
) -> None:
    cache = make_cache(private_server.jwks_url, clock)
    await cache.get_key(issuer.signing_key.kid)
    clock.advance(COOLDOWN)  # so the flood may trigger its one refetch

    outcomes = await asyncio.gather(
        *(cache.get_key(secrets.token_hex(8)) for _ in range(100)), return_exceptions=True
    )
    for _ in range(100):
        clock.advance(COOLDOWN / 200)
        with pytest.raises(InvalidTokenError):
            await cache.get_key(secrets.token_hex(8))

    extra = cache.fetch_count - 1
    print(f"\n200 random kids within one cooldown: {extra} extra fetch(es)")
    assert all(isinstance(outcome, InvalidTokenError) for outcome in outcomes)
    assert extra == 1
    assert private_server.jwks_requests == 2


@pytest.mark.anyio
async def test_random_kids_make_at_most_one_fetch_per_cooldown(
    issuer: TestIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    await cache.get_key(issuer.signing_key.kid)

    for _ in range(300):  # one random kid per second for 300 s: ten cooldowns
        clock.advance(1)
        with pytest.raises(InvalidTokenError):
            await cache.get_key(secrets.token_hex(8))

    extra = cache.fetch_count - 1
    print(f"\nrandom kids for 300 s (cooldown {COOLDOWN:.0f} s): {extra} extra fetch(es)")
    assert extra == 10


@pytest.mark.anyio
async def test_a_key_published_right_after_a_download_is_accepted_at_once(
    issuer: TestIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    await cache.get_key(issuer.signing_key.kid)
    new_kid = issuer.rotate().kid

    clock.advance(1)
    assert (await cache.get_key(new_kid)).kid == new_kid
    assert cache.fetch_count == 2


@pytest.mark.anyio
async def test_new_key_after_a_missed_refetch_is_refused_within_the_cooldown_and_accepted_after_it(
    issuer: TestIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    await cache.get_key(issuer.signing_key.kid)
    with pytest.raises(InvalidTokenError):
        await cache.get_key("made-up")  # a refetch that misses spends the cooldown
    new_kid = issuer.rotate().kid

    clock.advance(COOLDOWN - 1)
    with pytest.raises(InvalidTokenError):
        await cache.get_key(new_kid)

    clock.advance(1)
    assert (await cache.get_key(new_kid)).kid == new_kid
    assert cache.fetch_count == 3


# -- rotation ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_removed_key_is_distrusted_once_the_ttl_has_passed(
    issuer: TestIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    old_kid = issuer.signing_key.kid
    await cache.get_key(old_kid)
    issuer.rotate()
    issuer.retire(old_kid)

    clock.advance(TTL)

    with pytest.raises(InvalidTokenError):
        await cache.get_key(old_kid)
    assert cache.cached_key(old_kid) is None


@pytest.mark.anyio
async def test_removed_key_is_distrusted_right_after_any_successful_refetch(
    issuer: TestIssuer, cache: JWKSCache, clock: FakeClock
) -> None:
    old_kid = issuer.signing_key.kid
    await cache.get_key(old_kid)
    new_kid = issuer.rotate().kid
    issuer.retire(old_kid)
    clock.advance(COOLDOWN)  # well within the TTL

    await cache.get_key(new_kid)  # an unknown kid: the refetch drops the old key

    assert cache.cached_key(old_kid) is None
    with pytest.raises(InvalidTokenError):
        await cache.get_key(old_kid)


# -- outage ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_outage_serves_the_last_good_set_up_to_max_stale_then_503(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, clock: FakeClock
) -> None:
    kid = issuer.signing_key.kid
    good = await cache.get_key(kid)
    server.fault = server_error()

    clock.advance(TTL)
    assert await cache.get_key(kid) is good  # waited for one failed fetch, then stale
    while clock.now + 60 <= 1000.0 + MAX_STALE:
        clock.advance(60)
        assert cache.cached_key(kid) is good
        assert without_suspending(cache.get_key(kid)) is good  # retries never make it wait

    clock.advance(61)
    with pytest.raises(IssuerUnavailableError) as unavailable:
        await cache.get_key(kid)
    assert unavailable.value.status_code == 503
    assert cache.cached_key(kid) is None


@pytest.mark.anyio
async def test_lookups_during_an_outage_do_not_wait_on_a_hanging_issuer(
    issuer: TestIssuer, server: IssuerServer, cache: JWKSCache, clock: FakeClock
) -> None:
    kid = issuer.signing_key.kid
    good = await cache.get_key(kid)
    server.fault = slow(3 * TIMEOUT)
    clock.advance(TTL)
    await cache.get_key(kid)  # the first expired lookup waits for one fetch to time out

    clock.advance(10)  # past the first backoff: a retry is due
    answers = [without_suspending(cache.get_key(kid)) for _ in range(50)]

    assert all(answer is good for answer in answers)


def test_failed_fetches_are_retried_with_capped_exponential_backoff(
    issuer: TestIssuer, private_server: IssuerServer, clock: FakeClock
) -> None:
    private_server.fault = server_error()
    cache = make_cache(private_server.jwks_url, clock)
    retry_afters: list[int] = []

    for _ in range(300):  # a lookup every second for five minutes, issuer down throughout
        with pytest.raises(IssuerUnavailableError) as unavailable:
            cache.get_key_sync(issuer.signing_key.kid)
        retry_afters.append(unavailable.value.retry_after)
        clock.advance(1)

    print(f"\nissuer down for 300 s, a lookup per second: {cache.fetch_count} fetches")
    # Attempts at 0, 1, 3, 7, 15, 31, 63, 123, 183 and 243 s: gaps double up to 60 s.
    assert cache.fetch_count == private_server.jwks_requests == 10
    assert retry_afters[:4] == [1, 2, 1, 4]
    assert max(retry_afters) == 60


@pytest.mark.anyio
async def test_recovered_issuer_ends_the_outage(
    issuer: TestIssuer,
    server: IssuerServer,
    cache: JWKSCache,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old_kid = issuer.signing_key.kid
    await cache.get_key(old_kid)
    server.fault = server_error()
    clock.advance(TTL)
    await cache.get_key(old_kid)  # stale from here on
    caplog.set_level(logging.INFO, logger="fastapi_isp_jwt.jwks")
    new_kid = issuer.rotate().kid
    server.reset()
    server.serve(issuer.jwks)

    clock.advance(2)  # past the backoff
    await cache.get_key(old_kid)  # starts the retry in the background

    wait_until(lambda: cache.cached_key(new_kid) is not None)
    assert "fetched again after 1 failed attempt(s)" in caplog.text


@pytest.mark.anyio
async def test_a_response_head_trickled_byte_by_byte_is_cut_off_at_the_timeout(
    issuer: TestIssuer, server: IssuerServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.fault = trickled_head(0.1)
    cache = JWKSCache(server.jwks_url, timeout=TIMEOUT)
    with pytest.raises(IssuerUnavailableError):
        await cache.get_key(issuer.signing_key.kid)
    # Every byte arrives within httpx's read timeout: only the whole-attempt deadline,
    # not a per-read timeout, can have ended this fetch.
    assert "did not answer within" in caplog.text
