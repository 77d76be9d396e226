"""The one way the dev issuer refuses a request: an OAuth 2.0 error (RFC 6749)."""

from __future__ import annotations

from fastapi_isp_jwt.errors import ISPJWTError

__all__ = ["OAuthError"]


class OAuthError(ISPJWTError):
    """A refusal with an RFC 6749 ``error`` code and a fixed, human-readable description.

    At the token endpoint it becomes a JSON body (§5.2). At the authorization endpoint it
    is sent back to the client's ``redirect_uri`` (§4.1.2.1) when that URI is trusted,
    and shown on an error page otherwise (``redirect_uri`` is then ``None``).
    """

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status_code: int = 400,
        redirect_uri: str | None = None,
        state: str | None = None,
        basic_challenge: bool = False,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status_code
        self.redirect_uri = redirect_uri
        self.state = state
        self.basic_challenge = basic_challenge

    def __repr__(self) -> str:
        return f"OAuthError({self.error!r}, {self.description!r})"
