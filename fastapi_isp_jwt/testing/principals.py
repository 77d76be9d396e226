"""Principals built by hand, for tests that need a caller but no token."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, TypeVar, overload

from fastapi_isp_jwt import PLATFORM_AUDIENCE_PREFIX, Principal

__all__ = ["make_principal"]

P = TypeVar("P", bound=Principal)


@overload
def make_principal(
    subject: str = ...,
    scopes: Iterable[str] = ...,
    *,
    organization: str | None = ...,
    client_id: str = ...,
    machine: bool = ...,
    expires_in: float = ...,
    principal_class: None = None,
    **claims: Any,
) -> Principal: ...


@overload
def make_principal(
    subject: str = ...,
    scopes: Iterable[str] = ...,
    *,
    organization: str | None = ...,
    client_id: str = ...,
    machine: bool = ...,
    expires_in: float = ...,
    principal_class: type[P],
    **claims: Any,
) -> P: ...


def make_principal(
    subject: str = "auth0|test-user",
    scopes: Iterable[str] = (),
    *,
    organization: str | None = "acme",
    client_id: str = "test-client",
    machine: bool = False,
    expires_in: float = 3600,
    principal_class: type[Principal] | None = None,
    **claims: Any,
) -> Principal:
    """A principal as a token from the tenant would give it.

    ``machine=True`` makes a Client Credentials caller (``sub`` ``<client_id>@clients``).
    Extra keyword arguments become claims, and fill the fields of a ``principal_class``
    subclass that reads custom claims.
    """
    now = int(time.time())
    granted = frozenset(scopes)
    audience = (PLATFORM_AUDIENCE_PREFIX + organization,) if organization else ()
    if machine:
        subject = f"{client_id}@clients"
    payload: dict[str, Any] = {
        "sub": subject,
        "aud": audience[0] if len(audience) == 1 else list(audience),
        "iat": now,
        "exp": int(now + expires_in),
        "azp": client_id,
        **({"scope": " ".join(sorted(granted))} if granted else {}),
        **({"gty": "client-credentials"} if machine else {}),
        **claims,
    }
    fields = {
        "subject": subject,
        "scopes": granted,
        "audience": audience,
        "organization": organization,
        "client_id": client_id,
        "is_machine": machine,
        "issued_at": datetime.fromtimestamp(now, tz=timezone.utc),
        "expires_at": datetime.fromtimestamp(payload["exp"], tz=timezone.utc),
        "claims": payload,
    }
    return (principal_class or Principal).model_validate({**payload, **fields})
