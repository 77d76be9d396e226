"""What a token request is made of, checked once when `ClientCredentials` is built.

Everything here is validated up front, so that a mistake in the configuration is a
`ConfigurationError` at start-up rather than a failed token request at the first call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpx

from fastapi_isp_jwt.errors import ConfigurationError
from fastapi_isp_jwt.grammar import check_endpoint_url, is_finite_number, parse_domain
from fastapi_isp_jwt.minting import is_unicode_text

__all__ = ["RequestOptions", "Secret", "required_text", "scope_text", "token_endpoint"]

_REDACTED = "[redacted]"


class Secret:
    """Holds the client secret so that no ``repr``, ``str`` or ``vars`` dump can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the secret blanked out."""
        return text.replace(self._value, _REDACTED)

    def __repr__(self) -> str:
        return "'********'"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """How to ask the token endpoint, how long to wait and how often to try again.

    The numbers are checked here; the texts by `token_endpoint`, `required_text` and
    `scope_text`, whose results are passed in.
    """

    token_url: str
    client_id: str
    secret: Secret = field(repr=False)
    audience: str
    scope: str | None
    refresh_margin: float
    timeout: float
    max_attempts: int
    backoff: float
    max_backoff: float
    # Monotonic seconds for expiry and renewal pauses; ``timeout`` is always real time.
    clock: Callable[[], float]

    def __post_init__(self) -> None:
        _require(
            is_finite_number(self.refresh_margin) and self.refresh_margin >= 0,
            "refresh_margin must be >= 0",
        )
        # Threads and sockets cannot wait longer than TIMEOUT_MAX (about 292 years).
        _require(
            is_finite_number(self.timeout) and 0 < self.timeout <= threading.TIMEOUT_MAX,
            f"timeout must be > 0 and at most {threading.TIMEOUT_MAX:.0f} s",
        )
        _require(
            isinstance(self.max_attempts, int) and not isinstance(self.max_attempts, bool),
            "max_attempts must be an integer",
        )
        _require(self.max_attempts >= 1, "max_attempts must be >= 1")
        _require(is_finite_number(self.backoff) and self.backoff >= 0, "backoff must be >= 0")
        _require(
            is_finite_number(self.max_backoff) and self.max_backoff >= self.backoff,
            "max_backoff must be >= backoff",
        )

    def form(self) -> dict[str, str]:
        """The RFC 6749 §4.4.2 form body; it holds the secret, so it is built only to send."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.secret.reveal(),
            "audience": self.audience,
        }
        if self.scope is not None:
            form["scope"] = self.scope
        return form

    def backoff_ceiling(self, retry: int) -> float:
        """The longest backoff before the ``retry``-th retry: doubling, at most max_backoff."""
        return min(self.max_backoff, self.backoff * 2.0 ** min(retry - 1, 64))


def token_endpoint(token_url: str | None, domain: str | None) -> str:
    """The token endpoint from exactly one of ``token_url`` and ``domain``."""
    if (token_url is None) == (domain is None):
        raise ConfigurationError("pass exactly one of token_url and domain")
    if domain is not None:
        return f"https://{parse_domain('domain', domain)}/oauth/token"
    return str(httpx.URL(check_endpoint_url("token_url", token_url)))


def required_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string")
    return _utf8_text(name, value)


def scope_text(scope: str | Iterable[str] | None) -> str | None:
    """The scopes as one space-delimited string, or ``None`` for what the tenant grants."""
    if scope is None:
        return None
    if isinstance(scope, str):
        parts = scope.split()
    else:
        parts = list(scope) if isinstance(scope, Iterable) else []
    if not parts or not all(isinstance(part, str) and part and " " not in part for part in parts):
        raise ConfigurationError("scope must be a space-delimited string or an iterable of scopes")
    return _utf8_text("scope", " ".join(parts))


def _utf8_text(name: str, value: str) -> str:
    # The form body is UTF-8: a lone surrogate would fail there, at request time.
    if not is_unicode_text(value):
        raise ConfigurationError(f"{name} must be encodable as UTF-8")
    return value


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigurationError(message)
