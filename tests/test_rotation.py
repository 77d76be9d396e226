"""Key rotation end to end: a key published moments after a download is trusted at once.

The issuer is the loopback JWKS server; the API is a real FastAPI app. The cooldown keeps
made-up key ids to one download per cooldown; it never makes a genuine new key wait.
"""

from __future__ import annotations

import secrets

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from fastapi_isp_jwt import JWTAuth, Principal
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.issuer_server import IssuerServer

ACME = "https://platform.dtc.istreamplanet.net/acme"


def make_app(auth: JWTAuth) -> FastAPI:
    app = FastAPI()

    @app.get("/streams")
    async def streams(principal: Principal = Depends(auth)) -> dict[str, str]:
        return {"subject": principal.subject}

    return app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_of_a_key_published_right_after_a_download_are_accepted(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    client = TestClient(make_app(JWTAuth(issuer=server.url, audience=ACME)))
    assert client.get("/streams", headers=bearer(issuer.mint())).status_code == 200
    issuer.rotate()

    statuses = {
        client.get("/streams", headers=bearer(issuer.mint())).status_code for _ in range(200)
    }

    assert statuses == {200}
    assert server.jwks_requests == 2


@pytest.mark.anyio
async def test_a_burst_of_new_key_tokens_waits_for_one_download(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME)
    transport = httpx.ASGITransport(app=make_app(auth))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get("/streams", headers=bearer(issuer.mint()))).status_code == 200
        issuer.rotate()
        statuses: list[int] = []

        async def call() -> None:
            response = await client.get("/streams", headers=bearer(issuer.mint()))
            statuses.append(response.status_code)

        async with anyio.create_task_group() as group:
            for _ in range(200):
                group.start_soon(call)

    assert set(statuses) == {200}
    assert server.jwks_requests == 2


def test_a_flood_of_made_up_key_ids_costs_one_download_per_cooldown(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    client = TestClient(make_app(JWTAuth(issuer=server.url, audience=ACME)))
    assert client.get("/streams", headers=bearer(issuer.mint())).status_code == 200

    forged = TestIssuer(issuer=server.url)
    statuses = set()
    for _ in range(300):
        token = forged.mint(headers={"kid": secrets.token_hex(8)})
        statuses.add(client.get("/streams", headers=bearer(token)).status_code)

    assert statuses == {401}
    assert server.jwks_requests == 2  # the first load, then one refetch that missed
