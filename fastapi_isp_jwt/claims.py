"""Registered-claim checks on a payload whose signature has already been verified.

Times are JSON numbers (never booleans or numeric strings) compared with a leeway that
absorbs clock skew between the issuer and this service.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fastapi_isp_jwt.errors import InvalidTokenError
from fastapi_isp_jwt.reasons import Reason

__all__ = ["ClaimRules", "check_claims"]


# NumericDates outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z are not dates an
# issuer means, and cannot all be represented as a datetime.
_EARLIEST_DATE = 0
_LATEST_DATE = 253402300799


_ABSENT: Any = object()


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """The claim policy of one verifier, fixed at configuration time."""

    leeway: float
    max_age: float | None = None
    required_claims: frozenset[str] = frozenset()
    allowed_client_ids: frozenset[str] | None = None


def _numeric_date(payload: dict[str, Any], name: str) -> float | None:
    value = payload.get(name, _ABSENT)
    if value is _ABSENT:
        return None
    kind = type(value)
    # bool is an int subclass: `true` is not a date; nor is null, a string, a list...
    if kind is not int and (kind is not float or not math.isfinite(value)):
        raise InvalidTokenError(Reason.CLAIM_NOT_NUMBER, name)
    # Compared as numbers, never converted first: an int like 10**400 does not fit a
    # float, and a date past year 9999 does not fit a datetime for the Principal.
    if not _EARLIEST_DATE <= value <= _LATEST_DATE:
        raise InvalidTokenError(Reason.CLAIM_OUT_OF_RANGE, name)
    return value  # type: ignore[no-any-return]


# Claims that, when present, must be strings (a null is not an absent claim).
_STRING_CLAIMS = ("scope", "azp", "client_id", "gty")


def check_claims(payload: dict[str, Any], rules: ClaimRules, now: float) -> float:
    """Check time, shape and policy claims; return when the token stops being valid.

    The returned deadline (epoch seconds, leeway included) is how long a verified-token
    cache may keep answering for this token.
    """
    leeway = rules.leeway
    expires_at = _numeric_date(payload, "exp")
    if expires_at is None:
        raise InvalidTokenError(Reason.NO_EXPIRY)
    if now >= expires_at + leeway:
        raise InvalidTokenError(Reason.EXPIRED)
    not_before = _numeric_date(payload, "nbf")
    if not_before is not None and now + leeway < not_before:
        raise InvalidTokenError(Reason.NOT_YET_VALID)
    issued_at = _numeric_date(payload, "iat")
    if issued_at is not None and now + leeway < issued_at:
        raise InvalidTokenError(Reason.ISSUED_IN_FUTURE)
    deadline = expires_at + leeway
    if rules.max_age is not None:
        if issued_at is None:
            raise InvalidTokenError(Reason.NO_ISSUE_TIME)
        too_old_at = issued_at + rules.max_age + leeway
        if now >= too_old_at:
            raise InvalidTokenError(Reason.TOO_OLD)
        deadline = min(deadline, too_old_at)

    if type(payload.get("sub")) is not str:
        raise InvalidTokenError(Reason.NO_SUBJECT)
    for name in _STRING_CLAIMS:
        value = payload.get(name, _ABSENT)
        if value is not _ABSENT and type(value) is not str:
            raise InvalidTokenError(Reason.CLAIM_MALFORMED, name)
    permissions = payload.get("permissions")
    if permissions is not None and (
        type(permissions) is not list or any(type(p) is not str for p in permissions)
    ):
        raise InvalidTokenError(Reason.CLAIM_MALFORMED, "permissions")

    if rules.required_claims and not rules.required_claims.issubset(payload):
        raise InvalidTokenError(Reason.REQUIRED_CLAIM)
    if rules.allowed_client_ids is not None:
        client = payload.get("azp", payload.get("client_id"))
        if client not in rules.allowed_client_ids:
            raise InvalidTokenError(Reason.CLIENT)
    return deadline
