"""A token issuer for tests: its own keys, its own JWKS, tokens shaped like the tenant's."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from fastapi_isp_jwt import ALGORITHMS, PLATFORM_AUDIENCE_PREFIX, JWTAuth
from fastapi_isp_jwt.testing.loopback import ServedIssuer
from fastapi_isp_jwt.testing.transport import issuer_transport

__all__ = ["PLATFORM_AUDIENCE_PREFIX", "SigningKey", "TestIssuer"]

# By the JWK curve name each EC algorithm of ALGORITHMS requires.
_EC_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class SigningKey:
    """One private key of the issuer, with the ``kid`` and ``alg`` it is published under."""

    kid: str
    alg: str
    private_key: PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        # Checked here, so that a key read from a file fails when it is loaded rather
        # than when it first signs.
        if not isinstance(self.kid, str) or not self.kid:
            raise ValueError("a signing key needs a kid that is non-empty text")
        if not _fits(self.private_key, self.alg):
            raise ValueError(f"the key does not fit the algorithm {self.alg!r}")

    @classmethod
    def generate(cls, alg: str = "RS256", kid: str | None = None) -> SigningKey:
        """A new private key for ``alg``, one of ``fastapi_isp_jwt.ALGORITHMS``."""
        kty, crv = _key_type(alg)
        private_key: PrivateKey
        if kty == "RSA":
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif kty == "EC":
            private_key = ec.generate_private_key(_EC_CURVES[str(crv)])
        else:
            private_key = ed25519.Ed25519PrivateKey.generate()
        return cls(kid=kid or secrets.token_hex(8), alg=alg, private_key=private_key)

    @classmethod
    def from_pem(cls, pem: bytes, *, kid: str, alg: str) -> SigningKey:
        """Load a private key saved with `to_pem`; ``alg`` must fit the key's type."""
        _key_type(alg)
        private_key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(
            private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
        ):
            raise ValueError(f"the key does not fit the algorithm {alg!r}")
        return cls(kid=kid, alg=alg, private_key=private_key)

    def to_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM, for a local key file only."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK, the way an Auth0 tenant publishes it."""
        public = self.private_key.public_key()
        jwk: dict[str, Any]
        if isinstance(public, rsa.RSAPublicKey):
            jwk = dict(RSAAlgorithm.to_jwk(public, as_dict=True))
        elif isinstance(public, ec.EllipticCurvePublicKey):
            jwk = dict(ECAlgorithm.to_jwk(public, as_dict=True))
        else:
            jwk = dict(OKPAlgorithm.to_jwk(public, as_dict=True))
        jwk.update(kid=self.kid, alg=self.alg, use="sig")
        return jwk


def _key_type(alg: object) -> tuple[str, str | None]:
    """The ``kty`` and ``crv`` a key for ``alg`` has; only ALGORITHMS are known."""
    algorithm = ALGORITHMS.get(alg) if isinstance(alg, str) else None
    if algorithm is None:
        raise ValueError(f"unknown algorithm {alg!r}: use one of {', '.join(ALGORITHMS)}")
    return algorithm.kty, algorithm.crv


def _fits(private_key: object, alg: str) -> bool:
    kty, crv = _key_type(alg)
    if kty == "RSA":
        return isinstance(private_key, rsa.RSAPrivateKey)
    if kty == "EC":
        return (
            isinstance(private_key, ec.EllipticCurvePrivateKey)
            and private_key.curve.name == _EC_CURVES[str(crv)].name
        )
    return isinstance(private_key, ed25519.Ed25519PrivateKey)  # OKP: Ed25519 is the one curve


