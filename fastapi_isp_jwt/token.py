"""Compact JWS parsing and the header rules, before any key is looked at.

Everything here is pure and cheap, so hostile input is refused before it can cost a
network round trip or a signature check. Decoding is strict: one base64url alphabet, no
padding, no whitespace, canonical trailing bits, UTF-8 JSON objects without duplicate
member names or non-finite numbers.
"""

from __future__ import annotations

import json
import json.scanner
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, cast

from fastapi_isp_jwt import base64url
from fastapi_isp_jwt.errors import InvalidTokenError
from fastapi_isp_jwt.reasons import Reason

__all__ = [
    "ACCESS_TOKEN_TYPES",
    "ParsedToken",
    "check_header",
    "compact_bytes",
    "decode_header",
    "decode_payload",
    "decode_signature",
    "parse_token",
    "split_compact",
    "split_token",
]

_COMPACT_JWS_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
# Header parameters that point at key material. RFC 8725 §3.10: never let the token
# choose or carry its own key, so a token that tries is refused outright.
_KEY_CARRYING_HEADERS = ("jku", "jwk", "x5u", "x5c")

# RFC 9068 §4 (and the Auth0 default profile, which sends "JWT").
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_ACCEPTED_TYPES = ACCESS_TOKEN_TYPES | {"jwt", "application/jwt"}


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A compact JWS split and decoded, not yet trusted."""

    header: Mapping[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


_decoder = json.JSONDecoder(object_pairs_hook=_unique_object, parse_constant=_reject_constant)
_decode_json = _decoder.decode
# The decoder's own scanner (C when available): a token's JSON almost never has the
# surrounding whitespace that `decode` strips, so try it bare first and fall back.
_scan_json = json.scanner.make_scanner(cast(Any, _decoder))  # typeshed mistypes its argument


def _b64url_decode(segment: bytes) -> bytes:
    try:
        return base64url.decode_alphabet_checked(segment)
    except ValueError:
        raise InvalidTokenError(Reason.MALFORMED_BASE64) from None


# RFC 7493 §2.1 (I-JSON): no surrogates (lone ones come only from \\u escapes, as UTF-8
# cannot encode them) and no noncharacters. A claim holding one is text the application
# cannot encode when it answers: refused here rather than as a 500 in a route.
_NOT_TEXT = re.compile(
    "[\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(1, 17))
    + "]"
)


def _holds_non_text(value: object) -> bool:
    # A loop, not recursion: JSON the parser could nest is never too deep to check.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _NOT_TEXT.search(item) is not None:
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _json_object(raw: bytes, part: str) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
        try:
            value, end = _scan_json(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            value = _decode_json(text)
    except (ValueError, RecursionError):
        # UnicodeDecodeError and JSONDecodeError are both ValueErrors.
        raise InvalidTokenError(Reason.MALFORMED_JSON, part) from None
    if not isinstance(value, dict):
        raise InvalidTokenError(Reason.MALFORMED_JSON, part)
    # Plain ASCII without escapes, nearly every token, cannot hold what I-JSON forbids.
    if not (text.isascii() and "\\u" not in text) and _holds_non_text(value):
        raise InvalidTokenError(Reason.MALFORMED_TEXT, part)
    return value


def decode_header(segment: bytes) -> dict[str, Any]:
    """The JOSE header of a header segment."""
    return _json_object(_b64url_decode(segment), "header")


def decode_payload(segment: bytes) -> dict[str, Any]:
    """The claims of a payload segment."""
    return _json_object(_b64url_decode(segment), "payload")


def decode_signature(segment: bytes) -> bytes:
    """The signature bytes of a signature segment."""
    return _b64url_decode(segment)


def compact_bytes(token: object, max_bytes: int) -> bytes:
    """The bytes of a token given as text or bytes; refuses what cannot be a compact JWS."""
    # A compact JWS is ASCII text; checking first keeps odd input (None, lone surrogates)
    # from failing inside the hash instead of being refused, and the size cap keeps an
    # oversized token from being hashed at all.
    if type(token) is bytes:
        raw = token
    elif type(token) is str:
        if len(token) > max_bytes:
            raise InvalidTokenError(Reason.TOO_LARGE)
        if not token.isascii():
            raise InvalidTokenError(Reason.MALFORMED)
        return token.encode("ascii")
    else:
        raise InvalidTokenError(Reason.MALFORMED)
    if len(raw) > max_bytes:
        raise InvalidTokenError(Reason.TOO_LARGE)
    if not raw.isascii():
        raise InvalidTokenError(Reason.MALFORMED)
    return raw


def split_compact(raw: bytes, max_bytes: int) -> tuple[int, int]:
    """Check size and compact shape of a token's bytes; return where its two dots are.

    The size cap comes first so that no work is spent on an oversized token. JWE (five
    segments), the JSON serializations, empty segments and any byte outside base64url
    are refused.
    """
    if len(raw) > max_bytes:
        raise InvalidTokenError(Reason.TOO_LARGE)
    # bytes.translate deleting the allowed bytes leaves whatever is not allowed: several
    # times faster than a regular expression over a token of a kilobyte.
    header_end = raw.find(b".")
    payload_end = raw.find(b".", header_end + 1)
    if (
        header_end < 1
        or payload_end - header_end < 2
        or len(raw) - payload_end < 2
        or raw.count(b".") != 2
        or raw.translate(None, _COMPACT_JWS_BYTES)
    ):
        raise InvalidTokenError(Reason.MALFORMED)
    return header_end, payload_end


def split_token(token: str, max_bytes: int) -> tuple[bytes, int, int]:
    """`split_compact` for text: the token's bytes and where its dots are."""
    if len(token) > max_bytes:
        raise InvalidTokenError(Reason.TOO_LARGE)
    if not token.isascii():
        raise InvalidTokenError(Reason.MALFORMED)
    raw = token.encode("ascii")
    return (raw, *split_compact(raw, max_bytes))


