"""The verifier's options, declared once: name, type, default, environment variable, validation.

`Settings` is a frozen dataclass; each field's metadata says how its ``ISP_JWT_*``
variable is read, and `Settings.__post_init__` validates every field in one place. The
FastAPI adapter, the CLI and the environment reader all build a `Settings`; none of them
checks an option itself. Bad configuration fails here, at construction, with a message
that names the option the user set: a service must not start and then refuse every request.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi_isp_jwt.algorithms import ALGORITHMS
from fastapi_isp_jwt.dpop import DEFAULT_IAT_WINDOW, DPoPMode, DPoPNonces, DPoPPolicy
from fastapi_isp_jwt.errors import ConfigurationError
from fastapi_isp_jwt.grammar import (
    check_endpoint_url,
    check_number,
    parse_domain,
    well_known_url,
)
from fastapi_isp_jwt.keycache.options import (
    check_cooldown,
    check_max_stale,
    check_timeout,
    check_ttl,
)
from fastapi_isp_jwt.organizations import check_organization_options

__all__ = ["DEFAULT_LEEWAY", "ENV_PREFIX", "Settings", "options_from_env"]

DEFAULT_LEEWAY = 30.0
"""Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``."""

ENV_PREFIX = "ISP_JWT_"


# -- how the text of a variable becomes a value (each names the form it expects) -----------


def _csv(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _one_or_csv(raw: str) -> str | list[str]:
    parts = _csv(raw)
    return parts[0] if len(parts) == 1 else parts


def _boolean(raw: str) -> bool:
    folded = raw.strip().lower()
    if folded in ("1", "true", "yes", "on"):
        return True
    if folded in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


_FORMS: dict[Callable[[str], Any], str] = {
    _csv: "a comma-separated list",
    _one_or_csv: "a value or a comma-separated list",
    _boolean: "one of 1, true, yes, on, 0, false, no, off",
    float: "a number, such as 30 or 0.5",
    int: "a whole number, such as 8192",
    str.strip: "a text",
}


def _option(default: Any, env: Callable[[str], Any] | None) -> Any:
    """A settings field: its default and how its variable is read (``None``: no variable)."""
    return field(default=default, metadata={"env": env})


# -- validation, one function per kind of value ------------------------------------------


def _strings(option: str, value: object) -> tuple[str, ...]:
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


def _integer(option: str, value: object, least: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigurationError(f"{option} must be an integer of at least {least}{hint}")
    return value


def _issuer_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ConfigurationError(f"issuer {value!r} must be an http(s) URL")
    if any(c in value for c in "?#") or any(c.isspace() for c in value):
        raise ConfigurationError(f"issuer {value!r} must not hold a query, fragment or spaces")
    host = value.split("://", 1)[1]
    if host.lower().endswith(".auth0.com") and "/" not in host:
        # Auth0 writes iss with the slash: without it every token would be refused as untrusted.
        raise ConfigurationError(
            f"issuer {value!r}: an Auth0 tenant's issuer ends with a slash, {value + '/'!r}"
        )
    return value


def _algorithm(name: str) -> str:
    if name not in ALGORITHMS:
        hint = (
            " (symmetric and 'none' algorithms are never accepted)"
            if name.upper().startswith("HS") or name.lower() == "none"
            else f"; supported: {', '.join(ALGORITHMS)}"
        )
        raise ConfigurationError(f"algorithm {name!r} is not supported{hint}")
    return name


def _audience(value: str) -> str:
    if not value:
        raise ConfigurationError("audience must be a non-empty string or sequence of strings")
    if ":" not in value:
        raise ConfigurationError(
            f"audience {value!r} must be the API identifier URI, such as "
            f"'https://platform.dtc.istreamplanet.net/{value}'"
        )
    if value.endswith("/") and value.startswith("https://platform.dtc.istreamplanet.net/"):
        raise ConfigurationError(
            f"audience {value!r}: platform audiences have no trailing slash "
            f"(tokens carry {value.rstrip('/')!r})"
        )
    return value


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every option of the verifier, checked and normalized when built.

    Give exactly one of ``domain`` (the tenant's host name) or ``issuer`` (exact issuer
    URLs), and ``audience``. ``docs/configuration.md`` explains each option; the derived
    ``issuers``, ``audiences`` and ``jwks_urls`` are what the verifier uses.
    """

    domain: str | Sequence[str] | None = _option(None, _one_or_csv)
    issuer: str | Sequence[str] | None = _option(None, _one_or_csv)
    audience: str | Sequence[str] | None = _option(None, _csv)
    jwks_url: str | None = _option(None, str.strip)
    algorithms: str | Sequence[str] = _option(("RS256",), _csv)
    leeway: float = _option(DEFAULT_LEEWAY, float)
    jwks_ttl: float = _option(600.0, float)
    jwks_cooldown: float = _option(30.0, float)
    jwks_max_stale: float = _option(86400.0, float)
    jwks_timeout: float = _option(5.0, float)
    discovery: bool = _option(False, _boolean)
    organizations: Sequence[str] | None = _option(None, _csv)
    organization_claims: str = _option("ignore", str.strip)
    org_ids: Sequence[str] | None = _option(None, _csv)
    org_names: Sequence[str] | None = _option(None, _csv)
    organization_from: str = _option("audience", str.strip)
    require_typ: bool = _option(False, _boolean)
    max_age: float | None = _option(None, float)
    required_claims: Sequence[str] = _option((), _csv)
    allowed_client_ids: Sequence[str] | None = _option(None, _csv)
    max_token_bytes: int = _option(8192, int)
    token_cache_size: int = _option(10_000, int)
    token_cache_bytes: int = _option(32 * 1024 * 1024, int)
    dpop: str = _option("allowed", str.strip)
    dpop_algorithms: str | Sequence[str] = _option(tuple(ALGORITHMS), _csv)
    dpop_iat_window: float = _option(DEFAULT_IAT_WINDOW, float)
    dpop_nonce_secret: str | None = field(default=None, repr=False, metadata={"env": str.strip})

    issuers: tuple[str, ...] = field(init=False)
    audiences: tuple[str, ...] = field(init=False)
    jwks_urls: Mapping[str, str | None] = field(init=False)
    dpop_policy: DPoPPolicy = field(init=False, repr=False)

    def __post_init__(self) -> None:
        values: dict[str, Any] = {}
        if (self.domain is None) == (self.issuer is None):
            raise ConfigurationError("give exactly one of domain= or issuer=")
        if self.domain is not None:
            domains = [parse_domain("domain", d) for d in _strings("domain", self.domain)]
            issuers = tuple(f"https://{d}/" for d in domains)
            values["domain"] = tuple(domains)
        else:
            issuers = tuple(_issuer_url(i) for i in _strings("issuer", self.issuer))
            values["issuer"] = issuers
        if not issuers:
            raise ConfigurationError("at least one issuer is required")
        if len(set(issuers)) != len(issuers):
            raise ConfigurationError("the same issuer is listed twice")
        values["issuers"] = issuers
        values["jwks_urls"] = self._jwks_urls(issuers)

        audiences = tuple(_audience(a) for a in _strings("audience", self.audience))
        if not audiences:
            raise ConfigurationError("audience must be a non-empty string or sequence of strings")
        values["audience"] = values["audiences"] = audiences

        algorithms = tuple(_algorithm(a) for a in _strings("algorithms", self.algorithms))
        if not algorithms:
            raise ConfigurationError("at least one algorithm is required")
        values["algorithms"] = algorithms

        values["leeway"] = check_number("leeway", self.leeway, allow_zero=True)
        # The key cache's own rules: a JWKSCache built directly refuses the same values.
        values["jwks_ttl"] = check_ttl("jwks_ttl", self.jwks_ttl)
        values["jwks_cooldown"] = check_cooldown("jwks_cooldown", self.jwks_cooldown)
        values["jwks_max_stale"] = check_max_stale("jwks_max_stale", self.jwks_max_stale)
        values["jwks_timeout"] = check_timeout("jwks_timeout", self.jwks_timeout)
        if self.max_age is not None:
            values["max_age"] = check_number("max_age", self.max_age)
        values["discovery"] = bool(self.discovery)
        values["require_typ"] = bool(self.require_typ)
        for name in ("organizations", "org_ids", "org_names", "allowed_client_ids"):
            if getattr(self, name) is not None:
                values[name] = _strings(name, getattr(self, name))
        check_organization_options(
            self.organization_claims,
            values.get("org_ids"),
            values.get("org_names"),
            self.organization_from,
        )
        values["required_claims"] = _strings("required_claims", self.required_claims)
        values["max_token_bytes"] = _integer("max_token_bytes", self.max_token_bytes, 256)
        for name in ("token_cache_size", "token_cache_bytes"):
            values[name] = _integer(name, getattr(self, name), 0, " (0 turns the cache off)")
        values["dpop"] = DPoPMode.parse(self.dpop).value
        values["dpop_algorithms"] = _strings("dpop_algorithms", self.dpop_algorithms)
        secret = self.dpop_nonce_secret
        if secret is not None and not isinstance(secret, str):
            raise ConfigurationError("dpop_nonce_secret must be a text")
        values["dpop_policy"] = DPoPPolicy(
            algorithms=values["dpop_algorithms"],
            iat_window=check_number("dpop_iat_window", self.dpop_iat_window),
            leeway=values["leeway"],
            nonces=None if secret is None else DPoPNonces(secret),
        )
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _jwks_urls(self, issuers: tuple[str, ...]) -> dict[str, str | None]:
        """Where each issuer's keys are fetched; ``None`` means found through discovery."""
        if self.jwks_url is not None:
            if len(issuers) != 1:
                raise ConfigurationError("jwks_url= works with a single issuer only")
            if self.discovery:
                raise ConfigurationError("give jwks_url= or discovery=True, not both")
            return {issuers[0]: check_endpoint_url("jwks_url", self.jwks_url)}
        # The issuer is where the keys come from: the rule for key URLs names it.
        named = "domain" if self.domain is not None else "issuer"
        for issuer in issuers:
            check_endpoint_url(named, issuer)
        if self.discovery:
            return dict.fromkeys(issuers)
        return {iss: well_known_url(iss, "jwks.json") for iss in issuers}

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and validated again."""
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        given.update(changes)
        return Settings(**given)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``ISP_JWT_*`` variables; keyword arguments win."""
        options = options_from_env(environ)
        if "domain" in overrides or "issuer" in overrides:
            # The two name the same thing: a keyword for either replaces both variables.
            options.pop("domain", None)
            options.pop("issuer", None)
        options.update(overrides)
        if "domain" not in options and "issuer" not in options:
            raise ConfigurationError(f"set {ENV_PREFIX}DOMAIN or {ENV_PREFIX}ISSUER")
        if "audience" not in options:
            raise ConfigurationError(f"{ENV_PREFIX}AUDIENCE is not set")
        return cls(**options)


