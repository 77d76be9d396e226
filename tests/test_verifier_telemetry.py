"""The verifier and the FastAPI layer report to OpenTelemetry: one request of each kind.

A `Verifier` given a `Telemetry` on the real SDK with in-memory readers (`Recorded`) verifies
tokens from the test issuer, whose keys the loopback issuer server publishes.
"""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI, Security
from fastapi.testclient import TestClient

from fastapi_isp_jwt import InvalidTokenError, JWTAuth, Principal, Settings, Verifier
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.issuer_server import IssuerServer
from tests.support.telemetry import BrokenProviders, Recorded, attrs

ACME = "https://platform.dtc.istreamplanet.net/acme"


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
def verifier(server: IssuerServer, recorded: Recorded) -> Verifier:
    return Verifier(Settings(issuer=server.url, audience=ACME), telemetry=recorded.telemetry)


def test_an_accepted_token_is_counted_as_accepted(
    verifier: Verifier, issuer: TestIssuer, recorded: Recorded
) -> None:
    verifier.verify_sync(issuer.mint())
    assert recorded.values("isp_jwt.verifications") == {attrs(outcome="accepted"): 1}


def test_a_refused_token_is_counted_with_its_reason(
    verifier: Verifier, issuer: TestIssuer, recorded: Recorded
) -> None:
    with pytest.raises(InvalidTokenError):
        verifier.verify_sync(issuer.mint_expired())
    assert recorded.values("isp_jwt.verifications") == {
        attrs(outcome="refused", reason="expired"): 1
    }


def test_a_remembered_token_counts_a_cache_hit(
    verifier: Verifier, issuer: TestIssuer, recorded: Recorded
) -> None:
    token = issuer.mint()
    for _ in range(3):
        verifier.verify_sync(token)
    assert recorded.values("isp_jwt.token_cache.lookups") == {
        attrs(result="miss"): 2,
        attrs(result="hit"): 1,
    }


@pytest.mark.anyio
async def test_a_remembered_token_from_a_request_counts_a_cache_hit_and_an_acceptance(
    verifier: Verifier, issuer: TestIssuer, recorded: Recorded
) -> None:
    token = issuer.mint().encode()  # bytes, as the FastAPI layer reads them off a request
    for _ in range(3):
        await verifier.verify(token)
    assert recorded.values("isp_jwt.token_cache.lookups") == {
        attrs(result="miss"): 2,
        attrs(result="hit"): 1,
    }
    assert recorded.values("isp_jwt.verifications") == {attrs(outcome="accepted"): 3}


def test_a_refusal_is_logged_once_with_its_reason_and_never_the_token(
    verifier: Verifier, issuer: TestIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    token = issuer.mint_expired()
    with caplog.at_level(logging.INFO, logger="fastapi_isp_jwt"):
        for _ in range(3):
            with pytest.raises(InvalidTokenError):
                verifier.verify_sync(token)
    refusals = [r for r in caplog.records if getattr(r, "reason", None) == "expired"]
    assert len(refusals) == 1
    assert all(token not in r.getMessage() and token not in str(vars(r)) for r in caplog.records)


def test_a_scope_refusal_is_counted(
    server: IssuerServer, issuer: TestIssuer, recorded: Recorded
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME)
    auth.verifier.telemetry = recorded.telemetry
    app = FastAPI()

    @app.post("/streams")
    async def create(principal: Principal = Security(auth, scopes=["streams:write"])) -> str:
        return principal.subject

    response = TestClient(app).post(
        "/streams", headers={"Authorization": f"Bearer {issuer.mint()}"}
    )
    assert response.status_code == 403
    assert recorded.values("isp_jwt.scope_refusals") == {attrs(): 1}


def test_a_broken_sdk_changes_no_answer_a_request_gets(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME)
    auth.verifier.telemetry = BrokenProviders().telemetry
    app = FastAPI()

    @app.post("/streams")
    async def create(principal: Principal = Security(auth, scopes=["streams:write"])) -> str:
        return principal.subject

    client = TestClient(app)
    statuses = [
        client.post("/streams", headers={"Authorization": f"Bearer {token}"}).status_code
        for token in (
            issuer.mint(scopes=["streams:write"]),
            issuer.mint_expired(),
            issuer.mint(),
        )
    ]
    assert statuses == [200, 401, 403]
