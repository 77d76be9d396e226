"""``JWTAuth``: the FastAPI face of the `Verifier`.

An instance is itself the dependency (``Depends(auth)`` or ``Security(auth, scopes=[...])``),
shows in OpenAPI as an HTTP bearer scheme, and maps every `AuthError` to the RFC 6750
answer in one place. It reads the token (headers, WebSockets), checks a route's scopes and
answers; everything about the token itself is the verifier's. It works on WebSocket routes
too, closing refused connections before ``accept``.
"""

# No ``from __future__ import annotations`` here: FastAPI before 0.124 cannot resolve string
# annotations on a callable instance's ``__call__`` and would read its parameters as query
# parameters.

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, HTTPException, WebSocketException
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlows
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection

from fastapi_isp_jwt.binding import OrganizationOfRequest, organization_binding
from fastapi_isp_jwt.errors import (
    AuthError,
    ConfigurationError,
    InsufficientScopeError,
    InvalidRequestError,
    IssuerUnavailableError,
    MissingCredentialsError,
)
from fastapi_isp_jwt.grammar import is_b64token, is_quotable, is_scope_token
from fastapi_isp_jwt.keycache import JWKSCache
from fastapi_isp_jwt.metadata import ResourceMetadata
from fastapi_isp_jwt.openapi import document_refusals
from fastapi_isp_jwt.principal import Principal
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.settings import DEFAULT_LEEWAY, Settings, option_fields
from fastapi_isp_jwt.verifier import Verifier

__all__ = ["JWTAuth"]

_BLANK = (b" ", b"\t")

# WebSocket close codes (RFC 6455 §7.4.1): 1008 policy violation, 1013 try again later.
_WS_POLICY_VIOLATION = 1008
_WS_TRY_AGAIN_LATER = 1013


def _b64token(credentials: bytes) -> bytes:
    """The bearer token if ``credentials`` is one RFC 6750 b64token, else 400."""
    if not is_b64token(credentials):
        raise InvalidRequestError(Reason.CREDENTIALS_MALFORMED)
    return credentials


