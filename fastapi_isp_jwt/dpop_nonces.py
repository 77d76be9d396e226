"""Server nonces for DPoP proofs (RFC 9449 §8, §9), rotating with no shared state.

A service that wants to bound how long a proof is good for, whatever the client's clock
says, hands out a nonce in a ``DPoP-Nonce`` header and requires the next proofs to carry
it. Here a nonce is an HMAC of the current time period, so replicas holding the same
secret issue and accept the same nonces without talking to each other.
"""

from __future__ import annotations

import hashlib
import hmac
import math

from fastapi_isp_jwt import base64url
from fastapi_isp_jwt.errors import ConfigurationError
from fastapi_isp_jwt.grammar import is_finite_number

__all__ = ["DPoPNonces"]

_MIN_NONCE_SECRET_BYTES = 32


class DPoPNonces:
    """Server nonces (RFC 9449 §8, §9) that rotate every ``lifetime`` (>= 1) seconds, statelessly.

    A nonce is an HMAC of the current period under ``secret``, so every replica holding
    the same secret issues and accepts the same nonces with nothing shared at run time.
    The previous and next periods are accepted too (a nonce lives ``lifetime`` to twice
    that, and replicas whose clocks differ slightly agree).
    """

    def __init__(self, secret: str | bytes, lifetime: float = 300.0) -> None:
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        if not isinstance(key, bytes) or len(key) < _MIN_NONCE_SECRET_BYTES:
            raise ConfigurationError(
                f"dpop_nonce_secret must be at least {_MIN_NONCE_SECRET_BYTES} bytes"
            )
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
            raise ConfigurationError("dpop_nonce_lifetime must be a number")
        # Under a second, the period number of the current time may not fit a float.
        if not (is_finite_number(lifetime) and lifetime >= 1):
            raise ConfigurationError("dpop_nonce_lifetime must be a finite number of seconds >= 1")
        self._key = key
        self.lifetime = float(lifetime)

    def __repr__(self) -> str:
        return f"DPoPNonces(lifetime={self.lifetime})"  # never the secret

    def _of_period(self, period: int) -> bytes:
        mac = hmac.new(self._key, b"dpop-nonce:%d" % period, hashlib.sha256).digest()
        return base64url.encode(mac[:18]).encode("ascii")

    def issue(self, now: float) -> str:
        """The nonce to hand out at ``now`` (epoch seconds)."""
        return self._of_period(math.floor(now / self.lifetime)).decode("ascii")

    def accepts(self, nonce: str, now: float) -> bool:
        """Whether ``nonce`` is one this service issued recently."""
        if not nonce.isascii():  # issued nonces are ASCII; a lone surrogate is no UTF-8 even
            return False
        given = nonce.encode("ascii")
        period = math.floor(now / self.lifetime)
        recent = (period - 1, period, period + 1)
        return any(hmac.compare_digest(given, self._of_period(p)) for p in recent)
