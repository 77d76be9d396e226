"""The library's exceptions: one small hierarchy.

Every failure a request can meet is an `AuthError` that knows its HTTP status
and its RFC 6750 error code, so the FastAPI layer maps all of them in one place.
Nothing here ever carries the token itself.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AuthError",
    "ConfigurationError",
    "ISPJWTError",
    "InsufficientScopeError",
    "InvalidRequestError",
    "InvalidTokenError",
    "IssuerUnavailableError",
    "KeySetError",
    "MissingCredentialsError",
    "TokenRequestError",
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

    ``status_code`` is the HTTP status to answer with, ``error`` the RFC 6750 error code
    (``None`` when the request simply carried no credentials) and ``description`` a short
    human-readable reason made only of fixed text, safe to send to the client.
    """

    status_code: int = 401
    error: str | None = "invalid_token"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class MissingCredentialsError(AuthError):
    """No bearer credentials were sent (no ``Authorization`` header, or another scheme)."""

    status_code = 401
    error = None


class InvalidRequestError(AuthError):
    """The ``Authorization`` header is malformed (RFC 6750 ``invalid_request``)."""

    status_code = 400
    error = "invalid_request"


class InvalidTokenError(AuthError):
    """The token is malformed, expired, revoked or otherwise not acceptable (``invalid_token``)."""

    status_code = 401
    error = "invalid_token"


class InsufficientScopeError(AuthError):
    """The token is valid but lacks scopes the route requires (``insufficient_scope``)."""

    status_code = 403
    error = "insufficient_scope"

    def __init__(self, description: str, required_scopes: Iterable[str]) -> None:
        super().__init__(description)
        self.required_scopes: tuple[str, ...] = tuple(required_scopes)


class IssuerUnavailableError(AuthError):
    """No usable signing key is known and the issuer cannot be reached right now."""

    status_code = 503
    error = None

    def __init__(self, description: str, retry_after: int = 30) -> None:
        super().__init__(description)
        self.retry_after = max(1, int(retry_after))


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
