"""``JWTAuth``: the FastAPI security dependency that turns a bearer token into a principal.

An instance is itself the dependency (``Depends(auth)`` or ``Security(auth, scopes=[...])``),
shows in OpenAPI as an HTTP bearer scheme, and maps every `AuthError` to the
RFC 6750 answer in one place. It works on WebSocket routes too, closing refused
connections before ``accept``.
"""

import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, WebSocketException
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlows
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection

from fastapi_isp_jwt.config import DEFAULT_LEEWAY, ENV_PREFIX, AuthSettings, options_from_env
from fastapi_isp_jwt.errors import (
    AuthError,
    ConfigurationError,
    InsufficientScopeError,
    InvalidRequestError,
    IssuerUnavailableError,
    MissingCredentialsError,
)
from fastapi_isp_jwt.jwks import JWKSCache
from fastapi_isp_jwt.principal import Principal
from fastapi_isp_jwt.verifier import CacheMiss, TokenVerifier

__all__ = ["JWTAuth"]

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="


def _b64token(credentials: bytes) -> str:
    """The bearer token if ``credentials`` is one RFC 6750 b64token, else 400."""
    # bytes.translate deleting the allowed bytes leaves whatever is not allowed; it is
    # many times faster than a per-character check on a token of a kilobyte.
    if (
        not credentials
        or credentials.translate(None, _B64TOKEN_BYTES)
        or b"=" in credentials.rstrip(b"=")
    ):
        raise InvalidRequestError("The bearer token is malformed")
    return credentials.decode("ascii")


# RFC 6749 §3.3 scope-token, and what may stand inside a quoted-string header parameter.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
_QUOTABLE = re.compile(r"[\x20\x21\x23-\x5B\x5D-\x7E]*")

# WebSocket close codes (RFC 6455 §7.4.1): 1008 policy violation, 1013 try again later.
_WS_POLICY_VIOLATION = 1008
_WS_TRY_AGAIN_LATER = 1013


