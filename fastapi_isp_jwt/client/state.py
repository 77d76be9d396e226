"""The token held, when to renew it, and how each token request cycle ended.

`TokenState` is shared by every thread and event loop that uses one `ClientCredentials`;
its own lock guards it and is never held over I/O. It decides whether the token at hand
will do, records the outcome of a cycle, and after a failed renewal keeps the current
token in use for a pause rather than asking the endpoint on every call.
"""

from __future__ import annotations

import logging
import math
import threading

from fastapi_isp_jwt.client.options import RequestOptions
from fastapi_isp_jwt.client.token_request import Failure, Token
from fastapi_isp_jwt.errors import TokenRequestError

__all__ = ["TokenState"]

logger = logging.getLogger("fastapi_isp_jwt.client")

# After a failed renewal, the current token is used without asking again for at least this
# many seconds, even with backoff=0: otherwise every call would make an attempt.
_MIN_RENEWAL_PAUSE = 1.0
# The pause after a failed renewal ends at the latest this many seconds before the token
# expires, so the endpoint gets one more try while the token can still cover for it.
_LAST_RENEWAL_LEAD = 5.0


class TokenState:
    """The current token and the bookkeeping of renewals, safe to share between threads."""

    def __init__(self, options: RequestOptions) -> None:
        self._options = options
        self.token: Token | None = None
        # After a failed renewal the current token counts as fresh until this moment (never
        # past its expiry); reset with every new token, as is the count of failures.
        self._renew_not_before = -math.inf
        self._failed_renewals = 0
        # Bumped after every token request cycle, so callers that queued behind one can
        # tell it has happened and share its outcome instead of starting another.
        self.cycles = 0
        self._last_failure: TokenRequestError | None = None
        self._lock = threading.Lock()

    def fresh(self, refused: Token | None) -> Token | None:
        """The current token unless it is due for renewal (a failed renewal defers that)."""
        token = self.token
        if token is None or token is refused:
            return None
        now = self._options.clock()
        if now < token.refresh_at or now < min(self._renew_not_before, token.expires_at):
            return token
        return None

    def holds_valid_token(self, refused: Token | None) -> bool:
        """Whether a token that has not expired (and was not refused) is at hand."""
        token = self.token
        return (
            token is not None and token is not refused and self._options.clock() < token.expires_at
        )

    def settled_since(self, cycle: int, refused: Token | None) -> Token | None:
        """For a caller that waited its turn: what the cycles run meanwhile left for it.

        A token that came meanwhile, or the failure of a cycle that ended meanwhile (raised,
        unless the current token can still cover): callers that queued behind a failed
        request fail with it rather than each repeating the whole retry cycle against an
        endpoint that is down. ``None`` when this caller is to ask.
        """
        token = self.fresh(refused)
        if token is not None:
            return token
        with self._lock:
            failure = self._last_failure if self.cycles != cycle else None
        if failure is None:
            return None
        shared = TokenRequestError(
            str(failure), oauth_error=failure.oauth_error, status_code=failure.status_code
        )
        return self._fallback(refused, shared)

    def settle(self, outcome: Token | Failure, refused: Token | None) -> Token:
        """Records how a token request cycle ended; the token to use, or raises."""
        if isinstance(outcome, Token):
            with self._lock:
                # The pause first: a reader without the lock may see the old token
                # unpaused (and queue for the lock), never the new one paused.
                self._renew_not_before = -math.inf
                self._failed_renewals = 0
                self.token = outcome
                self._last_failure = None
                self.cycles += 1
            return outcome
        with self._lock:
            self._pause_renewals(outcome)
            self._last_failure = outcome.error
            self.cycles += 1
        return self._fallback(refused, outcome.error)

    def _pause_renewals(self, failure: Failure) -> None:
        """After a failed renewal, leaves the endpoint alone for a while if the token allows.

        The pause grows like the retry backoff (at least `_MIN_RENEWAL_PAUSE`), is at least
        the endpoint's ``Retry-After``, and ends `_LAST_RENEWAL_LEAD` seconds before the
        token expires at the latest. Called with the lock held.
        """
        token = self.token
        now = self._options.clock()
        if token is None or now >= token.expires_at:
            return
        self._failed_renewals += 1
        pause = max(_MIN_RENEWAL_PAUSE, self._options.backoff_ceiling(self._failed_renewals))
        if failure.retry_after is not None:
            pause = max(pause, failure.retry_after)
        until = min(now + pause, token.expires_at - _LAST_RENEWAL_LEAD)
        # Already too close to expiry for another try in time: the next one comes after it,
        # with the full retry cycle, as for any caller that holds no valid token.
        self._renew_not_before = until if until > now else token.expires_at

    def _fallback(self, refused: Token | None, error: TokenRequestError) -> Token:
        """The current token if it is still alive (renewal starts early), else ``error``."""
        token = self.token
        now = self._options.clock()
        if token is not None and token is not refused and now < token.expires_at:
            logger.warning(
                "token renewal failed (%s); using the current token, which expires in %.0f s; "
                "next renewal attempt in %.0f s",
                error,
                token.expires_at - now,
                max(0.0, self._renew_not_before - now),
            )
            return token
        raise error
