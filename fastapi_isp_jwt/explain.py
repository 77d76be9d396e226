"""Explain mode: which refusals are probably configuration mistakes, and what to change.

`hints` reads the settings, the refused token's header and claims (unverified: they are
only compared, never trusted) and the refusal's reason, and returns short sentences for
the mistakes people actually make with Auth0: an issuer without its trailing slash, a
custom domain beside the tenant domain, a token requested without ``audience``, an ID token
sent instead of an access token, a token for another organization, permissions granted
under another name. Hints quote configured values only; the token's own values are in the
refusal's log fields and in `compare`, which ``fastapi-isp-jwt inspect`` prints.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi_isp_jwt.algorithms import ALGORITHMS
from fastapi_isp_jwt.audience import ORGANIZATION_PLACEHOLDER, AudiencePolicy
from fastapi_isp_jwt.errors import InvalidTokenError
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.settings import Settings

__all__ = ["Comparison", "compare", "hints"]

_AUTH0_HOST_SUFFIX = ".auth0.com"
# Claims only an OpenID Connect ID token carries (OIDC Core §2, §3.1.3.6, §3.3.2.11).
_ID_TOKEN_CLAIMS = ("nonce", "at_hash", "c_hash")
_SHOWN_LIMIT = 200


def hints(
    settings: Settings,
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    reason: Reason,
    *,
    required_scopes: Collection[str] = (),
) -> tuple[str, ...]:
    """Short hints for a refusal that looks like a configuration mistake; often none."""
    found: list[str] = []
    if reason is Reason.ALGORITHM:
        found.extend(_algorithm_hints(settings, header.get("alg")))
    if reason is Reason.ISSUER:
        for_this_api = _audience_matches(settings, claims.get("aud"))
        found.extend(_issuer_hints(settings, claims.get("iss"), for_this_api))
    if _looks_like_id_token(claims):
        found.append(
            "this looks like an ID token (it has nonce/at_hash, or its audience is a client "
            "id): send the access token, requested with the API's audience"
        )
    elif reason is Reason.AUDIENCE:
        found.extend(_audience_hints(settings, _audiences_of(claims.get("aud"))))
    if reason is Reason.SCOPE:
        found.extend(_scope_hints(claims, required_scopes))
    return tuple(found)


def _algorithm_hints(settings: Settings, alg: object) -> Iterable[str]:
    if not isinstance(alg, str):
        return
    if alg.upper().startswith("HS"):
        yield (
            "the token is signed with a shared secret (HS*): set the API's signing "
            "algorithm to RS256 in the Auth0 dashboard"
        )
    elif alg in ALGORITHMS:
        yield (
            f"the token's algorithm is supported but not configured: algorithms= is "
            f"{', '.join(settings.algorithms)}"
        )


def _issuer_hints(settings: Settings, iss: object, for_this_api: bool) -> Iterable[str]:
    if not isinstance(iss, str):
        return
    token_url = _split(iss)
    for configured in settings.issuers:
        if iss.rstrip("/") == configured.rstrip("/"):
            yield (
                f"the token's issuer differs from the configured {configured!r} only by a "
                "trailing slash; Auth0 issuers end with '/' (or configure domain= instead)"
            )
            return
        configured_url = _split(configured)
        if (
            configured_url.scheme != token_url.scheme
            or configured_url.path != token_url.path
            or configured_url.host == token_url.host
        ):
            continue
        tenant_domains = sum(
            url.host.endswith(_AUTH0_HOST_SUFFIX) for url in (configured_url, token_url)
        )
        # Any issuer but the tenant's would fit "another host": only a token made for
        # this very API suggests the tenant's other domain rather than a stranger.
        if tenant_domains == 1 and for_this_api:
            yield (
                f"the token's issuer is another host than the configured {configured!r}: "
                "Auth0 names the domain the client used (custom domain or tenant domain); "
                "have clients use the configured one, or trust both"
            )
            return
        if tenant_domains == 2:
            yield (
                f"the token comes from another Auth0 tenant than {configured!r} "
                "(a development tenant's token sent to production, or the reverse?)"
            )
            return


@dataclass(frozen=True, slots=True)
class _URL:
    scheme: str
    host: str
    path: str


def _split(url: str) -> _URL:
    """Scheme, host (lowercase, port kept) and path of an issuer URL; enough to compare two."""
    # Issuers are plain http(s) URLs without query or fragment (Settings insists on it
    # for the configured ones); a token's odd value only fails to look alike.
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return _URL(scheme.lower(), host.lower(), slash + path)


def _audiences_of(aud: object) -> tuple[str, ...]:
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list):
        return tuple(a for a in aud if isinstance(a, str))
    return ()


def _looks_like_id_token(claims: Mapping[str, Any]) -> bool:
    if any(name in claims for name in _ID_TOKEN_CLAIMS):
        return True
    audiences = _audiences_of(claims.get("aud"))
    # An ID token's audience is the client id; an API identifier is a URI (Settings insists).
    return len(audiences) == 1 and (audiences[0] == claims.get("azp") or ":" not in audiences[0])


def _audience_hints(settings: Settings, audiences: Sequence[str]) -> Iterable[str]:
    if not audiences:
        return
    configured = ", ".join(settings.audiences)
    if all(a.endswith("/userinfo") for a in audiences):
        yield (
            "the token's only audience is the tenant's /userinfo: the client asked for a "
            f"token without the audience parameter; it must ask for {configured}"
        )
        return
    for audience in settings.audiences:
        if any(a != audience and a.rstrip("/") == audience.rstrip("/") for a in audiences):
            yield (
                f"the token's audience differs from {audience!r} only by a trailing slash: "
                "the API identifier must match exactly"
            )
            return
    if _for_another_organization(settings, audiences):
        allowed = (
            f" (organizations= is {', '.join(settings.organizations)})"
            if settings.organizations is not None
            else ""
        )
        yield f"the token is for another organization than this service accepts{allowed}"


def _for_another_organization(settings: Settings, audiences: Sequence[str]) -> bool:
    """Whether an audience has a configured audience's shape with another organization."""
    for configured in settings.audiences:
        if ORGANIZATION_PLACEHOLDER in configured:
            prefix, _, suffix = configured.partition(ORGANIZATION_PLACEHOLDER)
            for audience in audiences:
                middle = audience[len(prefix) : len(audience) - len(suffix)]
                if (
                    settings.organizations is not None
                    and audience.startswith(prefix)
                    and audience.endswith(suffix)
                    and middle
                    and "/" not in middle
                    and middle not in settings.organizations
                ):
                    return True  # the template fits: the allow-list left it out
            continue
        base, _, organization = configured.rpartition("/")
        for audience in audiences:
            other_base, _, other = audience.rpartition("/")
            if other_base == base and other and other != organization:
                return True
    return False