class JWTAuth(SecurityBase):
    """Verify iStreamPlanet platform access tokens on FastAPI routes.

    ``require_token = JWTAuth(domain="istreamplanet.auth0.com",
    audience="https://platform.dtc.istreamplanet.net/acme")`` then
    ``principal: Principal = Depends(require_token)`` on a route, or
    ``Security(require_token, scopes=["streams:write"])`` to require scopes.

    With ``auto_error=False`` a request that carries no bearer credentials gets ``None``
    instead of a 401 (for routes open to anonymous callers); a token that *is* sent must
    still be valid.
    """

    def __init__(
        self,
        *,
        domain: str | Sequence[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        audience: str | Sequence[str],
        jwks_url: str | None = None,
        algorithms: Sequence[str] = ("RS256",),
        leeway: float = DEFAULT_LEEWAY,
        jwks_ttl: float = 600.0,
        jwks_cooldown: float = 30.0,
        jwks_max_stale: float = 86400.0,
        jwks_timeout: float = 5.0,
        discovery: bool = False,
        organizations: Sequence[str] | None = None,
        require_typ: bool = False,
        max_age: float | None = None,
        required_claims: Sequence[str] = (),
        allowed_client_ids: Sequence[str] | None = None,
        max_token_bytes: int = 8192,
        token_cache_size: int = 10_000,
        http_client: httpx.AsyncClient | None = None,
        sync_http_client: httpx.Client | None = None,
        principal_class: type[Principal] = Principal,
        auto_error: bool = True,
        realm: str = "api",
        scheme_name: str | None = None,
        description: str | None = None,
        websocket_query_param: str | None = None,
        websocket_subprotocol: bool = False,
    ) -> None:
        self.settings = AuthSettings.create(
            domain=domain,
            issuer=issuer,
            audience=audience,
            jwks_url=jwks_url,
            algorithms=algorithms,
            leeway=leeway,
            jwks_ttl=jwks_ttl,
            jwks_cooldown=jwks_cooldown,
            jwks_max_stale=jwks_max_stale,
            jwks_timeout=jwks_timeout,
            discovery=discovery,
            organizations=organizations,
            require_typ=require_typ,
            max_age=max_age,
            required_claims=required_claims,
            allowed_client_ids=allowed_client_ids,
            max_token_bytes=max_token_bytes,
            token_cache_size=token_cache_size,
        )
        if not (isinstance(principal_class, type) and issubclass(principal_class, Principal)):
            raise ConfigurationError("principal_class must be Principal or a subclass of it")
        if not _QUOTABLE.fullmatch(realm):
            raise ConfigurationError("realm must be printable ASCII without quotes or backslashes")
        self.key_sources: dict[str, JWKSCache] = {
            iss: JWKSCache(
                url,
                issuer=iss,
                discovery=self.settings.discovery,
                ttl=self.settings.jwks_ttl,
                cooldown=self.settings.jwks_cooldown,
                max_stale=self.settings.jwks_max_stale,
                timeout=self.settings.jwks_timeout,
                http_client=http_client,
                sync_http_client=sync_http_client,
            )
            for iss, url in self.settings.jwks_urls.items()
        }
        self.verifier = TokenVerifier(self.settings, self.key_sources, principal_class)
        self.auto_error = auto_error
        self.realm = realm
        self.websocket_query_param = websocket_query_param
        self.websocket_subprotocol = websocket_subprotocol
        self.model: HTTPBearerModel | OAuth2Model = HTTPBearerModel(
            bearerFormat="JWT", description=description
        )
        self.scheme_name = scheme_name or type(self).__name__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "JWTAuth":
        """Build from ``ISP_JWT_*`` variables (see the configuration docs); keywords win."""
        options = options_from_env(environ)
        if "domain" in overrides or "issuer" in overrides:
            # The two name the same thing: a keyword for either replaces both variables.
            options.pop("domain", None)
            options.pop("issuer", None)
        options.update(overrides)
        if "domain" not in options and "issuer" not in options:
            raise ConfigurationError(f"set {ENV_PREFIX}DOMAIN or {ENV_PREFIX}ISSUER")
        if "audience" not in options:
            raise ConfigurationError(f"{ENV_PREFIX}AUDIENCE is not set")
        return cls(**options)

    # -- verification outside routes -------------------------------------------------

    async def verify(self, token: str) -> Principal:
        """Verify a bearer token; raises `AuthError` subclasses."""
        return await self.verifier.verify(token)

    def verify_sync(self, token: str) -> Principal:
        """Blocking `verify` for code that is not async (workers, CLIs)."""
        return self.verifier.verify_sync(token)

    def check_scopes(self, principal: Principal, scopes: Iterable[str]) -> None:
        """Raise `InsufficientScopeError` unless every scope was granted."""
        required = tuple(scopes)
        if required and not principal.scopes.issuperset(required):
            raise InsufficientScopeError("The token lacks a required scope", required)

    def authorize(self, principal: Principal, scopes: Iterable[str]) -> Principal:
        """Apply a route's scope requirement to ``principal``, answering as the dependency does."""
        try:
            self.check_scopes(principal, scopes)
        except AuthError as error:
            raise self.http_exception(error) from None
        return principal

    # -- the dependency ----------------------------------------------------------------

    async def __call__(
        self, connection: HTTPConnection, security_scopes: SecurityScopes
    ) -> Principal | None:
        try:
            # The common case first, with no parsing: one Authorization header reading
            # exactly "Bearer <token>" for a token verified before. Anything else, and any
            # miss, takes the full path below, which gives the same answer for these.
            authorization = None
            for name, value in connection.scope["headers"]:
                if name == b"authorization":
                    if authorization is not None:
                        authorization = None
                        break
                    authorization = value
            miss = None
            if authorization is not None and authorization.startswith(b"Bearer "):
                recalled = self.verifier.recall(authorization[7:])
                if not isinstance(recalled, CacheMiss):
                    if security_scopes.scopes:
                        self.check_scopes(recalled, security_scopes.scopes)
                    return recalled
                miss = recalled
            token = (
                self._token_of(connection)
                if authorization is None
                else self._bearer_token(authorization)
            )
            if token is None:
                if security_scopes.scopes:
                    # A route that requires scopes is never open to anonymous callers,
                    # whatever auto_error says: there is no one to grant them to.
                    raise MissingCredentialsError("Bearer credentials are required")
                return None
            principal = await self.verifier.verify(token, miss=miss)
            if security_scopes.scopes:
                self.check_scopes(principal, security_scopes.scopes)
            return principal
        except AuthError as error:
            if connection.scope["type"] == "websocket":
                raise self.websocket_exception(error) from None
            raise self.http_exception(error) from None

    def _token_of(self, connection: HTTPConnection) -> str | None:
        values: list[bytes] = [
            value for name, value in connection.scope["headers"] if name == b"authorization"
        ]
        if not values and connection.scope["type"] == "websocket":
            return self._websocket_token(connection)
        if not values:
            if self.auto_error:
                raise MissingCredentialsError("Bearer credentials are required")
            return None
        if len(values) > 1:
            raise InvalidRequestError("Send one Authorization header")
        return self._bearer_token(values[0])

    def _bearer_token(self, authorization: bytes) -> str | None:
        """The token of the one ``Authorization`` header value, if its scheme is Bearer."""
        scheme, _, credentials = authorization.strip(b" \t").partition(b" ")
        if scheme.lower() != b"bearer":
            # Another scheme (Basic, Digest...) is not bearer credentials at all.
            if self.auto_error:
                raise MissingCredentialsError("Bearer credentials are required")
            return None
        # RFC 6750 §2.1: "Bearer" 1*SP b64token (the value's ends were trimmed above).
        return _b64token(credentials.lstrip(b" "))

    def _websocket_token(self, connection: HTTPConnection) -> str | None:
        token: str | None = None
        if self.websocket_query_param is not None:
            token = connection.query_params.get(self.websocket_query_param)
        if token is None and self.websocket_subprotocol:
            # Browsers cannot set headers on WebSockets; the opt-in convention is the
            # subprotocol pair "bearer, <token>".
            offered = [
                part.strip()
                for value in connection.headers.getlist("sec-websocket-protocol")
                for part in value.split(",")
            ]
            for index, name in enumerate(offered[:-1]):
                if name.lower() == "bearer":
                    token = offered[index + 1]
                    break
        if token is None:
            if self.auto_error:
                raise MissingCredentialsError("Bearer credentials are required")
            return None
        return _b64token(token.encode("utf-8"))

    # -- answers -----------------------------------------------------------------------

    def www_authenticate(self, error: AuthError) -> str:
        """The ``WWW-Authenticate`` challenge for ``error`` (RFC 6750 §3)."""
        parts = [f'Bearer realm="{self.realm}"']
        if error.error is not None:
            parts.append(f'error="{error.error}"')
            parts.append(f'error_description="{error.description}"')
        if isinstance(error, InsufficientScopeError):
            # Scope names come from route code; only RFC 6749 scope tokens can be quoted safely.
            scopes = (s for s in error.required_scopes if _SCOPE_TOKEN.fullmatch(s))
            parts.append(f'scope="{" ".join(scopes)}"')
        return ", ".join(parts)

    def http_exception(self, error: AuthError) -> HTTPException:
        """The HTTP answer for ``error``: status, ``{"detail": ...}`` and headers."""
        headers: dict[str, str] = {}
        if isinstance(error, IssuerUnavailableError):
            headers["Retry-After"] = str(error.retry_after)
        else:
            headers["WWW-Authenticate"] = self.www_authenticate(error)
        return HTTPException(
            status_code=error.status_code, detail=error.description, headers=headers
        )

    def websocket_exception(self, error: AuthError) -> WebSocketException:
        """Close a WebSocket before ``accept``: 1008 refused, 1013 keys unavailable."""
        code = (
            _WS_TRY_AGAIN_LATER
            if isinstance(error, IssuerUnavailableError)
            else _WS_POLICY_VIOLATION
        )
        return WebSocketException(code=code, reason=error.description)

    # -- OpenAPI -----------------------------------------------------------------------

    def enable_swagger_login(
        self,
        app: FastAPI,
        *,
        client_id: str,
        scopes: Mapping[str, str] | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> None:
        """Let people log in from the docs page: Authorization Code flow with PKCE.

        The security scheme becomes OAuth 2.0 against ``<issuer>authorize`` and
        ``<issuer>oauth/token`` (the tenant, or a local dev issuer), and Swagger UI is set
        up to send ``audience`` with the authorization request. Call it before the first
        request for ``/openapi.json``.
        """
        base = issuer or self.settings.issuers[0]
        base = base if base.endswith("/") else base + "/"
        chosen_audience = audience or next(
            (a for a in self.settings.audiences if "{" not in a), self.settings.audiences[0]
        )
        self.model = OAuth2Model(
            flows=OAuthFlows(
                authorizationCode=OAuthFlowAuthorizationCode(
                    authorizationUrl=base + "authorize",
                    tokenUrl=base + "oauth/token",
                    scopes=dict(scopes or {}),
                )
            ),
            description=self.model.description,
        )
        app.swagger_ui_init_oauth = {
            "clientId": client_id,
            "usePkceWithAuthorizationCodeGrant": True,
            "scopes": " ".join(scopes or {}),
            "additionalQueryStringParams": {"audience": chosen_audience},
        }
        app.openapi_schema = None

    # -- lifecycle ---------------------------------------------------------------------

    async def warm_up(self) -> None:
        """Fetch every issuer's keys now rather than on the first request."""
        for source in self.key_sources.values():
            await source.warm_up()

    async def aclose(self) -> None:
        """Stop background key refreshes of this event loop; clients you passed in stay open."""
        for source in self.key_sources.values():
            await source.aclose()

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """``FastAPI(lifespan=auth.lifespan)``: warm the key cache at startup, close at shutdown."""
        await self.warm_up()
        try:
            yield
        finally:
            await self.aclose()
