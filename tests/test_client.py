"""ClientCredentials: Client Credentials tokens for calls out of the service.

Tests talk to a real token endpoint and a real protected resource on 127.0.0.1
(tests/support/issuer_server.py); the clock and the backoff sleep are injected, so nothing
here waits for a token to expire, for a retry or for a pause between renewals. A few
inject a fault no real server produces through an httpx mock transport, and the deadline
tests let a trickling answer run into a half-second timeout.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import traceback
import weakref
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from itertools import pairwise
from typing import Any

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI

from examples import m2m_client
from fastapi_isp_jwt import JWTAuth, Principal
from fastapi_isp_jwt.client import ClientCredentials
from fastapi_isp_jwt.dev_issuer import DEFAULT_AUDIENCE, DevIssuerConfig, running
from fastapi_isp_jwt.errors import ConfigurationError, TokenRequestError
from tests.support.clock import FakeClock
from tests.support.faults import (
    Reply,
    json_reply,
    oauth_error,
    redirect,
    throttled,
    token_body,
    unavailable,
)
from tests.support.issuer_server import IssuerServer, closed_port_url
from tests.support.token_endpoint import AUDIENCE, CLIENT_ID, CLIENT_SECRET


@pytest.fixture
def server() -> Iterator[IssuerServer]:
    with IssuerServer() as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth(server: IssuerServer, clock: FakeClock) -> ClientCredentials:
    return credentials(server, clock)


def credentials(server: IssuerServer, clock: FakeClock, **options: Any) -> ClientCredentials:
    settings: dict[str, Any] = {
        "token_url": server.token_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "audience": AUDIENCE,
        "clock": clock,
        "sleep": clock.sleep,
        "async_sleep": clock.async_sleep,
    }
    settings.update(options)
    return ClientCredentials(**settings)


@pytest.fixture
def client(auth: ClientCredentials) -> Iterator[httpx.Client]:
    with httpx.Client(auth=auth) as sync_client:
        yield sync_client


@pytest.fixture
async def async_client(auth: ClientCredentials) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(auth=auth) as running:
        yield running


def bearer_of(response: httpx.Response) -> str:
    return str(response.request.headers["Authorization"])


# -- configuration -------------------------------------------------------------------


def test_domain_gives_the_tenant_token_endpoint() -> None:
    auth = ClientCredentials(
        domain="istreamplanet.auth0.com",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        audience=AUDIENCE,
    )
    assert auth.token_url == "https://istreamplanet.auth0.com/oauth/token"


@pytest.mark.parametrize(
    "where",
    [
        {},
        {"token_url": "https://tenant.example/oauth/token", "domain": "tenant.example"},
    ],
    ids=["neither", "both"],
)
def test_exactly_one_of_token_url_and_domain_is_required(where: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="exactly one of token_url and domain"):
        ClientCredentials(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, audience=AUDIENCE, **where
        )


@pytest.mark.parametrize(
    "domain", ["https://istreamplanet.auth0.com/", "istreamplanet.auth0.com/oauth/token", "", "a b"]
)
def test_domain_must_be_a_bare_host_name(domain: str) -> None:
    with pytest.raises(ConfigurationError, match="bare host name"):
        ClientCredentials(
            domain=domain, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, audience=AUDIENCE
        )


@pytest.mark.parametrize(
    "domain",
    ["tenant..example", "a" * 64 + ".example", ".".join(["abcdefgh"] * 30)],
    ids=["empty-label", "label-over-63", "name-over-253"],
)
def test_domain_must_be_a_valid_dns_name(domain: str) -> None:
    with pytest.raises(ConfigurationError, match="not a valid DNS host name"):
        ClientCredentials(
            domain=domain, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, audience=AUDIENCE
        )


@pytest.mark.parametrize("port", ["0", "65536", "99999"])
def test_domain_port_must_be_a_tcp_port(port: str) -> None:
    with pytest.raises(ConfigurationError, match="port must be between 1 and 65535"):
        ClientCredentials(
            domain=f"tenant.example:{port}",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            audience=AUDIENCE,
        )


def test_domain_with_a_port_gives_the_endpoint_on_that_port() -> None:
    auth = ClientCredentials(
        domain="tenant.example:8443",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        audience=AUDIENCE,
    )
    assert auth.token_url == "https://tenant.example:8443/oauth/token"


@pytest.mark.parametrize(
    ("token_url", "reason"),
    [
        ("https://tenant..example/oauth/token", "not a valid DNS host name"),
        ("https://" + "a" * 64 + ".example/oauth/token", "not a valid DNS host name"),
        ("https://tenant.example:99999/oauth/token", "port must be between 1 and 65535"),
        ("https://tenant.example:0/oauth/token", "port must be between 1 and 65535"),
    ],
)
def test_token_url_host_and_port_must_be_usable(token_url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        ClientCredentials(
            token_url=token_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, audience=AUDIENCE
        )


@pytest.mark.parametrize(
    ("token_url", "reason"),
    [
        ("http://tenant.example/oauth/token", "must use https"),
        ("ftp://tenant.example/oauth/token", "absolute https URL"),
        ("/oauth/token", "absolute https URL"),
        ("https://user:pw@tenant.example/oauth/token", "must not carry credentials"),
        ("https://tenant.example/oauth/token#frag", "must not carry credentials"),
    ],
)
def test_unsafe_or_incomplete_token_urls_are_refused(token_url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        ClientCredentials(
            token_url=token_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, audience=AUDIENCE
        )


def test_token_url_holding_a_lone_surrogate_is_refused() -> None:
    # A lone surrogate comes from a JSON escape or an undecodable byte of an environment
    # variable; no URL can hold one.
    with pytest.raises(ConfigurationError, match="absolute https URL"):
        ClientCredentials(
            token_url="https://tenant.example/oauth/token\udcff",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            audience=AUDIENCE,
        )


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "[::1]"])
def test_plain_http_is_allowed_on_loopback(host: str) -> None:
    auth = ClientCredentials(
        token_url=f"http://{host}:8000/oauth/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        audience=AUDIENCE,
    )
    assert auth.token_url.startswith("http://")


@pytest.mark.parametrize("missing", ["client_id", "client_secret", "audience"])
def test_credentials_must_not_be_empty(missing: str) -> None:
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "audience": AUDIENCE,
    }
    values[missing] = " "
    with pytest.raises(ConfigurationError, match=f"{missing} must be a non-empty string"):
        ClientCredentials(token_url="https://tenant.example/oauth/token", **values)


@pytest.mark.parametrize("field", ["client_id", "client_secret", "audience", "scope"])
def test_credentials_must_be_encodable_as_utf8(field: str) -> None:
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "audience": AUDIENCE,
    }
    values[field] = "lone-surrogate-\udc80"
    with pytest.raises(ConfigurationError, match=f"{field} must be encodable as UTF-8"):
        ClientCredentials(token_url="https://tenant.example/oauth/token", **values)


@pytest.mark.parametrize(
    "option",
    [
        {"refresh_margin": -1},
        {"timeout": 0},
        {"max_attempts": 0},
        {"max_attempts": 2.5},
        {"backoff": float("nan")},
        {"backoff": 5, "max_backoff": 1},
        {"scope": ["read", ""]},
        {"scope": "  "},
    ],
)
def test_nonsensical_options_are_refused(option: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ClientCredentials(
            token_url="https://tenant.example/oauth/token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            audience=AUDIENCE,
            **option,
        )


@pytest.mark.parametrize("name", ["refresh_margin", "timeout", "backoff", "max_backoff"])
def test_an_option_too_large_for_a_float_is_refused(name: str) -> None:
    option: dict[str, Any] = {name: 10**400}
    with pytest.raises(ConfigurationError, match=name):
        ClientCredentials(
            token_url="https://tenant.example/oauth/token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            audience=AUDIENCE,
            **option,
        )


def test_a_timeout_longer_than_any_wait_the_platform_can_make_is_refused() -> None:
    # Threads and sockets wait at most threading.TIMEOUT_MAX (about 292 years).
    with pytest.raises(ConfigurationError, match="timeout"):
        ClientCredentials(
            token_url="https://tenant.example/oauth/token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            audience=AUDIENCE,
            timeout=1e10,
        )


@pytest.mark.parametrize("scope", [5, 2.5, object()])
def test_a_scope_that_is_neither_text_nor_iterable_is_refused(scope: object) -> None:
    with pytest.raises(ConfigurationError, match="scope"):
        ClientCredentials(
            token_url="https://tenant.example/oauth/token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            audience=AUDIENCE,
            scope=scope,  # type: ignore[arg-type]
        )


# -- the token request ---------------------------------------------------------------


def test_token_request_is_the_form_encoded_client_credentials_grant(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    auth.get_token()
    assert server.token_content_types == ["application/x-www-form-urlencoded"]
    assert server.token_forms == [
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "audience": AUDIENCE,
        }
    ]


def test_scopes_are_requested_space_delimited(server: IssuerServer, clock: FakeClock) -> None:
    credentials(server, clock, scope=["read:channels", "write:channels"]).get_token()
    assert server.token_forms[0]["scope"] == "read:channels write:channels"


def test_api_requests_carry_the_token_as_bearer(server: IssuerServer, client: httpx.Client) -> None:
    response = client.get(server.resource_url)
    assert response.status_code == 200
    assert bearer_of(response) == f"Bearer {server.issued[0]}"


@pytest.mark.anyio
async def test_async_api_requests_carry_the_token_as_bearer(
    server: IssuerServer, async_client: httpx.AsyncClient
) -> None:
    response = await async_client.get(server.resource_url)
    assert response.status_code == 200
    assert bearer_of(response) == f"Bearer {server.issued[0]}"


def test_token_request_never_follows_a_redirect(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    server.script(redirect("http://127.0.0.1:9/steal", status=307))
    with pytest.raises(TokenRequestError) as caught:
        auth.get_token()
    assert caught.value.status_code == 307
    assert server.token_requests == 1


# -- caching and expiry --------------------------------------------------------------


def test_one_token_serves_many_requests(server: IssuerServer, client: httpx.Client) -> None:
    statuses = [client.get(server.resource_url).status_code for _ in range(10)]
    assert statuses == [200] * 10
    assert server.token_requests == 1


def test_token_is_kept_until_expires_in_minus_the_margin(
    server: IssuerServer, clock: FakeClock
) -> None:
    server.expires_in = 3600
    auth = credentials(server, clock, refresh_margin=60)
    first = auth.get_token()
    clock.advance(3600 - 60 - 1)
    assert auth.get_token() == first
    assert server.token_requests == 1


def test_token_is_renewed_once_the_margin_is_reached(
    server: IssuerServer, clock: FakeClock
) -> None:
    server.expires_in = 3600
    auth = credentials(server, clock, refresh_margin=60)
    first = auth.get_token()
    clock.advance(3600 - 60)
    assert auth.get_token() != first
    assert server.token_requests == 2


def test_short_lived_token_is_kept_for_half_its_lifetime(
    server: IssuerServer, clock: FakeClock
) -> None:
    server.expires_in = 10
    auth = credentials(server, clock, refresh_margin=60)
    first = auth.get_token()
    clock.advance(4.9)
    assert auth.get_token() == first
    clock.advance(0.1)
    assert auth.get_token() != first
    assert server.token_requests == 2


def test_expires_in_sent_as_a_numeric_string_is_understood(
    server: IssuerServer, auth: ClientCredentials, clock: FakeClock
) -> None:
    server.expires_in = "3600"
    first = auth.get_token()
    clock.advance(3000)
    assert auth.get_token() == first


def test_failed_renewal_falls_back_to_the_still_valid_token(
    server: IssuerServer, clock: FakeClock
) -> None:
    server.expires_in = 3600
    auth = credentials(server, clock, refresh_margin=60, max_attempts=1)
    first = auth.get_token()
    clock.advance(3600 - 30)  # inside the margin, not yet expired
    server.script(unavailable())
    assert auth.get_token() == first


def test_failed_renewal_of_an_expired_token_is_an_error(
    server: IssuerServer, clock: FakeClock
) -> None:
    server.expires_in = 3600
    auth = credentials(server, clock, refresh_margin=60, max_attempts=1)
    auth.get_token()
    clock.advance(3600)
    server.script(unavailable())
    with pytest.raises(TokenRequestError) as caught:
        auth.get_token()
    assert caught.value.status_code == 503


# -- renewal during an outage of the token endpoint -----------------------------------


def token_in_its_renewal_window(
    server: IssuerServer, clock: FakeClock, **options: Any
) -> tuple[ClientCredentials, str]:
    """An instance holding a token valid for 3600 s, with the clock ``refresh_margin``
    (600 s unless given) before its expiry: renewal is due, the token still good."""
    server.expires_in = 3600
    settings: dict[str, Any] = {"refresh_margin": 600, **options}
    auth = credentials(server, clock, **settings)
    token = auth.get_token()
    clock.advance(3600 - settings["refresh_margin"])
    return auth, token


def test_renewal_while_the_token_is_valid_is_one_attempt_without_waiting(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth, token = token_in_its_renewal_window(server, clock, max_attempts=4)
    server.script(*[unavailable()] * 4)
    assert auth.get_token() == token
    assert server.token_requests == 2
    assert clock.sleeps == []


@pytest.mark.anyio
async def test_async_renewal_while_the_token_is_valid_is_one_attempt_without_waiting(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth, token = token_in_its_renewal_window(server, clock, max_attempts=4)
    server.script(*[unavailable()] * 4)
    assert await auth.aget_token() == token
    assert server.token_requests == 2
    assert clock.sleeps == []


def test_after_a_failed_renewal_the_valid_token_is_used_without_asking_for_a_while(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth, token = token_in_its_renewal_window(server, clock)
    server.script(unavailable())
    auth.get_token()
    clock.advance(0.5)
    assert auth.get_token() == token
    assert server.token_requests == 2


@pytest.mark.anyio
async def test_async_after_a_failed_renewal_the_valid_token_is_used_without_asking_for_a_while(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth, token = token_in_its_renewal_window(server, clock)
    server.script(unavailable())
    await auth.aget_token()
    clock.advance(0.5)
    assert await auth.aget_token() == token
    assert server.token_requests == 2


def test_renewal_is_tried_again_once_the_pause_has_passed(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth, token = token_in_its_renewal_window(server, clock, backoff=1)
    server.script(unavailable())
    auth.get_token()
    clock.advance(1)
    assert auth.get_token() != token
    assert server.token_requests == 3


def test_pauses_between_failed_renewals_double_up_to_max_backoff(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth, _ = token_in_its_renewal_window(server, clock, backoff=1, max_backoff=4)
    server.script(*[unavailable()] * 6)
    asked_at: list[float] = []
    for _ in range(100):  # 25 s of calls, four a second
        before = server.token_requests
        auth.get_token()
        if server.token_requests > before:
            asked_at.append(clock.now)
        clock.advance(0.25)
    gaps = [later - earlier for earlier, later in pairwise(asked_at)]
    assert gaps == [1, 2, 4, 4, 4, 4]


def test_pause_after_a_failed_renewal_lasts_at_least_a_second_without_backoff(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth, token = token_in_its_renewal_window(server, clock, backoff=0, max_backoff=0)
    server.script(unavailable())
    auth.get_token()
    clock.advance(0.75)
    assert auth.get_token() == token
    assert server.token_requests == 2


def test_pause_after_a_failed_renewal_honours_a_longer_retry_after(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth, token = token_in_its_renewal_window(server, clock, max_backoff=10)
    server.script(throttled(retry_after="120"))
    auth.get_token()
    clock.advance(119)
    assert auth.get_token() == token
    clock.advance(1)
    assert auth.get_token() != token
    assert server.token_requests == 3


def test_pause_after_a_failed_renewal_ends_five_seconds_before_expiry(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth, token = token_in_its_renewal_window(server, clock, refresh_margin=100)
    server.script(throttled(retry_after="3600"))
    auth.get_token()
    clock.advance(100 - 5 - 0.25)
    assert auth.get_token() == token
    clock.advance(0.25)
    assert auth.get_token() != token
    assert server.token_requests == 3


def test_no_renewal_is_tried_in_the_last_five_seconds_after_a_failure_there(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth, token = token_in_its_renewal_window(server, clock, refresh_margin=4)
    server.script(unavailable())
    auth.get_token()
    clock.advance(3.75)
    assert auth.get_token() == token
    assert server.token_requests == 2


def test_an_expired_token_is_renewed_with_retries_and_backoff(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth, _ = token_in_its_renewal_window(server, clock, max_attempts=3)
    clock.advance(600)
    server.script(unavailable(), unavailable())
    assert auth.get_token() == server.issued[1]
    assert server.token_requests == 4
    assert len(clock.sleeps) == 2


def test_a_renewal_the_token_expires_during_goes_on_with_retries(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth, _ = token_in_its_renewal_window(server, clock, max_attempts=2)
    server.script(unavailable())
    server.token_request_arrived.clear()
    server.hold_tokens()
    obtained: list[str] = []
    renewing = threading.Thread(target=lambda: obtained.append(auth.get_token()))
    renewing.start()
    server.wait_for_token_request()
    clock.advance(600)  # the token expires while its renewal is under way
    server.release_tokens()
    renewing.join()
    assert obtained == [server.issued[1]]
    assert len(clock.sleeps) == 1


# -- single flight -------------------------------------------------------------------


@pytest.mark.anyio
async def test_fifty_concurrent_async_requests_make_one_token_request(
    server: IssuerServer, async_client: httpx.AsyncClient
) -> None:
    server.hold_tokens()
    statuses: list[int] = []

    async def call() -> None:
        statuses.append((await async_client.get(server.resource_url)).status_code)

    async with anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(call)
        await anyio.to_thread.run_sync(server.wait_for_token_request)
        server.release_tokens()

    assert statuses == [200] * 50
    assert server.token_requests == 1


def test_twenty_threads_make_one_token_request(server: IssuerServer, client: httpx.Client) -> None:
    server.hold_tokens()
    start = threading.Barrier(20)
    statuses: list[int] = []

    def call() -> None:
        start.wait()
        statuses.append(client.get(server.resource_url).status_code)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    server.wait_for_token_request()
    server.release_tokens()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 20
    assert server.token_requests == 1


@pytest.mark.anyio
async def test_tasks_queued_behind_a_failed_token_request_share_its_error(
    server: IssuerServer, async_client: httpx.AsyncClient
) -> None:
    server.hold_tokens()
    server.script(oauth_error("invalid_client", 401))
    errors: list[str | None] = []

    async def call() -> None:
        try:
            await async_client.get(server.resource_url)
        except TokenRequestError as error:
            errors.append(error.oauth_error)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(call)
        await anyio.to_thread.run_sync(server.wait_for_token_request)
        server.release_tokens()

    assert errors == ["invalid_client"] * 10
    assert server.token_requests == 1


def test_one_instance_serves_sync_and_async_clients(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    async def async_call() -> httpx.Response:
        async with httpx.AsyncClient(auth=auth) as async_client:
            return await async_client.get(server.resource_url)

    with httpx.Client(auth=auth) as sync_client:
        sync_response = sync_client.get(server.resource_url)
    async_response = anyio.run(async_call)
    assert bearer_of(sync_response) == bearer_of(async_response)
    assert server.token_requests == 1


def live_anyio_locks() -> int:
    gc.collect()
    return sum(isinstance(thing, anyio.Lock) for thing in gc.get_objects())


@pytest.mark.anyio
async def test_dropped_instances_leave_no_lock_behind_in_the_event_loop(
    server: IssuerServer, clock: FakeClock
) -> None:
    before = live_anyio_locks()
    for _ in range(20):
        await credentials(server, clock).aget_token()
    assert live_anyio_locks() <= before


def test_an_instance_does_not_keep_a_finished_event_loop_alive(auth: ClientCredentials) -> None:
    loops: list[weakref.ref[object]] = []

    async def use_once() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await auth.aget_token()

    anyio.run(use_once)
    gc.collect()
    assert loops[0]() is None


# -- retries -------------------------------------------------------------------------


def test_throttled_token_request_waits_retry_after_then_succeeds(
    server: IssuerServer, auth: ClientCredentials, clock: FakeClock
) -> None:
    server.script(throttled(retry_after="2"))
    auth.get_token()
    assert clock.sleeps == [2.0]
    assert server.token_requests == 2


@pytest.mark.anyio
async def test_async_throttled_token_request_waits_retry_after_then_succeeds(
    server: IssuerServer, auth: ClientCredentials, clock: FakeClock
) -> None:
    server.script(throttled(retry_after="3"))
    await auth.aget_token()
    assert clock.sleeps == [3.0]
    assert server.token_requests == 2


def test_retry_after_as_an_http_date_is_honoured(
    server: IssuerServer, auth: ClientCredentials, clock: FakeClock
) -> None:
    past = format_datetime(datetime.now(timezone.utc) - timedelta(hours=1), usegmt=True)
    server.script(throttled(retry_after=past))
    auth.get_token()
    assert clock.sleeps == [0.0]


@pytest.mark.parametrize("unreadable", ["soon", "\u00b2", "-5", "Fri, 99 Foo 2024"])
def test_unreadable_retry_after_falls_back_to_the_backoff(
    server: IssuerServer, clock: FakeClock, unreadable: str
) -> None:
    auth = credentials(server, clock, backoff=1)
    server.script(throttled(retry_after=unreadable))
    auth.get_token()
    assert len(clock.sleeps) == 1
    assert 0.5 <= clock.sleeps[0] <= 1


def test_retry_after_longer_than_max_backoff_ends_the_retries(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth = credentials(server, clock, max_backoff=10)
    later = format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True)
    server.script(throttled(retry_after=later))
    with pytest.raises(TokenRequestError, match="longer than max_backoff") as caught:
        auth.get_token()
    assert (caught.value.oauth_error, caught.value.status_code) == ("too_many_requests", 429)
    assert clock.sleeps == []
    assert server.token_requests == 1


def test_server_errors_are_retried_with_growing_capped_backoff(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth = credentials(server, clock, max_attempts=5, backoff=1, max_backoff=3)
    server.script(unavailable(503), unavailable(502), unavailable(500), unavailable(504))
    auth.get_token()
    ceilings = [1, 2, 3, 3]
    assert len(clock.sleeps) == len(ceilings)
    for waited, ceiling in zip(clock.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= waited <= ceiling
    assert server.token_requests == 5


def test_retries_stop_after_max_attempts(server: IssuerServer, clock: FakeClock) -> None:
    auth = credentials(server, clock, max_attempts=3)
    server.script(*[unavailable(503)] * 5)
    with pytest.raises(TokenRequestError, match="HTTP 503") as caught:
        auth.get_token()
    assert caught.value.status_code == 503
    assert server.token_requests == 3
    assert len(clock.sleeps) == 2


def test_unreachable_endpoint_is_retried_then_reported(clock: FakeClock) -> None:
    auth = ClientCredentials(
        token_url=closed_port_url(),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        audience=AUDIENCE,
        max_attempts=2,
        clock=clock,
        sleep=clock.sleep,
    )
    with pytest.raises(TokenRequestError, match="unreachable: ConnectError") as caught:
        auth.get_token()
    assert (caught.value.oauth_error, caught.value.status_code) == (None, None)
    assert len(clock.sleeps) == 1


def test_timeouts_from_a_custom_transport_are_retried(clock: FakeClock) -> None:
    attempts: list[httpx.Request] = []

    def time_out(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    auth = ClientCredentials(
        token_url="https://tenant.example/oauth/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        audience=AUDIENCE,
        max_attempts=3,
        transport=httpx.MockTransport(time_out),
        clock=clock,
        sleep=clock.sleep,
    )
    with pytest.raises(TokenRequestError, match="ReadTimeout"):
        auth.get_token()
    assert len(attempts) == 3


# A valid answer that takes about three seconds to arrive in full.
TRICKLED_TOKEN = Reply(200, token_body(), trickle=0.05)
ANSWER_CAP = 64 * 1024


def test_an_answer_trickling_in_is_cut_off_at_the_timeout(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth = credentials(server, clock, timeout=0.5, max_attempts=1)
    server.script(TRICKLED_TOKEN)
    with pytest.raises(TokenRequestError, match=r"no complete answer within 0\.5 s") as caught:
        auth.get_token()
    assert (caught.value.oauth_error, caught.value.status_code) == (None, None)


@pytest.mark.anyio
async def test_async_an_answer_trickling_in_is_cut_off_at_the_timeout(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth = credentials(server, clock, timeout=0.5, max_attempts=1)
    server.script(TRICKLED_TOKEN)
    with pytest.raises(TokenRequestError, match=r"no complete answer within 0\.5 s"):
        await auth.aget_token()


def test_an_answer_cut_off_at_the_timeout_is_retried(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth = credentials(server, clock, timeout=0.5, max_attempts=2)
    server.script(TRICKLED_TOKEN)
    assert auth.get_token() == server.issued[0]
    assert len(clock.sleeps) == 1


def test_a_token_answer_of_64_kib_is_accepted(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    server.script(Reply(200, token_body(size=ANSWER_CAP)))
    assert auth.get_token() == "abc"


def test_a_token_answer_over_64_kib_is_refused(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    server.script(Reply(200, token_body(size=ANSWER_CAP + 1)))
    with pytest.raises(TokenRequestError, match="larger than 65536 bytes") as caught:
        auth.get_token()
    assert (caught.value.oauth_error, caught.value.status_code) == (None, 200)


def test_an_answer_of_unannounced_length_is_read_up_to_64_kib_only(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    server.script(Reply(200, token_body(size=1024 * 1024), announce_length=False))
    with pytest.raises(TokenRequestError, match="larger than 65536 bytes"):
        auth.get_token()


@pytest.mark.anyio
async def test_async_an_answer_of_unannounced_length_is_read_up_to_64_kib_only(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    server.script(Reply(200, token_body(size=1024 * 1024), announce_length=False))
    with pytest.raises(TokenRequestError, match="larger than 65536 bytes"):
        await auth.aget_token()


def test_an_oversized_error_answer_still_counts_by_its_status(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth = credentials(server, clock, max_attempts=2)
    server.script(Reply(503, b"x" * (ANSWER_CAP + 1), content_type="text/html"))
    assert auth.get_token() == server.issued[0]
    assert len(clock.sleeps) == 1


def test_a_unicode_error_below_httpx_is_a_token_request_error(clock: FakeClock) -> None:
    # The resolver IDNA-encodes host names; its UnicodeError is not an httpx error.
    def unencodable_host(request: httpx.Request) -> httpx.Response:
        raise UnicodeError("encoding with 'idna' codec failed")

    auth = ClientCredentials(
        token_url="https://tenant.example/oauth/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        audience=AUDIENCE,
        transport=httpx.MockTransport(unencodable_host),
        clock=clock,
        sleep=clock.sleep,
    )
    with pytest.raises(TokenRequestError, match="UnicodeError") as caught:
        auth.get_token()
    assert (caught.value.oauth_error, caught.value.status_code) == (None, None)


class RecordingTransport(httpx.BaseTransport):
    """A caller's transport: answers with a token and remembers whether it was closed."""

    closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"access_token": "abc", "token_type": "Bearer", "expires_in": 60}
        )

    def close(self) -> None:
        self.closed = True


