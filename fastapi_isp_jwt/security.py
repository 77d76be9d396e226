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
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection

from fastapi_isp_jwt.algorithms import ALGORITHMS
from fastapi_isp_jwt.answers import Challenges, http_exception, websocket_exception
from fastapi_isp_jwt.binding import OrganizationOfRequest, organization_binding
from fastapi_isp_jwt.credentials import BLANK, DPoPToken, b64token, websocket_token
from fastapi_isp_jwt.dpop import DEFAULT_IAT_WINDOW, DPoPMode, DPoPRequest, one_proof
from fastapi_isp_jwt.errors import (
    AuthError,
    ConfigurationError,
    InsufficientScopeError,
    InvalidRequestError,
    MissingCredentialsError,
)
from fastapi_isp_jwt.grammar import check_endpoint_url, is_quotable
from fastapi_isp_jwt.keycache import JWKSCache
from fastapi_isp_jwt.keycache.health import KeyCacheHealth
from fastapi_isp_jwt.metadata import ResourceMetadata
from fastapi_isp_jwt.openapi import document_refusals, swagger_login
from fastapi_isp_jwt.principal import Principal
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.replay import ReplayStore
from fastapi_isp_jwt.sender import client_certificate, request_url
from fastapi_isp_jwt.settings import DEFAULT_LEEWAY, Settings, option_fields
from fastapi_isp_jwt.verified import PendingVerification
from fastapi_isp_jwt.verifier import Verifier

