"""What the test issuer's OAuth 2.0 token endpoint and protected resource decide.

The endpoint answers Client Credentials requests the way the tenant does (form body in,
JSON token out, RFC 6749 §5.2 errors), records what it receives and can be scripted to
throttle, fail, hand out short-lived tokens, or send an answer slowly or of unannounced
length. The resource accepts only tokens the endpoint issued and has not revoked, so a
test can make a cached token stale on the server side and watch the client recover.

`IssuerServer` serves both; this module holds their state and decisions, not the HTTP.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from urllib.parse import parse_qsl

from tests.support.faults import Reply, json_reply, oauth_error

CLIENT_ID = "service-a"
CLIENT_SECRET = "s3cr3t-Value-never-shown"
AUDIENCE = "https://platform.dtc.istreamplanet.net/acme"

# How long the endpoint waits for a held gate before answering anyway, so a test that
# forgets to release it fails instead of hanging.
_GATE_LIMIT = 10.0


class TokenEndpoint:
    """A Client Credentials token endpoint and a resource that accepts its tokens."""

    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        audience: str = AUDIENCE,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.audience = audience
        self.expires_in: object = 86400
        self.token_type = "Bearer"
        self.refuse_every_token = False
        self.token_forms: list[dict[str, str]] = []
        self.token_content_types: list[str] = []
        self.resource_bodies: list[bytes] = []
        self.issued: list[str] = []
        self.token_request_arrived = threading.Event()
        self._gate = threading.Event()
        self._gate.set()
        self._script: deque[Reply] = deque()
        self._valid: set[str] = set()
        self._token_lock = threading.Lock()

    def script(self, *replies: Reply) -> None:
        """Answer the next token requests with ``replies``, in order, then normally again."""
        with self._token_lock:
            self._script.extend(replies)

    def wait_for_token_request(self) -> None:
        """Block until a token request has arrived (it may be held at the gate)."""
        if not self.token_request_arrived.wait(_GATE_LIMIT):
            raise TimeoutError("no token request arrived")

    def hold_tokens(self) -> None:
        """Make token requests wait (after being counted) until :meth:`release_tokens`."""
        self._gate.clear()

    def release_tokens(self) -> None:
        self._gate.set()

    def revoke_all(self) -> None:
        """Make the resource refuse every token issued so far."""
        with self._token_lock:
            self._valid.clear()

    def token_answer(self, body: bytes, content_type: str) -> Reply:
        """Record a token request, wait at the gate if it is held, then decide the answer."""
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        with self._token_lock:
            self.token_forms.append(form)
            self.token_content_types.append(content_type)
        self.token_request_arrived.set()
        self._gate.wait(_GATE_LIMIT)
        with self._token_lock:
            if self._script:
                return self._script.popleft()
            return self._decide(form, content_type)

    def resource_answer(self, authorization: str | None, body: bytes) -> Reply:
        with self._token_lock:
            self.resource_bodies.append(body)
            scheme, _, token = (authorization or "").partition(" ")
            if scheme != "Bearer" or token not in self._valid or self.refuse_every_token:
                return Reply(
                    401,
                    b'{"detail":"invalid token"}',
                    (("WWW-Authenticate", 'Bearer error="invalid_token"'),),
                )
            return json_reply(200, {"token": token, "body": body.decode("utf-8", "replace")})

    def _decide(self, form: dict[str, str], content_type: str) -> Reply:
        if content_type != "application/x-www-form-urlencoded":
            return oauth_error("invalid_request", 400, "Expected a form body")
        if form.get("grant_type") != "client_credentials":
            return oauth_error("unsupported_grant_type", 400)
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return oauth_error("invalid_client", 401, "Unauthorized")
        if form.get("audience") != self.audience:
            return oauth_error(
                "access_denied",
                403,
                f"Service not enabled within domain: {form.get('audience')}",
            )
        payload = {
            "access_token": self._issue(),
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }
        return json_reply(200, payload)

    def _issue(self) -> str:
        token = f"tok-{len(self.issued) + 1}.{secrets.token_urlsafe(12)}"
        self.issued.append(token)
        self._valid.add(token)
        return token