class RecordingAsyncTransport(httpx.AsyncBaseTransport):
    closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"access_token": "abc", "token_type": "Bearer", "expires_in": 60}
        )

    async def aclose(self) -> None:
        self.closed = True


def test_a_transport_passed_in_is_used_but_never_closed() -> None:
    transport = RecordingTransport()
    auth = ClientCredentials(
        token_url="https://tenant.example/oauth/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        audience=AUDIENCE,
        transport=transport,
    )
    assert auth.get_token() == "abc"
    assert not transport.closed


@pytest.mark.anyio
async def test_an_async_transport_passed_in_is_used_but_never_closed() -> None:
    transport = RecordingAsyncTransport()
    auth = ClientCredentials(
        token_url="https://tenant.example/oauth/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        audience=AUDIENCE,
        async_transport=transport,
    )
    assert await auth.aget_token() == "abc"
    assert not transport.closed


@pytest.mark.parametrize(
    ("reply", "oauth", "status"),
    [
        (oauth_error("invalid_client", 401, "Unauthorized"), "invalid_client", 401),
        (oauth_error("access_denied", 403, "Service not enabled"), "access_denied", 403),
        (oauth_error("unauthorized_client", 403), "unauthorized_client", 403),
        (oauth_error("invalid_request", 400), "invalid_request", 400),
    ],
)
def test_oauth_errors_are_reported_by_name_and_not_retried(
    server: IssuerServer, auth: ClientCredentials, reply: Reply, oauth: str, status: int
) -> None:
    server.script(reply)
    with pytest.raises(TokenRequestError, match=oauth) as caught:
        auth.get_token()
    assert (caught.value.oauth_error, caught.value.status_code) == (oauth, status)
    assert server.token_requests == 1


