"""Tests for the quickstart API: real tokens and real keys, no Auth0 tenant, no network.

A :class:`~fastapi_isp_jwt.testing.TestIssuer` mints tenant-shaped tokens and serves its
keys on 127.0.0.1. Overriding ``require_token`` with a ``JWTAuth`` that trusts it (rather
than with a function returning a principal) keeps every check of production in the test:
signature, expiry, audience and the scopes each route requires.

Run: ``pytest examples/docs_testing.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from examples.docs_quickstart import app, require_token
from fastapi_isp_jwt.testing import TestIssuer


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    # Tokens say iss "https://issuer.test/" and aud "https://platform.dtc.istreamplanet.net/acme".
    return TestIssuer()


@pytest.fixture
def client(issuer: TestIssuer) -> Iterator[TestClient]:
    with issuer.serve() as served:
        app.dependency_overrides[require_token] = served.auth()
        yield TestClient(app)
        app.dependency_overrides.clear()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_request_without_a_token_is_refused(client: TestClient) -> None:
    response = client.get("/streams")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="api"')


def test_a_valid_token_reaches_the_route(client: TestClient, issuer: TestIssuer) -> None:
    response = client.get("/streams", headers=bearer(issuer.mint("auth0|alice")))
    assert response.status_code == 200
    assert response.json() == {"subject": "auth0|alice", "organization": "acme"}


def test_creating_a_stream_needs_the_streams_write_scope(
    client: TestClient, issuer: TestIssuer
) -> None:
    response = client.post("/streams", headers=bearer(issuer.mint(scopes=["streams:read"])))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_a_token_with_the_streams_write_scope_creates_a_stream(
    client: TestClient, issuer: TestIssuer
) -> None:
    token = issuer.mint("auth0|alice", scopes=["streams:write"])
    response = client.post("/streams", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"created_by": "auth0|alice"}


def test_an_expired_token_is_refused(client: TestClient, issuer: TestIssuer) -> None:
    response = client.get("/streams", headers=bearer(issuer.mint_expired()))
    assert response.status_code == 401
    assert response.json() == {"detail": "The token has expired"}


def test_a_token_for_another_organization_is_refused(
    client: TestClient, issuer: TestIssuer
) -> None:
    response = client.get("/streams", headers=bearer(issuer.mint(organization="globex")))
    assert response.status_code == 401
    assert response.json() == {"detail": "The token is not intended for this audience"}