class TestIssuer:
    """Mints access tokens and publishes the matching JWKS, with no network involved.

    Tokens look like the tenant's: ``iss`` with a trailing slash, ``aud`` the organization
    URI, a space-delimited ``scope``, ``azp``, and for machines ``gty`` and ``sub``
    ``<client_id>@clients``.

    `transport` serves the JWKS and discovery document to httpx clients in memory,
    `serve` serves them over real HTTP on 127.0.0.1, and `auth` builds a
    ``JWTAuth`` that trusts this issuer.
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(
        self,
        issuer: str = "https://issuer.test/",
        *,
        organization: str = "acme",
        algorithm: str = "RS256",
        client_id: str = "test-client",
        signing_key: SigningKey | None = None,
    ) -> None:
        self.issuer = issuer
        self.organization = organization
        self.client_id = client_id
        self.signing_key = signing_key or SigningKey.generate(algorithm)
        self._published: dict[str, SigningKey] = {self.signing_key.kid: self.signing_key}
        # rotate() and retire() may run in a test's thread while a server thread renders
        # the JWKS: every reader takes a snapshot under this lock.
        self._keys_lock = threading.Lock()
        self._jwks_requests = 0
        self._counter_lock = threading.Lock()
        self._transport: httpx.MockTransport | None = None

    @property
    def audience(self) -> str:
        """The organization URI tokens are minted for by default."""
        return PLATFORM_AUDIENCE_PREFIX + self.organization

    @property
    def jwks_url(self) -> str:
        return self.issuer + ".well-known/jwks.json"

    @property
    def discovery_url(self) -> str:
        return self.issuer + ".well-known/openid-configuration"

    @property
    def jwks_requests(self) -> int:
        """How many times the JWKS was served, by `transport` or `serve`."""
        return self._jwks_requests

    def count_jwks_request(self) -> None:
        with self._counter_lock:
            self._jwks_requests += 1

    def discovery_document(self, jwks_url: str | None = None) -> dict[str, Any]:
        """The OpenID Provider metadata, pointing at ``jwks_url`` (default `jwks_url`)."""
        return {
            "issuer": self.issuer,
            "jwks_uri": jwks_url or self.jwks_url,
            "id_token_signing_alg_values_supported": [self.signing_key.alg],
        }

    @property
    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering the JWKS and discovery URLs in memory.

        The same transport works for ``httpx.Client`` and ``httpx.AsyncClient``; every
        other URL answers 404.
        """
        if self._transport is None:
            self._transport = issuer_transport(self)
        return self._transport

    def serve(self) -> ServedIssuer:
        """Serve the JWKS and discovery document over HTTP on 127.0.0.1 (a context manager).

        ``with issuer.serve() as served:`` then ``served.jwks_url``; the server stops when
        the block ends.
        """
        return ServedIssuer(self)

    def auth(self, **options: Any) -> JWTAuth:
        """A ``JWTAuth`` that trusts this issuer and fetches its keys through `transport`.

        It accepts `issuer`, `audience` and the signing key's algorithm;
        keyword arguments are those of ``JWTAuth`` and win over these defaults.
        """
        options.setdefault("issuer", self.issuer)
        options.setdefault("audience", self.audience)
        options.setdefault("algorithms", (self.signing_key.alg,))
        if "jwks_url" not in options:
            # Keys and discovery metadata come from memory: no server, no network. Clients
            # are built only where the caller gave none, so that none is left unclosed.
            if "http_client" not in options:
                options["http_client"] = httpx.AsyncClient(transport=self.transport)
            if "sync_http_client" not in options:
                options["sync_http_client"] = httpx.Client(transport=self.transport)
        return JWTAuth(**options)

    @property
    def published_keys(self) -> tuple[SigningKey, ...]:
        """The keys published right now, oldest first."""
        with self._keys_lock:
            return tuple(self._published.values())

    def jwks(self) -> dict[str, Any]:
        """The JWKS document the issuer publishes right now."""
        return {"keys": [key.public_jwk() for key in self.published_keys]}

    def rotate(self, algorithm: str | None = None) -> SigningKey:
        """Publish a new key and sign with it from now on; the old key stays published."""
        key = SigningKey.generate(algorithm or self.signing_key.alg)
        with self._keys_lock:
            self._published[key.kid] = key
            self.signing_key = key
        return key

    def retire(self, kid: str) -> None:
        """Stop publishing the key ``kid`` (tokens it signed must then be refused)."""
        with self._keys_lock:
            del self._published[kid]

    def claims(
        self,
        subject: str = "auth0|test-user",
        scopes: Iterable[str] = (),
        *,
        organization: str | None = None,
        audience: str | list[str] | None = None,
        expires_in: float = 3600,
        issued_at: float | None = None,
        not_before: float | None = None,
        permissions: Iterable[str] | None = None,
        client_id: str | None = None,
        machine: bool = False,
        **extra: Any,
    ) -> dict[str, Any]:
        """The claims `mint` would sign, for tests that tamper before signing."""
        now = time.time() if issued_at is None else issued_at
        client = client_id or self.client_id
        if audience is None:
            audience = PLATFORM_AUDIENCE_PREFIX + (organization or self.organization)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": f"{client}@clients" if machine else subject,
            "aud": audience,
            "iat": int(now),
            "exp": int(now + expires_in),
            "azp": client,
        }
        scope_list = list(scopes)
        if scope_list:
            payload["scope"] = " ".join(scope_list)
        if permissions is not None:
            payload["permissions"] = list(permissions)
        if machine:
            payload["gty"] = "client-credentials"
        if not_before is not None:
            payload["nbf"] = int(not_before)
        payload.update(extra)
        return payload

    def sign(
        self,
        payload: Mapping[str, Any],
        *,
        headers: Mapping[str, Any] | None = None,
        key: SigningKey | None = None,
    ) -> str:
        """Sign any payload with any header: the raw tool for building hostile tokens."""
        signer = key or self.signing_key
        header: dict[str, Any] = {"typ": "JWT", "kid": signer.kid}
        if headers:
            header.update(headers)
        algorithm = header.pop("alg", signer.alg)
        return jwt.encode(dict(payload), signer.private_key, algorithm=algorithm, headers=header)

    def mint(
        self,
        subject: str = "auth0|test-user",
        scopes: Iterable[str] = (),
        *,
        headers: Mapping[str, Any] | None = None,
        key: SigningKey | None = None,
        **claims: Any,
    ) -> str:
        """A valid access token; keyword arguments are those of `claims`."""
        return self.sign(self.claims(subject, scopes, **claims), headers=headers, key=key)

    def mint_machine(self, scopes: Iterable[str] = (), **claims: Any) -> str:
        """A Client Credentials (machine to machine) token."""
        return self.mint(scopes=scopes, machine=True, **claims)

    def mint_expired(self, ago: float = 3600, **claims: Any) -> str:
        """A token whose ``exp`` lies ``ago`` seconds in the past."""
        issued = time.time() - ago - 3600
        return self.mint(issued_at=issued, expires_in=3600, **claims)

    def mint_not_yet_valid(self, in_seconds: float = 3600, **claims: Any) -> str:
        """A token whose ``nbf`` lies ``in_seconds`` in the future."""
        return self.mint(not_before=time.time() + in_seconds, **claims)
