"""Which ``aud`` values a service accepts, including the per-organization template.

An audience is either an exact URI or a template with one ``{organization}`` placeholder
standing for a whole path segment, e.g. ``https://platform.dtc.istreamplanet.net/{organization}``.
A template never matches by prefix or suffix alone: the organization must be one
non-empty segment of unreserved characters, with nothing (no query, no further segment)
around it but the template's own text.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from fastapi_isp_jwt.errors import ConfigurationError, InvalidTokenError
from fastapi_isp_jwt.reasons import Reason

__all__ = [
    "ORGANIZATION_PLACEHOLDER",
    "PLATFORM_AUDIENCE_PREFIX",
    "AudienceMatch",
    "AudiencePolicy",
]

ORGANIZATION_PLACEHOLDER = "{organization}"
PLATFORM_AUDIENCE_PREFIX = "https://platform.dtc.istreamplanet.net/"

_MEMO_SIZE = 256

# RFC 3986 unreserved characters: an organization identifier is one plain path segment.
_ORGANIZATION = re.compile(r"[A-Za-z0-9._~-]+")


def _valid_organization(candidate: str) -> bool:
    return candidate not in (".", "..") and _ORGANIZATION.fullmatch(candidate) is not None


@dataclass(frozen=True, slots=True)
class AudienceMatch:
    """The audiences of a token that the service accepts, and its organization if any."""

    audiences: tuple[str, ...]
    organization: str | None


@dataclass(frozen=True, slots=True)
class _Template:
    prefix: str
    suffix: str

    def organization_in(self, audience: str) -> str | None:
        if len(audience) <= len(self.prefix) + len(self.suffix):
            return None
        if not (audience.startswith(self.prefix) and audience.endswith(self.suffix)):
            return None
        candidate = audience[len(self.prefix) : len(audience) - len(self.suffix)]
        return candidate if _valid_organization(candidate) else None


# An exact audience of the platform names its organization as a template would.
_PLATFORM_TEMPLATE = _Template(PLATFORM_AUDIENCE_PREFIX, "")


def _parse_template(audience: str) -> _Template:
    if audience.count(ORGANIZATION_PLACEHOLDER) != 1:
        raise ConfigurationError(
            f"audience template {audience!r} must hold {ORGANIZATION_PLACEHOLDER} exactly once"
        )
    prefix, suffix = audience.split(ORGANIZATION_PLACEHOLDER)
    if not prefix.endswith("/") or (suffix and not suffix.startswith("/")):
        raise ConfigurationError(
            f"audience template {audience!r}: "
            f"{ORGANIZATION_PLACEHOLDER} must be a whole path segment"
        )
    if "{" in prefix + suffix or "}" in prefix + suffix:
        raise ConfigurationError(f"audience template {audience!r} has an unknown placeholder")
    return _Template(prefix, suffix)


class AudiencePolicy:
    """Decides whether a token's ``aud`` claim names this service, and for which organization."""

    def __init__(
        self, audiences: Sequence[str], organizations: Collection[str] | None = None
    ) -> None:
        if not audiences:
            raise ConfigurationError("at least one audience is required")
        exact: dict[str, str | None] = {}
        templates: list[_Template] = []
        for audience in audiences:
            if not isinstance(audience, str) or not audience:
                raise ConfigurationError("every audience must be a non-empty string")
            if "{" in audience or "}" in audience:
                templates.append(_parse_template(audience))
            else:
                exact[audience] = _PLATFORM_TEMPLATE.organization_in(audience)
        if organizations is not None:
            organizations = frozenset(organizations)
            bad = sorted(org for org in organizations if not _valid_organization(org))
            if bad:
                raise ConfigurationError(f"invalid organization identifiers: {bad}")
            if not templates:
                raise ConfigurationError(
                    "an organization allow-list needs an audience template "
                    f"with {ORGANIZATION_PLACEHOLDER}"
                )
        self._exact = exact
        self._templates = tuple(templates)
        self._organizations = organizations
        self._memo: dict[object, AudienceMatch] = {}

    def match(self, aud: object) -> AudienceMatch:
        """Check an ``aud`` claim (a string or an array of strings, RFC 7519 §4.1.3)."""
        # Tokens for one service repeat a handful of audience values: remember the
        # verdicts on them. Bounded: a flood of distinct values only empties it.
        memo_key: object = aud if type(aud) is str else None
        if memo_key is None and type(aud) is list and all(type(a) is str for a in aud):
            memo_key = tuple(aud)
        if memo_key is not None:
            known = self._memo.get(memo_key)
            if known is None:
                known = self._match(aud)
                if len(self._memo) >= _MEMO_SIZE:
                    self._memo.clear()
                self._memo[memo_key] = known
            return known
        return self._match(aud)

    def _match(self, aud: object) -> AudienceMatch:
        if type(aud) is str:
            candidates: Sequence[object] = (aud,)
        elif type(aud) is list and aud:
            candidates = aud
        else:
            raise InvalidTokenError(Reason.AUDIENCE_MALFORMED)
        accepted: list[str] = []
        organizations: set[str] = set()
        for candidate in candidates:
            if type(candidate) is not str:
                raise InvalidTokenError(Reason.AUDIENCE_MALFORMED)
            if candidate in self._exact:
                accepted.append(candidate)
                organization = self._exact[candidate]
                if organization is not None:
                    organizations.add(organization)
                continue
            for template in self._templates:
                organization = template.organization_in(candidate)
                if organization is not None and (
                    self._organizations is None or organization in self._organizations
                ):
                    accepted.append(candidate)
                    organizations.add(organization)
                    break
        if not accepted:
            raise InvalidTokenError(Reason.AUDIENCE)
        if len(organizations) > 1:
            # One principal, one tenant: a token that names several accepted organizations
            # would leave the route to guess whose data it may touch.
            raise InvalidTokenError(Reason.ORGANIZATIONS)
        return AudienceMatch(tuple(accepted), organizations.pop() if organizations else None)
