"""Token string -> `Principal`, in the order of the flow, with no web framework.

Order (cheap and I/O-free first): size cap, shape and strict decoding, ``alg`` in the
allow-list, header rules, ``iss`` trusted, key lookup (the only step that may fetch),
key fits ``alg``, signature, time claims, audience, policy claims, principal.

A verified-token cache answers repeated tokens with no cryptography. An entry is keyed by
a SHA-256 digest of the whole token, and is served only before the token's expiry and
only while the very key that verified it is still trusted by the key cache. A token is
admitted on its second verification, so one-shot tokens never churn the cache.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from fastapi_isp_jwt.algorithms import ALGORITHMS, Algorithm, key_fits_algorithm
from fastapi_isp_jwt.audience import AudiencePolicy
from fastapi_isp_jwt.claims import ClaimRules, check_claims
from fastapi_isp_jwt.config import AuthSettings
from fastapi_isp_jwt.errors import InvalidTokenError
from fastapi_isp_jwt.keycache import JWKSCache
from fastapi_isp_jwt.keys import VerificationKey
from fastapi_isp_jwt.principal import Principal, build_principal
from fastapi_isp_jwt.token import (
    check_header,
    decode_header,
    decode_payload,
    decode_signature,
    split_compact,
)

__all__ = ["CacheMiss", "TokenVerifier"]


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    valid_until: float
    key_source: JWKSCache
    kid: str | None
    key: VerificationKey


@dataclass(frozen=True, slots=True)
class CacheMiss:
    """`TokenVerifier.recall` found nothing valid for ``token``."""

    token: bytes
    digest: bytes | None  # None when the cache is off or the token is over the size cap


# What a token still needs once every I/O-free check passed: its signing input, claims,
# signature, algorithm, key id, and the key cache of its issuer.
_Pending = tuple[bytes, dict[str, Any], bytes, Algorithm, "str | None", JWKSCache]

_HEADER_MEMO_SIZE = 256
_sha256 = hashlib.sha256


def _ascii_of(token: object, max_bytes: int) -> bytes:
    """The token's bytes; refuses what cannot be a compact JWS at all."""
    # A compact JWS is ASCII text; checking first keeps odd input (bytes, None, lone
    # surrogates) from failing inside the hash instead of being refused, and the size
    # cap keeps an oversized token from being hashed at all.
    if type(token) is not str:
        raise InvalidTokenError("The token is not a compact JWS")
    if len(token) > max_bytes:
        raise InvalidTokenError("The token is too large")
    if not token.isascii():
        raise InvalidTokenError("The token is not a compact JWS")
    return token.encode("ascii")


