"""Auth0 Organizations: the policy on a verified token's ``org_id`` and ``org_name`` claims.

A tenant with Organizations turned on writes the organization a user logged in to (or a
machine client was granted for) as ``org_id`` (``org_...``), and ``org_name`` when the tenant
is set to include names. The policy has three modes:

- ``ignore`` (the default): the claims are not checked; the principal still shows them.
- ``allow``: tokens with or without an organization pass; claims present must be strings
  and, when allow-lists are given, on them.
- ``require``: every token must carry a non-empty ``org_id``, checked as with ``allow``.

When both ``org_ids`` and ``org_names`` are given, both claims must be on their lists.
Which organization a request is *about* is the adapter's business (`JWTAuth.bound_to`);
here is only which organizations a token may come from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi_isp_jwt.errors import ConfigurationError, InvalidTokenError
from fastapi_isp_jwt.reasons import Reason

__all__ = [
    "ORGANIZATION_CLAIMS_MODES",
    "ORGANIZATION_SOURCES",
    "OrganizationPolicy",
    "check_organization_options",
]

ORGANIZATION_CLAIMS_MODES = ("ignore", "allow", "require")
ORGANIZATION_SOURCES = ("audience", "org_id")
_ORG_ID_PREFIX = "org_"


def check_organization_options(
    mode: str,
    org_ids: tuple[str, ...] | None,
    org_names: tuple[str, ...] | None,
    organization_from: str,
) -> None:
    """Refuse organization options that cannot work together, naming the one to change."""
    if mode not in ORGANIZATION_CLAIMS_MODES:
        raise ConfigurationError(
            f"organization_claims must be one of {', '.join(ORGANIZATION_CLAIMS_MODES)}, "
            f"not {mode!r}"
        )
    if organization_from not in ORGANIZATION_SOURCES:
        raise ConfigurationError(
            f"organization_from must be one of {', '.join(ORGANIZATION_SOURCES)}, "
            f"not {organization_from!r}"
        )
    needs_claims = [
        name
        for name, given in (
            ("org_ids", org_ids is not None),
            ("org_names", org_names is not None),
            ("organization_from='org_id'", organization_from == "org_id"),
        )
        if given
    ]
    if mode == "ignore" and needs_claims:
        raise ConfigurationError(
            f"{needs_claims[0]} reads the org_id and org_name claims: "
            "set organization_claims to 'allow' or 'require'"
        )
    for name, values in (("org_ids", org_ids), ("org_names", org_names)):
        if values is not None and not values:
            raise ConfigurationError(f"{name} must not be empty (None accepts any organization)")
    misplaced = [value for value in org_ids or () if not value.startswith(_ORG_ID_PREFIX)]
    if misplaced:
        raise ConfigurationError(
            f"org_ids holds Auth0 organization IDs (org_...), not {misplaced[0]!r}; "
            "list organization names in org_names"
        )
    # The tenant only issues lowercase names: a capital letter could never match.
    capitalized = [value for value in org_names or () if value != value.lower()]
    if capitalized:
        raise ConfigurationError(
            f"org_names: Auth0 organization names are lowercase, {capitalized[0]!r} is not"
        )


class OrganizationPolicy:
    """Checks a verified payload's Auth0 Organizations claims against the settings."""

    __slots__ = ("_mode", "_org_ids", "_org_names")

    def __init__(
        self, mode: str, org_ids: Sequence[str] | None, org_names: Sequence[str] | None
    ) -> None:
        self._mode = mode
        self._org_ids = None if org_ids is None else frozenset(org_ids)
        self._org_names = None if org_names is None else frozenset(org_names)

    def check(self, payload: Mapping[str, Any]) -> None:
        """Raise `InvalidTokenError` unless the token's organization is acceptable."""
        if self._mode == "ignore":
            return
        org_id = payload.get("org_id")
        org_name = payload.get("org_name")
        for claim, value in (("org_id", org_id), ("org_name", org_name)):
            if value is not None and type(value) is not str:
                raise InvalidTokenError(Reason.CLAIM_MALFORMED, claim)
        if not org_id and self._mode == "require":  # an empty org_id names none either
            raise InvalidTokenError(Reason.ORGANIZATION_MISSING)
        if org_id is None and org_name is None:
            return
        if self._org_ids is not None and org_id not in self._org_ids:
            raise InvalidTokenError(Reason.ORGANIZATION_NOT_ALLOWED)
        if self._org_names is not None and org_name not in self._org_names:
            raise InvalidTokenError(Reason.ORGANIZATION_NOT_ALLOWED)
