"""`Verifier`: token -> `Principal`, one call per token, with no web framework.

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
import time
from collections.abc import Callable, Mapping
from functools import partial
from time import perf_counter
from typing import Any

import httpx

from fastapi_isp_jwt.algorithms import ALGORITHMS, Algorithm, key_fits_algorithm
from fastapi_isp_jwt.audience import AudiencePolicy
from fastapi_isp_jwt.claims import ClaimRules, check_claims
from fastapi_isp_jwt.dpop import (
    DPoPMode,
    DPoPRequest,
    VerifiedProof,
    bound_thumbprint,
    check_binding,
    verify_proof,
)
from fastapi_isp_jwt.errors import (
    AuthError,
    ConfigurationError,
    InvalidDPoPProofError,
    InvalidTokenError,
)
from fastapi_isp_jwt.keycache import JWKSCache
from fastapi_isp_jwt.keycache.health import KeyCacheHealth
from fastapi_isp_jwt.keys import VerificationKey
from fastapi_isp_jwt.organizations import OrganizationPolicy
from fastapi_isp_jwt.principal import Principal, build_principal, share_common_values
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.replay import MemoryReplayStore, ReplayStore, refuse_replay
from fastapi_isp_jwt.reporting import RefusalReport
from fastapi_isp_jwt.settings import Settings
from fastapi_isp_jwt.telemetry import Telemetry, shared
from fastapi_isp_jwt.token import (
    check_header,
    compact_bytes,
    decode_header,
    decode_payload,
    decode_signature,
    split_compact,
)
from fastapi_isp_jwt.tokencache import VerifiedTokenCache
from fastapi_isp_jwt.verified import AwaitingKey, PendingVerification, VerifiedToken

__all__ = ["Verifier"]


_HEADER_MEMO_SIZE = 256
_UNBOUND: Mapping[str, Any] = {}
_sha256 = hashlib.sha256


class Verifier:
    """Verifies access tokens against the issuers, audiences and policies of ``settings``.

    ``await verify(token)`` (or ``verify_sync`` outside an event loop) returns the
    `Principal` or raises an `AuthError` whose ``reason`` says why. Keys are fetched on
    the first lookup; ``warm_up`` fetches them now. ``http_client`` / ``sync_http_client``
    are used for key downloads when given, and never closed here.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        principal_class: type[Principal] = Principal,
        http_client: httpx.AsyncClient | None = None,
        sync_http_client: httpx.Client | None = None,
        replay_store: ReplayStore | None = None,
        telemetry: Telemetry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (isinstance(principal_class, type) and issubclass(principal_class, Principal)):
            raise ConfigurationError("principal_class must be Principal or a subclass of it")
        self.settings = settings
        self.telemetry = telemetry or shared()
        self._report = RefusalReport(settings, self.telemetry)
        self.replay_store: ReplayStore = replay_store or MemoryReplayStore()
        self._dpop_policy = settings.dpop_policy
        self._dpop_required = settings.dpop == DPoPMode.REQUIRED.value
        self.key_sources: Mapping[str, JWKSCache] = {
            issuer: JWKSCache(
                url,
                issuer=issuer,
                discovery=settings.discovery,
                ttl=settings.jwks_ttl,
                cooldown=settings.jwks_cooldown,
                max_stale=settings.jwks_max_stale,
                timeout=settings.jwks_timeout,
                http_client=http_client,
                sync_http_client=sync_http_client,
                telemetry=self.telemetry,
            )
            for issuer, url in settings.jwks_urls.items()
        }
        self._max_token_bytes = settings.max_token_bytes
        self._algorithms = frozenset(settings.algorithms)
        self._typ = settings.require_typ
        self._header_facts: dict[bytes, tuple[Algorithm, str | None]] = {}
        self._principal_class = principal_class
        self._clock = clock
        self._audiences = AudiencePolicy(settings.audiences, settings.organizations)
        self._organization_claims = OrganizationPolicy(
            settings.organization_claims, settings.org_ids, settings.org_names
        )
        self._rules = ClaimRules(
            leeway=settings.leeway,
            max_age=settings.max_age,
            required_claims=frozenset(settings.required_claims),
            allowed_client_ids=(
                None
                if settings.allowed_client_ids is None
                else frozenset(settings.allowed_client_ids)
            ),
        )
        # Admission on second sight: one-shot tokens (a crowd of clients calling once
        # each) cost no entry and no eviction; a token a client keeps using pays one
        # extra verification in its lifetime.
        self._verified: VerifiedTokenCache[VerifiedToken] | None = (
            VerifiedTokenCache(settings.token_cache_size, settings.token_cache_bytes)
            if settings.token_cache_size and settings.token_cache_bytes
            else None
        )

    # -- the two front doors: all they do differently is wait for a key ---------------

    async def verify(
        self,
        token: str | bytes,
        *,
        dpop: DPoPRequest | None = None,
        certificate: str | None = None,
        grammar: Callable[[bytes], object] | None = None,
    ) -> Principal:
        """Verify ``token`` and return its principal, fetching keys if needed.

        ``dpop``: the request's DPoP proof, method and URL when the token came under the
        DPoP scheme; ``certificate``: the ``x5t#S256`` of the client's TLS certificate
        (`fastapi_isp_jwt.dpop.certificate_thumbprint`). A token bound to either is
        accepted only with it, and a proof is used once (the replay store remembers it).
        ``grammar``: the caller's own check of how the token was presented (a request's
        credentials grammar), which every compact JWS meets: it runs only on a token
        refused as malformed, and its answer comes first.
        """
        if dpop is None:
            found = self.verify_now(token, certificate=certificate, grammar=grammar)
            return await found.finish() if isinstance(found, PendingVerification) else found
        started = perf_counter() if self.telemetry.active else 0.0
        try:
            verified = self._verify_without_io(token, grammar)
            if isinstance(verified, AwaitingKey):
                key = await verified.key_source.get_key(verified.kid)
                verified = self._complete(verified, key)
            proof = self._hold_sender(verified, token, dpop, certificate)
            if proof is not None:
                ttl = self._dpop_policy.replay_ttl
                await refuse_replay(self.replay_store, proof.replay_key, ttl)
        except AuthError as error:
            self._report.refused(token, error, started)
            raise
        return self._accepted(verified, started)

    def verify_now(
        self,
        token: str | bytes,
        *,
        certificate: str | None = None,
        grammar: Callable[[bytes], object] | None = None,
    ) -> Principal | PendingVerification:
        """`verify` for a token without a DPoP proof, deciding now all that needs no I/O.

        Returns the principal or, for a token signed by a key the cache must fetch first,
        a `PendingVerification` to ``await .finish()``; raises `AuthError` subclasses. No
        coroutine is made for a token remembered or signed by a key in hand: the request
        path of nearly every token.
        """
        started = perf_counter() if self.telemetry.active else 0.0
        try:
            found = self._verify_without_io(token, grammar)
            if isinstance(found, AwaitingKey):
                return PendingVerification(
                    partial(self._after_key, found, token, certificate, started)
                )
            self._hold_sender(found, token, None, certificate)
        except AuthError as error:
            self._report.refused(token, error, started)
            raise
        return self._accepted(found, started)

    async def _after_key(
        self, pending: AwaitingKey, token: str | bytes, certificate: str | None, started: float
    ) -> Principal:
        try:
            found = self._complete(pending, await pending.key_source.get_key(pending.kid))
            self._hold_sender(found, token, None, certificate)
        except AuthError as error:
            self._report.refused(token, error, started)
            raise
        return self._accepted(found, started)

    def verify_sync(
        self,
        token: str | bytes,
        *,
        dpop: DPoPRequest | None = None,
        certificate: str | None = None,
    ) -> Principal:
        """Blocking `verify`, for code outside an event loop (workers, CLIs); same caches.

        A DPoP proof needs a replay store with ``remember_sync`` (the memory store has it).
        """
        started = perf_counter() if self.telemetry.active else 0.0
        try:
            found = self._verify_without_io(token, None)
            if isinstance(found, AwaitingKey):
                found = self._complete(found, found.key_source.get_key_sync(found.kid))
            proof = self._hold_sender(found, token, dpop, certificate)
            if proof is not None:
                remember = getattr(self.replay_store, "remember_sync", None)
                if remember is None:
                    raise ConfigurationError("DPoP in verify_sync needs a store with remember_sync")
                if not remember(proof.replay_key, self._dpop_policy.replay_ttl):
                    raise InvalidDPoPProofError(Reason.DPOP_PROOF_REPLAYED)
        except AuthError as error:
            self._report.refused(token, error, started)
            raise
        return self._accepted(found, started)

    def _accepted(self, verified: VerifiedToken, started: float) -> Principal:
        if started:
            self.telemetry.verified("accepted", None, perf_counter() - started)
        return verified.principal

    @property
    def remembered_tokens(self) -> tuple[int, int]:
        """How many verified tokens are remembered, and the bytes they are weighed at."""
        return (0, 0) if self._verified is None else self._verified.size

    def health(self) -> tuple[KeyCacheHealth, ...]:
        """The key cache's state, one entry per trusted issuer (for a readiness probe)."""
        return tuple(source.health() for source in self.key_sources.values())

    async def warm_up(self) -> None:
        """Fetch every issuer's keys now rather than on the first request."""
        self.telemetry.refresh()  # an SDK installed since this verifier was built
        for source in self.key_sources.values():
            await source.warm_up()

    async def aclose(self) -> None:
        """Stop background key refreshes of this event loop; clients passed in stay open."""
        for source in self.key_sources.values():
            await source.aclose()

    def close(self) -> None:
        """Blocking `aclose`: no connection is kept between downloads."""
        for source in self.key_sources.values():
            source.close()

    # -- the core ----------------------------------------------------------------------

    def _hold_sender(
        self,
        verified: VerifiedToken,
        token: str | bytes,
        dpop: DPoPRequest | None,
        certificate: str | None,
    ) -> VerifiedProof | None:
        """The token held against what its request presents: a DPoP proof, a certificate."""
        proof = None
        if dpop is None and verified.confirmation is None and not self._dpop_required:
            return None
        if dpop is not None:
            proof = verify_proof(
                dpop, policy=self._dpop_policy, now=self._clock(), access_token=token
            )
        elif self._dpop_required:
            raise InvalidDPoPProofError(Reason.DPOP_PROOF_MISSING)
        check_binding(verified.confirmation or _UNBOUND, proof, certificate)
        return proof

    def _verify_without_io(
        self, token: object, grammar: Callable[[bytes], object] | None
    ) -> VerifiedToken | AwaitingKey:
        # Text is checked before it is hashed; bytes (as a request carries them) are
        # looked up as they are, and checked once they must be parsed.
        raw = token if type(token) is bytes else compact_bytes(token, self._max_token_bytes)
        digest: bytes | None = None
        cache = self._verified
        if cache is not None and len(raw) <= self._max_token_bytes:
            # The path of every repeated token: kept flat, as it is most of the traffic.
            digest = _sha256(raw).digest()
            now = self._clock()
            known = cache.get(digest, now)
            if self.telemetry.active:
                self.telemetry.token_cache(hit=known is not None)
            if known is not None:
                if known.key_source.still_trusts(known.kid, known.key):
                    return known
                cache.forget(digest)
        try:
            if raw is token:  # bytes as a request carried them: size and ASCII not checked yet
                raw = compact_bytes(raw, self._max_token_bytes)
            pending = self._prepare(raw, digest)
        except InvalidTokenError:
            # Every compact JWS meets the caller's grammar: only a refused token can fail
            # it, and then that answer is the one to give.
            if grammar is not None:
                grammar(raw)
            raise
        # The key cache answers a trusted key without waiting; only a miss needs I/O.
        key = pending.key_source.cached_key(pending.kid)
        return pending if key is None else self._complete(pending, key)

    def _prepare(self, raw: bytes, digest: bytes | None) -> AwaitingKey:
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
        key_source = self.key_sources.get(issuer) if type(issuer) is str else None
        if key_source is None:
            raise InvalidTokenError(Reason.ISSUER)
        signature = decode_signature(raw[payload_end + 1 :])
        return AwaitingKey(
            digest, raw[:payload_end], payload, signature, facts[0], facts[1], key_source
        )

    def _complete(self, pending: AwaitingKey, key: VerificationKey) -> VerifiedToken:
        algorithm = pending.algorithm
        if not key_fits_algorithm(algorithm, key.kty, key.crv, key.alg):
            raise InvalidTokenError(Reason.KEY_MISMATCH)
        if not algorithm.verify(key.public_key, pending.signing_input, pending.signature):
            raise InvalidTokenError(Reason.SIGNATURE)
        payload = pending.payload
        valid_until = check_claims(payload, self._rules, self._clock())
        audience = self._audiences.match(payload.get("aud"))
        self._organization_claims.check(payload)
        if "cnf" in payload:
            bound_thumbprint(payload)  # a binding stated badly is refused, whatever the scheme
        principal = build_principal(
            self._principal_class, payload, audience.audiences, audience.organization
        )
        confirmation = {"cnf": payload["cnf"]} if "cnf" in payload else None
        entry = VerifiedToken(
            principal, pending.key_source, pending.kid, key, confirmation, valid_until
        )
        cache, digest = self._verified, pending.digest
        length = len(pending.signing_input) + len(pending.signature)
        if cache is not None and digest is not None and cache.admits(digest, length):
            try:
                remembered, weight = share_common_values(principal)
            except RecursionError:
                return entry  # nested deeper than is worth remembering
            # The remembered claims hold the same cnf, frozen: no second copy is kept.
            bound = None if confirmation is None else remembered.claims
            entry = VerifiedToken(
                remembered, pending.key_source, pending.kid, key, bound, valid_until
            )
            cache.remember(digest, entry, weight, self._clock())
        return entry