def test_wrong_secret_is_invalid_client(server: IssuerServer, clock: FakeClock) -> None:
    auth = credentials(server, clock, client_secret="not-the-secret")
    with pytest.raises(TokenRequestError) as caught:
        auth.get_token()
    assert (caught.value.oauth_error, caught.value.status_code) == ("invalid_client", 401)


def test_audience_the_application_may_not_use_is_access_denied(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth = credentials(server, clock, audience="https://platform.dtc.istreamplanet.net/other")
    with pytest.raises(TokenRequestError) as caught:
        auth.get_token()
    assert (caught.value.oauth_error, caught.value.status_code) == ("access_denied", 403)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ("not json", "not a JSON object"),
        (["a list"], "not a JSON object"),
        ("[" * 30_000 + "]" * 30_000, "not a JSON object"),
        ({"token_type": "Bearer", "expires_in": 60}, "access_token"),
        ({"access_token": "a b", "token_type": "Bearer", "expires_in": 60}, "access_token"),
        ({"access_token": "abc\r\nX: y", "token_type": "Bearer", "expires_in": 60}, "access_token"),
        ({"access_token": "abc", "token_type": "DPoP", "expires_in": 60}, "token_type"),
        ({"access_token": "abc", "expires_in": 60}, "token_type"),
        ({"access_token": "abc", "token_type": "Bearer"}, "expires_in"),
        ({"access_token": "abc", "token_type": "Bearer", "expires_in": 0}, "expires_in"),
        ({"access_token": "abc", "token_type": "Bearer", "expires_in": True}, "expires_in"),
        ({"access_token": "abc", "token_type": "Bearer", "expires_in": "soon"}, "expires_in"),
        ({"access_token": "abc", "token_type": "Bearer", "expires_in": "\u00b2"}, "expires_in"),
        ({"access_token": "abc", "token_type": "Bearer", "expires_in": 10**400}, "expires_in"),
    ],
)
def test_unusable_token_responses_are_refused_before_any_api_call(
    server: IssuerServer, client: httpx.Client, payload: object, why: str
) -> None:
    body = payload.encode() if isinstance(payload, str) else None
    server.script(Reply(200, body) if body is not None else json_reply(200, payload))
    with pytest.raises(TokenRequestError, match=why) as caught:
        client.get(server.resource_url)
    assert (caught.value.oauth_error, caught.value.status_code) == (None, 200)
    assert server.resource_requests == 0


