"""What a refusal says: fixed text only, inside RFC 6750's character set, nothing echoed.

Each hostile token below plants the same marker in the one place a given check reads
(``alg``, ``kid``, ``iss``, ``aud``...). Whatever check refuses it, neither the marker nor
the token comes back in the body or a header, and neither is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fastapi_isp_jwt.testing import TestIssuer
from tests.security.conftest import ClientFactory
from tests.security.hostile import assert_refused, b64url, bearer, compact, sign

# Quote, backslash and line breaks: text that would also break the challenge's syntax.
MARKER = 'pwn3d"\\\r\n'
TAG = "pwn3d"

Build = Callable[[TestIssuer, dict[str, Any], dict[str, Any]], str]


def _signed(header_changes: dict[str, Any], claim_changes: dict[str, Any]) -> Build:
    def build(issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]) -> str:
        return sign(
            {**header, **header_changes},
            {**claims, **claim_changes},
            issuer.signing_key.private_key,
            as_alg="RS256",
        )

    return build


def _forged_payload(issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]) -> str:
    original = sign(header, claims, issuer.signing_key.private_key)
    return compact(header, {**claims, "sub": MARKER}, b"") + original.rsplit(".", 1)[1]


def _raw_header(issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64url(MARKER.encode())}.{compact(header, claims, b'x').split('.', 1)[1]}"


HOSTILE: dict[str, Build] = {
    "alg": _signed({"alg": MARKER}, {}),
    "typ": _signed({"typ": MARKER}, {}),
    "kid": _signed({"kid": MARKER}, {}),
    "crit": _signed({"crit": [MARKER]}, {}),
    "jku": _signed({"jku": f"https://{TAG}.example/{MARKER}"}, {}),
    "iss": _signed({}, {"iss": f"https://{TAG}.example/{MARKER}"}),
    "aud": _signed({}, {"aud": f"https://{TAG}.example/{MARKER}"}),
    "exp": _signed({}, {"exp": MARKER}),
    "nbf": _signed({}, {"nbf": MARKER}),
    "sub": _signed({}, {"sub": [MARKER]}),
    "scope": _signed({}, {"scope": [MARKER]}),
    "permissions": _signed({}, {"permissions": [{MARKER: 1}]}),
    "azp": _signed({}, {"azp": [MARKER]}),
    "forged payload": _forged_payload,
    "header not JSON": _raw_header,
}


@pytest.mark.parametrize("place", list(HOSTILE))
def test_a_refusal_echoes_neither_the_planted_text_nor_the_token(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    place: str,
) -> None:
    token = HOSTILE[place](issuer, header, claims)
    response = client.get("/streams", headers=bearer(token))
    assert_refused(response, never_echoed=[TAG, token, *token.split(".")])


def test_a_foreign_client_refusal_does_not_name_the_client(
    make_client: ClientFactory, issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    client = make_client(allowed_client_ids=["trusted-spa"])
    token = sign(header, {**claims, "azp": MARKER}, issuer.signing_key.private_key)
    assert_refused(client.get("/streams", headers=bearer(token)), never_echoed=[TAG, token])


@pytest.mark.parametrize("credentials", [f"{TAG}!", f"{TAG} {TAG}", f'"{TAG}"', f"{TAG}=x"])
def test_a_malformed_request_refusal_does_not_echo_the_credentials(
    client: TestClient, credentials: str
) -> None:
    response = client.get("/streams", headers={"Authorization": f"Bearer {credentials}"})
    assert_refused(response, status=400, error="invalid_request", never_echoed=[TAG])


def test_refusals_log_neither_the_token_nor_the_planted_text(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [build(issuer, header, claims) for build in HOSTILE.values()]
    for token in tokens:
        assert client.get("/streams", headers=bearer(token)).status_code == 401
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert TAG not in logged
    assert all(part not in logged for token in tokens for part in token.split("."))
