"""Comparing http(s) URLs the way RFC 3986 says equivalent URLs compare.

A DPoP proof names the URL it was made for (``htu``) and the server knows the URL it was
asked; different software spells the two. They are compared after syntax-based
normalization (RFC 3986 §6.2.2: case of scheme and host, percent-encoding, dot segments)
and scheme-based normalization (§6.2.3: default port, empty path), without query and
fragment (RFC 9449 §4.3). Written here rather than with a URL library so that exactly
these rules apply and nothing else is "fixed" on the way.
"""

from __future__ import annotations

import re

__all__ = ["normalized_http_url"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 3986 §2: the characters a URI may hold at all (anything else must be percent-encoded).
_URI_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# RFC 3986 Appendix B, with the authority required: http(s) URLs always have one.
_HIERARCHICAL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^?#]*)(?:\?[^#]*)?(?:#.*)?")
_AUTHORITY = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+)(?::([0-9]*))?")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def normalized_http_url(url: str) -> str | None:
    """``url`` without query and fragment, normalized; ``None`` if it is no http(s) URL.

    URLs with user information are refused too: RFC 9110 §4.2.4 deprecates them in
    http(s) URLs, and no request is addressed to one.
    """
    if not _URI_CHARACTERS.fullmatch(url) or _BAD_PERCENT.search(url):
        return None
    parts = _HIERARCHICAL.fullmatch(url)
    if parts is None:
        return None
    scheme = parts[1].lower()
    authority = _AUTHORITY.fullmatch(parts[2])
    if scheme not in _DEFAULT_PORTS or authority is None:
        return None
    # Lower case for the host, but upper case for the hex digits of its escapes.
    host = _PERCENT.sub(_upper_escape, _percent_normalized(authority[1]).lower())
    port = authority[2]
    if port:
        # Leading zeros are allowed, and int() refuses more than 4300 digits.
        digits = port.lstrip("0") or "0"
        number = int(digits) if len(digits) <= 5 else 65536
        if number > 65535:
            return None
        if number != _DEFAULT_PORTS[scheme]:
            host = f"{host}:{number}"
    path = _without_dot_segments(_percent_normalized(parts[3])) if parts[3] else "/"
    return f"{scheme}://{host}{path}"


def _upper_escape(escape: re.Match[str]) -> str:
    return "%" + escape[1].upper()


def _decode_unreserved(escape: re.Match[str]) -> str:
    character = chr(int(escape[1], 16))
    return character if character in _UNRESERVED else _upper_escape(escape)


def _percent_normalized(text: str) -> str:
    """Unreserved characters decoded, other escapes in upper case (RFC 3986 §6.2.2.1-2)."""
    return _PERCENT.sub(_decode_unreserved, text)


def _without_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for an absolute path: ``/a/./b/../c`` is ``/a/c``."""
    segments = path.split("/")[1:]
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments[-1] in (".", ".."):
        kept.append("")  # a path ending in a dot segment names a directory: it keeps its "/"
    return "/" + "/".join(kept)
