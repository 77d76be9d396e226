"""A token issuer for tests: its own keys, its own JWKS, tokens shaped like the tenant's.

Its JWKS and discovery document are served in memory to httpx, or over real HTTP on
127.0.0.1 by `ServedIssuer`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from fastapi_isp_jwt import PLATFORM_AUDIENCE_PREFIX, JWTAuth
from fastapi_isp_jwt.minting import SigningKey, jwks_of, sign_token, tenant_claims
from fastapi_isp_jwt.testing.loopback import Exchange, LoopbackServer

__all__ = ["PLATFORM_AUDIENCE_PREFIX", "ServedIssuer", "SigningKey", "TestIssuer"]

JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"


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
        other URL answers 404. The documents are built on every request, so rotated or
        retired keys show up at once, as they would on a live tenant.
        """
        if self._transport is None:
            self._transport = httpx.MockTransport(self._answer)
        return self._transport

    def _answer(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            return httpx.Response(405, json={"error": "method not allowed"})
        if request.url == httpx.URL(self.jwks_url):
            self.count_jwks_request()
            return httpx.Response(200, json=self.jwks())
        if request.url == httpx.URL(self.discovery_url):
            return httpx.Response(200, json=self.discovery_document())
        return httpx.Response(404, json={"error": "not found"})

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
        return jwks_of(self.published_keys)

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
        for name, names in (("scopes", scopes), ("permissions", permissions)):
            if isinstance(names, str):
                raise TypeError(
                    f"{name} must be a list of scope names, not one string: [{names!r}]"
                )
        if audience is None:
            audience = PLATFORM_AUDIENCE_PREFIX + (organization or self.organization)
        payload = tenant_claims(
            self.issuer,
            audience,
            client_id=client_id or self.client_id,
            subject=None if machine else subject,
            scopes=scopes,
            permissions=permissions,
            expires_in=expires_in,
            issued_at=issued_at,
            not_before=not_before,
        )
        payload.update(extra)
        return payload

    def sign(
        self,
        payload: Mapping[str, Any],
        *,
        headers: Mapping[str, Any] | None = None,
        key: SigningKey | None = None,
    ) -> str:
        """Sign any payload with any header: the raw tool for building hostile tokens.

        Only text that is not valid Unicode is refused (`NotUnicodeError`, a ``ValueError``).
        """
        return sign_token(payload, key or self.signing_key, header=headers)

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

    def mint_dpop_bound(
        self,
        subject: str = "auth0|test-user",
        scopes: Iterable[str] = (),
        *,
        jkt: str,
        **claims: Any,
    ) -> str:
        """A token bound to the DPoP key whose RFC 7638 thumbprint is ``jkt`` (``cnf.jkt``).

        ``minting.jwk_thumbprint(key.public_jwk())`` gives the thumbprint of a `SigningKey`.
        """
        return self.mint(subject, scopes, cnf={"jkt": jkt}, **claims)

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


class ServedIssuer:
    """A small HTTP server on 127.0.0.1 publishing one issuer's documents (a `TestIssuer`'s).

    Use it as a context manager; the port is picked by the system. Tokens keep the
    issuer's own ``iss``: only the keys travel over HTTP, from `jwks_url`.
    """

    def __init__(self, issuer: TestIssuer) -> None:
        self.issuer = issuer
        self._server = LoopbackServer(self._respond, name="isp-test-issuer")

    @property
    def url(self) -> str:
        """The server's base URL, with a trailing slash."""
        return self._server.url

    @property
    def jwks_url(self) -> str:
        return self.url.rstrip("/") + JWKS_PATH

    @property
    def discovery_url(self) -> str:
        return self.url.rstrip("/") + DISCOVERY_PATH

    def auth(self, **options: Any) -> JWTAuth:
        """A ``JWTAuth`` trusting the issuer and fetching its keys from this server over HTTP.

        Keyword arguments are those of ``JWTAuth`` and win over these defaults.
        """
        return self.issuer.auth(**{"jwks_url": self.jwks_url, **options})

    def start(self) -> ServedIssuer:
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; safe to call more than once.

        Every answer closes its connection, so after `stop` no client reaches the issuer,
        not even one that pooled its connection.
        """
        self._server.stop()

    def __enter__(self) -> ServedIssuer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _respond(self, exchange: Exchange) -> None:
        if exchange.path == JWKS_PATH:
            self.issuer.count_jwks_request()
            self._send(exchange, 200, self.issuer.jwks())
        elif exchange.path == DISCOVERY_PATH:
            self._send(exchange, 200, self.issuer.discovery_document(self.jwks_url))
        else:
            self._send(exchange, 404, {"error": "not found"})

    def _send(self, exchange: Exchange, status: int, document: dict[str, Any]) -> None:
        # One request per connection: a kept-alive connection would outlive stop() in its
        # handler thread and keep answering a test that simulates an outage.
        headers = (("Cache-Control", "no-store"), ("Connection", "close"))
        exchange.answer(status, json.dumps(document).encode(), headers=headers)
