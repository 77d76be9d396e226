"""Compact JWS parsing and header rules: strict, and before any key is involved."""

from __future__ import annotations

import base64
import json

import pytest

from fastapi_isp_jwt.errors import InvalidTokenError
from fastapi_isp_jwt.token import check_header, parse_token

MAX = 8192


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: object, payload: object, signature: bytes = b"sig") -> str:
    return ".".join(
        (b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature))
    )


GOOD = compact({"alg": "RS256", "kid": "k1"}, {"sub": "a"})


def test_a_well_formed_token_is_split_into_header_payload_and_signature() -> None:
    parsed = parse_token(GOOD, MAX)
    assert parsed.header == {"alg": "RS256", "kid": "k1"}
    assert parsed.payload == {"sub": "a"}
    assert parsed.signature == b"sig"
    assert parsed.signing_input == GOOD.rsplit(".", 1)[0].encode()


def test_a_token_over_the_size_cap_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidTokenError, match="too large"):
        parse_token("!" * (MAX + 1), MAX)


@pytest.mark.parametrize(
    "token",
    [
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",
        "a..c",
        ".b.c",
        "a.b.",
        "",
        '{"payload":"x","signatures":[]}',
    ],
)
def test_anything_but_three_non_empty_segments_is_refused(token: str) -> None:
    with pytest.raises(InvalidTokenError, match="compact JWS"):
        parse_token(token, MAX)


@pytest.mark.parametrize("bad", ["=", "+", "/", " ", "\n", "*", "é"])
def test_characters_outside_base64url_are_refused(bad: str) -> None:
    head, payload, signature = GOOD.split(".")
    with pytest.raises(InvalidTokenError):
        parse_token(f"{head}.{payload}{bad}.{signature}", MAX)


def test_padding_is_refused() -> None:
    head, payload, _ = GOOD.split(".")
    padded = base64.urlsafe_b64encode(b"sig!").decode()
    assert padded.endswith("=")
    with pytest.raises(InvalidTokenError):
        parse_token(f"{head}.{payload}.{padded}", MAX)


def test_a_non_canonical_final_character_is_refused() -> None:
    head, payload, _ = GOOD.split(".")
    # "QQ" is b"A" with zero trailing bits; "QR" spells the same byte non-canonically.
    assert parse_token(f"{head}.{payload}.QQ", MAX).signature == b"A"
    with pytest.raises(InvalidTokenError, match="base64url"):
        parse_token(f"{head}.{payload}.QR", MAX)


def test_a_segment_of_impossible_length_is_refused() -> None:
    head, payload, _ = GOOD.split(".")
    with pytest.raises(InvalidTokenError, match="base64url"):
        parse_token(f"{head}.{payload}.AAAAA", MAX)


@pytest.mark.parametrize(
    "raw",
    [b"[1, 2]", b'"text"', b"42", b"null", b"not json", b"\xff\xfe{}", b'{"a": 1, "a": 2}'],
)
def test_a_header_that_is_not_a_unique_json_object_is_refused(raw: bytes) -> None:
    token = f"{b64(raw)}.{b64(b'{}')}.{b64(b'sig')}"
    with pytest.raises(InvalidTokenError, match="header"):
        parse_token(token, MAX)


def test_a_payload_in_utf16_is_refused() -> None:
    token = f"{b64(b'{}')}.{b64('{}'.encode('utf-16'))}.{b64(b'sig')}"
    with pytest.raises(InvalidTokenError, match="payload"):
        parse_token(token, MAX)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_the_payload_are_refused(constant: str) -> None:
    payload = b64(b'{"exp": ' + constant.encode() + b"}")
    token = f"{b64(b'{}')}.{payload}.{b64(b'sig')}"
    with pytest.raises(InvalidTokenError, match="payload"):
        parse_token(token, MAX)