def option_fields() -> tuple[dataclasses.Field[Any], ...]:
    """The fields a user sets, in their documented order."""
    return tuple(f for f in dataclasses.fields(Settings) if f.init)


def options_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read ``ISP_JWT_<OPTION>`` variables into options (keyword arguments of `Settings`).

    Unset or empty variables are left out. A variable that names no option is refused
    with the nearest valid name; a value that does not parse names its variable and the
    form it expects (never the value, which may be secret).
    """
    env = os.environ if environ is None else environ
    readers = {
        ENV_PREFIX + f.name.upper(): (f.name, f.metadata["env"])
        for f in option_fields()
        if f.metadata["env"] is not None
    }
    options: dict[str, Any] = {}
    for variable, raw in env.items():
        if not variable.startswith(ENV_PREFIX):
            continue
        if variable not in readers:
            near = difflib.get_close_matches(variable, readers, n=1)
            hint = f"; did you mean {near[0]}?" if near else f"; known: {', '.join(readers)}"
            raise ConfigurationError(f"{variable} is not a setting{hint}")
        if not raw.strip():
            continue
        name, parse = readers[variable]
        try:
            options[name] = parse(raw)
        except ValueError:
            raise ConfigurationError(f"{variable} must be {_FORMS[parse]}") from None
    return options
