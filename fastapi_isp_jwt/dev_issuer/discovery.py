"""What the dev issuer says about itself: RFC 8414 authorization server metadata.

The dev issuer is an OAuth 2.0 authorization server and no OpenID provider: it issues
access tokens and never an ID token. So its metadata promises no ID token signing, no
subject types, and leaves ``openid``, ``profile`` and ``email`` out of the scopes it
advertises (a request may still carry them: they are copied into the access token's
``scope``, as the tenant does, and nothing more). A client that needs an ID token learns
from the metadata that it will get none, instead of failing after the login.

The one document is served at both well-known names: ``oauth-authorization-server``
(RFC 8414 §3) for OAuth clients, and ``openid-configuration``, where ``JWTAuth``'s
``discovery`` option and many tools look.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi_isp_jwt.dev_issuer.config import DevIssuerConfig
from fastapi_isp_jwt.grammar import well_known_url

__all__ = [
    "AUTHORIZATION_SERVER_METADATA",
    "JWKS_PATH",
    "OPENID_CONFIGURATION",
    "authorization_server_metadata",
    "metadata_url",
]

AUTHORIZATION_SERVER_METADATA = "oauth-authorization-server"
OPENID_CONFIGURATION = "openid-configuration"
JWKS_PATH = ".well-known/jwks.json"


def authorization_server_metadata(
    config: DevIssuerConfig, *, dpop_signing_algs: Sequence[str] = ()
) -> dict[str, Any]:
    """The metadata document: endpoints, and exactly the features the dev issuer has.

    ``dpop_signing_algs``, when the token endpoint checks DPoP proofs, are the proof
    algorithms it accepts (RFC 9449 §5.1).
    """
    issuer = config.issuer
    metadata: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": issuer + "authorize",
        "token_endpoint": issuer + "oauth/token",
        "jwks_uri": issuer + JWKS_PATH,
        "scopes_supported": list(config.scopes),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "client_secret_basic",
            "none",
        ],
        "code_challenge_methods_supported": ["S256"],
    }
    if dpop_signing_algs:
        metadata["dpop_signing_alg_values_supported"] = list(dpop_signing_algs)
    return metadata


def metadata_url(config: DevIssuerConfig) -> str:
    """Where a client finds the metadata by RFC 8414's rule."""
    return well_known_url(config.issuer, AUTHORIZATION_SERVER_METADATA)
