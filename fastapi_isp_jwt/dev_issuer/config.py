"""What the dev issuer knows: its port, clients, users and the APIs it issues tokens for.

The defaults are pinned because tools and docs script against them: the client
``dev-client`` with secret ``dev-secret`` and the user ``dev@example.com`` with password
``dev``. A small JSON or TOML file (or command-line flags) can replace them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi_isp_jwt.audience import (
    ORGANIZATION_PLACEHOLDER,
    PLATFORM_AUDIENCE_PREFIX,
    AudiencePolicy,
)
from fastapi_isp_jwt.errors import ConfigurationError, InvalidTokenError
from fastapi_isp_jwt.grammar import is_scope_token, is_uri_text
from fastapi_isp_jwt.minting import is_unicode_text

__all__ = [
    "DEFAULT_AUDIENCE",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SCOPES",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_PASSWORD",
    "DEFAULT_PORT",
    "DEFAULT_USERNAME",
    "DEFAULT_USER_SCOPES",
    "DevClient",
    "DevIssuerConfig",
    "DevUser",
    "load_config",
    "one_client_and_user",
]

DEFAULT_PORT = 8765
DEFAULT_CLIENT_ID = "dev-client"
DEFAULT_CLIENT_SECRET = "dev-secret"  # noqa: S105 - a pinned, public development credential
DEFAULT_USERNAME = "dev@example.com"
DEFAULT_PASSWORD = "dev"  # noqa: S105 - a pinned, public development credential
DEFAULT_AUDIENCE = PLATFORM_AUDIENCE_PREFIX + "acme"

# The machine holds every scope of the example API (examples/app.py); the demo user may
# only read, so that a refused (403) route can be shown next to an allowed one.
DEFAULT_CLIENT_SCOPES = ("streams:read", "streams:write", "streams:delete")
DEFAULT_USER_SCOPES = ("streams:read",)


def _is_text(value: object) -> bool:
    # Secrets are compared as UTF-8 and subjects go into tokens: a lone surrogate (from a
    # JSON escape or an undecodable command-line byte) would fail there, not here.
    return isinstance(value, str) and is_unicode_text(value)


def _scopes(owner: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list | tuple) or not all(
        isinstance(s, str) and is_scope_token(s) for s in value
    ):
        raise ConfigurationError(f"{owner}: scopes must be a list of scope names without spaces")
    return tuple(dict.fromkeys(value))


@dataclass(frozen=True)
class DevClient:
    """An application registered with the dev issuer.

    ``client_secret`` ``None`` makes a public client (a browser app), which may only use
    the Authorization Code flow, always with PKCE. ``redirect_uris`` empty accepts any
    ``http`` loopback URI (localhost, 127.0.0.0/8 or ::1, any port), as RFC 8252 suggests
    for native and local apps.
    """

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ()
    redirect_uris: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _is_text(self.client_id) or not self.client_id.strip():
            raise ConfigurationError("a client needs a client_id of non-empty text")
        if self.client_secret is not None and (
            not _is_text(self.client_secret) or not self.client_secret
        ):
            raise ConfigurationError(
                f"client {self.client_id!r}: client_secret must be non-empty text"
            )
        object.__setattr__(self, "scopes", _scopes(f"client {self.client_id!r}", self.scopes))
        uris = self.redirect_uris
        if not isinstance(uris, list | tuple) or not all(_is_redirect_uri(u) for u in uris):
            raise ConfigurationError(
                f"client {self.client_id!r}: redirect_uris must be http(s) URLs without a fragment"
            )
        object.__setattr__(self, "redirect_uris", tuple(uris))


def _is_redirect_uri(uri: object) -> bool:
    if not isinstance(uri, str) or not uri.startswith(("http://", "https://")) or "#" in uri:
        return False
    if not is_uri_text(uri):
        return False
    try:
        parts = urlsplit(uri)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return False
    return bool(parts.hostname)


def _default_subject(username: str) -> str:
    # Auth0 database users have ids like auth0|<24 hex digits>; derive one that is stable.
    return "auth0|" + hashlib.sha256(username.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class DevUser:
    """A person who can log in on the dev issuer's page, with the scopes granted to them."""

    username: str
    password: str = field(repr=False)
    scopes: tuple[str, ...] = ()
    subject: str = ""

    def __post_init__(self) -> None:
        if not _is_text(self.username) or not self.username.strip():
            raise ConfigurationError("a user needs a username of non-empty text")
        if not _is_text(self.password) or not self.password:
            raise ConfigurationError(f"user {self.username!r}: password must be non-empty text")
        object.__setattr__(self, "scopes", _scopes(f"user {self.username!r}", self.scopes))
        if not _is_text(self.subject):
            # Checked here: the subject goes into tokens, and minting refuses what is not text.
            raise ConfigurationError(f"user {self.username!r}: subject must be text")
        if not self.subject:
            object.__setattr__(self, "subject", _default_subject(self.username))


