"""Standing in for the token check in tests: a principal built by hand, and an override.

``app.dependency_overrides[require_token] = lambda: principal`` looks right and is a trap:
FastAPI then calls the lambda instead of ``require_token``, and the lambda never looks at
the scopes the route asked for with ``Security(require_token, scopes=[...])``. Every
route answers 200, including those that must answer 403. The override built here declares
a ``SecurityScopes`` parameter, so FastAPI hands it the route's scopes, and it refuses
exactly as the real dependency would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, TypeVar, overload

from fastapi import FastAPI
from fastapi.security import SecurityScopes

from fastapi_isp_jwt import PLATFORM_AUDIENCE_PREFIX, JWTAuth, Principal

__all__ = ["make_principal", "override_principal", "principal_override"]


def principal_override(auth: JWTAuth, principal: Principal) -> Callable[..., Principal]:
    """A dependency to put in ``app.dependency_overrides[auth]``: always ``principal``.

    Scopes required by the route are still checked; a missing one gets the same 403
    (``WWW-Authenticate: Bearer error="insufficient_scope"``) as with a real token.
    """
    if not isinstance(auth, JWTAuth):
        raise TypeError(f"auth must be the JWTAuth the routes depend on, not {type(auth).__name__}")
    if not isinstance(principal, Principal):
        raise TypeError(
            f"principal must be a Principal (make one with make_principal), "
            f"not {type(principal).__name__}"
        )

    def authenticated_as_principal(security_scopes: SecurityScopes) -> Principal:
        return auth.authorize(principal, security_scopes.scopes)

    return authenticated_as_principal


@contextmanager
def override_principal(app: FastAPI, auth: JWTAuth, principal: Principal) -> Iterator[Principal]:
    """Within the ``with`` block, every request to ``app`` is made by ``principal``.

    No token is needed, scope checks still run, and whatever override was in place
    before comes back when the block ends.
    """
    overrides = app.dependency_overrides
    had_previous = auth in overrides
    previous = overrides.get(auth)
    overrides[auth] = principal_override(auth, principal)
    try:
        yield principal
    finally:
        if had_previous:
            overrides[auth] = previous  # type: ignore[assignment]
        else:
            overrides.pop(auth, None)


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
    if isinstance(scopes, str):
        raise TypeError(f"scopes must be a list of scope names, not one string: [{scopes!r}]")
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
