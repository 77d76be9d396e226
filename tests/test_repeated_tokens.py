"""A token verified before: answered from the verified-token cache, exactly as the full path would.

The verifier looks a token up by its SHA-256 digest before parsing anything. These tests pin
that the shortcut never changes an answer: every request is sent once to a fresh `JWTAuth` (the full
path) and once to one that holds the token already, and both answers must be the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Security, WebSocket
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from fastapi_isp_jwt import JWTAuth, Principal
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.clock import FakeClock
from tests.support.issuer_server import IssuerServer

ACME = "https://platform.dtc.istreamplanet.net/acme"
Headers = Sequence[tuple[str, str]]


def make_app(auth: JWTAuth) -> FastAPI:
    app = FastAPI()

    @app.get("/streams")
    async def list_streams(principal: Principal = Depends(auth)) -> dict[str, object]:
        return {"subject": principal.subject, "scopes": sorted(principal.scopes)}

    @app.post("/streams")
    async def create_stream(
        principal: Principal = Security(auth, scopes=["streams:write"]),
    ) -> dict[str, str]:
        return {"created_by": principal.subject}

    @app.websocket("/control")
    async def control(
        websocket: WebSocket,
        principal: Principal = Security(auth, scopes=["streams:write"]),
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"subject": principal.subject})
        await websocket.close()

    return app


def remembering(auth: JWTAuth, token: str) -> JWTAuth:
    """``auth`` once ``token`` is in its verified-token cache (admitted on second sight)."""
    auth.verify_sync(token)
    remembered = auth.verify_sync(token)
    assert auth.verify_sync(token) is remembered
    return auth


def counting_full_checks(auth: JWTAuth, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The tokens ``auth`` parses from here on: the full path, as opposed to a cache hit."""
    parsed: list[bytes] = []
    full_path = auth.verifier._prepare

    def prepare(raw: bytes, digest: bytes | None) -> Any:
        parsed.append(raw)
        return full_path(raw, digest)

    monkeypatch.setattr(auth.verifier, "_prepare", prepare)
    return parsed


def answer(auth: JWTAuth, method: str, headers: Headers) -> tuple[int, dict[str, str], bytes]:
    response = TestClient(make_app(auth)).request(method, "/streams", headers=list(headers))
    kept = {
        name: response.headers[name]
        for name in ("www-authenticate", "retry-after")
        if name in response.headers
    }
    return response.status_code, kept, response.content


@pytest.fixture
def token(issuer: TestIssuer) -> str:
    return issuer.mint("auth0|repeat", ["streams:read"])


@pytest.fixture
def new_auth(server: IssuerServer) -> JWTAuth:
    return JWTAuth(issuer=server.url, audience=ACME)


@pytest.fixture
def warm_auth(server: IssuerServer, token: str) -> JWTAuth:
    return remembering(JWTAuth(issuer=server.url, audience=ACME), token)


