"""Two ways to test an API protected by fastapi-isp-jwt, side by side.

1. Real tokens: the ``isp_issuer`` and ``isp_auth`` fixtures (the package's pytest plugin,
   loaded automatically) mint tokens and verify them with every production check:
   signature, expiry, audience, scopes. ``require_token`` is swapped for ``isp_auth``.
2. A stand-in principal: ``override_principal`` skips the token entirely, yet the route's
   scopes are still checked, exactly as the real dependency checks them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from examples.testing_app import app, require_token
from fastapi_isp_jwt import JWTAuth
from fastapi_isp_jwt.testing import TestIssuer, make_principal, override_principal


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- 1. real tokens from a test issuer ---------------------------------------------------------


# --8<-- [start:real-tokens]
@pytest.fixture
def client(isp_auth: JWTAuth) -> Iterator[TestClient]:
    app.dependency_overrides[require_token] = isp_auth
    yield TestClient(app)
    del app.dependency_overrides[require_token]


def test_a_token_with_the_read_scope_lists_channels(
    client: TestClient, isp_issuer: TestIssuer
) -> None:
    token = isp_issuer.mint("auth0|ann", ["channels:read"])

    response = client.get("/channels", headers=bearer(token))

    assert response.status_code == 200
    assert "news" in response.json()


# --8<-- [end:real-tokens]


def test_a_token_without_the_write_scope_cannot_create_a_channel(
    client: TestClient, isp_issuer: TestIssuer
) -> None:
    token = isp_issuer.mint("auth0|ann", ["channels:read"])

    response = client.post("/channels/sports", headers=bearer(token))

    assert response.status_code == 403
    assert 'scope="channels:write"' in response.headers["WWW-Authenticate"]


def test_a_machine_token_is_seen_as_a_machine(client: TestClient, isp_issuer: TestIssuer) -> None:
    response = client.get("/whoami", headers=bearer(isp_issuer.mint_machine()))

    assert response.json() == {"subject": "test-client@clients", "machine": True}


def test_an_expired_token_is_refused(client: TestClient, isp_issuer: TestIssuer) -> None:
    response = client.get("/whoami", headers=bearer(isp_issuer.mint_expired()))

    assert response.status_code == 401


def test_a_request_without_a_token_is_refused(client: TestClient) -> None:
    assert client.get("/whoami").status_code == 401


# -- 2. a stand-in principal, scopes still checked ----------------------------------------------


# --8<-- [start:stand-in]
def test_a_writer_creates_a_channel() -> None:
    writer = make_principal("auth0|ann", ["channels:write"])

    with override_principal(app, require_token, writer):
        response = TestClient(app).post("/channels/movies")

    assert response.status_code == 201
    assert response.json() == {"name": "movies", "created_by": "auth0|ann"}


def test_a_reader_still_cannot_create_a_channel() -> None:
    reader = make_principal("auth0|ann", ["channels:read"])

    with override_principal(app, require_token, reader):
        response = TestClient(app).post("/channels/movies")

    assert response.status_code == 403


# --8<-- [end:stand-in]
