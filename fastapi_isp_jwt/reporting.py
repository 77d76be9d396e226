"""What happens to a refusal besides its answer: a count, a timing, a log line, a hint.

The verifier hands each refusal here. Metrics go to `Telemetry` (only when an SDK listens);
the log line is rate-limited per reason, and its fields and hints come from an unverified
read of the token, made only when a line is actually written, so a flood of refusals costs
a count rather than a decoding each. The token itself is never logged: a digest stands in.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from fastapi_isp_jwt import explain
from fastapi_isp_jwt.errors import AuthError, InvalidDPoPProofError, UseDPoPNonceError
from fastapi_isp_jwt.logs import RateLimitedLogger, refusal_record_fields
from fastapi_isp_jwt.settings import Settings
from fastapi_isp_jwt.telemetry import Telemetry, outcome_of
from fastapi_isp_jwt.token import parse_token

__all__ = ["RefusalReport"]


class RefusalReport:
    """Reports the refusals of one verifier."""

    def __init__(self, settings: Settings, telemetry: Telemetry) -> None:
        self._settings = settings
        self._telemetry = telemetry
        self._log = RateLimitedLogger()

    def refused(self, token: object, error: AuthError, started: float) -> None:
        """``started``: when the verification began (``0.0`` when telemetry is off)."""
        if started:
            seconds = perf_counter() - started
            self._telemetry.verified(outcome_of(error.reason), error.reason, seconds)
            if isinstance(error, (InvalidDPoPProofError, UseDPoPNonceError)):
                self._telemetry.dpop_refused(error.reason)
        self._log.refusal(
            error.reason, lambda: self._fields(token, error), lambda: self._hints(token, error)
        )

    def _hints(self, token: object, error: AuthError) -> tuple[str, ...]:
        header, claims = self._unverified(token)
        return tuple(explain.hints(self._settings, header, claims, error.reason))

    def _fields(self, token: object, error: AuthError) -> dict[str, object]:
        header, claims = self._unverified(token)
        return refusal_record_fields(
            error.reason,
            claims.get("iss"),
            header.get("kid"),
            claims.get("azp", claims.get("client_id")),
            token if isinstance(token, (str, bytes)) else None,
        )

    def _unverified(self, token: object) -> tuple[dict[str, Any], dict[str, Any]]:
        """Header and claims of a refused token, for logs and hints only; empty if unreadable."""
        try:
            text = token.decode("ascii") if isinstance(token, bytes) else token
            parsed = (
                parse_token(text, self._settings.max_token_bytes) if isinstance(text, str) else None
            )
        except (AuthError, UnicodeError):
            parsed = None
        return ({}, {}) if parsed is None else (dict(parsed.header), parsed.payload)
