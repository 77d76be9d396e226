"""The apps a real server process serves: ``uvicorn --factory served_apps:build``.

The measuring process (real_server.py, soak.py) runs the local issuer and starts one
uvicorn process per app; it says which app, and where the issuer is, in the environment
variable ``BENCH_SERVED`` (JSON). Everything here stays on 127.0.0.1: the tenant's URLs
are answered by that issuer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import httpx
from contenders import (
    ISSUER,
    ROUTE,
    floor_app,
    isp_jwt_app,
    isp_jwt_auth,
    no_auth_app,
    peer_app,
    pyjwt_app,
    pyjwt_preloaded_app,
    ready_principal_app,
)
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import FastAPI

from fastapi_isp_jwt import Principal

ENVIRONMENT_VARIABLE = "BENCH_SERVED"
OPEN_ROUTE = "/open"


@dataclass(frozen=True)
class RemoteTenant:
    """The local issuer as seen from another process: its address only."""

    base_url: str  # http://127.0.0.1:<port>/

    @property
    def issuer(self) -> str:
        return ISSUER

    @property
    def jwks_url(self) -> str:
        return self.base_url + ".well-known/jwks.json"

    def local_url(self, url: str) -> str:
        if not url.startswith(ISSUER):
            raise ValueError(f"{url!r} is not a URL of {ISSUER}")
        return self.base_url + url[len(ISSUER) :]


def served_environment(app: str, tenant_url: str, **options: Any) -> dict[str, str]:
    """What a server process needs in its environment to build ``app``."""
    return {ENVIRONMENT_VARIABLE: json.dumps({"app": app, "tenant": tenant_url, **options})}


def _public_key(options: dict[str, Any]) -> rsa.RSAPublicKey:
    key = load_pem_public_key(options["public_key_pem"].encode())
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def _ready_principal(tenant: RemoteTenant, token: str) -> Principal:
    return isp_jwt_auth(tenant).verify_sync(token)  # nothing to release: no fetch is running


def soak_app(tenant: RemoteTenant, jwks_ttl: float, jwks_cooldown: float) -> FastAPI:
    """The soak's one server: ``/open`` guarded by nothing, ``/streams`` by this library."""
    app = isp_jwt_app(isp_jwt_auth(tenant, jwks_ttl=jwks_ttl, jwks_cooldown=jwks_cooldown))

    @app.get(OPEN_ROUTE)
    async def open_route() -> dict[str, str]:
        return {"subject": "anonymous"}

    return app


def build() -> FastAPI:
    """The app ``BENCH_SERVED`` names (uvicorn calls this with ``--factory``)."""
    options: dict[str, Any] = json.loads(os.environ[ENVIRONMENT_VARIABLE])
    tenant = RemoteTenant(options["tenant"])
    name = options["app"]
    if name == "none":
        return no_auth_app()
    if name == "depends":
        return ready_principal_app(_ready_principal(tenant, options["token"]))
    if name == "floor":
        return floor_app(_public_key(options))
    if name == "pyjwt_preloaded":
        return pyjwt_preloaded_app(_public_key(options))
    if name == "pyjwt_tutorial":
        return pyjwt_app(tenant.jwks_url)
    if name == "ours":
        return isp_jwt_app(isp_jwt_auth(tenant))
    if name == "soak":
        return soak_app(tenant, options["jwks_ttl"], options["jwks_cooldown"])
    # A peer library; its fetches (if any) go to the local issuer through this client.
    return peer_app(name, tenant, httpx.AsyncClient())


__all__ = ["OPEN_ROUTE", "ROUTE", "RemoteTenant", "build", "served_environment"]
