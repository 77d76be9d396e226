"""Configuration from the environment: the same code in every deployment."""

from __future__ import annotations

from fastapi_isp_jwt import JWTAuth

# --8<-- [start:auth]
# ISP_JWT_DOMAIN (or ISP_JWT_ISSUER), ISP_JWT_AUDIENCE and any other ISP_JWT_<OPTION>
# come from the deployment; keyword arguments given here win over the environment.
require_token = JWTAuth.from_env(realm="streams")
# --8<-- [end:auth]
