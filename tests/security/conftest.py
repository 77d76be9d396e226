"""Fixtures of the attack tests: the real JWKS server, the tenant-shaped issuer, an app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fastapi_isp_jwt import JWTAuth
from fastapi_isp_jwt.testing import TestIssuer
from tests.security.hostile import ACME, make_app
from tests.support.issuer_server import IssuerServer

ClientFactory = Callable[..., TestClient]
Publisher = Callable[..., None]


@pytest.fixture
def make_client(server: IssuerServer) -> ClientFactory:
    """A client of the streams API guarded by ``JWTAuth(issuer=<server>, audience=ACME, ...)``.

    Server errors come back as 500 responses instead of exceptions, so a test that meets
    one fails on its status assertion like any other wrong answer.
    """

    def build(**options: Any) -> TestClient:
        auth = JWTAuth(issuer=server.url, audience=ACME, **options)
        return TestClient(make_app(auth), raise_server_exceptions=False)

    return build


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    """The default configuration: RS256 only, 30 s leeway, 8 KiB token cap."""
    return make_client()


@pytest.fixture
def publish(server: IssuerServer, issuer: TestIssuer) -> Publisher:
    """Make the server publish ``issuer``'s keys plus the extra JWKs given."""

    def serve(*extra_jwks: dict[str, Any]) -> None:
        server.serve(lambda: {"keys": [*issuer.jwks()["keys"], *extra_jwks]})

    return serve


@pytest.fixture
def header(issuer: TestIssuer) -> dict[str, Any]:
    """The header the tenant sends: RS256, its ``kid``, ``typ: JWT``."""
    return {"alg": "RS256", "typ": "JWT", "kid": issuer.signing_key.kid}


@pytest.fixture
def claims(issuer: TestIssuer) -> dict[str, Any]:
    """Tenant-shaped claims for organization ``acme``, valid for an hour."""
    return issuer.claims("auth0|mallory", ["streams:read"])
