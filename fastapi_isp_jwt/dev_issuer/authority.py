"""The dev issuer's decisions, free of HTTP: who may log in, which codes and tokens to issue.

Every refusal is an `OAuthError` carrying its RFC 6749 code. Tokens are minted by
`fastapi_isp_jwt.minting`, as the testing kit's are, so they have exactly the tenant's shape.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi_isp_jwt.dev_issuer.codes import (
    CodeStore,
    PendingGrant,
    is_valid_challenge,
    is_valid_verifier,
    verifier_matches,
)
from fastapi_isp_jwt.dev_issuer.config import DevClient, DevIssuerConfig, DevUser
from fastapi_isp_jwt.errors import ISPJWTError
from fastapi_isp_jwt.grammar import is_loopback_host, is_uri_text
from fastapi_isp_jwt.minting import SigningKey, jwks_of, sign_token, tenant_claims

__all__ = ["OPENID_SCOPES", "AuthorizationRequest", "DevAuthority", "OAuthError", "with_query"]

# Scopes about the login itself rather than an API; passed through to the token as Auth0 does.
# offline_access is not among them: the dev issuer gives no refresh tokens.
OPENID_SCOPES = ("openid", "profile", "email")

_UNUSED_SECRET = b"a secret compared when the client is unknown, so that timing tells nothing"


class OAuthError(ISPJWTError):
    """A refusal with an RFC 6749 ``error`` code and a fixed, human-readable description.

    At the token endpoint it becomes a JSON body (§5.2), with the nonce to use in a
    ``DPoP-Nonce`` header when there is one (RFC 9449 §8). At the authorization endpoint
    it is sent back to the client's ``redirect_uri`` (§4.1.2.1) when that URI is trusted,
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
        dpop_nonce: str | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status_code
        self.redirect_uri = redirect_uri
        self.state = state
        self.basic_challenge = basic_challenge
        self.dpop_nonce = dpop_nonce

    def __repr__(self) -> str:
        return f"OAuthError({self.error!r}, {self.description!r})"


def _same_secret(given: str, expected: str | None) -> bool:
    reference = expected.encode() if expected is not None else _UNUSED_SECRET
    return hmac.compare_digest(given.encode(), reference) and expected is not None


def with_query(uri: str, params: Mapping[str, str]) -> str:
    """``uri`` with ``params`` added to whatever query it already has."""
    parts = urlsplit(uri)
    query = "&".join(p for p in (parts.query, urlencode(params)) if p)
    return urlunsplit(parts._replace(query=query))


