"""An in-memory httpx transport that publishes a test issuer's documents."""

from __future__ import annotations

import httpx

from fastapi_isp_jwt.testing.published import PublishingIssuer

__all__ = ["issuer_transport"]


def issuer_transport(issuer: PublishingIssuer) -> httpx.MockTransport:
    """Answer ``GET`` on the issuer's JWKS and discovery URLs; everything else is a 404.

    The documents are built on every request, so keys rotated or retired on the issuer
    show up at once, exactly as they would on a live tenant.
    """

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            return httpx.Response(405, json={"error": "method not allowed"})
        if request.url == httpx.URL(issuer.jwks_url):
            issuer.count_jwks_request()
            return httpx.Response(200, json=issuer.jwks())
        if request.url == httpx.URL(issuer.discovery_url):
            return httpx.Response(200, json=issuer.discovery_document())
        return httpx.Response(404, json={"error": "not found"})

    return httpx.MockTransport(answer)
