"""Testing APIs protected by fastapi-isp-jwt.

- `TestIssuer` mints tenant-shaped tokens and publishes their keys, in memory
  (``issuer.transport``, ``issuer.auth()``) or over HTTP on 127.0.0.1 (``issuer.serve()``).
- `override_principal` stands in for the token check while scope checks still run.
- `make_principal` builds a caller by hand.
- `SigningKey` (from ``fastapi_isp_jwt.minting``) is a private key an issuer signs with.
- `DPoPKey` is a client's DPoP key: the ``Authorization``/``DPoP`` headers of a request,
  good proofs and proofs broken on purpose (`BROKEN_PROOFS`).
- The pytest plugin (loaded automatically) provides the ``isp_issuer``, ``isp_auth``,
  ``isp_served_issuer`` and ``isp_dpop_key`` fixtures.
"""

from fastapi_isp_jwt.minting import SigningKey
from fastapi_isp_jwt.testing.dpop import BROKEN_PROOFS, DPoPKey
from fastapi_isp_jwt.testing.issuer import PLATFORM_AUDIENCE_PREFIX, ServedIssuer, TestIssuer
from fastapi_isp_jwt.testing.overrides import make_principal, override_principal, principal_override

__all__ = [
    "BROKEN_PROOFS",
    "PLATFORM_AUDIENCE_PREFIX",
    "DPoPKey",
    "ServedIssuer",
    "SigningKey",
    "TestIssuer",
    "make_principal",
    "override_principal",
    "principal_override",
]
