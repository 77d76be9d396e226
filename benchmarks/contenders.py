"""The FastAPI apps measured end to end: one route, one way to guard it, the same issuer for all.

Every app answers ``GET /streams`` with the caller's subject. All of them trust the
tenant ``https://istreamplanet.auth0.com/`` and get its keys from the local issuer server
on 127.0.0.1; how each library is pointed there is written next to it (and in
docs/performance.md). Nothing here reaches beyond the loopback interface: a URL of any
other host is refused.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from fastapi_isp_jwt import JWTAuth, Principal

DOMAIN = "istreamplanet.auth0.com"
ISSUER = f"https://{DOMAIN}/"
ORGANIZATION = "acme"
AUDIENCE = f"https://platform.dtc.istreamplanet.net/{ORGANIZATION}"
ROUTE = "/streams"

PEER_NAMES = ("fastapi-auth0", "fastapi-cloudauth", "auth0-fastapi-api")


class Tenant(Protocol):
    """Where the imitated tenant's documents are served: the local issuer server, or its
    address handed to a server process of its own (``served_apps.py``)."""

    @property
    def issuer(self) -> str: ...

    @property
    def jwks_url(self) -> str: ...

    def local_url(self, url: str) -> str: ...


@dataclass
class Contender:
    """A guarded app, and whether it must be sent tokens it has never seen."""

    name: str
    app: FastAPI
    caches_tokens: bool = False


def no_auth_app() -> FastAPI:
    """The same route with no guard at all: the cost of FastAPI and the transport."""
    app = FastAPI()

    @app.get(ROUTE)
    async def streams() -> dict[str, str]:
        return {"subject": "anonymous"}

    return app


def ready_principal_app(principal: Principal) -> FastAPI:
    """The same route with a dependency that checks nothing: what ``Depends`` itself costs."""
    app = FastAPI()

    async def ready() -> Principal:
        return principal

    @app.get(ROUTE)
    async def streams(caller: Principal = Depends(ready)) -> dict[str, str]:
        return {"subject": caller.subject}

    return app


def remembered_token_app(principal: Principal, token: str, *, digest: bool) -> FastAPI:
    """The least any verified-token cache can do for a token it holds, as one dependency.

    One scan of the headers for a sole ``Authorization: Bearer <token>``, one dict lookup
    keyed by the SHA-256 digest of the token (``digest=True``) or by the token itself, and
    an expiry check. It checks nothing else and knows one token: a reference, not a verifier.
    """
    app = FastAPI()
    key = hashlib.sha256(token.encode()).digest() if digest else token.encode()
    remembered = {key: (principal, time.time() + 3600)}

    async def remembered_principal(connection: HTTPConnection) -> Principal:
        authorization = None
        for name, value in connection.scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    authorization = None
                    break
                authorization = value
        if authorization is not None and authorization.startswith(b"Bearer "):
            presented = authorization[7:]
            entry = remembered.get(hashlib.sha256(presented).digest() if digest else presented)
            if entry is not None and time.time() < entry[1]:
                return entry[0]
        raise HTTPException(401, "Unknown token", headers={"WWW-Authenticate": "Bearer"})

    @app.get(ROUTE)
    async def streams(caller: Principal = Depends(remembered_principal)) -> dict[str, str]:
        return {"subject": caller.subject}

    return app


def pyjwt_app(jwks_url: str) -> FastAPI:
    """What a service writes by hand with PyJWT: ``HTTPBearer``, ``PyJWKClient``, ``jwt.decode``."""
    app = FastAPI()
    keys = jwt.PyJWKClient(jwks_url)
    bearer = HTTPBearer()

    async def claims_of(
        credentials: HTTPAuthorizationCredentials = Depends(bearer),
    ) -> dict[str, Any]:
        token = credentials.credentials
        try:
            key = keys.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER
            )
        except jwt.PyJWTError:
            raise HTTPException(
                401, "Invalid token", headers={"WWW-Authenticate": "Bearer"}
            ) from None
        return claims

    @app.get(ROUTE)
    async def streams(claims: dict[str, Any] = Depends(claims_of)) -> dict[str, str]:
        return {"subject": str(claims["sub"])}

    return app


def _unauthorized() -> HTTPException:
    return HTTPException(401, "Invalid token", headers={"WWW-Authenticate": "Bearer"})


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def floor_app(public_key: rsa.RSAPublicKey) -> FastAPI:
    """The least a token check can cost on a route: split, one RS256 check, the subject.

    No claim is checked and the header is not even decoded: a floor, not a verifier.
    """
    app = FastAPI()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    async def signed_subject(connection: HTTPConnection) -> str:
        _, _, token = connection.headers.get("authorization", "").partition(" ")
        try:
            header, payload, signature = token.split(".")
            public_key.verify(_b64url(signature), f"{header}.{payload}".encode(), pkcs1, sha256)
            return str(json.loads(_b64url(payload))["sub"])
        except (ValueError, KeyError, InvalidSignature):
            raise _unauthorized() from None

    @app.get(ROUTE)
    async def streams(subject: str = Depends(signed_subject)) -> dict[str, str]:
        return {"subject": subject}

    return app


def pyjwt_preloaded_app(public_key: rsa.RSAPublicKey) -> FastAPI:
    """A hand-written PyJWT dependency whose key was loaded once, at start-up."""
    app = FastAPI()
    bearer = HTTPBearer()

    async def claims_of(
        credentials: HTTPAuthorizationCredentials = Depends(bearer),
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                credentials.credentials,
                public_key,
                algorithms=["RS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
            )
        except jwt.PyJWTError:
            raise _unauthorized() from None
        return claims

    @app.get(ROUTE)
    async def streams(claims: dict[str, Any] = Depends(claims_of)) -> dict[str, str]:
        return {"subject": str(claims["sub"])}

    return app


def isp_jwt_auth(server: Tenant, **options: Any) -> JWTAuth:
    """This library as a service configures it, with ``jwks_url`` on the local server."""
    return JWTAuth(domain=DOMAIN, audience=AUDIENCE, jwks_url=server.jwks_url, **options)


def isp_jwt_app(auth: JWTAuth) -> FastAPI:
    app = FastAPI()

    @app.get(ROUTE)
    async def streams(principal: Principal = Depends(auth)) -> dict[str, str]:
        return {"subject": principal.subject}

    return app


# -- the peer libraries ------------------------------------------------------------------


class _TenantOverLoopback(urllib.request.BaseHandler):
    """A urllib handler that answers the tenant's https URLs from the local server."""

    handler_order = 100  # ahead of the default HTTPS handler

    def __init__(self, server: Tenant) -> None:
        self._server = server
        self._plain = urllib.request.build_opener()

    def https_open(self, request: urllib.request.Request) -> Any:
        if not request.full_url.startswith(ISSUER):
            raise urllib.error.URLError("only the imitated tenant is reachable here")
        return self._plain.open(self._server.local_url(request.full_url), timeout=5)


