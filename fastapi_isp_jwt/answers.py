"""How a refusal is answered: the status, the ``{"detail": ...}`` body and the challenge.

One `AuthError` becomes one answer, derived from its reason: RFC 6750 ``Bearer``
challenges, RFC 9449 ``DPoP`` challenges (with ``algs``, and a fresh ``DPoP-Nonce`` when
the proof lacked one), ``Retry-After`` when the issuer or a shared store cannot be
reached, and WebSocket close codes before ``accept``. Nothing from the token or the proof
is ever echoed: descriptions are the library's own text.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from fastapi import HTTPException, WebSocketException

from fastapi_isp_jwt.errors import (
    AuthError,
    InsufficientScopeError,
    InvalidDPoPProofError,
    IssuerUnavailableError,
    UseDPoPNonceError,
)
from fastapi_isp_jwt.grammar import is_quotable, is_scope_token

__all__ = ["Challenges", "http_exception", "websocket_exception"]

# WebSocket close codes (RFC 6455 §7.4.1): 1008 policy violation, 1013 try again later.
WS_POLICY_VIOLATION = 1008
WS_TRY_AGAIN_LATER = 1013


@dataclass(frozen=True)
class Challenges:
    """What a service challenges with: its realm, and the schemes it accepts."""

    realm: str
    bearer: bool = True
    dpop_algorithms: Collection[str] = ()  # empty: the DPoP scheme is not accepted

    def www_authenticate(
        self, error: AuthError, *, dpop: bool = False, resource_metadata: str | None = None
    ) -> str:
        """The challenge for ``error``; ``dpop``: the refused request used the DPoP scheme."""
        dpop = dpop or isinstance(error, (InvalidDPoPProofError, UseDPoPNonceError))
        details = []
        if resource_metadata is not None and is_quotable(resource_metadata):
            # Built from the request's Host header: only a URL that can be quoted as it is.
            details.append(f'resource_metadata="{resource_metadata}"')
        if error.error is not None:
            details.append(f'error="{error.error}"')
            details.append(f'error_description="{error.description}"')
        if isinstance(error, InsufficientScopeError):
            # Scope names come from route code; only RFC 6749 scope tokens can be quoted safely.
            scopes = (s for s in error.required_scopes if is_scope_token(s))
            details.append(f'scope="{" ".join(scopes)}"')
        dpop_challenge = "DPoP " + ", ".join([*details, f'algs="{self._algs}"'])
        if dpop:
            return dpop_challenge
        bearer_challenge = "Bearer " + ", ".join([f'realm="{self.realm}"', *details])
        if error.error is None and self.dpop_algorithms:
            # No credentials at all: every accepted scheme is offered.
            return bearer_challenge + ", " + dpop_challenge if self.bearer else dpop_challenge
        return bearer_challenge

    @property
    def _algs(self) -> str:
        return " ".join(sorted(self.dpop_algorithms))


def http_exception(
    error: AuthError,
    challenges: Challenges,
    *,
    dpop: bool = False,
    resource_metadata: str | None = None,
) -> HTTPException:
    """The HTTP answer for ``error``: status, ``{"detail": ...}`` and headers."""
    headers: dict[str, str] = {}
    if isinstance(error, IssuerUnavailableError):
        headers["Retry-After"] = str(error.retry_after)
    else:
        headers["WWW-Authenticate"] = challenges.www_authenticate(
            error, dpop=dpop, resource_metadata=resource_metadata
        )
    if isinstance(error, UseDPoPNonceError):
        headers["DPoP-Nonce"] = error.nonce
    return HTTPException(status_code=error.status_code, detail=error.description, headers=headers)


def websocket_exception(error: AuthError) -> WebSocketException:
    """Close a WebSocket before ``accept``: 1008 refused, 1013 keys or store unavailable."""
    unavailable = isinstance(error, IssuerUnavailableError)
    code = WS_TRY_AGAIN_LATER if unavailable else WS_POLICY_VIOLATION
    return WebSocketException(code=code, reason=error.description)
