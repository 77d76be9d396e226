"""The dev issuer and DPoP: bound tokens for token requests with a valid proof, nonces on demand.

Spoken to over real HTTP on 127.0.0.1, with proofs from the testing kit's `DPoPKey`. The last
tests run the whole loop: `ClientCredentials` with a DPoP key gets a bound token from the
dev issuer and calls a small API that checks the token's binding with fastapi_isp_jwt.dpop.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI, HTTPException, Request

from fastapi_isp_jwt import ConfigurationError
from fastapi_isp_jwt.cli import main
from fastapi_isp_jwt.client import ClientCredentials
from fastapi_isp_jwt.dev_issuer import (
    DEFAULT_AUDIENCE,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DevIssuerConfig,
    RunningDevIssuer,
    running,
)
from fastapi_isp_jwt.dev_issuer.config import config_from_mapping
from fastapi_isp_jwt.dpop import DPoPPolicy, DPoPRequest, check_binding, verify_proof
from fastapi_isp_jwt.errors import AuthError
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.testing import DPoPKey, SigningKey

SIGNING_KEY = SigningKey.generate("RS256")
FORM = {
    "grant_type": "client_credentials",
    "client_id": DEFAULT_CLIENT_ID,
    "client_secret": DEFAULT_CLIENT_SECRET,
    "audience": DEFAULT_AUDIENCE,
}


@pytest.fixture(scope="module")
def dev() -> Iterator[RunningDevIssuer]:
    with running(DevIssuerConfig(port=0), signing_key=SIGNING_KEY) as issuer:
        yield issuer


@pytest.fixture(scope="module")
def nonce_demanding() -> Iterator[RunningDevIssuer]:
    with running(DevIssuerConfig(port=0, dpop_nonce=True), signing_key=SIGNING_KEY) as issuer:
        yield issuer


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    return DPoPKey()


def ask(issuer: RunningDevIssuer, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(issuer.token_url, data=FORM, headers=headers or {})


def with_proof(issuer: RunningDevIssuer, key: DPoPKey, **proof_options: Any) -> httpx.Response:
    return ask(issuer, {"DPoP": key.proof("POST", issuer.token_url, **proof_options)})


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


# -- bound tokens ------------------------------------------------------------------------


def test_a_token_request_with_a_valid_proof_gets_a_dpop_token(
    dev: RunningDevIssuer, key: DPoPKey
) -> None:
    answer = with_proof(dev, key)

    assert answer.status_code == 200
    assert answer.json()["token_type"] == "DPoP"


def test_a_dpop_token_is_bound_to_the_proof_key(dev: RunningDevIssuer, key: DPoPKey) -> None:
    token = with_proof(dev, key).json()["access_token"]

    assert claims_of(token)["cnf"] == {"jkt": key.thumbprint}


def test_a_token_request_without_a_proof_still_gets_an_unbound_bearer_token(
    dev: RunningDevIssuer,
) -> None:
    answer = ask(dev).json()

    assert answer["token_type"] == "Bearer"
    assert "cnf" not in claims_of(answer["access_token"])


@pytest.mark.parametrize("flaw", ["method", "url", "signature", "too_old", "typ", "private_key"])
def test_a_bad_proof_is_refused_with_invalid_dpop_proof(
    dev: RunningDevIssuer, key: DPoPKey, flaw: str
) -> None:
    answer = with_proof(dev, key, broken=flaw)

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_dpop_proof"


def test_a_proof_for_another_spelling_of_the_token_endpoint_is_refused(
    dev: RunningDevIssuer, key: DPoPKey
) -> None:
    elsewhere = dev.token_url.replace("127.0.0.1", "localhost")

    answer = ask(dev, {"DPoP": key.proof("POST", elsewhere)})

    assert answer.json()["error"] == "invalid_dpop_proof"


def test_a_proof_sent_twice_is_refused_the_second_time(dev: RunningDevIssuer, key: DPoPKey) -> None:
    proof = key.proof("POST", dev.token_url)
    ask(dev, {"DPoP": proof})

    answer = ask(dev, {"DPoP": proof})

    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_dpop_proof")


def test_two_dpop_headers_are_refused(dev: RunningDevIssuer, key: DPoPKey) -> None:
    headers = [("DPoP", key.proof("POST", dev.token_url)) for _ in range(2)]

    answer = httpx.post(dev.token_url, data=FORM, headers=headers)

    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_dpop_proof")


def test_a_bad_proof_is_refused_before_the_client_is_authenticated(
    dev: RunningDevIssuer, key: DPoPKey
) -> None:
    proof = key.proof("POST", dev.token_url, broken="signature")

    answer = httpx.post(
        dev.token_url, data={**FORM, "client_secret": "wrong"}, headers={"DPoP": proof}
    )

    assert answer.json()["error"] == "invalid_dpop_proof"


def test_discovery_names_the_dpop_algorithms_all_asymmetric(dev: RunningDevIssuer) -> None:
    meta = httpx.get(dev.issuer + ".well-known/openid-configuration").json()

    algorithms = meta["dpop_signing_alg_values_supported"]
    assert "ES256" in algorithms
    assert not [alg for alg in algorithms if alg.startswith("HS") or alg == "none"]


# -- nonces ------------------------------------------------------------------------------


def test_a_proof_without_a_nonce_is_answered_use_dpop_nonce_with_the_nonce(
    nonce_demanding: RunningDevIssuer, key: DPoPKey
) -> None:
    answer = with_proof(nonce_demanding, key)

    assert (answer.status_code, answer.json()["error"]) == (400, "use_dpop_nonce")
    assert answer.headers["DPoP-Nonce"]


def test_a_proof_with_the_demanded_nonce_gets_a_bound_token(
    nonce_demanding: RunningDevIssuer, key: DPoPKey
) -> None:
    nonce = with_proof(nonce_demanding, key).headers["DPoP-Nonce"]

    answer = with_proof(nonce_demanding, key, nonce=nonce)

    assert answer.json()["token_type"] == "DPoP"


def test_a_bound_token_answer_hands_out_the_nonce_to_use_next(
    nonce_demanding: RunningDevIssuer, key: DPoPKey
) -> None:
    nonce = with_proof(nonce_demanding, key).headers["DPoP-Nonce"]

    answer = with_proof(nonce_demanding, key, nonce=nonce)

    assert answer.headers["DPoP-Nonce"] == nonce


def test_a_proof_with_a_nonce_the_issuer_never_gave_is_answered_use_dpop_nonce(
    nonce_demanding: RunningDevIssuer, key: DPoPKey
) -> None:
    answer = with_proof(nonce_demanding, key, nonce="made-up")

    assert answer.json()["error"] == "use_dpop_nonce"


def test_without_the_nonce_flag_no_nonce_is_demanded(dev: RunningDevIssuer, key: DPoPKey) -> None:
    answer = with_proof(dev, key)

    assert "DPoP-Nonce" not in answer.headers


def test_a_config_file_can_demand_nonces() -> None:
    assert config_from_mapping({"dpop_nonce": True}).dpop_nonce is True


def test_the_nonce_option_must_be_true_or_false() -> None:
    with pytest.raises(ConfigurationError, match="dpop_nonce must be true or false"):
        DevIssuerConfig(dpop_nonce="yes")  # type: ignore[arg-type]


def test_the_command_line_flag_demands_nonces(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[DevIssuerConfig] = []
    monkeypatch.setattr("fastapi_isp_jwt.cli.serve", lambda config, out: served.append(config))

    main(["dev-issuer", "--port", "0", "--dpop-nonce"], out=io.StringIO())

    assert served[0].dpop_nonce is True


# -- the whole loop: client, dev issuer, an API checking the binding ------------------------

API = "http://api.test"


def binding_checking_api(issuer: RunningDevIssuer) -> FastAPI:
    """An API that wants DPoP-bound tokens of ``issuer``, checked with fastapi_isp_jwt.dpop."""
    app = FastAPI()
    policy = DPoPPolicy()

    @app.get("/streams")
    async def streams(request: Request) -> dict[str, str]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "DPoP":
            raise HTTPException(401, "DPoP scheme expected")
        claims = jwt.decode(
            token, SIGNING_KEY.private_key.public_key(), ["RS256"], audience=DEFAULT_AUDIENCE
        )
        proof_request = DPoPRequest(request.headers["dpop"], request.method, str(request.url))
        try:
            proof = verify_proof(proof_request, policy=policy, now=time.time(), access_token=token)
            thumbprint = check_binding(claims, proof)
        except AuthError as refusal:
            raise HTTPException(401, refusal.description) from None
        return {"caller": claims["sub"], "jkt": str(thumbprint)}

    return app


def dpop_credentials(issuer: RunningDevIssuer) -> ClientCredentials:
    return ClientCredentials(
        token_url=issuer.token_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        audience=DEFAULT_AUDIENCE,
        dpop_key=SigningKey.generate("ES256"),
    )


@pytest.mark.anyio
@pytest.mark.parametrize("demand_nonce", [False, True], ids=["no-nonce", "nonce"])
async def test_a_client_with_a_dpop_key_calls_an_api_that_checks_the_binding(
    dev: RunningDevIssuer, nonce_demanding: RunningDevIssuer, demand_nonce: bool
) -> None:
    issuer = nonce_demanding if demand_nonce else dev
    auth = dpop_credentials(issuer)
    transport = httpx.ASGITransport(app=binding_checking_api(issuer))

    async with httpx.AsyncClient(transport=transport, base_url=API, auth=auth) as client:
        response = await client.get("/streams", params={"page": "2"})

    assert response.status_code == 200
    assert response.json() == {"caller": "dev-client@clients", "jkt": auth.dpop_thumbprint}


@pytest.mark.anyio
async def test_the_api_refuses_the_bound_token_with_another_keys_proof(
    dev: RunningDevIssuer,
) -> None:
    token = await dpop_credentials(dev).aget_token()
    transport = httpx.ASGITransport(app=binding_checking_api(dev))

    async with httpx.AsyncClient(transport=transport, base_url=API) as client:
        headers = DPoPKey().headers(token, "GET", API + "/streams")
        response = await client.get("/streams", headers=headers)

    assert response.status_code == 401
    assert response.json()["detail"] == Reason.DPOP_PROOF_BINDING.describe("")
