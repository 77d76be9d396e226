"""What the test issuer's OAuth 2.0 token endpoint and protected resource decide.

The endpoint answers Client Credentials requests the way the tenant does (form body in,
JSON token out, RFC 6749 §5.2 errors), records what it receives and can be scripted to
throttle, fail, hand out short-lived tokens, or send an answer slowly or of unannounced
length. The resource accepts only tokens the endpoint issued and has not revoked, so a
test can make a cached token stale on the server side and watch the client recover.

DPoP (RFC 9449): a token request with a ``DPoP`` proof (checked against the token URL and
``POST``) gets a token bound to the proof's key, of type ``DPoP``; the resource then wants
that token with the ``DPoP`` scheme and a fresh proof for the very request (``ath``, the
key it is bound to, never a proof seen before). Setting `token_nonces` or
`resource_nonces` makes either demand a server nonce (``use_dpop_nonce``).

`IssuerServer` serves both; this module holds their state and decisions, not the HTTP.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Sequence
from urllib.parse import parse_qsl

from fastapi_isp_jwt.dpop import DPoPNonces, DPoPPolicy, DPoPRequest, one_proof, verify_proof
from fastapi_isp_jwt.errors import InvalidDPoPProofError, UseDPoPNonceError
from fastapi_isp_jwt.reasons import Reason
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
        # The token_type of a DPoP-bound token; another value makes a faulty endpoint.
        self.bound_token_type = "DPoP"
        self.token_nonces: DPoPNonces | None = None
        self.resource_nonces: DPoPNonces | None = None
        # The DPoP header of each token and resource request (None: it had none).
        self.token_proofs: list[str | None] = []
        self.resource_proofs: list[str | None] = []
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
        self._bound: dict[str, str] = {}  # token -> the thumbprint of its DPoP key
        self._seen_proofs: set[str] = set()
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

    def bound_to(self, token: str) -> str | None:
        """The thumbprint of the DPoP key ``token`` is bound to, if it is bound."""
        with self._token_lock:
            return self._bound.get(token)

    def token_answer(
        self, body: bytes, content_type: str, proofs: Sequence[str] = (), url: str = ""
    ) -> Reply:
        """Record a token request, wait at the gate if it is held, then decide the answer.

        ``proofs`` are the request's ``DPoP`` headers, ``url`` the token endpoint's URL.
        """
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        with self._token_lock:
            self.token_forms.append(form)
            self.token_content_types.append(content_type)
            self.token_proofs.append(proofs[0] if proofs else None)
        self.token_request_arrived.set()
        self._gate.wait(_GATE_LIMIT)
        with self._token_lock:
            if self._script:
                return self._script.popleft()
            jkt: str | None = None
            if proofs:
                checked = self._check_proof(proofs, "POST", url, self.token_nonces, None)
                if isinstance(checked, Reply):
                    return checked
                jkt = checked
            return self._decide(form, content_type, jkt)

    def resource_answer(
        self,
        authorization: str | None,
        body: bytes,
        *,
        proofs: Sequence[str] = (),
        method: str = "GET",
        url: str = "",
    ) -> Reply:
        with self._token_lock:
            self.resource_bodies.append(body)
            self.resource_proofs.append(proofs[0] if proofs else None)
            scheme, _, token = (authorization or "").partition(" ")
            if scheme == "DPoP" and token in self._valid and not self.refuse_every_token:
                return self._dpop_resource_answer(token, body, proofs, method, url)
            if scheme != "Bearer" or token not in self._valid or self.refuse_every_token:
                return Reply(
                    401,
                    b'{"detail":"invalid token"}',
                    (("WWW-Authenticate", 'Bearer error="invalid_token"'),),
                )
            if token in self._bound:
                return _refusal("Bearer", "invalid_token")  # a bound token needs its proof
            return json_reply(200, {"token": token, "body": body.decode("utf-8", "replace")})

    def _dpop_resource_answer(
        self, token: str, body: bytes, proofs: Sequence[str], method: str, url: str
    ) -> Reply:
        if not proofs:
            return _refusal("DPoP", "invalid_dpop_proof")
        checked = self._check_proof(proofs, method, url, self.resource_nonces, token)
        if isinstance(checked, Reply):
            return checked
        if self._bound.get(token) != checked:
            return _refusal("DPoP", "invalid_dpop_proof")
        payload = {"token": token, "body": body.decode("utf-8", "replace"), "jkt": checked}
        return json_reply(200, payload)

    def _check_proof(
        self,
        proofs: Sequence[str],
        method: str,
        url: str,
        nonces: DPoPNonces | None,
        token: str | None,
    ) -> str | Reply:
        """The proof key's thumbprint, or the refusal: at the token endpoint (no ``token``)
        a 400 with a JSON error, at the resource a 401 with a challenge."""
        at_token_endpoint = token is None
        try:
            request = DPoPRequest(one_proof([p.encode() for p in proofs]), method, url)
            verified = verify_proof(
                request, policy=DPoPPolicy(nonces=nonces), now=time.time(), access_token=token
            )
            if verified.replay_key in self._seen_proofs:
                raise InvalidDPoPProofError(Reason.DPOP_PROOF_REPLAYED)
        except UseDPoPNonceError as demand:
            return _nonce_demand(demand.nonce, 400 if at_token_endpoint else 401)
        except InvalidDPoPProofError as refusal:
            if at_token_endpoint:
                return oauth_error("invalid_dpop_proof", 400, refusal.description)
            return _refusal("DPoP", "invalid_dpop_proof")
        self._seen_proofs.add(verified.replay_key)
        return verified.thumbprint

    def _decide(self, form: dict[str, str], content_type: str, jkt: str | None) -> Reply:
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
            "access_token": self._issue(jkt),
            "token_type": self.token_type if jkt is None else self.bound_token_type,
            "expires_in": self.expires_in,
        }
        return json_reply(200, payload)

    def _issue(self, jkt: str | None = None) -> str:
        token = f"tok-{len(self.issued) + 1}.{secrets.token_urlsafe(12)}"
        self.issued.append(token)
        self._valid.add(token)
        if jkt is not None:
            self._bound[token] = jkt
        return token


def _refusal(scheme: str, error: str) -> Reply:
    challenge = f'{scheme} error="{error}"'
    return Reply(401, b'{"detail":"invalid token"}', (("WWW-Authenticate", challenge),))


def _nonce_demand(nonce: str, status: int) -> Reply:
    """RFC 9449 §8 (token endpoint, 400 and a JSON error) and §9 (resource, 401 challenge)."""
    if status == 400:
        body = b'{"error":"use_dpop_nonce","error_description":"Use the DPoP nonce"}'
        return Reply(400, body, (("DPoP-Nonce", nonce),))
    challenge = 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce"'
    return Reply(401, b"{}", (("WWW-Authenticate", challenge), ("DPoP-Nonce", nonce)))