def _is_loopback_uri(uri: str) -> bool:
    if not is_uri_text(uri):
        return False
    try:
        parts = urlsplit(uri)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return False
    return (
        parts.scheme == "http"
        and parts.hostname is not None
        and is_loopback_host(parts.hostname)
        and "@" not in parts.netloc
        and not parts.fragment
    )


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked ``/authorize`` request, waiting for the user to log in."""

    client: DevClient
    redirect_uri: str
    state: str | None
    audience: str
    scope: tuple[str, ...]
    code_challenge: str


class DevAuthority:
    """The dev issuer's state: its signing key, its pending codes, its configuration.

    ``signing_key`` defaults to a new RS256 key held in memory.
    """

    def __init__(
        self,
        config: DevIssuerConfig,
        *,
        signing_key: SigningKey | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.signing_key = signing_key or SigningKey.generate()
        self.codes = CodeStore(config.code_lifetime, clock)

    def jwks(self) -> dict[str, Any]:
        """The JWKS document publishing the signing key."""
        return jwks_of((self.signing_key,))

    # -- the authorization endpoint ---------------------------------------------------

    def check_authorization_request(self, params: Mapping[str, str]) -> AuthorizationRequest:
        """Check an ``/authorize`` request before showing the login page.

        Until the client and its redirect URI are trusted, refusals carry no
        ``redirect_uri`` (RFC 6749 §4.1.2.1: never redirect to an unchecked URI).
        """
        client_id = params.get("client_id")
        if client_id is None:
            raise OAuthError("invalid_request", "client_id is required")
        client = self.config.client(client_id)
        if client is None:
            raise OAuthError("invalid_client", "unknown client_id")
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None:
            raise OAuthError("invalid_request", "redirect_uri is required")
        if not self._redirect_allowed(client, redirect_uri):
            raise OAuthError("invalid_request", "redirect_uri is not registered for this client")

        state = params.get("state")

        def refuse(error: str, description: str) -> OAuthError:
            return OAuthError(error, description, redirect_uri=redirect_uri, state=state)

        if params.get("response_type") != "code":
            raise refuse("unsupported_response_type", "response_type must be code")
        challenge = params.get("code_challenge")
        if challenge is None:
            raise refuse("invalid_request", "PKCE is required: send code_challenge")
        if params.get("code_challenge_method") != "S256":
            raise refuse("invalid_request", "code_challenge_method must be S256")
        if not is_valid_challenge(challenge):
            raise refuse("invalid_request", "code_challenge is not a base64url SHA-256 digest")
        return AuthorizationRequest(
            client=client,
            redirect_uri=redirect_uri,
            state=state,
            audience=self._audience(params, refuse),
            scope=tuple(dict.fromkeys(params.get("scope", "").split())),
            code_challenge=challenge,
        )

    def log_in(self, username: str, password: str) -> DevUser:
        """The user these credentials belong to; a wrong username or password raises."""
        user = next((u for u in self.config.users if u.username == username), None)
        matches = _same_secret(password, user.password if user is not None else None)
        if user is None or not matches:
            raise OAuthError("access_denied", "wrong username or password")
        return user

    def grant_code(self, request: AuthorizationRequest, user: DevUser) -> str:
        """Issue a code for a logged-in user and give the URI to send the browser to."""
        api_requested = [s for s in request.scope if s not in OPENID_SCOPES]
        granted = (
            tuple(s for s in user.scopes if s in api_requested) if api_requested else user.scopes
        )
        openid = tuple(s for s in request.scope if s in OPENID_SCOPES)
        code = self.codes.issue(
            PendingGrant(
                client_id=request.client.client_id,
                redirect_uri=request.redirect_uri,
                code_challenge=request.code_challenge,
                audience=request.audience,
                scope=openid + granted,
                permissions=granted,
                subject=user.subject,
            )
        )
        answer = {"code": code}
        if request.state is not None:
            answer["state"] = request.state
        return with_query(request.redirect_uri, answer)

    # -- the token endpoint -----------------------------------------------------------

    def exchange(
        self,
        params: Mapping[str, str],
        basic: tuple[str, str] | None = None,
        *,
        jkt: str | None = None,
    ) -> dict[str, Any]:
        """Answer a token request (``params`` from the body, ``basic`` from the header).

        ``jkt``, the thumbprint of a checked DPoP proof's key, makes the token DPoP-bound.
        """
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type == "client_credentials":
            return self._client_credentials(params, basic, jkt)
        if grant_type == "authorization_code":
            return self._authorization_code(params, basic, jkt)
        raise OAuthError(
            "unsupported_grant_type", "grant_type must be client_credentials or authorization_code"
        )

    def _client_credentials(
        self, params: Mapping[str, str], basic: tuple[str, str] | None, jkt: str | None
    ) -> dict[str, Any]:
        client, authenticated = self._authenticate(params, basic)
        if client.client_secret is None:
            raise OAuthError("unauthorized_client", "a public client cannot use client_credentials")
        if not authenticated:
            raise self._client_refusal("client_secret is required", basic)
        audience = self._audience(params)
        requested = tuple(dict.fromkeys(params.get("scope", "").split()))
        not_granted = [s for s in requested if s not in client.scopes]
        if not_granted:
            raise OAuthError("invalid_scope", "the client was not granted every requested scope")
        scope = requested or client.scopes
        return self._token_response(audience, client, None, scope, permissions=scope, jkt=jkt)

    def _authorization_code(
        self, params: Mapping[str, str], basic: tuple[str, str] | None, jkt: str | None
    ) -> dict[str, Any]:
        # A sent secret must be right; none at all is accepted, PKCE binding the code to
        # whoever started the login (so browser tools such as Swagger UI need no secret).
        client, _ = self._authenticate(params, basic)
        for name in ("code", "code_verifier", "redirect_uri"):
            if name not in params:
                raise OAuthError("invalid_request", f"{name} is required")
        verifier = params["code_verifier"]
        if not is_valid_verifier(verifier):
            raise OAuthError(
                "invalid_request", "code_verifier must be 43 to 128 unreserved characters"
            )
        grant = self.codes.redeem(params["code"])
        if grant is None:
            raise OAuthError("invalid_grant", "the code is unknown, expired or already used")
        if grant.client_id != client.client_id:
            raise OAuthError("invalid_grant", "the code was issued to another client")
        if grant.redirect_uri != params["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
        if not verifier_matches(verifier, grant.code_challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        audiences = [grant.audience, self.config.issuer + "userinfo"]
        return self._token_response(
            audiences, client, grant.subject, grant.scope, permissions=grant.permissions, jkt=jkt
        )

    def _authenticate(
        self, params: Mapping[str, str], basic: tuple[str, str] | None
    ) -> tuple[DevClient, bool]:
        """The calling client, and whether it proved itself with its secret."""
        secret: str | None
        if basic is not None:
            if "client_secret" in params:
                raise OAuthError("invalid_request", "use one way of client authentication, not two")
            client_id, secret = basic
            if params.get("client_id", client_id) != client_id:
                raise OAuthError("invalid_request", "client_id differs from the Basic credentials")
        else:
            given_id = params.get("client_id")
            if given_id is None:
                raise OAuthError("invalid_request", "client_id is required")
            client_id, secret = given_id, params.get("client_secret")
        client = self.config.client(client_id)
        if secret is None:
            if client is None:
                raise self._client_refusal("unknown client", basic)
            return client, False
        matches = _same_secret(secret, client.client_secret if client is not None else None)
        if client is None or not matches:
            raise self._client_refusal("client authentication failed", basic)
        return client, True

    @staticmethod
    def _client_refusal(description: str, basic: tuple[str, str] | None) -> OAuthError:
        # RFC 6749 §5.2: 401 with a challenge when the client tried HTTP Basic, else 400.
        if basic is not None:
            return OAuthError("invalid_client", description, status_code=401, basic_challenge=True)
        return OAuthError("invalid_client", description)

    def _audience(
        self, params: Mapping[str, str], refuse: Callable[[str, str], OAuthError] = OAuthError
    ) -> str:
        audience = params.get("audience")
        if audience is None:
            raise refuse("invalid_request", "audience is required")
        if not self.config.accepts_audience(audience):
            raise refuse("invalid_request", "audience is not an API of this issuer")
        return audience

    def _token_response(
        self,
        audience: str | list[str],
        client: DevClient,
        subject: str | None,
        scope: tuple[str, ...],
        *,
        permissions: tuple[str, ...],
        jkt: str | None,
    ) -> dict[str, Any]:
        claims = tenant_claims(
            self.config.issuer,
            audience,
            client_id=client.client_id,
            subject=subject,
            scopes=scope,
            permissions=permissions,
            expires_in=self.config.token_lifetime,
        )
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}  # RFC 9449 §6.1, as the tenant binds a DPoP token
        return {
            "access_token": sign_token(claims, self.signing_key),
            "token_type": "Bearer" if jkt is None else "DPoP",
            "expires_in": self.config.token_lifetime,
            "scope": " ".join(scope),
        }

    @staticmethod
    def _redirect_allowed(client: DevClient, uri: str) -> bool:
        if client.redirect_uris:
            return uri in client.redirect_uris
        return _is_loopback_uri(uri)
