"""What ``fastapi-isp-jwt inspect`` adds to a verdict: failed checks, hints, skipped keys.

A refused token gets the checks it failed, each with the token's value beside the configured
one (`fastapi_isp_jwt.explain.compare`), and the hints for refusals that look like
configuration mistakes (`fastapi_isp_jwt.explain.hints`). Any verdict gets the keys the issuer
publishes but the key cache skipped: a token signed with one of them is refused as signed
by an unknown key, and nothing else would say why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi_isp_jwt.explain import compare, hints
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.verifier import Verifier

__all__ = ["refusal_lines", "skipped_key_lines"]


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