@contextmanager
def _urllib_tenant_on(server: Tenant) -> Iterator[None]:
    urllib.request.install_opener(urllib.request.build_opener(_TenantOverLoopback(server)))
    try:
        yield
    finally:
        urllib.request.install_opener(urllib.request.build_opener())


def _fastapi_auth0(server: Tenant, client: httpx.AsyncClient) -> FastAPI:
    # fastapi-auth0 downloads https://<domain>/.well-known/jwks.json with urllib when it is
    # constructed, and has no option for another URL: urllib's own opener hook serves it.
    from fastapi_auth0.auth import Auth0, Auth0User

    with _urllib_tenant_on(server):
        auth = Auth0(domain=DOMAIN, api_audience=AUDIENCE)
    app = FastAPI()

    @app.get(ROUTE)
    async def streams(user: Auth0User = Security(auth.get_user)) -> dict[str, str]:
        return {"subject": user.id}

    return app


def _fastapi_cloudauth(server: Tenant, client: httpx.AsyncClient) -> FastAPI:
    # fastapi_cloudauth.Auth0 builds its JWKS URL from the domain. The same guard is built
    # from the library's public parts instead, with exactly what Auth0.__init__ passes:
    # its Auth0 JWKS class (here given the local URL), the audience, the issuer, the
    # "permissions" scope key and the Auth0 extra verifier.
    from fastapi_cloudauth.auth0 import JWKS, Auth0ExtraVerifier
    from fastapi_cloudauth.base import ScopedAuth

    auth = ScopedAuth(
        JWKS(url=server.jwks_url),
        audience=AUDIENCE,
        issuer=ISSUER,
        scope_key="permissions",
        extra=Auth0ExtraVerifier(),
    )
    app = FastAPI()

    @app.get(ROUTE)
    async def streams(claims: dict[str, Any] = Depends(auth)) -> dict[str, str]:
        return {"subject": str(claims["sub"])}

    return app


def _auth0_fastapi_api(server: Tenant, client: httpx.AsyncClient) -> FastAPI:
    # auth0-fastapi-api takes a documented ``custom_fetch``: the discovery document and
    # the JWKS it names are fetched from the local server through an httpx client.
    # authlib, which it uses, turns its own deprecation warnings on at import; they are
    # about authlib's future, not this measurement, so they are turned off again.
    importlib.import_module("authlib.deprecate")
    warnings.simplefilter("ignore", DeprecationWarning)
    # Imported by name: its module (fastapi_plugin) ships no type information.
    auth0_fastapi_api = importlib.import_module("fastapi_plugin")

    async def fetch(url: str) -> httpx.Response:
        return await client.get(server.local_url(url))

    auth = auth0_fastapi_api.Auth0FastAPI(domain=DOMAIN, audience=AUDIENCE, custom_fetch=fetch)
    require_auth = auth.require_auth()
    app = FastAPI()

    @app.get(ROUTE)
    async def streams(claims: dict[str, Any] = Depends(require_auth)) -> dict[str, str]:
        return {"subject": str(claims["sub"])}

    return app


_PEER_BUILDERS: dict[str, Callable[[Tenant, httpx.AsyncClient], FastAPI]] = {
    "fastapi-auth0": _fastapi_auth0,
    "fastapi-cloudauth": _fastapi_cloudauth,
    "auth0-fastapi-api": _auth0_fastapi_api,
}


def peer_app(name: str, server: Tenant, client: httpx.AsyncClient) -> FastAPI:
    """The app guarded by the peer library ``name``; ImportError when it is not installed."""
    with warnings.catch_warnings():
        # Their imports warn about their own dependencies (pydantic v1 names, authlib.jose).
        warnings.simplefilter("ignore", DeprecationWarning)
        return _PEER_BUILDERS[name](server, client)
