"""What the verifier hands between its steps: a token awaiting its key, a verified token.

`PendingVerification` is the one a caller sees: `Verifier.verify_now` returns it for a
token whose signing key the cache must fetch first.

A `VerifiedToken` is also what the verified-token cache remembers: the principal with what
decides whether it may be served again (the token's deadline, the key that verified it,
the binding of a sender-constrained token).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi_isp_jwt.algorithms import Algorithm
from fastapi_isp_jwt.keycache import JWKSCache
from fastapi_isp_jwt.keys import VerificationKey
from fastapi_isp_jwt.principal import Principal
from fastapi_isp_jwt.tokencache import Remembered

__all__ = ["AwaitingKey", "PendingVerification", "VerifiedToken"]


class VerifiedToken(Remembered):
    """A verified token's principal, with what decides whether it may be served again."""

    __slots__ = ("confirmation", "key", "key_source", "kid", "principal")

    def __init__(
        self,
        principal: Principal,
        key_source: JWKSCache,
        kid: str | None,
        key: VerificationKey,
        confirmation: Mapping[str, Any] | None,  # claims with the cnf of a bound token
        valid_until: float,
    ) -> None:
        super().__init__(valid_until)
        self.principal = principal
        self.key_source = key_source
        self.kid = kid
        self.key = key
        self.confirmation = confirmation


@dataclass(slots=True)
class AwaitingKey:
    """A token that passed every I/O-free check and needs a key the cache does not hold."""

    digest: bytes | None
    signing_input: bytes
    payload: dict[str, Any]
    signature: bytes
    algorithm: Algorithm
    kid: str | None
    key_source: JWKSCache


class PendingVerification:
    """A token that passed every check made without its key: ``await finish()`` for the rest."""

    __slots__ = ("_finish",)

    def __init__(self, finish: Callable[[], Awaitable[Principal]]) -> None:
        self._finish = finish

    async def finish(self) -> Principal:
        """Wait for the key, then check the signature and everything after it."""
        return await self._finish()
