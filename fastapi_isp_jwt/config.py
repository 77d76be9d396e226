"""Validated options of a verifier, and how they are read from the environment.

Bad configuration fails here, at construction, with a message that names the option:
a service must not start and then refuse every request.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi_isp_jwt.algorithms import ALGORITHMS
from fastapi_isp_jwt.errors import ConfigurationError

__all__ = ["DEFAULT_LEEWAY", "ENV_PREFIX", "AuthSettings", "options_from_env"]

DEFAULT_LEEWAY = 30.0
"""Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``."""

ENV_PREFIX = "ISP_JWT_"

_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")


def _issuer_of_domain(domain: str) -> str:
    if not isinstance(domain, str) or _DOMAIN.fullmatch(domain) is None:
        raise ConfigurationError(
            f"domain {domain!r} must be a bare host name such as 'istreamplanet.auth0.com' "
            "(no scheme, no path)"
        )
    return f"https://{domain}/"


def _issuer_url(issuer: str) -> str:
    if not isinstance(issuer, str) or not issuer.startswith(("https://", "http://")):
        raise ConfigurationError(f"issuer {issuer!r} must be an http(s) URL")
    if any(c in issuer for c in "?#") or any(c.isspace() for c in issuer):
        raise ConfigurationError(f"issuer {issuer!r} must not hold a query, fragment or spaces")
    return issuer


def _strings(option: str, value: str | Sequence[str] | None) -> tuple[str, ...]:
    """A string or a sequence of strings as a tuple; anything else names the option."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (bytes, Mapping)) or not isinstance(value, Sequence | frozenset | set):
        raise ConfigurationError(f"{option} must be a string or a sequence of strings")
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise ConfigurationError(f"{option} must be a string or a sequence of strings")
    return items


