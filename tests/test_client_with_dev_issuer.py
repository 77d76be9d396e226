"""ClientCredentials against the dev issuer over real HTTP, calling a JWTAuth-protected API.

The protected API records the bearer token of every call it receives, so token reuse and
renewal are counted from what actually reached it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anyio
import httpx
import pytest
from fastapi import FastAPI, Request, Security

from fastapi_isp_jwt import ClientCredentials, JWTAuth, Principal, TokenRequestError
from fastapi_isp_jwt.dev_issuer import DEFAULT_AUDIENCE, DevIssuerConfig, RunningDevIssuer, running
from tests.support.clock import FakeClock


@pytest.fixture(scope="module")
def dev() -> Iterator[RunningDevIssuer]:
    with running(DevIssuerConfig(port=0, token_lifetime=600)) as issuer:
        yield issuer


class RecordingAPI:
    """A protected API that remembers the token each call carried."""

    def __init__(self, dev: RunningDevIssuer) -> None:
        self.tokens: list[str] = []
        self._lock = threading.Lock()
        require_token = JWTAuth(issuer=dev.issuer, audience=DEFAULT_AUDIENCE)
        self.app = FastAPI()

        @self.app.get("/streams")
        async def streams(
            request: Request,
            principal: Principal = Security(require_token, scopes=["streams:read"]),
        ) -> dict[str, str]:
            with self._lock:
                self.tokens.append(request.headers["authorization"])
            return {"caller": principal.subject}


@pytest.fixture
def api(dev: RunningDevIssuer) -> RecordingAPI:
    return RecordingAPI(dev)


class CountingTransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """Real HTTP to the dev issuer, counting the token requests that go out."""

    def __init__(self) -> None:
        self.requests = 0
        self._async = httpx.AsyncHTTPTransport()
        self._sync = httpx.HTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await self._async.handle_async_request(request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return self._sync.handle_request(request)


@pytest.fixture
def counted() -> CountingTransport:
    return CountingTransport()


def credentials(
    dev: RunningDevIssuer, counted: CountingTransport, **options: object
) -> ClientCredentials:
    return ClientCredentials(
        token_url=dev.token_url,
        client_id="dev-client",
        client_secret="dev-secret",
        audience=DEFAULT_AUDIENCE,
        transport=counted,
        async_transport=counted,
        **options,  # type: ignore[arg-type]
    )


def async_client(api: RecordingAPI, auth: ClientCredentials) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=api.app)
    return httpx.AsyncClient(transport=transport, base_url="http://api", auth=auth)


@pytest.mark.anyio
async def test_one_token_serves_many_calls(
    dev: RunningDevIssuer, api: RecordingAPI, counted: CountingTransport
) -> None:
    async with async_client(api, credentials(dev, counted)) as client:
        statuses = [(await client.get("/streams")).status_code for _ in range(10)]
    assert statuses == [200] * 10
    assert len(api.tokens) == 10
    assert len(set(api.tokens)) == 1
    assert counted.requests == 1


@pytest.mark.anyio
async def test_concurrent_calls_share_one_token(
    dev: RunningDevIssuer, api: RecordingAPI, counted: CountingTransport
) -> None:
    async with (
        async_client(api, credentials(dev, counted)) as client,
        anyio.create_task_group() as group,
    ):
        for _ in range(20):
            group.start_soon(client.get, "/streams")
    assert len(api.tokens) == 20
    assert len(set(api.tokens)) == 1
    assert counted.requests == 1


@pytest.mark.anyio
async def test_a_token_near_its_expiry_is_renewed(
    dev: RunningDevIssuer, api: RecordingAPI, counted: CountingTransport
) -> None:
    clock = FakeClock()
    auth = credentials(dev, counted, refresh_margin=60, clock=clock)
    async with async_client(api, auth) as client:
        await client.get("/streams")
        clock.advance(600 - 60 - 1)
        await client.get("/streams")
        assert counted.requests == 1
        clock.advance(2)
        response = await client.get("/streams")
    assert response.status_code == 200
    assert counted.requests == 2


def test_sync_callers_in_many_threads_share_one_token(
    dev: RunningDevIssuer, counted: CountingTransport
) -> None:
    auth = credentials(dev, counted)
    tokens: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        token = auth.get_token()
        with lock:
            tokens.append(token)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 12
    assert len(set(tokens)) == 1
    assert counted.requests == 1


@pytest.mark.anyio
async def test_a_wrong_secret_is_the_oauth_error_invalid_client(
    dev: RunningDevIssuer, api: RecordingAPI
) -> None:
    auth = ClientCredentials(
        token_url=dev.token_url,
        client_id="dev-client",
        client_secret="not-the-secret",
        audience=DEFAULT_AUDIENCE,
    )
    async with async_client(api, auth) as client:
        with pytest.raises(TokenRequestError) as raised:
            await client.get("/streams")
    assert raised.value.oauth_error == "invalid_client"
    assert "not-the-secret" not in str(raised.value)
    assert api.tokens == []


@pytest.mark.anyio
async def test_an_unknown_audience_is_refused_by_the_dev_issuer(
    dev: RunningDevIssuer, api: RecordingAPI
) -> None:
    auth = ClientCredentials(
        token_url=dev.token_url,
        client_id="dev-client",
        client_secret="dev-secret",
        audience="https://api.example/other",
    )
    async with async_client(api, auth) as client:
        with pytest.raises(TokenRequestError) as raised:
            await client.get("/streams")
    assert raised.value.oauth_error is not None
    assert api.tokens == []
