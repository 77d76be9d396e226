"""Strict unpadded base64url (RFC 7515 §2, RFC 4648 §5), shared by tokens, keys and DPoP.

Strict means one spelling per value: only the URL-safe alphabet, no padding, no
whitespace, and zero bits in the unused tail of the last character.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["decode", "decode_alphabet_checked", "encode"]

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# With 2 (or 3) characters in the last quantum, the final character carries 4 (or 2)
# unused bits; a canonical encoder leaves them zero. Anything else is a second spelling
# of the same bytes.
_CANONICAL_LAST = {
    2: frozenset(b"AQgw"),
    3: frozenset(b"AEIMQUYcgkosw048"),
}


def decode_alphabet_checked(data: bytes) -> bytes:
    """Decode ``data`` whose characters the caller already knows to be base64url.

    Raises ``ValueError`` for an impossible length or a non-canonical final character.
    """
    remainder = len(data) % 4
    if remainder:
        allowed = _CANONICAL_LAST.get(remainder)
        if allowed is None or data[-1] not in allowed:
            raise ValueError("not canonical base64url")
        data += b"=" * (4 - remainder)
    # bytes.translate is several times faster than str.translate on the hot path.
    return binascii.a2b_base64(data.translate(_URLSAFE_TO_STANDARD))


def decode(data: bytes | str) -> bytes:
    """Decode strict unpadded base64url; raises ``ValueError`` for anything else."""
    if isinstance(data, str):
        if not data.isascii():
            raise ValueError("not base64url")
        data = data.encode("ascii")
    if not data or data.translate(None, _ALPHABET):
        raise ValueError("not base64url")
    return decode_alphabet_checked(data)


def encode(data: bytes) -> str:
    """The one unpadded base64url spelling of ``data``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
