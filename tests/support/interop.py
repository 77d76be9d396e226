"""Both directions of interop: other producers' tokens through `JWTAuth`, the dev issuer's out.

Shared by ``tests/test_interop.py`` and the table script ``tests/support/interop_table.py``,
so that the table in the documentation is what the tests check.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.testclient import TestClient

from fastapi_isp_jwt import JWTAuth, Principal
from fastapi_isp_jwt.dev_issuer import (
    DEFAULT_AUDIENCE,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DevIssuerConfig,
    create_app,
)
from fastapi_isp_jwt.minting import SigningKey, tenant_claims
from tests.support.issuer_server import IssuerServer
from tests.support.producers import Minted, Variant

__all__ = [
    "ACME",
    "SUBJECT",
    "dev_issuer_token",
    "dev_issuer_tokens",
    "interop_claims",
    "signing_key_for",
    "verified_by_jwtauth",
]

ACME = DEFAULT_AUDIENCE
SUBJECT = "auth0|interop"


def interop_claims(issuer: str) -> dict[str, Any]:
    """Tenant-shaped claims of a user token for ``acme``, valid for an hour."""
    return tenant_claims(
        issuer, ACME, client_id="interop", subject=SUBJECT, scopes=["streams:read"]
    )


def verified_by_jwtauth(server: IssuerServer, minted: Minted, variant: Variant) -> Principal:
    """``minted.token`` verified by a `JWTAuth` allowing ``variant.alg`` only.

    ``server`` publishes ``minted.jwks`` exactly as the producer wrote it; a refusal
    raises the library's `fastapi_isp_jwt.AuthError`.
    """
    server.serve(lambda: minted.jwks)
    auth = JWTAuth(issuer=server.url, audience=ACME, algorithms=[variant.alg])
    return auth.verify_sync(minted.token)


def signing_key_for(variant: Variant) -> SigningKey:
    """A dev issuer key that signs ``variant``: published under its name, on its curve."""
    generated = SigningKey.generate(variant.crv or variant.alg)
    kid = "-".join(filter(None, ("dev", variant.alg, variant.crv)))
    return SigningKey(kid=kid, alg=variant.alg, private_key=generated.private_key)


def dev_issuer_token(variant: Variant) -> tuple[Minted, str]:
    """A Client Credentials token of a dev issuer signing ``variant``, its JWKS, its issuer."""
    config = DevIssuerConfig()
    app = create_app(config, signing_key=signing_key_for(variant))
    with TestClient(app) as http:
        answer = http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": DEFAULT_CLIENT_SECRET,
                "audience": ACME,
            },
        )
        answer.raise_for_status()
        jwks = http.get("/.well-known/jwks.json").json()
    return Minted(answer.json()["access_token"], jwks), config.issuer


def dev_issuer_tokens(variants: Iterable[Variant]) -> dict[Variant, tuple[Minted, str]]:
    """`dev_issuer_token` for each of ``variants``, each from a dev issuer of its own."""
    return {variant: dev_issuer_token(variant) for variant in variants}