class JWTAuth(SecurityBase):
    """Verify iStreamPlanet platform access tokens on FastAPI routes.

    ``require_token = JWTAuth(domain="istreamplanet.auth0.com",
    audience="https://platform.dtc.istreamplanet.net/acme")`` then
    ``principal: Principal = Depends(require_token)`` on a route, or
    ``Security(require_token, scopes=["streams:write"])`` to require scopes.

    The verifier's options come as keywords or, built once and shared, as
    ``settings=Settings(...)`` (then no verifier keyword may be given). With
    ``auto_error=False`` a request that carries no bearer credentials gets ``None``
    instead of a 401 (for routes open to anonymous callers); a token that *is* sent must
    still be valid.
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        domain: str | Sequence[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
        jwks_url: str | None = None,
        algorithms: str | Sequence[str] = ("RS256",),
        leeway: float = DEFAULT_LEEWAY,
        jwks_ttl: float = 600.0,
        jwks_cooldown: float = 30.0,
        jwks_max_stale: float = 86400.0,
        jwks_timeout: float = 5.0,
        discovery: bool = False,
        organizations: Sequence[str] | None = None,
        organization_claims: str = "ignore",
        org_ids: Sequence[str] | None = None,
        org_names: Sequence[str] | None = None,
        organization_from: str = "audience",
        require_typ: bool = False,
        max_age: float | None = None,
        required_claims: Sequence[str] = (),
        allowed_client_ids: Sequence[str] | None = None,
        max_token_bytes: int = 8192,
        token_cache_size: int = 10_000,
        token_cache_bytes: int = 32 * 1024 * 1024,
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
        given = locals()
        options = {f.name: given[f.name] for f in option_fields()}
        if settings is None:
            settings = Settings(**options)
        else:
            both = [name for name, value in options.items() if value != _DEFAULTS[name]]
            if both:
                raise ConfigurationError(
                    f"give settings= or verifier options, not both: {', '.join(both)}"
                )
        if not is_quotable(realm):
            raise ConfigurationError("realm must be printable ASCII without quotes or backslashes")
        self.verifier = Verifier(
            settings,
            principal_class=principal_class,
            http_client=http_client,
            sync_http_client=sync_http_client,
        )
        self.settings = settings
        self.auto_error = auto_error
        self.realm = realm
        self.websocket_query_param = websocket_query_param
        self.websocket_subprotocol = websocket_subprotocol
        self.model: HTTPBearerModel | OAuth2Model = HTTPBearerModel(
            bearerFormat="JWT", description=description
        )
        self.scheme_name = scheme_name or type(self).__name__
        self._metadata: ResourceMetadata | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "JWTAuth":
        """Build from ``ISP_JWT_*`` variables (see the configuration docs); keywords win."""
        verifier_options = {f.name for f in option_fields()}
        settings = Settings.from_env(
            environ, **{k: v for k, v in overrides.items() if k in verifier_options}
        )
        return cls(
            settings=settings, **{k: v for k, v in overrides.items() if k not in verifier_options}
        )

    @property
    def key_sources(self) -> Mapping[str, JWKSCache]:
        """The key cache of each trusted issuer."""
        return self.verifier.key_sources

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
            raise InsufficientScopeError(required)

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
            token = self._token_of(connection)
            if token is None:
                if security_scopes.scopes:
                    # A route that requires scopes is never open to anonymous callers,
                    # whatever auto_error says: there is no one to grant them to.
                    raise MissingCredentialsError(Reason.CREDENTIALS_MISSING)
                return None
            # The grammar check runs only for a token the verifier does not remember: one it
            # remembers passed it, spelled exactly so, when it was first verified.
            principal = await self.verifier.verify(token, unless_remembered=_b64token)
            if security_scopes.scopes:
                self.check_scopes(principal, security_scopes.scopes)
            return principal
        except AuthError as error:
            raise self.refusal_for(connection, error) from None

    def _token_of(self, connection: HTTPConnection) -> bytes | None:
        authorization = None
        for name, value in connection.scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    raise InvalidRequestError(Reason.HEADER_REPEATED)
                authorization = value
        if authorization is None:
            if connection.scope["type"] == "websocket":
                return self._websocket_token(connection)
            return self._no_credentials()
        common = authorization[:7] == b"Bearer " and authorization[7:8] not in _BLANK
        if common and authorization[-1:] not in _BLANK:
            token: bytes = authorization[7:]
            return token  # the common spelling: nothing to trim; grammar checked on a miss
        return self._bearer_token(authorization)

    def _no_credentials(self) -> bytes | None:
        """No bearer credentials: a 401, or ``None`` for routes open to anonymous callers."""
        if self.auto_error:
            raise MissingCredentialsError(Reason.CREDENTIALS_MISSING)
        return None

    def _bearer_token(self, authorization: bytes) -> bytes | None:
        """The token of the one ``Authorization`` header value, if its scheme is Bearer."""
        scheme, _, credentials = authorization.strip(b" \t").partition(b" ")
        if scheme.lower() != b"bearer":
            # Another scheme (Basic, Digest...) is not bearer credentials at all.
            return self._no_credentials()
        # RFC 6750 §2.1: "Bearer" 1*SP b64token (the value's ends were trimmed above).
        return _b64token(credentials.lstrip(b" "))

    def _websocket_token(self, connection: HTTPConnection) -> bytes | None:
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
            return self._no_credentials()
        return _b64token(token.encode("utf-8", "surrogatepass"))

    # -- answers -----------------------------------------------------------------------

    def refusal_for(
        self, connection: HTTPConnection, error: AuthError
    ) -> HTTPException | WebSocketException:
        """The exception that answers ``error`` on ``connection`` (HTTP or WebSocket)."""
        if connection.scope["type"] == "websocket":
            return self.websocket_exception(error)
        url = None
        if self._metadata is not None and error.status_code == 401:
            url = self._metadata.url_for(connection)
        return self.http_exception(error, resource_metadata=url)

    def www_authenticate(self, error: AuthError, resource_metadata: str | None = None) -> str:
        """The ``WWW-Authenticate`` challenge for ``error`` (RFC 6750 §3, RFC 9728 §5.1)."""
        parts = [f'Bearer realm="{self.realm}"']
        if resource_metadata is not None:
            parts.append(f'resource_metadata="{resource_metadata}"')
        if error.error is not None:
            parts.append(f'error="{error.error}"')
            parts.append(f'error_description="{error.description}"')
        if isinstance(error, InsufficientScopeError):
            # Scope names come from route code; only RFC 6749 scope tokens can be quoted safely.
            scopes = (s for s in error.required_scopes if is_scope_token(s))
            parts.append(f'scope="{" ".join(scopes)}"')
        return ", ".join(parts)

    def http_exception(
        self, error: AuthError, *, resource_metadata: str | None = None
    ) -> HTTPException:
        """The HTTP answer for ``error``: status, ``{"detail": ...}`` and headers."""
        headers: dict[str, str] = {}
        if isinstance(error, IssuerUnavailableError):
            headers["Retry-After"] = str(error.retry_after)
        else:
            headers["WWW-Authenticate"] = self.www_authenticate(error, resource_metadata)
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

    # -- organizations, metadata and OpenAPI ---------------------------------------------

    def bound_to(
        self,
        *,
        path_param: str | None = None,
        from_request: OrganizationOfRequest | None = None,
    ) -> Callable[..., Awaitable[Principal]]:
        """A dependency giving the principal only if its organization is the request's.

        ``Security(auth.bound_to(path_param="org"), scopes=[...])`` on ``/orgs/{org}/...``;
        ``from_request(connection)`` derives the organization otherwise (subdomain, header).
        """
        return organization_binding(self, path_param=path_param, from_request=from_request)

    def metadata_router(self) -> APIRouter:
        """The RFC 9728 metadata routes; include at the app's root, not under a prefix."""
        self._metadata = self._metadata or ResourceMetadata(self)
        return self._metadata.router()

    def install(self, app: FastAPI) -> None:
        """Serve the metadata, name it in 401 challenges, document refusals in OpenAPI."""
        installed = getattr(app.state, "isp_jwt_installed", None)
        if installed is self:
            return
        if installed is not None:
            raise ConfigurationError("another JWTAuth is installed on this app already")
        app.state.isp_jwt_installed = self
        app.include_router(self.metadata_router())
        document_refusals(app, self)

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
        await self.verifier.warm_up()

    async def aclose(self) -> None:
        """Stop background key refreshes of this event loop; clients you passed in stay open."""
        await self.verifier.aclose()

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """``FastAPI(lifespan=auth.lifespan)``: warm the key cache at startup, close at shutdown."""
        await self.warm_up()
        try:
            yield
        finally:
            await self.aclose()


_DEFAULTS = {f.name: f.default for f in option_fields()}