def test_deeply_nested_json_is_refused_not_crashed() -> None:
    payload = b64(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    token = f"{b64(b'{}')}.{payload}.{b64(b's')}"
    with pytest.raises(InvalidTokenError):
        parse_token(token, len(token))


ALLOWED = frozenset({"RS256"})


def test_an_allowed_algorithm_is_returned() -> None:
    assert check_header({"alg": "RS256"}, ALLOWED) == "RS256"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS256", "rs256", "RS512", "", None, 7])
def test_an_algorithm_outside_the_allow_list_is_refused(alg: object) -> None:
    with pytest.raises(InvalidTokenError, match="algorithm"):
        check_header({"alg": alg}, ALLOWED)


def test_a_missing_algorithm_is_refused() -> None:
    with pytest.raises(InvalidTokenError, match="algorithm"):
        check_header({}, ALLOWED)


@pytest.mark.parametrize("crit", [["exp"], [], "exp", None])
def test_any_crit_header_is_refused(crit: object) -> None:
    with pytest.raises(InvalidTokenError, match="critical"):
        check_header({"alg": "RS256", "crit": crit}, ALLOWED)


def test_unencoded_payload_option_is_refused() -> None:
    with pytest.raises(InvalidTokenError, match="encoding"):
        check_header({"alg": "RS256", "b64": False}, ALLOWED)


@pytest.mark.parametrize("name", ["jku", "jwk", "x5u", "x5c"])
def test_headers_that_carry_or_point_at_a_key_are_refused(name: str) -> None:
    with pytest.raises(InvalidTokenError, match="own key"):
        check_header({"alg": "RS256", name: "https://attacker.example/keys"}, ALLOWED)


@pytest.mark.parametrize("kid", [1, ["k"], {"k": 1}, True])
def test_a_key_id_that_is_not_a_string_is_refused(kid: object) -> None:
    with pytest.raises(InvalidTokenError, match="key id"):
        check_header({"alg": "RS256", "kid": kid}, ALLOWED)


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt", "application/at+JWT", "application/jwt"])
def test_jwt_and_access_token_types_are_accepted_by_default(typ: str) -> None:
    assert check_header({"alg": "RS256", "typ": typ}, ALLOWED) == "RS256"


@pytest.mark.parametrize("typ", ["dpop+jwt", "logout+jwt", "JWS", 1])
def test_other_token_types_are_refused(typ: object) -> None:
    with pytest.raises(InvalidTokenError, match="typ"):
        check_header({"alg": "RS256", "typ": typ}, ALLOWED)


@pytest.mark.parametrize("typ", ["JWT", None])
def test_require_typ_refuses_tokens_not_typed_as_access_tokens(typ: str | None) -> None:
    header = {"alg": "RS256"} if typ is None else {"alg": "RS256", "typ": typ}
    with pytest.raises(InvalidTokenError, match="typ"):
        check_header(header, ALLOWED, require_access_token_type=True)


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT"])
def test_require_typ_accepts_rfc9068_types(typ: str) -> None:
    header = {"alg": "RS256", "typ": typ}
    assert check_header(header, ALLOWED, require_access_token_type=True) == "RS256"


@pytest.mark.parametrize("text", [b' {"sub": "a"}', b'{"sub": "a"} ', b'\n{"sub": "a"}\t'])
def test_json_with_surrounding_whitespace_is_still_an_object(text: bytes) -> None:
    token = f"{b64(b'{}')}.{b64(text)}.{b64(b'sig')}"
    assert parse_token(token, MAX).payload == {"sub": "a"}


@pytest.mark.parametrize("text", [b'{"sub": "a"} x', b'{"sub": "a"}{}', b"{"])
def test_json_followed_or_cut_by_anything_else_is_refused(text: bytes) -> None:
    token = f"{b64(b'{}')}.{b64(text)}.{b64(b'sig')}"
    with pytest.raises(InvalidTokenError, match="payload"):
        parse_token(token, MAX)