@dataclass(frozen=True)
class DevIssuerConfig:
    """Everything the dev issuer serves; all of it is checked at construction.

    ``audiences`` lists the APIs tokens may be requested for; an entry may hold one
    ``{organization}`` placeholder standing for one path segment, and the default accepts
    every organization URI of the platform. They are read exactly as ``JWTAuth`` reads its
    ``audience``, so the dev issuer issues tokens for what a service can accept and nothing
    else. ``key_file`` keeps the signing key across restarts (``None``: a fresh key in
    memory). ``dpop_nonce`` makes the token endpoint demand a server nonce in DPoP proofs
    (RFC 9449 §8).
    """

    port: int = DEFAULT_PORT
    clients: tuple[DevClient, ...] = (
        DevClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_CLIENT_SCOPES),
    )
    users: tuple[DevUser, ...] = (DevUser(DEFAULT_USERNAME, DEFAULT_PASSWORD, DEFAULT_USER_SCOPES),)
    audiences: tuple[str, ...] = (PLATFORM_AUDIENCE_PREFIX + ORGANIZATION_PLACEHOLDER,)
    token_lifetime: int = 3600
    code_lifetime: int = 60
    key_file: Path | None = None
    dpop_nonce: bool = False
    _audience_policy: AudiencePolicy = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise ConfigurationError("port must be a whole number")
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"port {self.port} is not between 0 and 65535")
        for name in ("token_lifetime", "code_lifetime"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        if not isinstance(self.dpop_nonce, bool):
            raise ConfigurationError("dpop_nonce must be true or false")
        if self.code_lifetime > 600:
            raise ConfigurationError("code_lifetime must be at most 600 s (RFC 6749 §4.1.2)")
        object.__setattr__(self, "clients", tuple(self.clients))
        object.__setattr__(self, "users", tuple(self.users))
        if isinstance(self.audiences, str):
            # One string is one audience, never a sequence of one-character audiences.
            object.__setattr__(self, "audiences", (self.audiences,))
        if not isinstance(self.audiences, list | tuple):
            raise ConfigurationError("audiences must be a list of http(s) URIs")
        object.__setattr__(self, "audiences", tuple(self.audiences))
        ids = [c.client_id for c in self.clients]
        if len(set(ids)) != len(ids):
            raise ConfigurationError("two clients share a client_id")
        names = [u.username for u in self.users]
        if len(set(names)) != len(names):
            raise ConfigurationError("two users share a username")
        for audience in self.audiences:
            if not isinstance(audience, str) or not audience.startswith(("https://", "http://")):
                raise ConfigurationError(f"audience {audience!r} must be an http(s) URI")
        object.__setattr__(self, "_audience_policy", AudiencePolicy(self.audiences))

    @property
    def issuer(self) -> str:
        """The issuer URL, with the trailing slash the tenant uses."""
        return f"http://127.0.0.1:{self.port}/"

    def client(self, client_id: str) -> DevClient | None:
        return next((c for c in self.clients if c.client_id == client_id), None)

    def accepts_audience(self, audience: str) -> bool:
        """Whether tokens may be issued for ``audience`` (a placeholder matches one segment)."""
        try:
            self._audience_policy.match(audience)
        except InvalidTokenError:
            return False
        return True

    @property
    def scopes(self) -> tuple[str, ...]:
        """Every scope some client or user may be granted."""
        granted = [c.scopes for c in self.clients] + [u.scopes for u in self.users]
        return tuple(dict.fromkeys(s for scopes in granted for s in scopes))


def one_client_and_user(
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    client_scopes: str | None = None,
    username: str | None = None,
    password: str | None = None,
    user_scopes: str | None = None,
) -> DevIssuerConfig:
    """One client and one user, every detail not given (``None``) the pinned default.

    Scopes are space-delimited, as typed on a command line. An empty value is kept, and
    refused where it is not allowed, rather than mistaken for one not given.
    """

    def given(value: str | None, default: str) -> str:
        return value if value is not None else default

    def scopes(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(value.split()) if value is not None else default

    return DevIssuerConfig(
        clients=(
            DevClient(
                given(client_id, DEFAULT_CLIENT_ID),
                given(client_secret, DEFAULT_CLIENT_SECRET),
                scopes(client_scopes, DEFAULT_CLIENT_SCOPES),
            ),
        ),
        users=(
            DevUser(
                given(username, DEFAULT_USERNAME),
                given(password, DEFAULT_PASSWORD),
                scopes(user_scopes, DEFAULT_USER_SCOPES),
            ),
        ),
    )


def _parse_toml(text: str) -> object:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(text)
    raise ConfigurationError("TOML config files need Python 3.11 or later; use a JSON file")


def _read_document(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the config file {path}: {exc.strerror}") from None
    except ValueError:  # a path holding a NUL character
        raise ConfigurationError(f"cannot read the config file {str(path)!r}") from None
    try:
        if path.suffix.lower() == ".toml":
            document: object = _parse_toml(raw.decode("utf-8"))
        else:
            document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"the config file {path} is not valid: {exc}") from None
    except RecursionError:
        raise ConfigurationError(
            f"the config file {path} is not valid: nested too deeply"
        ) from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"the config file {path} must hold an object/table at the top")
    return document


def _entries(kind: str, value: object, allowed: set[str]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigurationError(f"{kind} must be a list of tables/objects")
    for entry in value:
        unknown = set(entry) - allowed
        if unknown:
            raise ConfigurationError(f"unknown key(s) in {kind}: {', '.join(sorted(unknown))}")
    return value


_TOP_KEYS = {
    "port",
    "clients",
    "users",
    "audiences",
    "token_lifetime",
    "code_lifetime",
    "key_file",
    "dpop_nonce",
}


def config_from_mapping(document: Mapping[str, Any], base: Path | None = None) -> DevIssuerConfig:
    """Build a config from a parsed file; relative ``key_file`` paths start at ``base``."""
    unknown = set(document) - _TOP_KEYS
    if unknown:
        raise ConfigurationError(f"unknown config key(s): {', '.join(sorted(unknown))}")
    options: dict[str, Any] = dict(document)
    for kind, entry_class in (("clients", DevClient), ("users", DevUser)):
        if kind in document:
            entries = _entries(kind, document[kind], {f.name for f in fields(entry_class)})
            try:
                options[kind] = tuple(entry_class(**entry) for entry in entries)
            except TypeError as exc:  # a missing required key in a client or user
                raise ConfigurationError(f"incomplete config: {exc}") from None
    if "key_file" in document:
        options["key_file"] = _key_file(document["key_file"], base)
    return DevIssuerConfig(**options)


def _key_file(key_file: object, base: Path | None) -> Path:
    if not isinstance(key_file, str) or not key_file or "\x00" in key_file:
        raise ConfigurationError("key_file must be a path")
    try:
        path = Path(key_file).expanduser()
    except RuntimeError:  # ~user/... naming no user known here
        raise ConfigurationError(f"key_file {key_file!r}: no such home directory") from None
    return path if path.is_absolute() or base is None else base / path


def load_config(path: str | Path) -> DevIssuerConfig:
    """Read a dev issuer config from a ``.json`` or ``.toml`` file."""
    path = Path(path)
    return config_from_mapping(_read_document(path), base=path.parent)
