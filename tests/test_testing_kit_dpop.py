"""The testing kit's DPoP helpers: a client key, request headers, proofs broken on purpose.

Each proof is held to fastapi_isp_jwt.dpop's own checks (`verify_proof`, then
`check_binding` against a token bound with ``TestIssuer.mint_dpop_bound``), the checks a
DPoP-protected service applies.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from fastapi_isp_jwt.dpop import DPoPPolicy, DPoPRequest, check_binding, verify_proof
from fastapi_isp_jwt.errors import AuthError
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.testing import BROKEN_PROOFS, DPoPKey, TestIssuer

URL = "https://api.example/streams"


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    return DPoPKey()


@pytest.fixture(scope="module")
def token(key: DPoPKey) -> str:
    return TestIssuer().mint_dpop_bound(jkt=key.thumbprint)


def holds(headers: dict[str, str], method: str = "GET", url: str = URL) -> str | None:
    """The thumbprint the checks find for a request with ``headers``; raises if refused."""
    scheme, _, token = headers["Authorization"].partition(" ")
    assert scheme == "DPoP"
    proof = verify_proof(
        DPoPRequest(headers["DPoP"], method, url),
        policy=DPoPPolicy(),
        now=time.time(),
        access_token=token,
    )
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return check_binding(claims, proof)


def test_the_headers_carry_the_token_under_the_dpop_scheme(key: DPoPKey, token: str) -> None:
    headers = key.headers(token, "GET", URL)

    assert headers["Authorization"] == f"DPoP {token}"


def test_the_headers_pass_every_check_for_their_request(key: DPoPKey, token: str) -> None:
    assert holds(key.headers(token, "POST", URL), "POST") == key.thumbprint


def test_the_proof_leaves_out_the_query_and_fragment(key: DPoPKey, token: str) -> None:
    headers = key.headers(token, "GET", URL + "?page=2#top")

    assert holds(headers) == key.thumbprint


def test_every_call_makes_a_new_proof(key: DPoPKey, token: str) -> None:
    assert key.headers(token, "GET", URL)["DPoP"] != key.headers(token, "GET", URL)["DPoP"]


def test_a_proof_carries_the_nonce_it_is_given(key: DPoPKey) -> None:
    proof = key.proof("GET", URL, nonce="n-1")

    assert jwt.decode(proof, options={"verify_signature": False})["nonce"] == "n-1"


def test_the_key_algorithm_can_be_chosen() -> None:
    assert DPoPKey("RS256").signing_key.alg == "RS256"


# The check each flaw is caught by.
CAUGHT_BY = {
    "method": Reason.DPOP_PROOF_METHOD,
    "url": Reason.DPOP_PROOF_URL,
    "access_token": Reason.DPOP_PROOF_ACCESS_TOKEN,
    "no_access_token": Reason.DPOP_PROOF_CLAIM_MISSING,
    "too_old": Reason.DPOP_PROOF_TOO_OLD,
    "in_future": Reason.DPOP_PROOF_ISSUED_IN_FUTURE,
    "signature": Reason.DPOP_PROOF_SIGNATURE,
    "other_key": Reason.DPOP_PROOF_BINDING,
    "typ": Reason.DPOP_PROOF_TYPE,
    "algorithm": Reason.DPOP_PROOF_ALGORITHM,
    "private_key": Reason.DPOP_PROOF_KEY,
    "no_jti": Reason.DPOP_PROOF_CLAIM_MISSING,
}


def test_every_flaw_has_the_check_that_catches_it() -> None:
    assert set(CAUGHT_BY) == set(BROKEN_PROOFS)


@pytest.mark.parametrize("flaw", BROKEN_PROOFS)
def test_each_broken_proof_is_refused_by_the_check_for_its_flaw(
    key: DPoPKey, token: str, flaw: str
) -> None:
    with pytest.raises(AuthError) as refused:
        holds(key.headers(token, "GET", URL, broken=flaw))

    assert refused.value.reason is CAUGHT_BY[flaw]


def test_an_unknown_flaw_is_named_in_the_error(key: DPoPKey) -> None:
    with pytest.raises(ValueError, match="unknown flaw 'sideways'"):
        key.proof("GET", URL, broken="sideways")


def test_the_pytest_fixture_gives_a_fresh_key_each_time(
    isp_dpop_key: DPoPKey, key: DPoPKey
) -> None:
    assert isp_dpop_key.thumbprint != key.thumbprint
