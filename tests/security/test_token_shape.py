"""Token shape: exactly one compact JWS, strictly encoded, of bounded size.

Every spelling other than the one canonical compact serialization is refused: a token
has one byte representation, so no two parsers can read it differently.
"""

from __future__ import annotations

import base64
import json
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from fastapi_isp_jwt import InvalidTokenError, JWTAuth
from fastapi_isp_jwt.testing import TestIssuer
from tests.security.conftest import ClientFactory
from tests.security.hostile import (
    ACME,
    assert_refused,
    b64url,
    bearer,
    segment,
    sign,
    signature_of,
)
from tests.support.issuer_server import IssuerServer


@pytest.fixture
def genuine(issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]) -> str:
    return sign(header, claims, issuer.signing_key.private_key)


def _signed_raw(issuer: TestIssuer, header_bytes: bytes, payload_bytes: bytes) -> str:
    """A genuine RS256 signature over arbitrary header and payload bytes."""
    data = f"{b64url(header_bytes)}.{b64url(payload_bytes)}".encode()
    return f"{data.decode()}.{b64url(signature_of(data, issuer.signing_key.private_key, 'RS256'))}"


@pytest.mark.parametrize("keep", [1, 2], ids=["one segment", "two segments"])
def test_fewer_than_three_segments_are_refused(client: TestClient, genuine: str, keep: int) -> None:
    token = ".".join(genuine.split(".")[:keep])
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token is not a compact JWS"


@pytest.mark.parametrize("extra", [".", ".AAAA", ".AAAA.AAAA"])
def test_more_than_three_segments_are_refused(client: TestClient, genuine: str, extra: str) -> None:
    description = assert_refused(client.get("/streams", headers=bearer(genuine + extra)))
    assert description == "The token is not a compact JWS"


def test_a_jwe_with_five_segments_is_refused(
    client: TestClient, server: IssuerServer, issuer: TestIssuer
) -> None:
    jwe_header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": issuer.signing_key.kid}
    parts = [segment(jwe_header), b64url(b"k" * 256), b64url(b"iv" * 6), b64url(b"ct"), "tag"]
    description = assert_refused(client.get("/streams", headers=bearer(".".join(parts))))
    assert description == "The token is not a compact JWS"
    assert server.jwks_requests == 0


def test_a_jwe_header_in_a_three_segment_token_is_refused(
    client: TestClient, issuer: TestIssuer, claims: dict[str, Any]
) -> None:
    jwe_header = {"alg": "dir", "enc": "A256GCM", "kid": issuer.signing_key.kid}
    token = f"{segment(jwe_header)}.{segment(claims)}.{b64url(b'x' * 16)}"
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token algorithm is not allowed"


def _json_serializations(genuine: str) -> dict[str, str]:
    protected, payload, signature = genuine.split(".")
    flattened = {"payload": payload, "protected": protected, "signature": signature}
    general = {"payload": payload, "signatures": [{"protected": protected, "signature": signature}]}
    return {
        "flattened": json.dumps(flattened, separators=(",", ":")),
        "general": json.dumps(general, separators=(",", ":")),
    }


@pytest.mark.parametrize("form", ["flattened", "general"])
def test_the_json_serialization_in_the_header_is_a_malformed_request(
    client: TestClient, genuine: str, form: str
) -> None:
    token = _json_serializations(genuine)[form]
    assert_refused(
        client.get("/streams", headers=bearer(token)), status=400, error="invalid_request"
    )


@pytest.mark.parametrize("form", ["flattened", "general"])
def test_the_json_serialization_is_refused_by_the_verifier_itself(
    server: IssuerServer, genuine: str, form: str
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME)
    with pytest.raises(InvalidTokenError, match="compact JWS"):
        auth.verify_sync(_json_serializations(genuine)[form])
    assert server.jwks_requests == 0


