"""Helpers for testing APIs protected by fastapi-isp-jwt."""

from fastapi_isp_jwt.testing.issuer import PLATFORM_AUDIENCE_PREFIX, SigningKey, TestIssuer

__all__ = ["PLATFORM_AUDIENCE_PREFIX", "SigningKey", "TestIssuer"]
