"""The verified caller handed to routes, and how a verified payload becomes one."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from fastapi_isp_jwt.errors import InvalidTokenError
from fastapi_isp_jwt.reasons import Reason

__all__ = ["Claims", "Principal", "build_principal"]

MACHINE_GRANT_TYPE = "client-credentials"


def _frozen(value: Any) -> Any:
    kind = type(value)
    if kind is list or kind is tuple:
        return tuple(_frozen(item) for item in value)
    if kind is dict:
        return Claims(value)
    return value


def _thawed(value: Any) -> Any:
    if isinstance(value, Claims):
        return {key: _thawed(item) for key, item in value.items()}
    if type(value) is tuple:
        return [_thawed(item) for item in value]
    return value


class Claims(Mapping[str, Any]):
    """A token's claims, read-only all the way down: arrays become tuples, objects Claims.

    A verified principal may be answered from the cache to many requests, so nothing a
    route does to its claims can reach another request. Hashable, copyable and picklable;
    it serializes back to plain JSON objects and arrays.
    """

    __slots__ = ("_data",)

    def __init__(self, claims: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = {key: _frozen(value) for key, value in (claims or {}).items()}

    @classmethod
    def _adopt(cls, payload: dict[str, Any]) -> Claims:
        """Wrap a freshly parsed payload that nothing else holds; values freeze when read."""
        claims = cls.__new__(cls)
        claims._data = payload
        return claims

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        kind = type(value)
        if kind is list or kind is dict:
            # Frozen on first read: most requests never look at nested claims.
            value = self._data[key] = _frozen(value)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self.items()))

    def __repr__(self) -> str:
        return f"Claims({self._data!r})"

    def __reduce__(self) -> tuple[type[Claims], tuple[dict[str, Any]]]:
        return (Claims, (dict(self.items()),))

    def __copy__(self) -> Claims:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Claims:
        return self

    def to_dict(self) -> dict[str, Any]:
        """The claims as plain JSON-like data (objects as dicts, arrays as lists)."""
        return _thawed(self)  # type: ignore[no-any-return]


class Principal(BaseModel):
    """Who called, on behalf of which client and organization, with which scopes.

    Frozen: a route can pass it around without anyone changing who the caller is.
    ``scopes`` unites the space-delimited ``scope`` claim with Auth0's RBAC
    ``permissions`` array. ``claims`` holds every claim of the token, read-only.

    Subclass it to read custom claims: fields of a subclass are filled from claims of the
    same name (or alias), and a token whose claims do not validate is refused with 401.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    subject: str
    scopes: frozenset[str] = frozenset()
    audience: tuple[str, ...] = ()
    organization: str | None = None
    org_id: str | None = None
    org_name: str | None = None
    bound_key: str | None = None
    """The RFC 7638 thumbprint of the DPoP key the token is bound to (``cnf.jkt``)."""
    bound_certificate: str | None = None
    """The ``x5t#S256`` of the client certificate the token is bound to (RFC 8705)."""
    client_id: str | None = None
    is_machine: bool = False
    issued_at: datetime | None = None
    expires_at: datetime
    claims: Mapping[str, Any] = Field(default_factory=Claims)

    @field_validator("claims", mode="after")
    @classmethod
    def _read_only_claims(cls, value: Mapping[str, Any]) -> Mapping[str, Any]:
        return value if isinstance(value, Claims) else Claims(value)

    @field_serializer("claims")
    def _serialize_claims(self, value: Mapping[str, Any]) -> dict[str, Any]:
        return _thawed(value) if isinstance(value, Claims) else dict(value)

    def has_scopes(self, *scopes: str) -> bool:
        """Whether every one of ``scopes`` was granted (whole scope tokens, exact match)."""
        return self.scopes.issuperset(scopes)


_NO_SCOPES: frozenset[str] = frozenset()
# Clients send the same few scope strings over and over: split each one once. Bounded: a
# flood of distinct strings only empties it.
_SCOPE_MEMO_SIZE = 256
_scope_memo: dict[str, frozenset[str]] = {}


def _split_scope(scope: str) -> frozenset[str]:
    scopes = _scope_memo.get(scope)
    if scopes is None:
        # RFC 6749 §3.3: scope tokens are delimited by the space character only; a tab or
        # another blank is part of a (useless) token, never a second scope.
        scopes = frozenset(scope.split(" ")) - {""}
        if len(_scope_memo) >= _SCOPE_MEMO_SIZE:
            _scope_memo.clear()
        _scope_memo[scope] = scopes
    return scopes


def _scopes_of(payload: Mapping[str, Any]) -> frozenset[str]:
    scope = payload.get("scope")
    granted = _split_scope(scope) if scope else _NO_SCOPES
    permissions = payload.get("permissions")
    if permissions:
        granted = granted.union(permissions)
    return granted


def _text(value: Any) -> str | None:
    """A claim that must be text; with the organization policy off, anything else is left out."""
    return value if type(value) is str else None


_from_timestamp = datetime.fromtimestamp
_UTC = timezone.utc
_ALL_FIELDS = frozenset(Principal.model_fields)
_set_attribute = object.__setattr__


def _trusted_principal(fields: dict[str, Any]) -> Principal:
    """A Principal from values the claim rules already checked, without re-validation.

    This is what ``model_construct`` does, minus its per-call bookkeeping: it runs on
    every request that presents a new token. A test holds it equal to validation.
    """
    principal = Principal.__new__(Principal)
    _set_attribute(principal, "__dict__", fields)
    # A set of its own: model_copy(update=...) adds to it.
    _set_attribute(principal, "__pydantic_fields_set__", set(_ALL_FIELDS))
    _set_attribute(principal, "__pydantic_extra__", None)
    _set_attribute(principal, "__pydantic_private__", None)
    return principal


def build_principal(
    principal_class: type[Principal],
    payload: dict[str, Any],
    audiences: tuple[str, ...],
    organization: str | None,
) -> Principal:
    """Turn a verified payload (types already checked) into ``principal_class``."""
    issued_at = payload.get("iat")
    confirmation = payload.get("cnf")
    if type(confirmation) is not dict:
        confirmation = {}
    fields: dict[str, Any] = {
        "subject": payload["sub"],
        "scopes": _scopes_of(payload),
        "audience": audiences,
        "organization": organization,
        "org_id": _text(payload.get("org_id")),
        "bound_key": _text(confirmation.get("jkt")),
        "bound_certificate": _text(confirmation.get("x5t#S256")),
        "org_name": _text(payload.get("org_name")),
        "client_id": payload.get("azp", payload.get("client_id")),
        "is_machine": payload.get("gty") == MACHINE_GRANT_TYPE,
        "issued_at": None if issued_at is None else _from_timestamp(issued_at, _UTC),
        "expires_at": _from_timestamp(payload["exp"], _UTC),
        "claims": Claims._adopt(payload),
    }
    if principal_class is Principal:
        return _trusted_principal(fields)
    try:
        return principal_class.model_validate({**payload, **fields})
    except ValidationError:
        raise InvalidTokenError(Reason.PRINCIPAL) from None
