"""DPoP at the dev issuer's token endpoint (RFC 9449 §5, §8): a proof in, a key thumbprint out.

A token request that carries a ``DPoP`` header gets a token bound to the proof's key, once
the proof holds: checked by `fastapi_isp_jwt.dpop.verify_proof` against the token endpoint
URL and ``POST``, used once (its ``jti`` remembered in memory), and, when the issuer demands
nonces, carrying the current one. The nonces are stateless (`DPoPNonces`) under a secret
drawn at start-up, so they last as long as the process.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence

from fastapi_isp_jwt.dev_issuer.authority import OAuthError
from fastapi_isp_jwt.dpop import DPoPNonces, DPoPPolicy, DPoPRequest, one_proof, verify_proof
from fastapi_isp_jwt.errors import (
    InvalidDPoPProofError,
    ReplayStoreUnavailableError,
    UseDPoPNonceError,
)
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.replay import MemoryReplayStore

__all__ = ["TokenRequestProofs"]

# Enough for any local experiment; a full store answers "try again" rather than forget.
_REMEMBERED_PROOFS = 10_000


class TokenRequestProofs:
    """Checks the DPoP proofs of token requests made to ``token_url``.

    ``demand_nonce`` makes every proof carry a nonce the issuer handed out; ``now`` is the
    wall clock proofs' ``iat`` and the nonces are read against.
    """

    def __init__(
        self,
        token_url: str,
        *,
        demand_nonce: bool = False,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.token_url = token_url
        self._nonces = DPoPNonces(secrets.token_bytes(32)) if demand_nonce else None
        self._policy = DPoPPolicy(nonces=self._nonces)
        self._used = MemoryReplayStore(_REMEMBERED_PROOFS)
        self._now = now

    @property
    def algorithms(self) -> list[str]:
        """The ``alg`` values a proof may use, for the discovery document."""
        return sorted(self._policy.allowed_algorithms)

    def current_nonce(self) -> str | None:
        """The nonce to hand out now, or ``None`` when no nonce is demanded."""
        return None if self._nonces is None else self._nonces.issue(self._now())

    def thumbprint(self, headers: Sequence[str]) -> str | None:
        """The thumbprint of the proof key, or ``None`` for a request without ``DPoP`` header.

        ``headers`` are the values of the request's ``DPoP`` headers. A proof that does not
        hold is refused with ``invalid_dpop_proof``, a missing or stale nonce with
        ``use_dpop_nonce`` and the nonce to use (both 400, RFC 9449 §5, §8).
        """
        if not headers:
            return None
        try:
            proof = one_proof([value.encode("latin-1") for value in headers])
            verified = verify_proof(
                DPoPRequest(proof, "POST", self.token_url), policy=self._policy, now=self._now()
            )
            if not self._used.remember_sync(verified.replay_key, self._policy.replay_ttl):
                raise InvalidDPoPProofError(Reason.DPOP_PROOF_REPLAYED)
        except UseDPoPNonceError as demand:
            raise OAuthError(
                "use_dpop_nonce", demand.description, dpop_nonce=demand.nonce
            ) from None
        except InvalidDPoPProofError as refusal:
            raise OAuthError("invalid_dpop_proof", refusal.description) from None
        except ReplayStoreUnavailableError:
            raise OAuthError(
                "temporarily_unavailable", "too many recent DPoP proofs", status_code=503
            ) from None
        return verified.thumbprint
