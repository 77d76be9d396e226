"""The verified caller handed to routes, and how a verified payload becomes one."""

from __future__ import annotations

import sys
from collections.abc import Mapping
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

from fastapi_isp_jwt.claimset import Claims, adopted, common_text, laid_out, weight_of
from fastapi_isp_jwt.errors import InvalidTokenError
from fastapi_isp_jwt.reasons import Reason

__all__ = ["Claims", "Principal", "build_principal", "share_common_values"]

MACHINE_GRANT_TYPE = "client-credentials"


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
        return value.to_dict() if isinstance(value, Claims) else dict(value)

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
_set_attribute = object.__setattr__


class _AllFieldsSet(set[str]):
    """The one "fields set" every trusted principal shares; a copy of it is a set again.

    pydantic copies a model's fields set before it changes it (``model_copy``), and a
    frozen model never changes it in place: sharing one saves a set per principal. Its
    serializer needs a real set; any change in place is refused, so that no principal
    can reach the others through it.
    """

    __slots__ = ()

    def _read_only(self, *_: object) -> None:
        raise TypeError("a verified principal's fields set is shared and read-only")

    add = discard = remove = pop = clear = update = _read_only  # type: ignore[assignment]
    difference_update = intersection_update = _read_only
    symmetric_difference_update = _read_only
    __ior__ = __iand__ = __isub__ = __ixor__ = _read_only  # type: ignore[assignment]

    def __copy__(self) -> set[str]:
        return set(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> set[str]:
        return set(self)

    def __reduce__(self) -> tuple[type[set[str]], tuple[list[str]]]:
        return (set, (list(self),))


_ALL_FIELDS = _AllFieldsSet(Principal.model_fields)  # set's own constructor: not guarded


def _trusted_principal(fields: dict[str, Any]) -> Principal:
    """A Principal from values the claim rules already checked, without re-validation.

    This is what ``model_construct`` does, minus its per-call bookkeeping: it runs on
    every request that presents a new token. A test holds it equal to validation.
    """
    principal = Principal.__new__(Principal)
    _set_attribute(principal, "__dict__", fields)
    _set_attribute(principal, "__pydantic_fields_set__", _ALL_FIELDS)
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
    # Runs for every new token: local names, no helper calls, nothing looked up twice.
    get = payload.get
    issued_at = get("iat")
    confirmation = get("cnf")
    bound_key = bound_certificate = None
    if type(confirmation) is dict:
        bound_key = _text(confirmation.get("jkt"))
        bound_certificate = _text(confirmation.get("x5t#S256"))
    org_id = get("org_id")
    org_name = get("org_name")
    fields: dict[str, Any] = {
        "subject": payload["sub"],
        "scopes": _scopes_of(payload),
        "audience": audiences,
        "organization": organization,
        "org_id": org_id if type(org_id) is str else None,
        "org_name": org_name if type(org_name) is str else None,
        "bound_key": bound_key,
        "bound_certificate": bound_certificate,
        "client_id": payload["azp"] if "azp" in payload else get("client_id"),
        "is_machine": get("gty") == MACHINE_GRANT_TYPE,
        "issued_at": None if issued_at is None else _from_timestamp(issued_at, _UTC),
        "expires_at": _from_timestamp(payload["exp"], _UTC),
        "claims": adopted(payload),
    }
    if principal_class is Principal:
        return _trusted_principal(fields)
    try:
        return principal_class.model_validate({**payload, **fields})
    except ValidationError:
        raise InvalidTokenError(Reason.PRINCIPAL) from None


# -- what a remembered principal costs -------------------------------------------------

_PRINCIPAL_TEXT_FIELDS = ("client_id", "org_id", "org_name")
_PRINCIPAL_OWN_BYTES = sys.getsizeof(Principal.__new__(Principal)) + 2 * sys.getsizeof(
    datetime.fromtimestamp(0, _UTC)
)
_common_scopes: dict[frozenset[str], frozenset[str]] = {}


def _fields_template() -> dict[str, Any]:
    # Attributes set one by one make a dict that shares its key table with the class's
    # other instances (CPython); a copy of it keeps sharing, and stores values only.
    template = Principal.__new__(Principal)
    for name in Principal.model_fields:
        _set_attribute(template, name, None)
    return template.__dict__


_FIELDS_TEMPLATE = _fields_template()


def share_common_values(principal: Principal) -> tuple[Principal, int]:
    """An equal principal to remember, sharing what many tokens repeat; its own bytes.

    Claim names, and the values of `_COMMON_CLAIMS` (issuer, audience, client, scope,
    permissions...), then point at one copy each across every principal. The bytes are
    what it still holds alone (its subject is a claim, counted with them). Raises
    RecursionError for claims nested deeper than Python recurses.
    """
    fields = dict(principal.__dict__)
    for name in _PRINCIPAL_TEXT_FIELDS:
        value = fields.get(name)
        if type(value) is str:
            fields[name] = common_text(value)
    scopes = fields.get("scopes")
    if type(scopes) is frozenset:
        if len(_common_scopes) >= _SCOPE_MEMO_SIZE:
            _common_scopes.clear()
        fields["scopes"] = _common_scopes.setdefault(scopes, scopes)
    claims = fields.get("claims")
    if isinstance(claims, Claims):
        fields["claims"], alone = laid_out(claims)
    else:
        alone = weight_of(claims)
    if type(principal) is not Principal:
        for name, value in fields.items():
            if name not in _ALL_FIELDS:  # a subclass's own fields: copies of claims, or not
                alone += weight_of(value)
        twin = principal.model_copy(update=fields)
        return twin, _PRINCIPAL_OWN_BYTES + sys.getsizeof(twin.__dict__) + alone
    compact = _FIELDS_TEMPLATE.copy()
    compact.update(fields)  # every key is there already: the copy keeps sharing the table
    twin = _trusted_principal(compact)
    return twin, _PRINCIPAL_OWN_BYTES + sys.getsizeof(twin.__dict__) + alone