@pytest.mark.parametrize("position", [0, 1, 2], ids=["header", "payload", "signature"])
def test_an_empty_segment_is_refused(client: TestClient, genuine: str, position: int) -> None:
    parts = genuine.split(".")
    parts[position] = ""
    description = assert_refused(client.get("/streams", headers=bearer(".".join(parts))))
    assert description == "The token is not a compact JWS"


@pytest.mark.parametrize("character", ["+", "/", "~"])
@pytest.mark.parametrize("position", [0, 1, 2], ids=["header", "payload", "signature"])
def test_a_bearer_character_outside_base64url_is_refused(
    client: TestClient, genuine: str, character: str, position: int
) -> None:
    parts = genuine.split(".")
    parts[position] = parts[position][:4] + character + parts[position][5:]
    description = assert_refused(client.get("/streams", headers=bearer(".".join(parts))))
    assert description == "The token is not a compact JWS"


@pytest.mark.parametrize("character", ["*", "!", "%", "é", "\\", '"', ","])
def test_a_character_outside_the_bearer_syntax_is_a_malformed_request(
    client: TestClient, genuine: str, character: str
) -> None:
    head, payload, signature = genuine.split(".")
    token = f"{head}.{payload[:4]}{character}{payload[5:]}.{signature}"
    response = client.get("/streams", headers={"Authorization": f"Bearer {token}".encode()})
    assert_refused(response, status=400, error="invalid_request")


@pytest.mark.parametrize("whitespace", [" ", "\t", "  "])
def test_whitespace_inside_the_token_is_a_malformed_request(
    client: TestClient, genuine: str, whitespace: str
) -> None:
    head, payload, signature = genuine.split(".")
    token = f"{head}.{payload}{whitespace}.{signature}"
    assert_refused(
        client.get("/streams", headers=bearer(token)), status=400, error="invalid_request"
    )


@pytest.mark.parametrize("whitespace", [" ", "\t", "\n", "\r\n", "\u00a0", "\u2028"])
def test_whitespace_inside_the_token_is_refused_by_the_verifier_itself(
    server: IssuerServer, genuine: str, whitespace: str
) -> None:
    head, payload, signature = genuine.split(".")
    auth = JWTAuth(issuer=server.url, audience=ACME)
    for token in (f"{head}.{payload}{whitespace}.{signature}", genuine + whitespace):
        with pytest.raises(InvalidTokenError, match="compact JWS"):
            auth.verify_sync(token)


