"""The ranges of the key cache's timing options, each written once.

`JWKSCache` checks its ``ttl``, ``cooldown``, ``max_stale`` and ``timeout`` here, and
`fastapi_isp_jwt.settings.Settings` its ``jwks_ttl``, ``jwks_cooldown``, ``jwks_max_stale``
and ``jwks_timeout``: a value one refuses the other refuses too, with a `ConfigurationError`
naming the option as its caller spells it. Each is a finite number
(`fastapi_isp_jwt.grammar.check_number`) in the range its function gives.
"""

from __future__ import annotations

import threading

from fastapi_isp_jwt.errors import ConfigurationError
from fastapi_isp_jwt.grammar import check_number

__all__ = ["check_cooldown", "check_max_stale", "check_timeout", "check_ttl"]


def check_ttl(option: str, value: object) -> float:
    """Seconds a key set is trusted when the issuer sends no ``max-age``: > 0."""
    return check_number(option, value)


def check_cooldown(option: str, value: object) -> float:
    """Seconds between refetches for unknown keys: >= 0 (0: no pause between them)."""
    return check_number(option, value, allow_zero=True)


def check_max_stale(option: str, value: object) -> float:
    """Seconds an expired key set stands in for a failing issuer: >= 0 (0: not at all)."""
    return check_number(option, value, allow_zero=True)


def check_timeout(option: str, value: object) -> float:
    """Seconds one download may take: > 0, and no longer than a thread or socket can wait.

    A longer timeout (``threading.TIMEOUT_MAX``, about 292 years) would make every download
    run from a synchronous lookup fail with an OverflowError.
    """
    seconds = check_number(option, value)
    if seconds > threading.TIMEOUT_MAX:
        raise ConfigurationError(f"{option} must be at most {threading.TIMEOUT_MAX:.0f} s")
    return seconds
