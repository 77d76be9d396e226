"""Several trusted issuers (tenant domain and custom domain), and discovery, through JWTAuth."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fastapi_isp_jwt import InvalidTokenError, IssuerUnavailableError, JWTAuth
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.issuer_server import IssuerServer

ACME = "https://platform.dtc.istreamplanet.net/acme"


@pytest.fixture
def second_server() -> Iterator[IssuerServer]:
    with IssuerServer() as running:
        yield running


@pytest.fixture
def tenant(fresh_issuer: TestIssuer) -> TestIssuer:
    return fresh_issuer


@pytest.fixture
def custom_domain(second_server: IssuerServer) -> TestIssuer:
    issuer = TestIssuer(issuer=second_server.url)
    second_server.serve(issuer.jwks)
    return issuer


@pytest.fixture
def auth(tenant: TestIssuer, custom_domain: TestIssuer) -> JWTAuth:
    return JWTAuth(issuer=[tenant.issuer, custom_domain.issuer], audience=ACME)


@pytest.mark.anyio
async def test_tokens_of_each_trusted_issuer_are_accepted(
    auth: JWTAuth, tenant: TestIssuer, custom_domain: TestIssuer
) -> None:
    assert (await auth.verify(tenant.mint("auth0|a"))).subject == "auth0|a"
    assert (await auth.verify(custom_domain.mint("auth0|b"))).subject == "auth0|b"


@pytest.mark.anyio
async def test_each_issuer_has_its_own_key_set(
    auth: JWTAuth,
    tenant: TestIssuer,
    custom_domain: TestIssuer,
    server: IssuerServer,
    second_server: IssuerServer,
) -> None:
    await auth.verify(tenant.mint())
    await auth.verify(tenant.mint())
    assert (server.jwks_requests, second_server.jwks_requests) == (1, 0)
    await auth.verify(custom_domain.mint())
    assert (server.jwks_requests, second_server.jwks_requests) == (1, 1)


@pytest.mark.anyio
async def test_a_token_naming_one_issuer_but_signed_by_the_others_key_is_refused(
    auth: JWTAuth, tenant: TestIssuer, custom_domain: TestIssuer
) -> None:
    await auth.verify(custom_domain.mint())  # the custom domain's keys are loaded too
    forged = custom_domain.sign(tenant.claims(), key=custom_domain.signing_key)
    with pytest.raises(InvalidTokenError, match="unknown key"):
        await auth.verify(forged)


@pytest.mark.anyio
async def test_the_issuer_is_chosen_before_any_key_is_fetched(
    auth: JWTAuth, server: IssuerServer, second_server: IssuerServer
) -> None:
    stranger = TestIssuer(issuer="https://evil.example/")
    with pytest.raises(InvalidTokenError, match="issuer is not trusted"):
        await auth.verify(stranger.mint())
    assert (server.jwks_requests, second_server.jwks_requests) == (0, 0)


@pytest.mark.anyio
async def test_discovery_finds_the_jwks_through_the_issuer_metadata(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME, discovery=True)
    assert (await auth.verify(issuer.mint("auth0|d"))).subject == "auth0|d"
    assert server.jwks_requests == 1


@pytest.mark.anyio
async def test_discovery_metadata_naming_another_issuer_is_refused(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    server.discovery_issuer = "https://istreamplanet.auth0.com/"
    auth = JWTAuth(issuer=server.url, audience=ACME, discovery=True)
    with pytest.raises(IssuerUnavailableError):
        await auth.verify(issuer.mint())
    assert server.jwks_requests == 0
