"""The small grammars of the standards, and the rule for endpoint URLs, each written once.

RFC 6750 b64token (bearer credentials), RFC 6749 scope-token and error codes, the text
that may stand in a quoted header parameter, bare host names, loopback hosts,
``.well-known`` URLs and the finite numbers options take (`check_number` refuses the
others naming the option). Every module that reads or checks one of these asks here.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import TypeGuard

import httpx

from fastapi_isp_jwt.errors import ConfigurationError

__all__ = [
    "check_endpoint_url",
    "check_number",
    "is_b64token",
    "is_finite_number",
    "is_loopback_host",
    "is_oauth_error_code",
    "is_quotable",
    "is_scope_token",
    "is_uri_text",
    "parse_domain",
    "well_known_url",
]

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="
# RFC 6749 §3.3 scope-token, and what may stand inside a quoted-string header parameter.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
_QUOTABLE = re.compile(r"[\x20\x21\x23-\x5B\x5D-\x7E]*")
# RFC 6749 §5.2: error codes are printable ASCII without '"' and '\'.
_OAUTH_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")
# RFC 3986 §2: no URI holds a space or a control character.
_NOT_IN_URI = re.compile(r"[\x00-\x20\x7f]")
# A host name with an optional port, nothing else: no scheme, no path, no user.
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")


def is_b64token(credentials: bytes) -> bool:
    """Whether ``credentials`` is one RFC 6750 b64token (padding only at the end)."""
    # bytes.translate deleting the allowed bytes leaves whatever is not allowed; it is
    # many times faster than a per-character check on a token of a kilobyte.
    return (
        bool(credentials)
        and not credentials.translate(None, _B64TOKEN_BYTES)
        and b"=" not in credentials.rstrip(b"=")
    )


def is_scope_token(text: str) -> bool:
    """Whether ``text`` is one RFC 6749 scope-token."""
    return _SCOPE_TOKEN.fullmatch(text) is not None


def is_quotable(text: str) -> bool:
    """Whether ``text`` may stand inside a quoted header parameter as it is."""
    return _QUOTABLE.fullmatch(text) is not None


def is_oauth_error_code(text: str) -> bool:
    """Whether ``text`` is a plausible RFC 6749 ``error`` value."""
    return _OAUTH_ERROR_CODE.fullmatch(text) is not None


def is_uri_text(text: str) -> bool:
    """Whether ``text`` is free of the spaces and control characters no URI may hold.

    urlsplit silently drops tabs and line breaks: a URI holding one would be checked as
    one URI and used as another.
    """
    return _NOT_IN_URI.search(text) is None


def is_finite_number(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is an int or float (not a bool) that is finite as a float."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def check_number(option: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a float if `is_finite_number` and > 0 (>= 0 with ``allow_zero``).

    Anything else is a `ConfigurationError` naming ``option`` and quoting the value.
    """
    if not is_finite_number(value):
        raise ConfigurationError(f"{option} must be a finite number, not {_quoted(value)}")
    if value < 0 or (value == 0 and not allow_zero):
        rule = ">= 0" if allow_zero else "> 0"
        raise ConfigurationError(f"{option} must be {rule}, not {_quoted(value)}")
    return float(value)


def _quoted(value: object) -> str:
    """``repr(value)`` cut short; Python gives no text for an integer of over 4300 digits."""
    try:
        text = repr(value)
    except ValueError:
        return "an integer of thousands of digits"
    return text if len(text) <= 40 else text[:37] + "..."


def parse_domain(option: str, value: object) -> str:
    """A bare ``host[:port]`` (one trailing slash forgiven), or `ConfigurationError`."""
    text = value[:-1] if isinstance(value, str) and value.endswith("/") else value
    if not isinstance(text, str) or _DOMAIN.fullmatch(text) is None:
        raise ConfigurationError(
            f"{option} {value!r} must be a bare host name such as 'istreamplanet.auth0.com' "
            "(no scheme, no path)"
        )
    host, _, port = text.partition(":")
    _check_dns_name(option, host)
    if port and not 1 <= int(port) <= 65535:
        raise ConfigurationError(f"{option}: the port must be between 1 and 65535")
    return text


def is_loopback_host(host: str) -> bool:
    """``localhost`` or an address of this machine (127.0.0.0/8, ::1), and nothing else."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def well_known_url(base: str, name: str) -> str:
    """``<base>/.well-known/<name>``, with exactly one slash between them."""
    return base + ("" if base.endswith("/") else "/") + ".well-known/" + name


def check_endpoint_url(option: str, url: object) -> str:
    """An absolute https URL, or plain http on loopback; anything else names ``option``.

    Keys and client secrets travel over these URLs: never in clear text off this machine.
    """
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else None
    except (TypeError, UnicodeError, httpx.InvalidURL):  # UnicodeError: a lone surrogate
        parsed = None
    if parsed is None or parsed.scheme not in ("https", "http") or not parsed.host:
        raise ConfigurationError(f"{option} {url!r} is not an absolute https URL")
    if parsed.scheme == "http" and not is_loopback_host(parsed.host):
        raise ConfigurationError(f"{option} {url!r} must use https (plain http only on loopback)")
    if parsed.userinfo or parsed.fragment:
        raise ConfigurationError(f"{option} {url!r} must not carry credentials or a fragment")
    # httpx keeps a non-ASCII host in its IDNA (xn--) form here.
    _check_dns_name(option, parsed.raw_host.decode("ascii", "replace"))
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise ConfigurationError(f"{option}: the port must be between 1 and 65535")
    assert isinstance(url, str)
    return url


def _check_dns_name(option: str, host: str) -> None:
    """Refuses a host the resolver would fail on with a bare ``UnicodeError`` at request time."""
    try:
        encoded = host.encode("idna")
    except UnicodeError:
        encoded = b""
    if not encoded or len(encoded.rstrip(b".")) > 253:
        raise ConfigurationError(
            f"{option}: {host[:80]!r} is not a valid DNS host name "
            "(an empty label, a label over 63 characters or a name over 253)"
        )
