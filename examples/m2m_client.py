"""Calling a protected API from another service, with a Client Credentials token.

Configured from the environment. For the tenant set ``ISP_DOMAIN``
(``istreamplanet.auth0.com``), ``ISP_CLIENT_ID``, ``ISP_CLIENT_SECRET`` and
``ISP_AUDIENCE``. With ``ISP_DOMAIN`` unset it asks a dev issuer on
``http://127.0.0.1:8765/`` (``ISP_TOKEN_URL`` to change it) as ``dev-client``, never a
real tenant by accident. ``ISP_API_URL`` is the API to call, by default
``examples/app.py`` served on ``http://127.0.0.1:8000``.

Run: ``python -m examples.m2m_client``. ``tests/test_client.py`` runs every function here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

# --8<-- [start:imports]
import anyio
import httpx

from fastapi_isp_jwt.client import ClientCredentials
from fastapi_isp_jwt.errors import TokenRequestError

# --8<-- [end:imports]

DEV_TOKEN_URL = "http://127.0.0.1:8765/oauth/token"
DEV_AUDIENCE = "https://platform.dtc.istreamplanet.net/acme"
DEFAULT_API_URL = "http://127.0.0.1:8000"


# --8<-- [start:tenant]
def tenant_credentials(environ: Mapping[str, str]) -> ClientCredentials:
    """The tenant's token endpoint, with a machine-to-machine application's credentials."""
    return ClientCredentials(
        domain=environ["ISP_DOMAIN"],  # istreamplanet.auth0.com
        client_id=environ["ISP_CLIENT_ID"],
        client_secret=environ["ISP_CLIENT_SECRET"],
        audience=environ["ISP_AUDIENCE"],  # https://platform.dtc.istreamplanet.net/<org>
    )


# --8<-- [end:tenant]


# --8<-- [start:dev]
def dev_issuer_credentials(environ: Mapping[str, str]) -> ClientCredentials:
    """The local dev issuer (``fastapi-isp-jwt dev-issuer``) and its pinned client."""
    return ClientCredentials(
        token_url=environ.get("ISP_TOKEN_URL", DEV_TOKEN_URL),  # http only on loopback
        client_id=environ.get("ISP_CLIENT_ID", "dev-client"),
        client_secret=environ.get("ISP_CLIENT_SECRET", "dev-secret"),
        audience=environ.get("ISP_AUDIENCE", DEV_AUDIENCE),
    )


# --8<-- [end:dev]


def credentials_from_env(environ: Mapping[str, str] = os.environ) -> ClientCredentials:
    """One ``ClientCredentials`` for the whole process: every client shares its token."""
    if "ISP_DOMAIN" in environ:
        return tenant_credentials(environ)
    return dev_issuer_credentials(environ)


# --8<-- [start:sync]
def who_am_i(auth: ClientCredentials, api_url: str) -> dict[str, Any]:
    """One call from synchronous code; the token is fetched on first use, then reused."""
    with httpx.Client(auth=auth, base_url=api_url, timeout=10) as client:
        response = client.get("/me")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


# --8<-- [end:sync]


# --8<-- [start:async]
async def call_concurrently(auth: ClientCredentials, api_url: str, calls: int = 10) -> list[int]:
    """Many calls at once from async code: they wait for one token request, not ten."""
    statuses: list[int] = []

    async with httpx.AsyncClient(auth=auth, base_url=api_url, timeout=10) as client:

        async def call() -> None:
            statuses.append((await client.get("/me")).status_code)

        async with anyio.create_task_group() as group:
            for _ in range(calls):
                group.start_soon(call)
    return statuses


# --8<-- [end:async]


# --8<-- [start:errors]
def main(environ: Mapping[str, str] = os.environ) -> int:
    auth = credentials_from_env(environ)
    api_url = environ.get("ISP_API_URL", DEFAULT_API_URL)
    try:
        print(who_am_i(auth, api_url))
        print(anyio.run(call_concurrently, auth, api_url))
    except TokenRequestError as error:
        # error.oauth_error is the tenant's verdict: invalid_client, access_denied...
        print(f"could not obtain a token ({error.oauth_error}): {error}", file=sys.stderr)
        return 1
    return 0


# --8<-- [end:errors]

if __name__ == "__main__":
    sys.exit(main())
