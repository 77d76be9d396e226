"""Why a request was refused, as data: one stable code per reason, one table derived from it.

Each `Reason` has a machine-readable code (its value, stable across releases: logs,
metrics and callers match on it), the RFC 6750 outcome it leads to, and the fixed text
of its ``error_description``. A few descriptions name a part of the token (``exp``,
``header``...): that word comes from the library, never from the token.
"""

from __future__ import annotations

import enum

__all__ = ["Outcome", "Reason"]


class Outcome(enum.Enum):
    """What the answer to a refusal looks like (status and RFC 6750 error code)."""

    MISSING_CREDENTIALS = (401, None)
    INVALID_REQUEST = (400, "invalid_request")
    INVALID_TOKEN = (401, "invalid_token")
    INSUFFICIENT_SCOPE = (403, "insufficient_scope")
    ISSUER_UNAVAILABLE = (503, None)
    # RFC 9449 §7.1, §9: a DPoP proof that does not hold, or one that lacks the server's nonce.
    INVALID_DPOP_PROOF = (401, "invalid_dpop_proof")
    USE_DPOP_NONCE = (401, "use_dpop_nonce")

    @property
    def status_code(self) -> int:
        status: int = self.value[0]
        return status

    @property
    def error(self) -> str | None:
        error: str | None = self.value[1]
        return error


_M, _R, _T, _S, _U, _P, _N = (
    Outcome.MISSING_CREDENTIALS,
    Outcome.INVALID_REQUEST,
    Outcome.INVALID_TOKEN,
    Outcome.INSUFFICIENT_SCOPE,
    Outcome.ISSUER_UNAVAILABLE,
    Outcome.INVALID_DPOP_PROOF,
    Outcome.USE_DPOP_NONCE,
)