# -- 401 from the API ----------------------------------------------------------------


def test_refused_token_is_renewed_and_the_request_replayed(
    server: IssuerServer, client: httpx.Client
) -> None:
    client.get(server.resource_url)
    server.revoke_all()
    response = client.get(server.resource_url)
    assert response.status_code == 200
    assert bearer_of(response) == f"Bearer {server.issued[1]}"
    assert (server.token_requests, server.resource_requests) == (2, 3)


@pytest.mark.anyio
async def test_async_refused_token_is_renewed_and_the_request_replayed(
    server: IssuerServer, async_client: httpx.AsyncClient
) -> None:
    await async_client.get(server.resource_url)
    server.revoke_all()
    response = await async_client.get(server.resource_url)
    assert response.status_code == 200
    assert (server.token_requests, server.resource_requests) == (2, 3)


def test_request_is_replayed_only_once(server: IssuerServer, client: httpx.Client) -> None:
    server.refuse_every_token = True
    response = client.get(server.resource_url)
    assert response.status_code == 401
    assert (server.token_requests, server.resource_requests) == (2, 2)


def test_token_refused_right_after_a_renewal_is_not_renewed_again(
    server: IssuerServer, client: httpx.Client
) -> None:
    server.refuse_every_token = True
    client.get(server.resource_url)
    response = client.get(server.resource_url)
    assert response.status_code == 401
    assert (server.token_requests, server.resource_requests) == (2, 3)


