"""What ``fastapi-isp-jwt inspect`` adds to a token: its times, failed checks, hints, skipped keys.

A decoded token gets its times in words: when it was issued, when it becomes valid and when
it expires, each also as how long ago or how long from now, in the words a person would use.
A refused token gets the checks it failed, each with the token's value beside the configured
one (`fastapi_isp_jwt.explain.compare`), and the hints for refusals that look like
configuration mistakes (`fastapi_isp_jwt.explain.hints`). Any verdict gets the keys the issuer
publishes but the key cache skipped: a token signed with one of them is refused as signed
by an unknown key, and nothing else would say why.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from fastapi_isp_jwt.explain import compare, hints
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.settings import DEFAULT_LEEWAY
from fastapi_isp_jwt.verifier import Verifier

__all__ = ["human_duration", "refusal_lines", "skipped_key_lines", "time_lines"]


def human_duration(seconds: float) -> str:
    """``42 s``, ``23 min``, ``5 h``, ``3 d``: rounded, as a person says it."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{int(seconds)} s"
    if round(seconds / 60) < 60:
        return f"{round(seconds / 60)} min"
    if round(seconds / 3600) < 48:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"


def _when(value: object, now: float, past: str, future: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{value!r} (not a number)"
    try:
        moment = datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{value!r} (out of range)"
    delta = value - now
    relative = future if delta > 0 else past
    return f"{moment} ({relative.format(human_duration(delta))})"


def time_lines(claims: Mapping[str, Any], now: float) -> list[str]:
    """``iat``, ``nbf`` and ``exp`` as dates and as times from ``now``, as indented lines."""
    lines = []
    if "iat" in claims:
        lines.append("  issued     " + _when(claims["iat"], now, "{} ago", "in {}, in the future"))
    if "nbf" in claims:
        lines.append("  not before " + _when(claims["nbf"], now, "{} ago", "not valid for {}"))
    if "exp" in claims:
        grace = f", within the {DEFAULT_LEEWAY:g} s leeway"  # still accepted, and says why
        late = isinstance(exp := claims["exp"], int | float) and now - DEFAULT_LEEWAY <= exp <= now
        expired = "expired {} ago" + (grace if late else "")
        lines.append("  expires    " + _when(claims["exp"], now, expired, "expires in {}"))
    else:
        lines.append("  expires    never (no exp claim)")
    return lines


def refusal_lines(
    verifier: Verifier, header: Mapping[str, Any], claims: Mapping[str, Any], reason: Reason
) -> list[str]:
    """The failed checks (token value, configured value) and the hints, as indented lines."""
    lines = [
        f"  {row.check} differs: token {_printable(row.token_value)}, "
        # The key ids are what the issuer publishes, not what the service configured.
        f"{'published' if row.check == 'key id' else 'configured'} {row.configured_value}"
        for row in compare(
            verifier.settings, header, claims, known_kids=_known_kids(verifier, claims)
        )
        if row.matches is False
    ]
    lines.extend(f"  hint: {hint}" for hint in hints(verifier.settings, header, claims, reason))
    return lines


def skipped_key_lines(verifier: Verifier) -> list[str]:
    """One line for each published key that the key cache left out, with the reason."""
    lines = []
    for source in verifier.key_sources.values():
        key_set = source.key_set
        for skipped in key_set.skipped if key_set is not None else ():
            kid = "(no kid)" if skipped.kid is None else repr(_printable(skipped.kid))
            lines.append(f"  skipped key {kid} published at {source.source}: {skipped.reason}")
    return lines


def _known_kids(verifier: Verifier, claims: Mapping[str, Any]) -> frozenset[str] | None:
    """The key ids the token's issuer publishes; ``None`` when that is not known."""
    issuer = claims.get("iss")
    source = verifier.key_sources.get(issuer) if isinstance(issuer, str) else None
    key_set = source.key_set if source is not None else None
    return key_set.kids if key_set is not None else None


def _printable(text: str) -> str:
    """Text from a token or a key set, kept from moving the terminal's cursor."""
    return "".join(c if c.isprintable() else "?" for c in text)