class Reason(str, enum.Enum):
    """A stable refusal code; ``outcome`` and ``template`` are derived from it in one table."""

    outcome: Outcome
    template: str

    def __new__(cls, code: str, outcome: Outcome, template: str) -> Reason:
        member = str.__new__(cls, code)
        member._value_ = code
        member.outcome = outcome
        member.template = template
        return member

    # The request
    CREDENTIALS_MISSING = ("credentials_missing", _M, "Bearer credentials are required")
    HEADER_REPEATED = ("header_repeated", _R, "Send one Authorization header")
    CREDENTIALS_MALFORMED = ("credentials_malformed", _R, "The bearer token is malformed")
    # The token's shape and header
    TOO_LARGE = ("too_large", _T, "The token is too large")
    MALFORMED = ("malformed", _T, "The token is not a compact JWS")
    MALFORMED_BASE64 = ("malformed_base64", _T, "The token is not valid base64url")
    MALFORMED_JSON = ("malformed_json", _T, "The token {} is not a JSON object")
    MALFORMED_TEXT = ("malformed_text", _T, "The token {} holds text that is not valid Unicode")
    ALGORITHM = ("algorithm", _T, "The token algorithm is not allowed")
    CRITICAL_HEADER = ("critical_header", _T, "The token has critical header parameters")
    PAYLOAD_ENCODING = ("payload_encoding", _T, "The token uses an unsupported payload encoding")
    EMBEDDED_KEY = ("embedded_key", _T, "The token carries its own key reference")
    KEY_ID_TYPE = ("key_id_type", _T, "The token key id is not a string")
    TYPE_MALFORMED = ("type_malformed", _T, "The token type is not a string")
    NOT_ACCESS_TOKEN = ("not_access_token", _T, "The token is not an access token (typ)")
    # Whose token, which key, the signature
    ISSUER = ("issuer", _T, "The token issuer is not trusted")
    UNKNOWN_KEY = ("unknown_key", _T, "The token was signed by an unknown key")
    KEY_ID_MISSING = ("key_id_missing", _T, "The token does not say which key signed it")
    KEY_MISMATCH = ("key_mismatch", _T, "The token algorithm does not fit its key")
    SIGNATURE = ("signature", _T, "The token signature is invalid")
    # Times
    NO_EXPIRY = ("no_expiry", _T, "The token has no expiry")
    EXPIRED = ("expired", _T, "The token has expired")
    NOT_YET_VALID = ("not_yet_valid", _T, "The token is not valid yet")
    ISSUED_IN_FUTURE = ("issued_in_future", _T, "The token was issued in the future")
    NO_ISSUE_TIME = ("no_issue_time", _T, "The token has no issue time")
    TOO_OLD = ("too_old", _T, "The token is too old")
    # Claims and policies
    CLAIM_NOT_NUMBER = ("claim_not_number", _T, "The token {} claim is not a number")
    CLAIM_OUT_OF_RANGE = ("claim_out_of_range", _T, "The token {} claim is out of range")
    CLAIM_MALFORMED = ("claim_malformed", _T, "The token {} claim is malformed")
    NO_SUBJECT = ("no_subject", _T, "The token has no subject")
    REQUIRED_CLAIM = ("required_claim", _T, "The token lacks a required claim")
    CLIENT = ("client", _T, "The token was issued to a client that is not allowed")
    AUDIENCE = ("audience", _T, "The token is not intended for this audience")
    AUDIENCE_MALFORMED = ("audience_malformed", _T, "The token audience is missing or malformed")
    ORGANIZATIONS = ("organizations", _T, "The token names more than one organization")
    ORGANIZATION_MISSING = ("organization_missing", _T, "The token names no organization")
    ORGANIZATION_NOT_ALLOWED = (
        "organization_not_allowed",
        _T,
        "The token organization is not allowed",
    )
    # A token for another organization is answered as one for another audience: the
    # caller learns nothing about which organizations exist; logs keep the distinct code.
    OTHER_ORGANIZATION = ("other_organization", _T, "The token is not intended for this audience")
    PRINCIPAL = ("principal", _T, "The token claims do not fit the expected principal")
    # Sender-constrained tokens (RFC 9449 §7, RFC 8705 §3)
    SENDER_CONSTRAINED = (
        "sender_constrained",
        _T,
        "The token is bound to a key and needs proof of possession",
    )
    NOT_DPOP_BOUND = ("not_dpop_bound", _T, "The token is not bound to a DPoP key")
    CERTIFICATE_MISMATCH = (
        "certificate_mismatch",
        _T,
        "The token is bound to another client certificate",
    )
    # The DPoP proof (RFC 9449 §4.3), in the order it is checked
    DPOP_PROOF_MISSING = ("dpop_proof_missing", _P, "A DPoP proof is required")
    DPOP_PROOF_REPEATED = ("dpop_proof_repeated", _P, "Send one DPoP header")
    DPOP_PROOF_TOO_LARGE = ("dpop_proof_too_large", _P, "The DPoP proof is too large")
    DPOP_PROOF_MALFORMED = ("dpop_proof_malformed", _P, "The DPoP proof is not a compact JWS")
    DPOP_PROOF_ENCODING = ("dpop_proof_encoding", _P, "The DPoP proof {} is malformed")
    DPOP_PROOF_TYPE = ("dpop_proof_type", _P, "The DPoP proof type is not dpop+jwt")
    DPOP_PROOF_ALGORITHM = ("dpop_proof_algorithm", _P, "The DPoP proof algorithm is not allowed")
    DPOP_PROOF_HEADER = (
        "dpop_proof_header",
        _P,
        "The DPoP proof has header parameters this server does not support",
    )
    DPOP_PROOF_KEY = ("dpop_proof_key", _P, "The DPoP proof key is not a usable public key")
    DPOP_PROOF_KEY_MISMATCH = (
        "dpop_proof_key_mismatch",
        _P,
        "The DPoP proof algorithm does not fit its key",
    )
    DPOP_PROOF_SIGNATURE = ("dpop_proof_signature", _P, "The DPoP proof signature is invalid")
    DPOP_PROOF_CLAIM_MISSING = ("dpop_proof_claim_missing", _P, "The DPoP proof lacks the {} claim")
    DPOP_PROOF_CLAIM_MALFORMED = (
        "dpop_proof_claim_malformed",
        _P,
        "The DPoP proof {} claim is malformed",
    )
    DPOP_PROOF_METHOD = ("dpop_proof_method", _P, "The DPoP proof is for another HTTP method")
    DPOP_PROOF_URL = ("dpop_proof_url", _P, "The DPoP proof is for another URL")
    DPOP_PROOF_TOO_OLD = ("dpop_proof_too_old", _P, "The DPoP proof is too old")
    DPOP_PROOF_ISSUED_IN_FUTURE = (
        "dpop_proof_issued_in_future",
        _P,
        "The DPoP proof was issued in the future",
    )
    DPOP_PROOF_ACCESS_TOKEN = (
        "dpop_proof_access_token",
        _P,
        "The DPoP proof is for another access token (ath)",
    )
    DPOP_NONCE_REQUIRED = ("dpop_nonce_required", _N, "The DPoP proof must carry a server nonce")
    DPOP_NONCE_STALE = ("dpop_nonce_stale", _N, "The DPoP nonce is unknown or has expired")
    DPOP_PROOF_BINDING = (
        "dpop_proof_binding",
        _P,
        "The DPoP proof key is not the key the token is bound to",
    )
    DPOP_PROOF_REPLAYED = ("dpop_proof_replayed", _P, "The DPoP proof was used before")
    # After the token
    SCOPE = ("scope", _S, "The token lacks a required scope")
    ISSUER_UNAVAILABLE = (
        "issuer_unavailable",
        _U,
        "The token issuer's keys cannot be fetched right now",
    )
    REPLAY_STORE_UNAVAILABLE = (
        "replay_store_unavailable",
        _U,
        "The DPoP replay store cannot be reached right now",
    )

    def describe(self, detail: str = "") -> str:
        """The ``error_description`` text: the template, with ``detail`` in its one slot."""
        return self.template.format(detail) if "{}" in self.template else self.template
