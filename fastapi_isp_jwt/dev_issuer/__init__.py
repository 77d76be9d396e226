"""A local stand-in for the Auth0 tenant, for development only.

It serves discovery, a JWKS, a login page (Authorization Code with PKCE) and a token
endpoint (also Client Credentials) on 127.0.0.1, and signs tokens shaped exactly like the
tenant's, so a service can be tried end to end with no account and no network.
"""

from fastapi_isp_jwt.dev_issuer.app import create_app
from fastapi_isp_jwt.dev_issuer.codes import s256_challenge
from fastapi_isp_jwt.dev_issuer.config import (
    DEFAULT_AUDIENCE,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SCOPES,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_PORT,
    DEFAULT_USER_SCOPES,
    DEFAULT_USERNAME,
    DevClient,
    DevIssuerConfig,
    DevUser,
    load_config,
)
from fastapi_isp_jwt.dev_issuer.keyfile import default_key_file, load_or_create_key
from fastapi_isp_jwt.dev_issuer.server import RunningDevIssuer, running, serve

__all__ = [
    "DEFAULT_AUDIENCE",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SCOPES",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_PASSWORD",
    "DEFAULT_PORT",
    "DEFAULT_USERNAME",
    "DEFAULT_USER_SCOPES",
    "DevClient",
    "DevIssuerConfig",
    "DevUser",
    "RunningDevIssuer",
    "create_app",
    "default_key_file",
    "load_config",
    "load_or_create_key",
    "running",
    "s256_challenge",
    "serve",
]