def test_a_repeated_token_is_answered_without_verifying_it_again(
    warm_auth: JWTAuth, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = counting_full_checks(warm_auth, monkeypatch)
    status, _, body = answer(warm_auth, "GET", [("Authorization", f"Bearer {token}")])
    assert status == 200
    assert body == b'{"subject":"auth0|repeat","scopes":["streams:read"]}'
    assert parsed == []


@pytest.mark.parametrize(
    ("method", "spelling"),
    [
        pytest.param("GET", "Bearer {token}", id="exact-spelling"),
        pytest.param("GET", "bearer {token}", id="lower-case-scheme"),
        pytest.param("GET", "Bearer   {token}", id="several-spaces"),
        pytest.param("GET", "Bearer {token}x", id="one-more-character"),
        pytest.param("GET", "Bearer {token}=", id="padding-after-the-token"),
        pytest.param("GET", "Basic {token}", id="another-scheme"),
        pytest.param("POST", "Bearer {token}", id="scoped-route-lacking-the-scope"),
    ],
)
def test_a_remembered_token_gets_the_same_answer_as_a_new_one(
    new_auth: JWTAuth, warm_auth: JWTAuth, token: str, method: str, spelling: str
) -> None:
    headers = [("Authorization", spelling.format(token=token))]
    assert answer(warm_auth, method, headers) == answer(new_auth, method, headers)


def test_two_authorization_headers_are_refused_even_when_both_are_remembered(
    new_auth: JWTAuth, warm_auth: JWTAuth, token: str
) -> None:
    headers = [("Authorization", f"Bearer {token}")] * 2
    refused = answer(warm_auth, "GET", headers)
    assert refused[0] == 400
    assert 'error="invalid_request"' in refused[1]["www-authenticate"]
    assert refused == answer(new_auth, "GET", headers)


def test_a_remembered_token_lacking_the_route_scope_gets_403(
    warm_auth: JWTAuth, token: str
) -> None:
    status, headers, _ = answer(warm_auth, "POST", [("Authorization", f"Bearer {token}")])
    assert status == 403
    assert 'error="insufficient_scope"' in headers["www-authenticate"]


def test_a_remembered_token_is_refused_once_it_expires(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    clock = FakeClock(1_900_000_000.0)
    auth = JWTAuth(issuer=server.url, audience=ACME, leeway=0)
    auth.verifier._clock = clock
    token = issuer.mint(issued_at=clock(), expires_in=60)
    remembering(auth, token)
    headers = [("Authorization", f"Bearer {token}")]
    clock.advance(59)
    assert answer(auth, "GET", headers)[0] == 200
    clock.advance(1)
    status, challenge, _ = answer(auth, "GET", headers)
    assert status == 401
    assert 'error_description="The token has expired"' in challenge["www-authenticate"]


def test_a_remembered_token_is_refused_once_its_key_left_the_jwks(
    server: IssuerServer, fresh_issuer: TestIssuer
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME, jwks_cooldown=0)
    old_kid = fresh_issuer.signing_key.kid
    token = fresh_issuer.mint()
    remembering(auth, token)
    fresh_issuer.rotate()
    fresh_issuer.retire(old_kid)
    # A token of the new key makes the key cache fetch the JWKS again, without the old key.
    auth.verify_sync(fresh_issuer.mint())
    assert answer(auth, "GET", [("Authorization", f"Bearer {token}")])[0] == 401


def test_a_remembered_token_lacking_the_scope_closes_a_websocket_with_1008(
    warm_auth: JWTAuth, token: str
) -> None:
    client = TestClient(make_app(warm_auth))
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/control", headers={"Authorization": f"Bearer {token}"}),
    ):
        pass
    assert closed.value.code == 1008


def test_a_remembered_token_with_the_scope_opens_a_websocket(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    token = issuer.mint("auth0|writer", ["streams:write"])
    client = TestClient(make_app(remembering(JWTAuth(issuer=server.url, audience=ACME), token)))
    with client.websocket_connect("/control", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_json() == {"subject": "auth0|writer"}


def test_a_token_verified_once_is_not_remembered_yet(
    new_auth: JWTAuth, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_auth.verify_sync(token)
    parsed = counting_full_checks(new_auth, monkeypatch)
    new_auth.verify_sync(token)
    assert parsed == [token.encode()]


def test_nothing_is_remembered_when_the_cache_is_off(
    server: IssuerServer, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME, token_cache_size=0)
    parsed = counting_full_checks(auth, monkeypatch)
    for _ in range(3):
        auth.verify_sync(token)
    assert parsed == [token.encode()] * 3


def test_a_request_reaches_the_verifier_once(
    warm_auth: JWTAuth, new_auth: JWTAuth, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for auth in (warm_auth, new_auth):
        calls: list[object] = []
        monkeypatch.setattr(auth.verifier, "verify_now", counting(auth.verifier.verify_now, calls))
        status, _, _ = answer(auth, "GET", [("Authorization", f"Bearer {token}")])
        assert (status, calls) == (200, [token.encode()])


def counting(verify_now: Callable[..., Any], calls: list[object]) -> Callable[..., Any]:
    def counted(value: str | bytes, **options: Any) -> Any:
        calls.append(value)
        return verify_now(value, **options)

    return counted