def test_refused_token_whose_renewal_fails_raises_instead_of_returning_the_401(
    server: IssuerServer, client: httpx.Client
) -> None:
    client.get(server.resource_url)
    server.revoke_all()
    server.script(oauth_error("invalid_client", 401))
    with pytest.raises(TokenRequestError) as caught:
        client.get(server.resource_url)
    assert caught.value.oauth_error == "invalid_client"
    assert server.resource_requests == 2


@pytest.mark.anyio
async def test_async_refused_token_whose_renewal_fails_raises_instead_of_returning_the_401(
    server: IssuerServer, async_client: httpx.AsyncClient
) -> None:
    await async_client.get(server.resource_url)
    server.revoke_all()
    server.script(oauth_error("invalid_client", 401))
    with pytest.raises(TokenRequestError) as caught:
        await async_client.get(server.resource_url)
    assert caught.value.oauth_error == "invalid_client"
    assert server.resource_requests == 2


def test_replayed_request_carries_the_same_body(server: IssuerServer, client: httpx.Client) -> None:
    client.get(server.resource_url)
    server.revoke_all()
    response = client.post(server.resource_url, json={"channel": "news"})
    assert response.status_code == 200
    # Compared with each other, not with one spelling: httpx 0.28 writes JSON bodies
    # without spaces, httpx 0.27 with them.
    sent, replayed = server.resource_bodies[-2:]
    assert replayed == sent
    assert json.loads(replayed) == {"channel": "news"}


