"""ClientCredentials with a DPoP key: bound tokens, a proof on every request, server nonces.

The token endpoint and the resource are the tests' issuer server on 127.0.0.1
(tests/support/token_endpoint.py): it checks every proof with fastapi_isp_jwt.dpop, binds
the tokens it issues to the proof's key, and can demand nonces at either end.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from fastapi_isp_jwt.client import ClientCredentials
from fastapi_isp_jwt.dpop import DPoPNonces, access_token_hash
from fastapi_isp_jwt.errors import ConfigurationError, TokenRequestError
from fastapi_isp_jwt.minting import SigningKey, jwk_thumbprint
from tests.support.clock import FakeClock
from tests.support.faults import Reply, json_reply
from tests.support.issuer_server import RESOURCE_PATH, IssuerServer
from tests.support.token_endpoint import AUDIENCE, CLIENT_ID, CLIENT_SECRET


@pytest.fixture
def server() -> Iterator[IssuerServer]:
    with IssuerServer() as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def dpop_key() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture
def auth(server: IssuerServer, clock: FakeClock, dpop_key: SigningKey) -> ClientCredentials:
    return ClientCredentials(
        token_url=server.token_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        audience=AUDIENCE,
        clock=clock,
        sleep=clock.sleep,
        async_sleep=clock.async_sleep,
        dpop_key=dpop_key,
    )


@pytest.fixture
def client(auth: ClientCredentials) -> Iterator[httpx.Client]:
    with httpx.Client(auth=auth) as sync_client:
        yield sync_client


def claims_of(proof: str | None) -> dict[str, Any]:
    assert proof is not None
    claims: dict[str, Any] = jwt.decode(proof, options={"verify_signature": False})
    return claims


def nonces() -> DPoPNonces:
    return DPoPNonces(secrets.token_bytes(32))


def nonce_demand(nonce: str) -> Reply:
    return json_reply(400, {"error": "use_dpop_nonce"}, ("DPoP-Nonce", nonce))


# -- configuration -------------------------------------------------------------------


def test_a_dpop_key_must_be_a_signing_key(server: IssuerServer) -> None:
    with pytest.raises(ConfigurationError, match="dpop_key must be"):
        ClientCredentials(
            token_url=server.token_url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            audience=AUDIENCE,
            dpop_key="not a key",  # type: ignore[arg-type]
        )


def test_the_thumbprint_of_the_dpop_key_is_shown(
    auth: ClientCredentials, dpop_key: SigningKey
) -> None:
    assert auth.dpop_thumbprint == jwk_thumbprint(dpop_key.public_jwk())


# -- the token request ---------------------------------------------------------------


def test_the_token_request_carries_a_proof_for_a_post_to_the_token_endpoint(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    auth.get_token()

    proof = claims_of(server.token_proofs[0])
    assert (proof["htm"], proof["htu"]) == ("POST", server.token_url)


def test_the_token_request_proof_has_no_access_token_hash(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    auth.get_token()

    assert "ath" not in claims_of(server.token_proofs[0])


def test_the_token_is_bound_to_the_dpop_key(server: IssuerServer, auth: ClientCredentials) -> None:
    token = auth.get_token()

    assert server.bound_to(token) == auth.dpop_thumbprint


def test_a_bearer_token_answer_is_refused_when_a_dpop_token_was_asked_for(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    server.bound_token_type = "Bearer"

    with pytest.raises(TokenRequestError, match="token_type is not DPoP"):
        auth.get_token()


def test_a_token_endpoint_nonce_demand_is_met_with_one_more_request(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    server.token_nonces = nonces()

    token = auth.get_token()

    assert server.bound_to(token) == auth.dpop_thumbprint
    assert server.token_requests == 2


def test_the_second_token_request_carries_the_demanded_nonce(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    server.token_nonces = demanding = nonces()

    auth.get_token()

    assert demanding.accepts(claims_of(server.token_proofs[1])["nonce"], time.time())


def test_the_token_endpoint_nonce_is_remembered_for_the_next_token_request(
    server: IssuerServer, auth: ClientCredentials, clock: FakeClock
) -> None:
    server.token_nonces = nonces()
    auth.get_token()
    clock.advance(86400)  # the token has expired

    auth.get_token()

    assert server.token_requests == 3  # a demand, then two tokens
    assert "nonce" in claims_of(server.token_proofs[2])


def test_a_nonce_demand_after_a_nonce_was_sent_on_demand_fails_the_request(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    server.script(nonce_demand("first"), nonce_demand("second"))

    with pytest.raises(TokenRequestError) as refused:
        auth.get_token()

    assert refused.value.oauth_error == "use_dpop_nonce"
    assert server.token_requests == 2


def test_a_nonce_demand_without_a_nonce_is_not_met(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    server.script(json_reply(400, {"error": "use_dpop_nonce"}))

    with pytest.raises(TokenRequestError):
        auth.get_token()

    assert server.token_requests == 1


@pytest.mark.parametrize("nonce", ["has space", 'has"quote', "x" * 2000])
def test_a_nonce_outside_the_rfc_grammar_is_not_echoed(
    server: IssuerServer, auth: ClientCredentials, nonce: str
) -> None:
    server.script(nonce_demand(nonce))

    with pytest.raises(TokenRequestError):
        auth.get_token()

    assert server.token_requests == 1


# -- API requests ----------------------------------------------------------------------


def test_an_api_request_uses_the_dpop_scheme(server: IssuerServer, client: httpx.Client) -> None:
    response = client.get(server.resource_url)

    assert response.request.headers["Authorization"].startswith("DPoP ")


def test_an_api_request_proof_names_its_method_and_url_and_hashes_the_token(
    server: IssuerServer, client: httpx.Client, auth: ClientCredentials
) -> None:
    response = client.post(server.resource_url, content=b"x")

    proof = claims_of(response.request.headers["DPoP"])
    assert (proof["htm"], proof["htu"]) == ("POST", server.resource_url)
    assert proof["ath"] == access_token_hash(auth.get_token())


def test_an_api_request_proof_leaves_out_the_query_and_fragment(
    server: IssuerServer, client: httpx.Client
) -> None:
    response = client.get(server.resource_url + "?page=2#top")

    assert claims_of(response.request.headers["DPoP"])["htu"] == server.resource_url


def test_the_resource_accepts_the_bound_token_with_its_proof(
    server: IssuerServer, client: httpx.Client, auth: ClientCredentials
) -> None:
    response = client.get(server.resource_url)

    assert response.status_code == 200
    assert response.json()["jkt"] == auth.dpop_thumbprint


def test_every_api_request_gets_a_fresh_proof(server: IssuerServer, client: httpx.Client) -> None:
    first = client.get(server.resource_url)
    second = client.get(server.resource_url)

    assert [first.status_code, second.status_code] == [200, 200]
    assert (
        claims_of(first.request.headers["DPoP"])["jti"]
        != claims_of(second.request.headers["DPoP"])["jti"]
    )


def test_an_api_nonce_demand_is_met_with_one_more_request(
    server: IssuerServer, client: httpx.Client
) -> None:
    server.resource_nonces = nonces()

    response = client.get(server.resource_url)

    assert response.status_code == 200
    assert (server.resource_requests, server.token_requests) == (2, 1)


def test_the_api_nonce_is_remembered_for_the_next_requests(
    server: IssuerServer, client: httpx.Client
) -> None:
    server.resource_nonces = nonces()
    client.get(server.resource_url)

    response = client.get(server.resource_url)

    assert response.status_code == 200
    assert server.resource_requests == 3


def test_an_api_that_keeps_demanding_nonces_is_asked_twice_and_no_new_token_is_fetched(
    server: IssuerServer, client: httpx.Client
) -> None:
    challenge = ("WWW-Authenticate", 'DPoP error="use_dpop_nonce"')
    server.inject(RESOURCE_PATH, Reply(401, b"{}", (challenge, ("DPoP-Nonce", "n-1"))))

    response = client.get(server.resource_url)

    assert response.status_code == 401
    assert (server.resource_requests, server.token_requests) == (2, 1)


def test_a_streamed_upload_is_not_sent_again_on_a_nonce_demand(
    server: IssuerServer, client: httpx.Client
) -> None:
    server.resource_nonces = nonces()

    response = client.post(server.resource_url, content=iter([b"streamed"]))

    assert response.status_code == 401
    assert server.resource_requests == 1


def test_a_refused_token_is_renewed_and_sent_again_with_a_new_proof(
    server: IssuerServer, client: httpx.Client
) -> None:
    first = client.get(server.resource_url)
    server.revoke_all()

    second = client.get(server.resource_url)

    assert second.status_code == 200
    assert second.json()["token"] != first.json()["token"]
    assert server.token_requests == 2


@pytest.mark.anyio
async def test_an_async_client_meets_an_api_nonce_demand(
    server: IssuerServer, auth: ClientCredentials
) -> None:
    server.resource_nonces = nonces()

    async with httpx.AsyncClient(auth=auth) as async_client:
        response = await async_client.get(server.resource_url)

    assert response.status_code == 200
    assert response.json()["jkt"] == auth.dpop_thumbprint
