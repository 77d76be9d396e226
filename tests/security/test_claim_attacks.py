"""Claims of a genuinely signed token that must still be refused.

Every token here carries a valid signature from the trusted issuer's key: the point is
that a signature is not enough. Times are JSON numbers compared with a 30 s leeway; the
issuer must equal a trusted one exactly; the audience must name this service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from fastapi_isp_jwt import JWTAuth, Principal
from fastapi_isp_jwt.testing import TestIssuer
from tests.security.hostile import ACME, assert_refused, bearer, sign
from tests.support.issuer_server import IssuerServer

HOUR = 3600


Send = Callable[[dict[str, Any]], httpx.Response]


@pytest.fixture
def send(client: TestClient, issuer: TestIssuer, header: dict[str, Any]) -> Send:
    """Sign ``claims`` with the trusted key and send them; return the response."""

    def signed_request(claims: dict[str, Any]) -> httpx.Response:
        token = sign(header, claims, issuer.signing_key.private_key)
        response: httpx.Response = client.get("/streams", headers=bearer(token))
        return response

    return signed_request


def _without(claims: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in claims.items() if key != name}


def test_a_token_without_exp_is_refused(send: Send, claims: dict[str, Any]) -> None:
    description = assert_refused(send(_without(claims, "exp")))
    assert description == "The token has no expiry"


@pytest.mark.parametrize(
    "exp",
    [True, False, None, "2000000000", "1e10", "", [2000000000], {"$date": 2000000000}],
)
def test_an_exp_that_is_not_a_json_number_is_refused(
    send: Send, claims: dict[str, Any], exp: object
) -> None:
    description = assert_refused(send({**claims, "exp": exp}))
    assert description == "The token exp claim is not a number"


def test_an_exp_past_the_leeway_is_refused(send: Send, claims: dict[str, Any]) -> None:
    now = time.time()
    description = assert_refused(
        send({**claims, "iat": int(now - 2 * HOUR), "exp": int(now - HOUR)})
    )
    assert description == "The token has expired"


def test_an_exp_a_little_in_the_past_is_within_the_leeway(
    send: Send, claims: dict[str, Any]
) -> None:
    assert send({**claims, "exp": int(time.time() - 5)}).status_code == 200


@pytest.mark.parametrize(
    "exp",
    [
        pytest.param(253402300800, id="year 10000"),
        pytest.param(1e300, id="1e300"),
        pytest.param(10**400, id="10**400"),
        pytest.param(2**63, id="2**63"),
    ],
)
def test_an_exp_beyond_any_representable_date_is_refused(
    send: Send, claims: dict[str, Any], exp: object
) -> None:
    description = assert_refused(send({**claims, "exp": exp}))
    assert description == "The token exp claim is out of range"


@pytest.mark.parametrize(
    "iat",
    [
        pytest.param(-1e300, id="-1e300"),
        pytest.param(-(10**400), id="-10**400"),
        pytest.param(10**400, id="10**400"),
        pytest.param(-1, id="before 1970"),
    ],
)
def test_an_iat_beyond_any_representable_date_is_refused(
    send: Send, claims: dict[str, Any], iat: object
) -> None:
    description = assert_refused(send({**claims, "iat": iat}))
    assert description == "The token iat claim is out of range"


def test_an_nbf_in_the_future_beyond_the_leeway_is_refused(
    send: Send, claims: dict[str, Any]
) -> None:
    description = assert_refused(send({**claims, "nbf": int(time.time() + HOUR)}))
    assert description == "The token is not valid yet"


def test_an_iat_in_the_future_beyond_the_leeway_is_refused(
    send: Send, claims: dict[str, Any]
) -> None:
    now = time.time()
    description = assert_refused(
        send({**claims, "iat": int(now + HOUR), "exp": int(now + 2 * HOUR)})
    )
    assert description == "The token was issued in the future"


@pytest.mark.parametrize("name", ["nbf", "iat"])
@pytest.mark.parametrize("value", [True, None, "0", "1700000000", [0], {}])
def test_an_nbf_or_iat_that_is_not_a_json_number_is_refused(
    send: Send, claims: dict[str, Any], name: str, value: object
) -> None:
    description = assert_refused(send({**claims, name: value}))
    assert description == f"The token {name} claim is not a number"


def _issuer_variants(trusted: str) -> dict[str, object]:
    return {
        "upper case": trusted.upper(),
        "scheme in upper case": "HTTP" + trusted[4:],
        "no trailing slash": trusted.rstrip("/"),
        "double trailing slash": trusted + "/",
        "prefix": "https://evil.example/" + trusted,
        "suffix": trusted + "evil",
        "extra path": trusted + "api/",
        "query": trusted + "?",
        "fragment": trusted + "#",
        "surrounding space": f" {trusted} ",
        "percent-encoded slash": trusted.rstrip("/") + "%2F",
        "localhost for 127.0.0.1": trusted.replace("127.0.0.1", "localhost"),
        "array": [trusted],
        "object": {"iss": trusted},
        "null": None,
        "empty": "",
    }


@pytest.mark.parametrize(
    "variant",
    [
        "upper case",
        "scheme in upper case",
        "no trailing slash",
        "double trailing slash",
        "prefix",
        "suffix",
        "extra path",
        "query",
        "fragment",
        "surrounding space",
        "percent-encoded slash",
        "localhost for 127.0.0.1",
        "array",
        "object",
        "null",
        "empty",
    ],
)
def test_an_issuer_that_differs_from_the_trusted_one_at_all_is_refused_without_fetching(
    send: Send, server: IssuerServer, claims: dict[str, Any], variant: str
) -> None:
    iss = _issuer_variants(server.url)[variant]
    assert iss != server.url
    description = assert_refused(send({**claims, "iss": iss}))
    assert description == "The token issuer is not trusted"
    assert server.jwks_requests == 0


def test_a_token_without_an_issuer_is_refused_without_fetching(
    send: Send, server: IssuerServer, claims: dict[str, Any]
) -> None:
    description = assert_refused(send(_without(claims, "iss")))
    assert description == "The token issuer is not trusted"
    assert server.jwks_requests == 0


def test_a_token_without_an_audience_is_refused(send: Send, claims: dict[str, Any]) -> None:
    description = assert_refused(send(_without(claims, "aud")))
    assert description == "The token audience is missing or malformed"


@pytest.mark.parametrize(
    "aud",
    [
        pytest.param(None, id="null"),
        pytest.param([], id="empty array"),
        pytest.param(1, id="number"),
        pytest.param(True, id="boolean"),
        pytest.param({"aud": "https://platform.dtc.istreamplanet.net/acme"}, id="object"),
        pytest.param(["https://platform.dtc.istreamplanet.net/acme", 1], id="array with a number"),
        pytest.param(["https://platform.dtc.istreamplanet.net/acme", None], id="array with a null"),
        pytest.param([["https://platform.dtc.istreamplanet.net/acme"]], id="nested array"),
    ],
)
def test_an_audience_of_the_wrong_type_is_refused(
    send: Send, claims: dict[str, Any], aud: object
) -> None:
    description = assert_refused(send({**claims, "aud": aud}))
    assert description == "The token audience is missing or malformed"


@pytest.mark.parametrize(
    "aud",
    [
        pytest.param("", id="empty string"),
        pytest.param([""], id="array of an empty string"),
        pytest.param("https://platform.dtc.istreamplanet.net/globex", id="another organization"),
        pytest.param("https://platform.dtc.istreamplanet.net/ACME", id="organization case"),
        pytest.param("https://platform.dtc.istreamplanet.net/acme/", id="trailing slash"),
        pytest.param("https://platform.dtc.istreamplanet.net/acmex", id="longer organization"),
        pytest.param("https://platform.dtc.istreamplanet.net/acme/x", id="extra segment"),
        pytest.param("https://platform.dtc.istreamplanet.net/", id="no organization"),
        pytest.param("http://platform.dtc.istreamplanet.net/acme", id="http scheme"),
        pytest.param("https://platform.dtc.istreamplanet.net.evil/acme", id="lookalike host"),
        pytest.param("https://istreamplanet.auth0.com/userinfo", id="userinfo only"),
        pytest.param(["https://platform.dtc.istreamplanet.net/globex"], id="foreign array"),
    ],
)
def test_an_audience_that_does_not_name_this_service_is_refused(
    send: Send, claims: dict[str, Any], aud: object
) -> None:
    description = assert_refused(send({**claims, "aud": aud}))
    assert description == "The token is not intended for this audience"


def test_an_id_token_whose_audience_is_a_client_id_is_refused(
    send: Send, server: IssuerServer, claims: dict[str, Any]
) -> None:
    now = int(time.time())
    id_token = {
        "iss": server.url,
        "sub": "auth0|mallory",
        "aud": "Xy7ClientIdOfTheSpa",
        "iat": now,
        "exp": now + HOUR,
        "nonce": "n-0S6_WzA2Mj",
        "name": "Mallory",
        "email": "mallory@example.com",
    }
    description = assert_refused(send(id_token))
    assert description == "The token is not intended for this audience"


@pytest.mark.parametrize("sub", [None, 1, ["auth0|a"], {"id": "a"}, True])
def test_a_subject_that_is_not_a_string_is_refused(
    send: Send, claims: dict[str, Any], sub: object
) -> None:
    description = assert_refused(send({**claims, "sub": sub}))
    assert description == "The token has no subject"


def test_a_token_without_a_subject_is_refused(send: Send, claims: dict[str, Any]) -> None:
    description = assert_refused(send(_without(claims, "sub")))
    assert description == "The token has no subject"


# -- text the application could not encode (RFC 7493 §2.1, I-JSON) -----------------------------


@pytest.mark.parametrize(
    "text",
    ["svc\ud800", "\udfff", "a\ud83d", "x\ufffe", "\uffff", "\ufdd0", "\U0001ffff"],
    ids=["lone-high", "lone-low", "half-pair", "fffe", "ffff", "fdd0", "plane-1-ffff"],
)
@pytest.mark.parametrize("claim", ["sub", "azp", "scope", "org_name"])
def test_a_signed_claim_holding_text_that_is_not_unicode_is_refused(
    server: IssuerServer,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    claim: str,
    text: str,
) -> None:
    app = FastAPI()
    auth = JWTAuth(issuer=server.url, audience=ACME)

    @app.get("/claims")
    async def every_string_claim(principal: Principal = Depends(auth)) -> dict[str, Any]:
        return {k: v for k, v in principal.claims.items() if isinstance(v, str)}

    token = sign(header, {**claims, claim: text}, issuer.signing_key.private_key)
    response = TestClient(app, raise_server_exceptions=False).get("/claims", headers=bearer(token))
    assert response.status_code == 401
    assert "is not valid Unicode" in response.headers["www-authenticate"]


def test_a_signed_claim_with_an_escaped_surrogate_pair_is_one_character_and_accepted(
    claims: dict[str, Any], send: Send
) -> None:
    assert send({**claims, "sub": "auth0|\ud83d\ude00"}).status_code == 200
