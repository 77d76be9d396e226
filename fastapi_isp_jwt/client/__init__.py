"""Client Credentials for calls out of the service: an ``httpx.Auth`` that keeps a platform token.

`ClientCredentials` asks the tenant's token endpoint for an access token
(RFC 6749 §4.4), keeps it until shortly before it expires, and puts it on every request
of the ``httpx.Client`` or ``httpx.AsyncClient`` it is attached to. Token requests go
through a short-lived client of their own rather than through the caller's client: they
never follow redirects, never reach the caller's event hooks (which would see the client
secret in the form body) and never show up in a response's ``history``.
"""

from __future__ import annotations

from fastapi_isp_jwt.client.credentials import ClientCredentials

__all__ = ["ClientCredentials"]