def _optional_set(option: str, value: str | Sequence[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(_strings(option, value))


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, not {value!r}")
    return float(value)


def default_jwks_url(issuer: str) -> str:
    base = issuer if issuer.endswith("/") else issuer + "/"
    return base + ".well-known/jwks.json"


@dataclass(frozen=True)
class AuthSettings:
    """Every option of `JWTAuth`, checked and normalized."""

    issuers: tuple[str, ...]
    audiences: tuple[str, ...]
    jwks_urls: Mapping[str, str | None]
    algorithms: frozenset[str]
    leeway: float
    jwks_ttl: float
    jwks_cooldown: float
    jwks_max_stale: float
    jwks_timeout: float
    discovery: bool
    organizations: frozenset[str] | None
    require_typ: bool
    max_age: float | None
    required_claims: frozenset[str]
    allowed_client_ids: frozenset[str] | None
    max_token_bytes: int
    token_cache_size: int

    @classmethod
    def create(
        cls,
        *,
        domain: str | Sequence[str] | None,
        issuer: str | Sequence[str] | None,
        audience: str | Sequence[str],
        jwks_url: str | None,
        algorithms: Sequence[str],
        leeway: float,
        jwks_ttl: float,
        jwks_cooldown: float,
        jwks_max_stale: float,
        jwks_timeout: float,
        discovery: bool,
        organizations: Sequence[str] | None,
        require_typ: bool,
        max_age: float | None,
        required_claims: Sequence[str],
        allowed_client_ids: Sequence[str] | None,
        max_token_bytes: int,
        token_cache_size: int,
    ) -> AuthSettings:
        if (domain is None) == (issuer is None):
            raise ConfigurationError("give exactly one of domain= or issuer=")
        issuers = (
            tuple(_issuer_of_domain(d) for d in _strings("domain", domain))
            if domain is not None
            else tuple(_issuer_url(i) for i in _strings("issuer", issuer))
        )
        if not issuers:
            raise ConfigurationError("at least one issuer is required")
        if len(set(issuers)) != len(issuers):
            raise ConfigurationError("the same issuer is listed twice")

        if jwks_url is not None:
            if len(issuers) != 1:
                raise ConfigurationError("jwks_url= works with a single issuer only")
            if discovery:
                raise ConfigurationError("give jwks_url= or discovery=True, not both")
            if not isinstance(jwks_url, str) or not jwks_url.startswith(("https://", "http://")):
                raise ConfigurationError(f"jwks_url {jwks_url!r} must be an http(s) URL")
        # None means: the key cache discovers it (or derives <issuer>.well-known/jwks.json).
        jwks_urls: dict[str, str | None] = {
            iss: (
                jwks_url if jwks_url is not None else None if discovery else default_jwks_url(iss)
            )
            for iss in issuers
        }

        audiences = _strings("audience", audience)
        if not audiences or any(not isinstance(a, str) or not a for a in audiences):
            raise ConfigurationError("audience must be a non-empty string or sequence of strings")

        algorithms = _strings("algorithms", algorithms)
        if not algorithms:
            raise ConfigurationError("at least one algorithm is required")
        for name in algorithms:
            if name not in ALGORITHMS:
                hint = (
                    " (symmetric and 'none' algorithms are never accepted)"
                    if name.upper().startswith("HS") or name.lower() == "none"
                    else f"; supported: {', '.join(ALGORITHMS)}"
                )
                raise ConfigurationError(f"algorithm {name!r} is not supported{hint}")

        max_age_value = None if max_age is None else _positive("max_age", max_age)
        if (
            isinstance(max_token_bytes, bool)
            or not isinstance(max_token_bytes, int)
            or max_token_bytes < 256
        ):
            raise ConfigurationError("max_token_bytes must be an integer of at least 256")
        if (
            isinstance(token_cache_size, bool)
            or not isinstance(token_cache_size, int)
            or token_cache_size < 0
        ):
            raise ConfigurationError(
                "token_cache_size must be an integer >= 0 (0 turns the cache off)"
            )
        return cls(
            issuers=issuers,
            audiences=audiences,
            jwks_urls=jwks_urls,
            algorithms=frozenset(algorithms),
            leeway=_positive("leeway", leeway, allow_zero=True),
            jwks_ttl=_positive("jwks_ttl", jwks_ttl),
            jwks_cooldown=_positive("jwks_cooldown", jwks_cooldown, allow_zero=True),
            jwks_max_stale=_positive("jwks_max_stale", jwks_max_stale, allow_zero=True),
            jwks_timeout=_positive("jwks_timeout", jwks_timeout),
            discovery=bool(discovery),
            organizations=None
            if organizations is None
            else frozenset(_strings("organizations", organizations)),
            require_typ=bool(require_typ),
            max_age=max_age_value,
            required_claims=frozenset(_strings("required_claims", required_claims)),
            allowed_client_ids=(
                None
                if allowed_client_ids is None
                else frozenset(_strings("allowed_client_ids", allowed_client_ids))
            ),
            max_token_bytes=max_token_bytes,
            token_cache_size=token_cache_size,
        )


def _csv(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _boolean(raw: str) -> bool:
    folded = raw.strip().lower()
    if folded in ("1", "true", "yes", "on"):
        return True
    if folded in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)


# Option name -> how its environment variable's text becomes a value.
_ENV_PARSERS: dict[str, Callable[[str], Any]] = {
    "domain": _csv,
    "issuer": _csv,
    "audience": _csv,
    "jwks_url": str.strip,
    "algorithms": _csv,
    "leeway": float,
    "jwks_ttl": float,
    "jwks_cooldown": float,
    "jwks_max_stale": float,
    "jwks_timeout": float,
    "discovery": _boolean,
    "organizations": _csv,
    "require_typ": _boolean,
    "max_age": float,
    "required_claims": _csv,
    "allowed_client_ids": _csv,
    "max_token_bytes": int,
    "token_cache_size": int,
}


def options_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read ``ISP_JWT_<OPTION>`` variables into keyword arguments for ``JWTAuth``.

    Lists are comma-separated; unset or empty variables are left out. A value that does
    not parse names its variable.
    """
    env = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    for name, parse in _ENV_PARSERS.items():
        variable = ENV_PREFIX + name.upper()
        raw = env.get(variable)
        if raw is None or not raw.strip():
            continue
        try:
            options[name] = parse(raw)
        except ValueError:
            raise ConfigurationError(f"{variable} has an invalid value") from None
    for name in ("domain", "issuer"):
        if name in options and len(options[name]) == 1:
            options[name] = options[name][0]
    return options