def _scope_hints(claims: Mapping[str, Any], required: Collection[str]) -> Iterable[str]:
    permissions = claims.get("permissions")
    if not isinstance(permissions, list) or not permissions:
        return
    granted = {p for p in permissions if isinstance(p, str)}
    scope = claims.get("scope")
    if isinstance(scope, str):
        granted.update(scope.split(" "))
    folded = {_folded(p) for p in granted}
    if any(s not in granted and _folded(s) in folded for s in required):
        yield (
            "the token's permissions name the required scope differently (case or "
            "separator): scopes are compared exactly"
        )
    elif not scope:
        yield (
            "the token carries Auth0 RBAC permissions but no scope claim: grant the "
            "required scope as a permission of this API to the caller's role or client"
        )


def _folded(scope: str) -> str:
    return scope.lower().replace(".", ":").replace("_", ":").replace("-", ":")


# -- inspect's table ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    """One check as ``inspect`` shows it: the token's value beside the configured one.

    ``matches`` is ``None`` when it cannot be told here (the key id, without the keys).
    """

    check: str
    token_value: str
    configured_value: str
    matches: bool | None


def compare(
    settings: Settings,
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    *,
    known_kids: Collection[str] | None = None,
) -> tuple[Comparison, ...]:
    """Issuer, audience, algorithm and key id: the token's value, the configured one."""
    iss, aud, alg, kid = claims.get("iss"), claims.get("aud"), header.get("alg"), header.get("kid")
    if known_kids is None:
        sources = [url or f"discovery from {iss_}" for iss_, url in settings.jwks_urls.items()]
        kid_row = Comparison("key id", _shown(kid, "kid" in header), _listed(sources), None)
    else:
        kid_row = Comparison(
            "key id",
            _shown(kid, "kid" in header),
            _listed(sorted(known_kids)),
            isinstance(kid, str) and kid in known_kids,
        )
    return (
        Comparison(
            "issuer",
            _shown(iss, "iss" in claims),
            _listed(settings.issuers),
            iss in settings.issuers,
        ),
        Comparison(
            "audience",
            _shown(aud, "aud" in claims),
            _listed(settings.audiences),
            _audience_matches(settings, aud),
        ),
        Comparison(
            "algorithm",
            _shown(alg, "alg" in header),
            _listed(settings.algorithms),
            alg in settings.algorithms,
        ),
        kid_row,
    )


def _audience_matches(settings: Settings, aud: object) -> bool:
    try:
        AudiencePolicy(settings.audiences, settings.organizations).match(aud)
    except InvalidTokenError:
        return False
    return True


def _shown(value: object, present: bool) -> str:
    if not present:
        return "(absent)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= _SHOWN_LIMIT else text[:_SHOWN_LIMIT] + "..."


def _listed(values: Iterable[str]) -> str:
    return ", ".join(values) or "(none)"
