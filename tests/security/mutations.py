"""Hypothesis strategies that damage a compact JWS in the ways attackers and proxies do.

Two kinds: mutations that (usually) change what the token decodes to, and respellings
that keep the decoded bytes but change the text. A strict verifier refuses both.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence

from hypothesis import strategies as st

BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# What a damaged token may contain: its own alphabet, the separators and padding of other
# encodings, whitespace and a few bytes beyond ASCII.
NOISE = BASE64URL + '.=+/ \t\n~!"\\%é\u00a0\u2028\x00'


def decoded_parts(token: str) -> tuple[bytes, ...] | None:
    """What each segment decodes to under a lenient reading (padding and +/ allowed).

    Two tokens that give the same parts carry the same header, payload and signature,
    however differently spelled; ``None`` when the text is not three decodable segments.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    decoded: list[bytes] = []
    for part in parts:
        text = part.rstrip("=").replace("+", "-").replace("/", "_")
        if not text or len(text) % 4 == 1 or text.strip(BASE64URL):
            return None
        try:
            decoded.append(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (binascii.Error, ValueError):
            return None
    return tuple(decoded)


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@st.composite
def character_substitutions(draw: st.DrawFn, token: str) -> str:
    index = draw(st.integers(0, len(token) - 1))
    return token[:index] + draw(st.sampled_from(NOISE)) + token[index + 1 :]


@st.composite
def insertions_and_deletions(draw: st.DrawFn, token: str) -> str:
    index = draw(st.integers(0, len(token)))
    if draw(st.booleans()):
        return token[:index] + draw(st.text(NOISE, min_size=1, max_size=4)) + token[index:]
    return token[:index] + token[index + draw(st.integers(1, 8)) :]


@st.composite
def truncations(draw: st.DrawFn, token: str) -> str:
    cut = draw(st.integers(0, len(token) - 1))
    return token[:cut] if draw(st.booleans()) else token[len(token) - cut :]


@st.composite
def bit_flips(draw: st.DrawFn, token: str) -> str:
    """Flip bits in the decoded bytes of one segment, then encode it canonically again."""
    parts = token.split(".")
    which = draw(st.integers(0, 2))
    raw = bytearray(base64.urlsafe_b64decode(parts[which] + "=" * (-len(parts[which]) % 4)))
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(raw) - 1))
        raw[index] ^= 1 << draw(st.integers(0, 7))
    parts[which] = _encode(bytes(raw))
    return ".".join(parts)


@st.composite
def segment_rearrangements(draw: st.DrawFn, token: str) -> str:
    """Swap, repeat or drop segments (a signature as header, a header twice...)."""
    parts = token.split(".")
    order = draw(st.lists(st.integers(0, len(parts) - 1), min_size=1, max_size=5))
    return ".".join(parts[index] for index in order)


@st.composite
def splices(draw: st.DrawFn, token: str, others: Sequence[str]) -> str:
    """One segment taken from another genuine token (a signature moved to other claims)."""
    parts = token.split(".")
    donor = draw(st.sampled_from(others)).split(".")
    which = draw(st.integers(0, 2))
    parts[which] = donor[which]
    return ".".join(parts)


@st.composite
def json_reserializations(draw: st.DrawFn, token: str) -> str:
    """The same header or payload as JSON, written differently (spacing, order, escapes)."""
    parts = token.split(".")
    which = draw(st.integers(0, 1))
    value = json.loads(base64.urlsafe_b64decode(parts[which] + "=" * (-len(parts[which]) % 4)))
    text = json.dumps(
        value,
        indent=draw(st.sampled_from([None, 0, 1])),
        sort_keys=draw(st.booleans()),
        ensure_ascii=draw(st.booleans()),
        separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")])),
    )
    parts[which] = _encode(text.encode())
    return ".".join(parts)


def changing_mutations(token: str, others: Sequence[str]) -> st.SearchStrategy[str]:
    """Every kind of damage; most change the decoded bytes, some happen not to."""
    return st.one_of(
        character_substitutions(token),
        insertions_and_deletions(token),
        truncations(token),
        bit_flips(token),
        segment_rearrangements(token),
        splices(token, others),
        json_reserializations(token),
        respellings(token),
    )


@st.composite
def respellings(draw: st.DrawFn, token: str) -> str:
    """The same three byte strings, spelled another way: padding, +/ alphabet, stray bits."""
    parts = token.split(".")
    which = draw(st.integers(0, 2))
    part = parts[which]
    how = draw(st.sampled_from(["padding", "standard alphabet", "trailing bits", "all"]))
    if how in ("standard alphabet", "all"):
        part = part.replace("-", "+").replace("_", "/")
    if how in ("trailing bits", "all") and len(part) % 4 in (2, 3):
        unused = 4 if len(part) % 4 == 2 else 2
        last = BASE64URL.index(part[-1].replace("+", "-").replace("/", "_"))
        stray = draw(st.integers(1, (1 << unused) - 1))
        part = part[:-1] + BASE64URL[last | stray]
    if how in ("padding", "all"):
        part += "=" * (-len(part) % 4 or draw(st.sampled_from([0, 4])))
    parts[which] = part
    return ".".join(parts)
