"""``kid`` as an attack vector: wrong types, huge values, path and SQL characters.

The key id is compared opaquely (exact string equality against the published set) and is
never put into a URL, a path or a query. A token naming an unknown key costs at most the
one refetch per cooldown that lets a newly published key be found.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from fastapi_isp_jwt import JWTAuth
from fastapi_isp_jwt.testing import TestIssuer
from tests.security.hostile import ACME, assert_refused, bearer, make_app, sign
from tests.support.issuer_server import IssuerServer

HOSTILE_KIDS = [
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "/dev/zero",
    "file:///etc/passwd",
    "http://127.0.0.1:9/keys.json",
    "' OR '1'='1",
    "x'; DROP TABLE keys; --",
    '" OR ""="',
    "kid?x=1#frag",
    "\u0000",
    "kid\r\nX-Injected: yes",
    "${jndi:ldap://127.0.0.1:9/a}",
    "{{7*7}}",
    "%s%s%s%n",
    "",
    " ",
]


class _RequestLog:
    """Every URL the library's HTTP client was asked to fetch."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    async def record(self, request: httpx.Request) -> None:
        self.urls.append(str(request.url))


@pytest.fixture
def request_log() -> _RequestLog:
    return _RequestLog()


@pytest.fixture
def logged_client(server: IssuerServer, request_log: _RequestLog) -> Iterator[TestClient]:
    """The streams API whose key cache fetches through a client that logs every URL.

    Used inside ``with`` so every request runs in the one event loop the client lives in.
    """
    http_client = httpx.AsyncClient(event_hooks={"request": [request_log.record]})
    auth = JWTAuth(issuer=server.url, audience=ACME, http_client=http_client)
    with TestClient(make_app(auth), raise_server_exceptions=False) as client:
        yield client
        client.portal.call(http_client.aclose)


@pytest.mark.parametrize("kid", [1, 0, -1, 1.5, True, False, None, [], ["k"], {"k": "v"}])
def test_a_kid_that_is_not_a_string_is_refused_before_any_fetch(
    client: TestClient,
    server: IssuerServer,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    kid: object,
) -> None:
    token = sign({**header, "kid": kid}, claims, issuer.signing_key.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token key id is not a string"
    assert server.jwks_requests == 0


def test_hostile_kids_are_refused_with_one_fetch_and_only_the_jwks_url_requested(
    logged_client: TestClient,
    server: IssuerServer,
    request_log: _RequestLog,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    for kid in HOSTILE_KIDS:
        token = sign({**header, "kid": kid}, claims, issuer.signing_key.private_key)
        response = logged_client.get("/streams", headers=bearer(token))
        description = assert_refused(response, never_echoed=[kid] if kid.strip() else [])
        assert description == "The token was signed by an unknown key"
    # The first token found no key set and fetched one; every later unknown kid fell
    # within the cooldown, so none of them fetched again.
    assert server.jwks_requests == 1
    assert request_log.urls == [server.jwks_url]


@pytest.mark.parametrize("kid", HOSTILE_KIDS)
def test_a_hostile_kid_is_refused_as_an_unknown_key(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    kid: str,
) -> None:
    token = sign({**header, "kid": kid}, claims, issuer.signing_key.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token was signed by an unknown key"


def test_unknown_kids_after_the_key_set_is_loaded_cause_one_refetch_per_cooldown(
    client: TestClient,
    server: IssuerServer,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    valid = sign(header, claims, issuer.signing_key.private_key)
    assert client.get("/streams", headers=bearer(valid)).status_code == 200
    assert server.jwks_requests == 1
    for number in range(20):
        token = sign({**header, "kid": f"unknown-{number}"}, claims, issuer.signing_key.private_key)
        assert_refused(client.get("/streams", headers=bearer(token)))
    # The first unknown kid may be a key published since: one refetch, which misses and
    # holds every later one off for the cooldown.
    assert server.jwks_requests == 2


@pytest.mark.parametrize(
    "kid",
    [
        "KID",  # case
        "kid ",  # trailing space
        " kid",
        "kid\u0000",
        "k\u0131d",  # dotless i
        "\uff4b\uff49\uff44",  # fullwidth
    ],
)
def test_a_kid_resembling_the_published_one_is_not_matched(
    client: TestClient,
    server: IssuerServer,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    kid: str,
) -> None:
    published = "kid"
    jwk = {**issuer.signing_key.public_jwk(), "kid": published}
    server.serve(lambda: {"keys": [jwk]})
    token = sign({**header, "kid": kid}, claims, issuer.signing_key.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token was signed by an unknown key"


def test_a_huge_kid_within_the_size_cap_is_refused_as_an_unknown_key(
    client: TestClient,
    server: IssuerServer,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    kid = "k" * 5000
    token = sign({**header, "kid": kid}, claims, issuer.signing_key.private_key)
    assert len(token) <= 8192
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token was signed by an unknown key"
    assert server.jwks_requests == 1


def test_a_huge_kid_beyond_the_size_cap_is_refused_before_any_fetch(
    client: TestClient,
    server: IssuerServer,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    kid = "k" * 100_000
    token = sign({**header, "kid": kid}, claims, issuer.signing_key.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token is too large"
    assert server.jwks_requests == 0
