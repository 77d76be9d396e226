"""Proof Key for Code Exchange (RFC 7636), S256 only: ``plain`` protects nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

__all__ = ["is_valid_challenge", "is_valid_verifier", "s256_challenge", "verifier_matches"]

_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
# base64url of a SHA-256 digest, without padding: always 43 characters.
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def s256_challenge(verifier: str) -> str:
    """The ``code_challenge`` a client sends for ``verifier``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_valid_verifier(verifier: str) -> bool:
    return _VERIFIER.fullmatch(verifier) is not None


def is_valid_challenge(challenge: str) -> bool:
    return _CHALLENGE.fullmatch(challenge) is not None


def verifier_matches(verifier: str, challenge: str) -> bool:
    """Whether ``verifier`` is the secret behind ``challenge`` (compared in constant time)."""
    if not is_valid_verifier(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)