__all__ = ["JWTAuth"]


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
        dpop: str = "allowed",
        dpop_algorithms: str | Sequence[str] = tuple(ALGORITHMS),
        dpop_iat_window: float = DEFAULT_IAT_WINDOW,
        dpop_nonce_secret: str | None = None,
        dpop_replay_store: ReplayStore | None = None,
        trusted_proxies: Sequence[str] = (),
        public_base_url: str | None = None,
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
        if public_base_url is not None:
            check_endpoint_url("public_base_url", public_base_url)
        self.verifier = Verifier(
            settings,
            principal_class=principal_class,
            http_client=http_client,
            sync_http_client=sync_http_client,
            replay_store=dpop_replay_store,
        )
        self.trusted_proxies = frozenset(trusted_proxies)
        self.public_base_url = public_base_url
        mode = settings.dpop
        self._accepts_bearer = mode != DPoPMode.REQUIRED.value
        self._accepts_dpop = mode != DPoPMode.DISABLED.value
        self.challenges = Challenges(
            realm,
            bearer=self._accepts_bearer,
            dpop_algorithms=settings.dpop_policy.allowed_algorithms if self._accepts_dpop else (),
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
            if self.verifier.telemetry.active:
                self.verifier.telemetry.scope_refused()
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
        dpop = False
        try:
            token = self._token_of(connection)
            if token is None:
                if security_scopes.scopes:
                    # A route that requires scopes is never open to anonymous callers,
                    # whatever auto_error says: there is no one to grant them to.
                    raise MissingCredentialsError(Reason.CREDENTIALS_MISSING)
                return None
            if type(token) is DPoPToken:
                dpop = True
                principal = await self._verify_dpop(connection, token.value)
            else:
                # No coroutine unless a key must be fetched: the path of nearly every token.
                certificate = None
                if "extensions" in connection.scope or self.trusted_proxies:
                    certificate = client_certificate(
                        connection.scope, trusted_proxies=self.trusted_proxies
                    )
                found = self.verifier.verify_now(token, certificate=certificate, grammar=b64token)
                principal = (
                    await found.finish() if isinstance(found, PendingVerification) else found
                )
            if security_scopes.scopes:
                self.check_scopes(principal, security_scopes.scopes)
            return principal
        except AuthError as error:
            raise self.refusal_for(connection, error, dpop=dpop) from None

    async def _verify_dpop(self, connection: HTTPConnection, token: bytes) -> Principal:
        proofs = [value for name, value in connection.scope["headers"] if name == b"dpop"]
        scope = connection.scope
        request = DPoPRequest(
            one_proof(proofs),
            scope.get("method", "GET"),  # a WebSocket handshake is a GET
            request_url(
                scope, public_base_url=self.public_base_url, trusted_proxies=self.trusted_proxies
            ),
        )
        return await self.verifier.verify(b64token(token), dpop=request)

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
        common = authorization[:7] == b"Bearer " and authorization[7:8] not in BLANK
        if common and authorization[-1:] not in BLANK and self._accepts_bearer:
            token: bytes = authorization[7:]
            return token  # the common spelling: nothing to trim; grammar checked on a miss
        return self._bearer_token(authorization)

    def _no_credentials(self) -> bytes | None:
        """No bearer credentials: a 401, or ``None`` for routes open to anonymous callers."""
        if self.auto_error:
            raise MissingCredentialsError(Reason.CREDENTIALS_MISSING)
        return None

    def _bearer_token(self, authorization: bytes) -> bytes | None:
        """The token of the one ``Authorization`` header value, if its scheme is accepted."""
        scheme, _, credentials = authorization.strip(b" \t").partition(b" ")
        scheme = scheme.lower()
        # RFC 6750 §2.1 and RFC 9449 §7.1: scheme 1*SP b64token (ends trimmed above).
        if scheme == b"bearer" and self._accepts_bearer:
            return b64token(credentials.lstrip(b" "))
        if scheme == b"dpop" and self._accepts_dpop:
            return DPoPToken(credentials.lstrip(b" "))
        # Another scheme (Basic, Digest, a scheme this service turned off) is not
        # credentials this service takes at all.
        return self._no_credentials()

    def _websocket_token(self, connection: HTTPConnection) -> bytes | None:
        token = websocket_token(
            connection,
            query_param=self.websocket_query_param,
            subprotocol=self.websocket_subprotocol,
        )
        return self._no_credentials() if token is None else b64token(token)

    # -- answers -----------------------------------------------------------------------

    def refusal_for(
        self, connection: HTTPConnection, error: AuthError, *, dpop: bool = False
    ) -> HTTPException | WebSocketException:
        """The exception that answers ``error`` on ``connection`` (HTTP or WebSocket)."""
        if connection.scope["type"] == "websocket":
            return websocket_exception(error)
        url = None
        if self._metadata is not None and error.status_code == 401:
            url = self._metadata.url_for(connection)
        return http_exception(error, self.challenges, dpop=dpop, resource_metadata=url)

    def www_authenticate(self, error: AuthError, resource_metadata: str | None = None) -> str:
        """The ``WWW-Authenticate`` challenge for ``error`` (RFC 6750 §3, RFC 9728 §5.1)."""
        return self.challenges.www_authenticate(error, resource_metadata=resource_metadata)

    def http_exception(
        self, error: AuthError, *, resource_metadata: str | None = None
    ) -> HTTPException:
        """The HTTP answer for ``error``: status, ``{"detail": ...}`` and headers."""
        return http_exception(error, self.challenges, resource_metadata=resource_metadata)

    def websocket_exception(self, error: AuthError) -> WebSocketException:
        """Close a WebSocket before ``accept``: 1008 refused, 1013 keys unavailable."""
        return websocket_exception(error)

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
        self.model = swagger_login(
            app,
            self.settings,
            self.model.description,
            client_id=client_id,
            scopes=scopes,
            audience=audience,
            issuer=issuer,
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def warm_up(self) -> None:
        """Fetch every issuer's keys now rather than on the first request."""
        await self.verifier.warm_up()

    def health(self) -> tuple[KeyCacheHealth, ...]:
        """The key cache's state per trusted issuer: keys known, age, stale or fresh."""
        return self.verifier.health()

    async def aclose(self) -> None:
        """Stop background key refreshes of this event loop; clients you passed in stay open."""
        await self.verifier.aclose()

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """``FastAPI(lifespan=auth.lifespan)``: warm the key cache at startup, close at shutdown.

        An app whose tests override this dependency (the testing kit does) verifies no token
        with it, so nothing is downloaded: a test never reaches the real tenant.
        """
        if self not in getattr(app, "dependency_overrides", {}):
            await self.warm_up()
        try:
            yield
        finally:
            await self.aclose()


_DEFAULTS = {f.name: f.default for f in option_fields()}