def test_streamed_upload_is_not_replayed_but_the_token_is_renewed(
    server: IssuerServer, client: httpx.Client
) -> None:
    client.get(server.resource_url)
    server.revoke_all()
    response = client.post(server.resource_url, content=iter([b"part-1", b"part-2"]))
    assert response.status_code == 401
    assert server.token_requests == 2
    assert client.get(server.resource_url).status_code == 200


@pytest.mark.anyio
async def test_many_requests_refused_together_renew_the_token_once(
    server: IssuerServer, async_client: httpx.AsyncClient
) -> None:
    await async_client.get(server.resource_url)
    server.revoke_all()
    statuses: list[int] = []

    async def call() -> None:
        statuses.append((await async_client.get(server.resource_url)).status_code)

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(call)

    assert statuses == [200] * 20
    assert server.token_requests == 2


def test_other_refusals_are_returned_untouched(server: IssuerServer, client: httpx.Client) -> None:
    response = client.get(server.base_url + "/missing")
    assert response.status_code == 404
    assert server.token_requests == 1


# -- the secret stays secret ---------------------------------------------------------


def test_repr_names_the_client_but_not_the_secret(auth: ClientCredentials) -> None:
    shown = repr(auth)
    assert CLIENT_ID in shown
    assert CLIENT_SECRET not in shown