class TokenVerifier:
    """Verifies access tokens against one or more trusted issuers."""

    def __init__(
        self,
        settings: AuthSettings,
        key_sources: dict[str, JWKSCache],
        principal_class: type[Principal] = Principal,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max_token_bytes = settings.max_token_bytes
        self._algorithms = settings.algorithms
        self._typ = settings.require_typ
        self._header_facts: dict[bytes, tuple[Algorithm, str | None]] = {}
        self._key_sources = key_sources
        self._principal_class = principal_class
        self._clock = clock
        self._audiences = AudiencePolicy(settings.audiences, settings.organizations)
        self._rules = ClaimRules(
            leeway=settings.leeway,
            max_age=settings.max_age,
            required_claims=settings.required_claims,
            allowed_client_ids=settings.allowed_client_ids,
        )
        self._verified: LRUCache[bytes, _Verified] | None = (
            LRUCache(maxsize=settings.token_cache_size) if settings.token_cache_size else None
        )
        # Admission on second sight: a token enters the cache the second time it is
        # verified. One-shot tokens (a crowd of clients calling once each) then cost no
        # cache entry, no eviction and no long-lived garbage; a token a client keeps
        # using pays one extra verification in its lifetime.
        self._seen_once: dict[bytes, bool] = {}
        self._seen_once_limit = settings.token_cache_size
        # verify_sync may run in worker threads while verify runs on the event loop.
        self._verified_lock = threading.Lock()

    async def verify(self, token: str, *, miss: CacheMiss | None = None) -> Principal:
        """Verify ``token`` and return its principal, fetching keys if needed.

        ``miss``: what `recall` answered for this token a moment ago, so the cache is
        neither hashed for nor asked again (ignored unless it is about this very token).
        """
        raw = _ascii_of(token, self._max_token_bytes)
        digest: bytes | None
        if miss is not None and miss.token == raw:
            digest = miss.digest
        else:
            digest = _sha256(raw).digest()
            if self._verified is not None:
                known = self._recall(digest)
                if known is not None:
                    return known
        pending = self._prepare(raw)
        key_source, kid = pending[5], pending[4]
        # The key cache answers a trusted key without a coroutine; only a miss awaits.
        key = key_source.cached_key(kid) or await key_source.get_key(kid)
        return self._complete(digest, pending, key)

    def verify_sync(self, token: str) -> Principal:
        """Blocking twin of `verify`; shares its caches."""
        raw = _ascii_of(token, self._max_token_bytes)
        digest = _sha256(raw).digest()
        if self._verified is not None:
            known = self._recall(digest)
            if known is not None:
                return known
        pending = self._prepare(raw)
        key = pending[5].get_key_sync(pending[4])
        return self._complete(digest, pending, key)

    def recall(self, token: bytes) -> Principal | CacheMiss:
        """The principal of ``token`` if the verified-token cache holds it and it is still valid.

        Never fetches, never raises: a `CacheMiss` only means the token must go through
        `verify` (hand it the miss, and the digest is not computed twice).
        """
        if self._verified is None or len(token) > self._max_token_bytes:
            return CacheMiss(token, None)
        digest = _sha256(token).digest()
        known = self._recall(digest)
        return CacheMiss(token, digest) if known is None else known

    def _recall(self, digest: bytes) -> Principal | None:
        verified = self._verified
        assert verified is not None
        with self._verified_lock:
            entry = verified.get(digest)
        if entry is None:
            return None
        if (
            self._clock() < entry.valid_until
            and entry.key_source.cached_key(entry.kid) is entry.key
        ):
            return entry.principal
        with self._verified_lock:
            verified.pop(digest, None)
        return None

    def _prepare(self, raw: bytes) -> _Pending:
        header_end, payload_end = split_compact(raw, self._max_token_bytes)
        header_segment = raw[:header_end]
        # The header rules depend only on the header segment and our settings: apply
        # them once per distinct segment (an issuer sends one per signing key).
        facts = self._header_facts.get(header_segment)
        if facts is None:
            header = decode_header(header_segment)
            alg = check_header(header, self._algorithms, require_access_token_type=self._typ)
            facts = (ALGORITHMS[alg], header.get("kid"))
            if len(self._header_facts) >= _HEADER_MEMO_SIZE:
                self._header_facts.clear()
            self._header_facts[header_segment] = facts
        payload = decode_payload(raw[header_end + 1 : payload_end])
        issuer = payload.get("iss")
        key_source = self._key_sources.get(issuer) if type(issuer) is str else None
        if key_source is None:
            raise InvalidTokenError("The token issuer is not trusted")
        signature = decode_signature(raw[payload_end + 1 :])
        return raw[:payload_end], payload, signature, facts[0], facts[1], key_source

    def _complete(self, digest: bytes | None, pending: _Pending, key: VerificationKey) -> Principal:
        signing_input, payload, signature, algorithm, kid, key_source = pending
        if not key_fits_algorithm(algorithm, key.kty, key.crv, key.alg):
            raise InvalidTokenError("The token algorithm does not fit its key")
        if not algorithm.verify(key.public_key, signing_input, signature):
            raise InvalidTokenError("The token signature is invalid")
        valid_until = check_claims(payload, self._rules, self._clock())
        audience = self._audiences.match(payload.get("aud"))
        principal = build_principal(
            self._principal_class, payload, audience.audiences, audience.organization
        )
        if self._verified is not None and digest is not None and self._seen_before(digest):
            entry = _Verified(principal, valid_until, key_source, kid, key)
            with self._verified_lock:
                self._verified[digest] = entry
        return principal

    def _seen_before(self, digest: bytes) -> bool:
        """Whether this token was verified once already; remembers it if not."""
        # Plain dict operations, each atomic: no lock needed for this bookkeeping.
        seen_once = self._seen_once
        if seen_once.pop(digest, None) is not None:
            return True
        if len(seen_once) >= self._seen_once_limit:
            seen_once.clear()
        seen_once[digest] = True
        return False
