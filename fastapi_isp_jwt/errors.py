"""The library's exceptions: one small hierarchy.

Every failure a request can meet is an `AuthError` carrying a stable `Reason` code, from
which its HTTP status, RFC 6750 error code and description follow, so the FastAPI layer
maps all of them in one place.
Nothing here ever carries the token itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from fastapi_isp_jwt.reasons import Outcome, Reason

__all__ = [
    "AuthError",
    "ConfigurationError",
    "ISPJWTError",
    "InsufficientScopeError",
    "InvalidDPoPProofError",
    "InvalidRequestError",
    "InvalidTokenError",
    "IssuerUnavailableError",
    "KeySetError",
    "MissingCredentialsError",
    "ReplayStoreUnavailableError",
    "TokenRequestError",
    "UseDPoPNonceError",
    "refusal",
]


class ISPJWTError(Exception):
    """Root of every exception raised by fastapi-isp-jwt."""


class ConfigurationError(ISPJWTError, ValueError):
    """The library was configured with options that cannot work; raised at construction."""


class KeySetError(ISPJWTError):
    """A JWKS document, or one key in it, cannot be used (malformed, unsafe or unsupported).

    Raised while loading keys, never to a client: a bad key is skipped, and a bad document
    counts as a failed refresh of the key cache.
    """


class AuthError(ISPJWTError):
    """A request could not be authenticated or authorized.

    ``reason`` is the stable `Reason` code; ``status_code`` (the HTTP status to answer
    with), ``error`` (the RFC 6750 error code, ``None`` when the request simply carried no
    credentials) and ``description`` (fixed text, safe to send to the client) are derived
    from it. Raise the subclass that fits the reason, or let `refusal` choose it.
    """

    status_code: int = 401
    error: str | None = "invalid_token"
    outcome: Outcome = Outcome.INVALID_TOKEN

    def __init__(self, reason: Reason, detail: str = "") -> None:
        if reason.outcome is not self.outcome:
            raise TypeError(f"{type(self).__name__} cannot carry the reason {reason.value!r}")
        description = reason.describe(detail)
        super().__init__(description)
        self.reason = reason
        self.description = description

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason.value!r}: {self.description!r})"


class MissingCredentialsError(AuthError):
    """No bearer credentials were sent (no ``Authorization`` header, or another scheme)."""

    status_code = 401
    error = None
    outcome = Outcome.MISSING_CREDENTIALS


class InvalidRequestError(AuthError):
    """The ``Authorization`` header is malformed (RFC 6750 ``invalid_request``)."""

    status_code = 400
    error = "invalid_request"
    outcome = Outcome.INVALID_REQUEST


class InvalidTokenError(AuthError):
    """The token is malformed, expired, revoked or otherwise not acceptable (``invalid_token``)."""

    status_code = 401
    error = "invalid_token"
    outcome = Outcome.INVALID_TOKEN


class InsufficientScopeError(AuthError):
    """The token is valid but lacks scopes the route requires (``insufficient_scope``)."""

    status_code = 403
    error = "insufficient_scope"
    outcome = Outcome.INSUFFICIENT_SCOPE

    def __init__(self, required_scopes: Iterable[str]) -> None:
        super().__init__(Reason.SCOPE)
        self.required_scopes: tuple[str, ...] = tuple(required_scopes)


class IssuerUnavailableError(AuthError):
    """No usable signing key is known and the issuer cannot be reached right now."""

    status_code = 503
    error = None
    outcome = Outcome.ISSUER_UNAVAILABLE

    def __init__(self, retry_after: float = 30) -> None:
        self._unavailable(Reason.ISSUER_UNAVAILABLE, retry_after)

    def _unavailable(self, reason: Reason, retry_after: float) -> None:
        AuthError.__init__(self, reason)
        self.retry_after = max(1, math.ceil(retry_after))


class ReplayStoreUnavailableError(IssuerUnavailableError):
    """The store that remembers DPoP proof ids cannot be reached: 503 with ``Retry-After``.

    A subclass of `IssuerUnavailableError` so that every place answering "try again later"
    answers this too: accepting a proof that cannot be checked for replay is never an option.
    """

    def __init__(self, retry_after: float = 1) -> None:
        self._unavailable(Reason.REPLAY_STORE_UNAVAILABLE, retry_after)


class InvalidDPoPProofError(AuthError):
    """The DPoP proof is missing, malformed or does not hold (RFC 9449 ``invalid_dpop_proof``)."""

    status_code = 401
    error = "invalid_dpop_proof"
    outcome = Outcome.INVALID_DPOP_PROOF


class UseDPoPNonceError(AuthError):
    """The proof lacks the server's current nonce (RFC 9449 §9 ``use_dpop_nonce``).

    ``nonce`` is the fresh nonce to send back in the ``DPoP-Nonce`` header.
    """

    status_code = 401
    error = "use_dpop_nonce"
    outcome = Outcome.USE_DPOP_NONCE

    def __init__(self, reason: Reason, nonce: str) -> None:
        super().__init__(reason)
        self.nonce = nonce


_ERROR_OF_OUTCOME: dict[Outcome, type[AuthError]] = {
    Outcome.MISSING_CREDENTIALS: MissingCredentialsError,
    Outcome.INVALID_REQUEST: InvalidRequestError,
    Outcome.INVALID_TOKEN: InvalidTokenError,
    Outcome.INVALID_DPOP_PROOF: InvalidDPoPProofError,
}


def refusal(reason: Reason, detail: str = "") -> AuthError:
    """The exception for ``reason``, unless it carries more (scopes, a retry time, a nonce)."""
    return _ERROR_OF_OUTCOME[reason.outcome](reason, detail)


class TokenRequestError(ISPJWTError):
    """Obtaining a token from the token endpoint failed (client side, RFC 6749 §5.2).

    ``oauth_error`` is the ``error`` code the server returned (``invalid_client``,
    ``access_denied``...) or ``None`` when the failure was not an OAuth error response.
    """

    def __init__(
        self,
        message: str,
        *,
        oauth_error: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.oauth_error = oauth_error
        self.status_code = status_code
