"""Properties of verification under random damage to genuine tokens (hypothesis).

A genuine token, damaged in any way (flipped bits, truncation, swapped or spliced
segments, JSON written differently, the same bytes spelled differently), is refused
unless it still decodes to exactly the bytes that were signed; and the refusal is always
an ``invalid_token`` (or, over HTTP, a 400 for a malformed header), never anything else.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastapi_isp_jwt import InvalidTokenError, JWTAuth
from fastapi_isp_jwt.testing import TestIssuer
from tests.security.hostile import ACME, RFC6750_DESCRIPTION, make_app
from tests.security.mutations import changing_mutations, decoded_parts, respellings
from tests.support.issuer_server import IssuerServer

# Hypothesis runs many examples inside one test call; these fixtures are shared by all of
# them, and nothing an example does changes them.
SHARED = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Genuine:
    """A trusted issuer served over HTTP on 127.0.0.1, a verifier, and tokens it accepts."""

    def __init__(self, server: IssuerServer) -> None:
        self.issuer = TestIssuer(issuer=server.url)
        server.serve(self.issuer.jwks)
        self.auth = JWTAuth(issuer=server.url, audience=ACME)
        self.tokens = [
            self.issuer.mint("auth0|alice", ["streams:read"]),
            self.issuer.mint("auth0|bob", ["streams:read", "streams:write"]),
            self.issuer.mint_machine(["streams:write"]),
        ]
        for token in self.tokens:
            self.auth.verify_sync(token)  # load the keys; every token here is accepted

    @property
    def token(self) -> str:
        return self.tokens[0]


@pytest.fixture(scope="module")
def genuine() -> Iterator[Genuine]:
    with IssuerServer() as server:
        yield Genuine(server)


@pytest.fixture(scope="module")
def app_client(genuine: Genuine) -> Iterator[TestClient]:
    with TestClient(make_app(genuine.auth), raise_server_exceptions=False) as client:
        yield client


def _accepted(auth: JWTAuth, token: str) -> bool:
    try:
        auth.verify_sync(token)
    except InvalidTokenError:
        return False
    return True


def _mutations(genuine: Genuine) -> st.SearchStrategy[str]:
    return changing_mutations(genuine.token, genuine.tokens[1:])


@settings(SHARED, max_examples=400)
@given(data=st.data())
def test_a_damaged_token_is_accepted_only_if_it_decodes_to_the_signed_bytes(
    genuine: Genuine, data: st.DataObject
) -> None:
    damaged = data.draw(_mutations(genuine))
    if _accepted(genuine.auth, damaged):
        assert decoded_parts(damaged) == decoded_parts(genuine.token)


@settings(SHARED, max_examples=200)
@given(data=st.data())
def test_the_same_bytes_spelled_another_way_are_refused(
    genuine: Genuine, data: st.DataObject
) -> None:
    respelled = data.draw(respellings(genuine.token))
    assert decoded_parts(respelled) == decoded_parts(genuine.token)
    if respelled != genuine.token:
        assert not _accepted(genuine.auth, respelled)


@settings(SHARED, max_examples=400)
@given(data=st.data())
def test_a_damaged_token_is_refused_with_invalid_token_and_nothing_else(
    genuine: Genuine, data: st.DataObject
) -> None:
    damaged = data.draw(_mutations(genuine))
    refusal: InvalidTokenError | None = None
    try:
        genuine.auth.verify_sync(damaged)
    except InvalidTokenError as error:
        refusal = error
    if refusal is not None:
        assert refusal.status_code == 401
        assert RFC6750_DESCRIPTION.fullmatch(refusal.description)


def _ascii_header(token: str) -> bool:
    # httpx refuses to send other header values, so those never reach the app this way.
    return token.isascii() and "\n" not in token and "\r" not in token and "\x00" not in token


@settings(SHARED, max_examples=150)
@given(data=st.data())
def test_a_damaged_token_sent_to_the_app_gets_401_or_400_never_2xx_or_5xx(
    genuine: Genuine, app_client: TestClient, data: st.DataObject
) -> None:
    damaged = data.draw(_mutations(genuine).filter(_ascii_header))
    response = app_client.get("/streams", headers={"Authorization": f"Bearer {damaged}"})
    # RFC 6750 §2.1 separates scheme and token with 1*SP, and HTTP trims whitespace
    # around a field value: extra spaces there still carry the genuine token.
    if damaged.lstrip(" ").rstrip(" \t") == genuine.token:
        assert response.status_code == 200
        return
    assert response.status_code in (400, 401), response.text
    assert RFC6750_DESCRIPTION.fullmatch(response.json()["detail"])
    if len(damaged) > 40:
        assert damaged not in response.text