def parse_token(token: str, max_bytes: int) -> ParsedToken:
    """Split and decode a compact JWS, refusing anything not exactly of that form."""
    raw, header_end, payload_end = split_token(token, max_bytes)
    return ParsedToken(
        decode_header(raw[:header_end]),
        decode_payload(raw[header_end + 1 : payload_end]),
        raw[:payload_end],
        decode_signature(raw[payload_end + 1 :]),
    )


def check_header(
    header: Mapping[str, Any],
    algorithms: Collection[str],
    *,
    require_access_token_type: bool = False,
) -> str:
    """Apply the header rules and return the (allowed) algorithm name.

    The algorithm is compared case-sensitively against our allow-list: the token only
    names which of our algorithms it claims, it never chooses one we did not allow.
    """
    alg = header.get("alg")
    if type(alg) is not str or alg not in algorithms:
        raise InvalidTokenError(Reason.ALGORITHM)
    if "crit" in header:
        # We understand no extension parameters, so any "crit" list is one we must refuse
        # (RFC 7515 §4.1.11); an empty or malformed one is invalid in itself.
        raise InvalidTokenError(Reason.CRITICAL_HEADER)
    if "b64" in header:
        raise InvalidTokenError(Reason.PAYLOAD_ENCODING)
    for name in _KEY_CARRYING_HEADERS:
        if name in header:
            raise InvalidTokenError(Reason.EMBEDDED_KEY)
    # A present member counts even when null: `"kid": null` is a malformed key id, not
    # an absent one, and must not fall back to "the only key of the set".
    if "kid" in header and type(header["kid"]) is not str:
        raise InvalidTokenError(Reason.KEY_ID_TYPE)
    typ = header.get("typ")
    if "typ" not in header:
        if require_access_token_type:
            raise InvalidTokenError(Reason.NOT_ACCESS_TOKEN)
    elif type(typ) is not str:
        raise InvalidTokenError(Reason.TYPE_MALFORMED)
    else:
        # Media types compare case-insensitively (RFC 7515 §4.1.9).
        folded = typ.lower()
        accepted = ACCESS_TOKEN_TYPES if require_access_token_type else _ACCEPTED_TYPES
        if folded not in accepted:
            raise InvalidTokenError(Reason.NOT_ACCESS_TOKEN)
    return alg