@pytest.fixture
def padded_payload_token(issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A genuinely signed token whose payload segment carries base64 "=" padding."""
    for filler in range(3):
        raw = json.dumps({**claims, "f": "x" * filler}, separators=(",", ":")).encode()
        if len(raw) % 3:
            break
    padded = base64.urlsafe_b64encode(raw).decode()
    assert padded.endswith("=")
    data = f"{segment(header)}.{padded}".encode()
    signature = b64url(signature_of(data, issuer.signing_key.private_key, "RS256"))
    return f"{data.decode()}.{signature}"


def test_padding_inside_the_token_is_a_malformed_request(
    client: TestClient, padded_payload_token: str
) -> None:
    # RFC 6750 allows "=" only at the very end of a b64token.
    response = client.get("/streams", headers=bearer(padded_payload_token))
    assert_refused(response, status=400, error="invalid_request")


def test_padding_inside_the_token_is_refused_by_the_verifier_itself(
    server: IssuerServer, padded_payload_token: str
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME)
    with pytest.raises(InvalidTokenError, match="compact JWS"):
        auth.verify_sync(padded_payload_token)


def test_a_signature_with_padding_is_refused(client: TestClient, genuine: str) -> None:
    head, payload, signature = genuine.split(".")
    # An RSA-2048 signature is 256 octets: its base64url form ends with a 1-octet quantum.
    padded = base64.urlsafe_b64encode(base64.urlsafe_b64decode(signature + "==")).decode()
    assert padded.endswith("==")
    description = assert_refused(
        client.get("/streams", headers=bearer(f"{head}.{payload}.{padded}"))
    )
    assert description == "The token is not a compact JWS"


def test_the_standard_base64_alphabet_is_refused_even_for_the_same_bytes(
    client: TestClient, genuine: str
) -> None:
    head, payload, signature = genuine.split(".")
    standard = signature.replace("-", "+").replace("_", "/")
    if standard == signature:
        pytest.skip("this signature happens to use neither '-' nor '_'")
    description = assert_refused(
        client.get("/streams", headers=bearer(f"{head}.{payload}.{standard}"))
    )
    assert description == "The token is not a compact JWS"


def test_non_canonical_trailing_bits_are_refused_even_for_the_same_bytes(
    client: TestClient, genuine: str
) -> None:
    head, payload, signature = genuine.split(".")
    # 256 octets end in a 2-character quantum whose last character carries 4 unused bits.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    respelled = signature[:-1] + alphabet[last | 0b0001]
    assert respelled != signature
    assert base64.urlsafe_b64decode(respelled + "==") == base64.urlsafe_b64decode(signature + "==")
    description = assert_refused(
        client.get("/streams", headers=bearer(f"{head}.{payload}.{respelled}"))
    )
    assert description == "The token is not valid base64url"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\xff\xfe{}", id="invalid UTF-8"),
        pytest.param(b"\xef\xbb\xbf{}", id="byte order mark"),
        pytest.param(b'{"alg":"RS256","x":"\xc0\xaf"}', id="overlong UTF-8"),
        pytest.param(b'{"alg":"RS256","x":"\xed\xa0\x80"}', id="encoded surrogate"),
        pytest.param('{"alg":"RS256"}'.encode("utf-16"), id="UTF-16"),
        pytest.param('{"alg":"RS256","x":"é"}'.encode("latin-1"), id="Latin-1"),
    ],
)
def test_a_header_that_is_not_utf8_json_is_refused(
    client: TestClient, issuer: TestIssuer, claims: dict[str, Any], raw: bytes
) -> None:
    token = _signed_raw(issuer, raw, json.dumps(claims).encode())
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token header is not a JSON object"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\xff\xfe{}", id="invalid UTF-8"),
        pytest.param(b"\xef\xbb\xbf{}", id="byte order mark"),
        pytest.param(b'{"sub":"\xc0\xaf"}', id="overlong UTF-8"),
        pytest.param('{"sub":"a"}'.encode("utf-16"), id="UTF-16"),
    ],
)
def test_a_payload_that_is_not_utf8_json_is_refused(
    client: TestClient, issuer: TestIssuer, header: dict[str, Any], raw: bytes
) -> None:
    token = _signed_raw(issuer, json.dumps(header).encode(), raw)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token payload is not a JSON object"


@pytest.mark.parametrize(
    "raw", [b"[]", b'["RS256"]', b'"RS256"', b"1", b"true", b"null", b"", b"{", b"{}}"]
)
@pytest.mark.parametrize("part", ["header", "payload"])
def test_a_header_or_payload_that_is_not_a_json_object_is_refused(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    raw: bytes,
    part: str,
) -> None:
    header_bytes = raw if part == "header" else json.dumps(header).encode()
    payload_bytes = raw if part == "payload" else json.dumps(claims).encode()
    token = _signed_raw(issuer, header_bytes, payload_bytes)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    if raw:
        assert description == f"The token {part} is not a JSON object"


def test_a_duplicated_header_member_is_refused_even_when_genuinely_signed(
    client: TestClient, issuer: TestIssuer, claims: dict[str, Any]
) -> None:
    # Parsers disagree on which duplicate wins; refusing both is the only safe reading.
    kid = issuer.signing_key.kid
    raw = f'{{"alg":"none","alg":"RS256","kid":"{kid}","typ":"JWT"}}'.encode()
    token = _signed_raw(issuer, raw, json.dumps(claims).encode())
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token header is not a JSON object"


@pytest.mark.parametrize("member", ["sub", "aud", "exp", "scope"])
def test_a_duplicated_claim_is_refused_even_when_genuinely_signed(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    member: str,
) -> None:
    body = json.dumps(claims)
    raw = (body[:-1] + f', "{member}": "second"}}').encode()
    token = _signed_raw(issuer, json.dumps(header).encode(), raw)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token payload is not a JSON object"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_number_literals_are_refused(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    literal: str,
) -> None:
    body = json.dumps({k: v for k, v in claims.items() if k != "exp"})
    raw = (body[:-1] + f', "exp": {literal}}}').encode()
    token = _signed_raw(issuer, json.dumps(header).encode(), raw)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token payload is not a JSON object"


def test_deeply_nested_json_is_refused_not_crashed(
    make_client: ClientFactory, issuer: TestIssuer, header: dict[str, Any]
) -> None:
    raw = b'{"sub":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    token = _signed_raw(issuer, json.dumps(header).encode(), raw)
    client = make_client(max_token_bytes=len(token))
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token payload is not a JSON object"


def test_json_nested_within_the_parsers_reach_and_holding_an_escape_is_not_a_server_error(
    client: TestClient, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    # Parsed fine, but an escape makes the I-JSON text check walk the whole nesting.
    opened = json.dumps(header)[:-1].encode() + b',"x":"\\u00e9","n":' + b"[" * 400
    raw = opened + b"]" * 400 + b"}"
    token = f"{b64url(raw)}.{segment(claims)}.{b64url(b'not a signature')}"
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token signature is invalid"


def _longest_token_within(issuer: TestIssuer, header: dict[str, Any], cap: int) -> str:
    """The longest genuine token of at most ``cap`` characters (a filler claim takes the slack).

    Lengths are computed without signing: an RSA-2048 signature is always 342 characters.
    """
    base = issuer.claims("auth0|mallory", ["streams:read"])
    fixed = len(segment(header)) + 2 + 342

    def length(filler: int) -> int:
        return fixed + len(segment({**base, "filler": "x" * filler}))

    filler = 0
    while length(filler + 1) <= cap:
        filler += 1 if length(filler + 64) > cap else 64
    token = sign(header, {**base, "filler": "x" * filler}, issuer.signing_key.private_key)
    assert len(token) == length(filler)
    return token


def test_a_genuine_token_at_the_size_cap_is_accepted(
    client: TestClient, issuer: TestIssuer, header: dict[str, Any]
) -> None:
    token = _longest_token_within(issuer, header, 8192)
    assert 8190 <= len(token) <= 8192
    assert client.get("/streams", headers=bearer(token)).status_code == 200


def test_a_genuine_token_over_the_size_cap_is_refused(
    client: TestClient, server: IssuerServer, issuer: TestIssuer, header: dict[str, Any]
) -> None:
    claims = issuer.claims("auth0|mallory", filler="x" * 8192)
    token = sign(header, claims, issuer.signing_key.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token is too large"
    assert server.jwks_requests == 0


def test_the_size_cap_is_checked_before_any_decoding(client: TestClient) -> None:
    # Not even base64url: a decoder would have said so, the size cap speaks first.
    token = "+" * 8193
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token is too large"


def test_the_size_cap_is_configurable(
    make_client: ClientFactory, issuer: TestIssuer, header: dict[str, Any]
) -> None:
    claims = issuer.claims("auth0|mallory", filler="x" * 8192)
    token = sign(header, claims, issuer.signing_key.private_key)
    assert len(token) > 8192
    client = make_client(max_token_bytes=16384)
    assert client.get("/streams", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("token", ["\ud800", "a.b.\udcff"])
def test_text_that_is_not_valid_unicode_is_refused_by_the_verifier(
    server: IssuerServer, token: str
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME)
    with pytest.raises(InvalidTokenError):
        auth.verify_sync(token)


@pytest.mark.parametrize("token", [None, b"a.b.c", 1])
def test_a_token_that_is_not_a_string_is_refused_by_the_verifier(
    server: IssuerServer, token: object
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME)
    with pytest.raises(InvalidTokenError):
        auth.verify_sync(cast(str, token))