def test_token_request_errors_never_contain_the_secret(
    server: IssuerServer, clock: FakeClock
) -> None:
    auth = credentials(server, clock, client_secret=CLIENT_SECRET + "-wrong")
    with pytest.raises(TokenRequestError) as caught:
        auth.get_token()
    rendered = "".join(traceback.format_exception(caught.value))
    for text in (str(caught.value), repr(caught.value), rendered):
        assert CLIENT_SECRET not in text


def test_secret_echoed_back_by_the_endpoint_is_redacted(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    server.script(oauth_error("invalid_client", 401, f"wrong secret {CLIENT_SECRET}"))
    with pytest.raises(TokenRequestError, match=r"wrong secret \[redacted\]") as caught:
        auth.get_token()
    assert CLIENT_SECRET not in str(caught.value)


def test_secret_echoed_back_as_the_error_code_is_redacted(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    server.script(oauth_error(CLIENT_SECRET, 401))
    with pytest.raises(TokenRequestError) as caught:
        auth.get_token()
    assert caught.value.oauth_error == "[redacted]"
    assert CLIENT_SECRET not in str(caught.value)


def test_secret_in_a_transport_error_is_redacted(clock: FakeClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy refused a body with {CLIENT_SECRET}", request=request)

    auth = ClientCredentials(
        token_url="https://tenant.example/oauth/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        audience=AUDIENCE,
        max_attempts=1,
        transport=httpx.MockTransport(refuse),
        clock=clock,
    )
    with pytest.raises(TokenRequestError, match=r"a body with \[redacted\]") as caught:
        auth.get_token()
    assert CLIENT_SECRET not in str(caught.value)


def test_the_library_s_own_wording_is_never_redacted(
    server: IssuerServer, clock: FakeClock
) -> None:
    # A secret that happens to occur in fixed text must not garble it (or hint at the secret).
    auth = credentials(server, clock, client_secret="s", max_attempts=1)
    server.script(unavailable(503))
    with pytest.raises(TokenRequestError) as caught:
        auth.get_token()
    assert str(caught.value) == "token endpoint answered HTTP 503"


def test_logs_never_contain_the_secret_or_the_token(
    server: IssuerServer, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(throttled(retry_after="1"), oauth_error("server_error", 500, CLIENT_SECRET))
    client.get(server.resource_url)
    server.revoke_all()
    client.get(server.resource_url)
    assert "retrying" in caplog.text
    assert "renewing" in caplog.text
    assert CLIENT_SECRET not in caplog.text
    for token in server.issued:
        assert token not in caplog.text


# -- the example and the dev issuer --------------------------------------------------


def example_environment(server: IssuerServer, **overrides: str) -> dict[str, str]:
    environ = {
        "ISP_TOKEN_URL": server.token_url,
        "ISP_CLIENT_ID": CLIENT_ID,
        "ISP_CLIENT_SECRET": CLIENT_SECRET,
        "ISP_AUDIENCE": AUDIENCE,
        "ISP_API_URL": server.base_url,
    }
    environ.update(overrides)
    return environ


def test_example_makes_sync_and_async_calls_with_one_token(
    server: IssuerServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert m2m_client.main(example_environment(server)) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1] == str([200] * 10)
    assert (server.token_requests, server.resource_requests) == (1, 11)


def test_example_reports_a_refused_client_without_its_secret(
    server: IssuerServer, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = CLIENT_SECRET + "-old"
    assert m2m_client.main(example_environment(server, ISP_CLIENT_SECRET=wrong)) == 1
    reported = capsys.readouterr().err
    assert "(invalid_client)" in reported
    assert wrong not in reported


def test_example_uses_the_tenant_when_a_domain_is_set() -> None:
    auth = m2m_client.credentials_from_env(
        {
            "ISP_DOMAIN": "istreamplanet.auth0.com",
            "ISP_CLIENT_ID": CLIENT_ID,
            "ISP_CLIENT_SECRET": CLIENT_SECRET,
            "ISP_AUDIENCE": AUDIENCE,
        }
    )
    assert auth.token_url == "https://istreamplanet.auth0.com/oauth/token"


def test_example_defaults_to_the_dev_issuer() -> None:
    auth = m2m_client.credentials_from_env({})
    assert (auth.token_url, auth.client_id) == ("http://127.0.0.1:8765/oauth/token", "dev-client")


@pytest.mark.anyio
async def test_dev_issuer_token_is_accepted_by_a_protected_api() -> None:
    with running(DevIssuerConfig(port=0)) as dev:
        auth = ClientCredentials(
            token_url=dev.token_url,
            client_id="dev-client",
            client_secret="dev-secret",
            audience=DEFAULT_AUDIENCE,
        )
        require_token = JWTAuth(issuer=dev.issuer, audience=DEFAULT_AUDIENCE)
        api = FastAPI()

        @api.get("/me")
        async def me(principal: Principal = Depends(require_token)) -> dict[str, object]:
            return {"client_id": principal.client_id, "is_machine": principal.is_machine}

        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", auth=auth
        ) as client:
            response = await client.get("/me")

    assert response.status_code == 200
    assert response.json() == {"client_id": "dev-client", "is_machine": True}
