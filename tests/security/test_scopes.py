"""Scopes are whole, case-sensitive tokens: nothing matches by prefix, substring or case.

RFC 6749 §3.3: ``scope`` is a list of space-delimited, case-sensitive strings. Auth0's
RBAC ``permissions`` array counts as granted scopes too, entry by entry.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from fastapi_isp_jwt.testing import TestIssuer
from tests.security.hostile import assert_refused, bearer, sign


def _post_with(
    client: TestClient, issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]
) -> Any:
    token = sign(header, claims, issuer.signing_key.private_key)
    return client.post("/streams", headers=bearer(token))


@pytest.mark.parametrize(
    "scope",
    [
        "streams:writer",
        "streams:write-all",
        "streams:writ",
        "streams",
        "streams:",
        "xstreams:write",
        "STREAMS:WRITE",
        "Streams:Write",
        "streams:write,streams:read",
        "streams:read,streams:write",
        "streams:write;",
        '"streams:write"',
        "streams:write\u0000",
        "streams\u200b:write",
    ],
)
def test_a_scope_that_only_resembles_the_required_one_is_not_enough(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    scope: str,
) -> None:
    response = _post_with(client, issuer, header, {**claims, "scope": scope})
    description = assert_refused(response, status=403, error="insufficient_scope")
    assert description == "The token lacks a required scope"


@pytest.mark.parametrize(
    "permissions",
    [
        ["streams:writer"],
        ["streams:read streams:write"],
        ["STREAMS:WRITE"],
        ["streams:*"],
        ["*"],
    ],
)
def test_a_permission_that_only_resembles_the_required_one_is_not_enough(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    permissions: list[str],
) -> None:
    response = _post_with(client, issuer, header, {**claims, "permissions": permissions})
    assert_refused(response, status=403, error="insufficient_scope")


def test_a_token_with_no_scope_at_all_is_not_enough(
    client: TestClient, issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    payload = {key: value for key, value in claims.items() if key != "scope"}
    assert_refused(
        _post_with(client, issuer, header, payload), status=403, error="insufficient_scope"
    )


def test_the_insufficient_scope_challenge_names_the_route_scope_not_the_tokens(
    client: TestClient, issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    response = _post_with(client, issuer, header, {**claims, "scope": "streams:writer"})
    assert response.headers["www-authenticate"].endswith(', scope="streams:write"')
    assert "streams:writer" not in response.text


@pytest.mark.parametrize(
    "scope", ["streams:write", "streams:read streams:write", "streams:write streams:read"]
)
def test_the_exact_scope_among_space_delimited_scopes_is_enough(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    scope: str,
) -> None:
    assert _post_with(client, issuer, header, {**claims, "scope": scope}).status_code == 200


@pytest.mark.parametrize(
    "scope", ["streams:write", "streams:read streams:write", "streams:write streams:read"]
)
def test_a_scope_claim_of_the_wrong_type_is_refused_as_malformed(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    scope: str,
) -> None:
    response = _post_with(client, issuer, header, {**claims, "scope": scope.split()})
    description = assert_refused(response)
    assert description == "The token scope claim is malformed"


@pytest.mark.parametrize("separator", ["\t", "\n", "\x0b", "\x1c", "\u00a0", "\u2003"])
def test_scopes_are_delimited_by_the_space_character_only(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    separator: str,
) -> None:
    response = _post_with(
        client, issuer, header, {**claims, "scope": f"streams:read{separator}streams:write"}
    )
    assert_refused(response, status=403, error="insufficient_scope")
