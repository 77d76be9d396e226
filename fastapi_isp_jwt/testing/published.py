"""What an issuer must offer to have its documents served, in memory or over HTTP.

The transport and the loopback server depend on this description only, never on
`TestIssuer` itself, so the testing kit's imports run one way: issuer to servers.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi_isp_jwt.minting import SigningKey

__all__ = ["PublishingIssuer"]


class PublishingIssuer(Protocol):
    """An issuer whose JWKS and discovery document can be served."""

    @property
    def issuer(self) -> str:
        """The ``iss`` its tokens carry."""

    @property
    def audience(self) -> str:
        """The audience its tokens are minted for by default."""

    @property
    def signing_key(self) -> SigningKey:
        """The key it signs with right now."""

    @property
    def jwks_url(self) -> str: ...

    @property
    def discovery_url(self) -> str: ...

    def jwks(self) -> dict[str, Any]: ...

    def discovery_document(self, jwks_url: str | None = None) -> dict[str, Any]: ...

    def count_jwks_request(self) -> None: ...
