"""Opt-in policies, all off by default: RFC 9068 ``typ``, ``max_age``, required claims, clients.

Each option narrows what is accepted; none of them widens it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fastapi_isp_jwt.testing import TestIssuer
from tests.security.conftest import ClientFactory
from tests.security.hostile import assert_refused, bearer, sign

HOUR = 3600


def _token(issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]) -> str:
    return sign(header, claims, issuer.signing_key.private_key)


def _without(mapping: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if key != name}


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", None])
def test_by_default_auth0_typ_jwt_rfc9068_at_jwt_and_no_typ_are_all_accepted(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    typ: str | None,
) -> None:
    chosen = _without(header, "typ") if typ is None else {**header, "typ": typ}
    response = client.get("/streams", headers=bearer(_token(issuer, chosen, claims)))
    assert response.status_code == 200


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT"])
def test_require_typ_accepts_rfc9068_access_token_types(
    make_client: ClientFactory,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    typ: str,
) -> None:
    client = make_client(require_typ=True)
    token = _token(issuer, {**header, "typ": typ}, claims)
    assert client.get("/streams", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("typ", ["JWT", "application/jwt", "id_token+jwt", "at+jwt ", None])
def test_require_typ_refuses_tokens_not_typed_as_access_tokens(
    make_client: ClientFactory,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    typ: str | None,
) -> None:
    client = make_client(require_typ=True)
    chosen = _without(header, "typ") if typ is None else {**header, "typ": typ}
    description = assert_refused(
        client.get("/streams", headers=bearer(_token(issuer, chosen, claims)))
    )
    assert description == "The token is not an access token (typ)"


def test_max_age_refuses_a_token_issued_too_long_ago(
    make_client: ClientFactory, issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    client = make_client(max_age=300)
    now = time.time()
    old = {**claims, "iat": int(now - HOUR), "exp": int(now + HOUR)}
    description = assert_refused(
        client.get("/streams", headers=bearer(_token(issuer, header, old)))
    )
    assert description == "The token is too old"


def test_max_age_refuses_a_token_without_iat(
    make_client: ClientFactory, issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    client = make_client(max_age=300)
    token = _token(issuer, header, _without(claims, "iat"))
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token has no issue time"


def test_max_age_accepts_a_freshly_issued_token(
    make_client: ClientFactory, issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    client = make_client(max_age=300)
    assert client.get("/streams", headers=bearer(_token(issuer, header, claims))).status_code == 200


def test_without_max_age_a_token_without_iat_is_accepted(
    client: TestClient, issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    token = _token(issuer, header, _without(claims, "iat"))
    assert client.get("/streams", headers=bearer(token)).status_code == 200


def test_required_claims_refuse_a_token_lacking_one(
    make_client: ClientFactory, issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    client = make_client(required_claims=["org_id", "azp"])
    token = _token(issuer, header, claims)  # has azp, lacks org_id
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token lacks a required claim"


def test_required_claims_accept_a_token_holding_them_all(
    make_client: ClientFactory, issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    client = make_client(required_claims=["org_id", "azp"])
    token = _token(issuer, header, {**claims, "org_id": "org_123"})
    assert client.get("/streams", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(
    "client_claims",
    [
        pytest.param({"azp": "stranger"}, id="foreign azp"),
        pytest.param({"client_id": "stranger"}, id="foreign client_id"),
        pytest.param({}, id="neither azp nor client_id"),
        pytest.param({"azp": "stranger", "client_id": "trusted-spa"}, id="azp wins over client_id"),
        pytest.param({"azp": "Trusted-SPA"}, id="case differs"),
    ],
)
def test_the_client_allow_list_refuses_other_clients(
    make_client: ClientFactory,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    client_claims: dict[str, str],
) -> None:
    client = make_client(allowed_client_ids=["trusted-spa"])
    payload = {**_without(claims, "azp"), **client_claims}
    description = assert_refused(
        client.get("/streams", headers=bearer(_token(issuer, header, payload)))
    )
    assert description == "The token was issued to a client that is not allowed"


@pytest.mark.parametrize("member", ["azp", "client_id"])
def test_the_client_allow_list_accepts_an_allowed_client_by_azp_or_client_id(
    make_client: ClientFactory,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    member: str,
) -> None:
    client = make_client(allowed_client_ids=["trusted-spa"])
    payload = {**_without(claims, "azp"), member: "trusted-spa"}
    assert (
        client.get("/streams", headers=bearer(_token(issuer, header, payload))).status_code == 200
    )
