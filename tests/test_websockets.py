"""JWTAuth on WebSocket routes: refused connections close before accept."""

from __future__ import annotations

import pytest
from fastapi import Depends, FastAPI, Security, WebSocket
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from fastapi_isp_jwt import JWTAuth, Principal
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.issuer_server import IssuerServer, closed_port_url

ACME = "https://platform.dtc.istreamplanet.net/acme"


def make_app(auth: JWTAuth) -> FastAPI:
    app = FastAPI()

    @app.websocket("/events")
    async def events(websocket: WebSocket, principal: Principal = Depends(auth)) -> None:
        await websocket.accept()
        await websocket.send_json({"subject": principal.subject})
        await websocket.close()

    @app.websocket("/control")
    async def control(
        websocket: WebSocket,
        principal: Principal = Security(auth, scopes=["streams:write"]),
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"subject": principal.subject})
        await websocket.close()

    return app


@pytest.fixture
def auth(server: IssuerServer) -> JWTAuth:
    return JWTAuth(
        issuer=server.url,
        audience=ACME,
        websocket_query_param="access_token",
        websocket_subprotocol=True,
    )


def refused_with(client: TestClient, path: str, **kwargs: object) -> tuple[int, str | None]:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(path, **kwargs),  # type: ignore[arg-type]
    ):
        pass
    return closed.value.code, closed.value.reason


def test_a_token_in_the_authorization_header_is_accepted(auth: JWTAuth, issuer: TestIssuer) -> None:
    client = TestClient(make_app(auth))
    headers = {"Authorization": f"Bearer {issuer.mint('auth0|ws')}"}
    with client.websocket_connect("/events", headers=headers) as ws:
        assert ws.receive_json() == {"subject": "auth0|ws"}


def test_a_token_in_the_opted_in_query_parameter_is_accepted(
    auth: JWTAuth, issuer: TestIssuer
) -> None:
    client = TestClient(make_app(auth))
    with client.websocket_connect(f"/events?access_token={issuer.mint('auth0|q')}") as ws:
        assert ws.receive_json() == {"subject": "auth0|q"}


def test_a_token_in_the_opted_in_subprotocol_is_accepted(auth: JWTAuth, issuer: TestIssuer) -> None:
    client = TestClient(make_app(auth))
    with client.websocket_connect("/events", subprotocols=["bearer", issuer.mint("auth0|p")]) as ws:
        assert ws.receive_json() == {"subject": "auth0|p"}


def test_a_query_parameter_given_twice_is_refused_as_malformed(
    auth: JWTAuth, issuer: TestIssuer
) -> None:
    # Which of two tokens counts is what a proxy and the service could disagree on.
    query = f"access_token={issuer.mint('auth0|a')}&access_token={issuer.mint('auth0|b')}"
    code, reason = refused_with(TestClient(make_app(auth)), f"/events?{query}")
    assert (code, reason) == (1008, "The bearer token is malformed")


def test_a_subprotocol_offering_two_bearer_tokens_is_refused_as_malformed(
    auth: JWTAuth, issuer: TestIssuer
) -> None:
    offered = ["bearer", issuer.mint("auth0|a"), "bearer", issuer.mint("auth0|b")]
    code, reason = refused_with(TestClient(make_app(auth)), "/events", subprotocols=offered)
    assert (code, reason) == (1008, "The bearer token is malformed")


def test_the_query_parameter_is_ignored_unless_opted_in(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    client = TestClient(make_app(JWTAuth(issuer=server.url, audience=ACME)))
    code, _ = refused_with(client, f"/events?access_token={issuer.mint()}")
    assert code == 1008


def test_no_token_closes_with_policy_violation(auth: JWTAuth) -> None:
    code, reason = refused_with(TestClient(make_app(auth)), "/events")
    assert code == 1008
    assert reason == "Bearer credentials are required"


def test_an_invalid_token_closes_with_policy_violation_and_a_reason(
    auth: JWTAuth, issuer: TestIssuer
) -> None:
    headers = {"Authorization": f"Bearer {issuer.mint_expired()}"}
    code, reason = refused_with(TestClient(make_app(auth)), "/events", headers=headers)
    assert code == 1008
    assert reason == "The token has expired"


def test_a_missing_scope_closes_with_policy_violation(auth: JWTAuth, issuer: TestIssuer) -> None:
    headers = {"Authorization": f"Bearer {issuer.mint(scopes=['streams:read'])}"}
    code, reason = refused_with(TestClient(make_app(auth)), "/control", headers=headers)
    assert code == 1008
    assert reason == "The token lacks a required scope"


def test_unreachable_keys_close_with_try_again_later(issuer: TestIssuer) -> None:
    auth = JWTAuth(issuer=issuer.issuer, audience=ACME, jwks_url=closed_port_url())
    headers = {"Authorization": f"Bearer {issuer.mint()}"}
    code, _ = refused_with(TestClient(make_app(auth)), "/events", headers=headers)
    assert code == 1013
