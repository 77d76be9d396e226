"""Other JOSE libraries as producers and verifiers of tokens: authlib and joserfc.

Each `Producer` mints a token, with a key it generated itself and publishes in its own
JWK spelling, for every `Variant` it signs; and verifies a token against a published key
set, the other way round. panva's ``jose`` for Node does the same in `tests.support.node_jose`.

Both libraries warn about spellings they deprecate (authlib its whole ``jose`` module,
joserfc ``EdDSA`` since RFC 9864): the warnings are about them, not about this library,
so they are silenced here.
"""

from __future__ import annotations

import base64
import importlib.util
import secrets
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AUTHLIB",
    "JOSERFC",
    "PRODUCERS",
    "VARIANTS",
    "Minted",
    "Producer",
    "Variant",
    "short_coordinates",
    "variant_params",
]


@dataclass(frozen=True)
class Variant:
    """An algorithm as a producer signs with it: its name and, for EdDSA, the curve."""

    alg: str
    crv: str | None = None

    @property
    def label(self) -> str:
        return f"{self.alg} ({self.crv})" if self.alg == "EdDSA" else self.alg

    @property
    def key_type(self) -> tuple[str, str | int]:
        """The ``kty`` and the curve (or RSA size) a key for this variant has."""
        if self.alg.startswith(("RS", "PS")):
            return "RSA", 2048
        if self.alg.startswith("ES"):
            return "EC", {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[self.alg]
        return "OKP", self.crv or self.alg


_RSA = [Variant(f"{family}{bits}") for family in ("RS", "PS") for bits in (256, 384, 512)]
_EC = [Variant(f"ES{bits}") for bits in (256, 384, 512)]
VARIANTS: tuple[Variant, ...] = (
    *_RSA,
    *_EC,
    Variant("EdDSA", "Ed25519"),
    Variant("EdDSA", "Ed448"),
    Variant("Ed25519", "Ed25519"),
    Variant("Ed448", "Ed448"),
)
"""Every algorithm this library verifies, EdDSA once per curve."""


def variant_params(variants: Iterable[Variant]) -> list[Any]:
    """``variants`` as pytest parameters, each named by its label."""
    import pytest

    return [pytest.param(variant, id=variant.label) for variant in variants]


@dataclass(frozen=True)
class Minted:
    """A token and the key set that publishes its key, both as the producer wrote them."""

    token: str
    jwks: dict[str, Any]


MintFunction = Callable[[Variant, Mapping[str, Any]], Minted]
VerifyFunction = Callable[[str, Mapping[str, Any], Variant], dict[str, Any]]


@dataclass(frozen=True)
class Producer:
    """A library that signs (``mint``) and verifies (``verify``) the ``variants`` given."""

    name: str
    variants: tuple[Variant, ...]
    mint: MintFunction
    verify: VerifyFunction


@contextmanager
def _quietly() -> Iterator[None]:
    # authlib turns its deprecation warnings to "always" when first imported, which would
    # win over the filter below: that import happens before the filter is set.
    import authlib.deprecate  # noqa: F401

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _kid() -> str:
    return "interop-" + secrets.token_hex(4)


def _published(public: Mapping[str, Any], variant: Variant, kid: str) -> dict[str, Any]:
    return {"keys": [{**public, "kid": kid, "alg": variant.alg, "use": "sig"}]}


# -- authlib ------------------------------------------------------------------------------


def _authlib_key(variant: Variant) -> Any:
    with _quietly():
        from authlib.jose import JsonWebKey

        return JsonWebKey.generate_key(*variant.key_type, is_private=True)


def _authlib_mint_with(key: Any, variant: Variant, claims: Mapping[str, Any]) -> Minted:
    with _quietly():
        from authlib.jose import JsonWebToken

        kid = _kid()
        header = {"alg": variant.alg, "kid": kid, "typ": "JWT"}
        token = JsonWebToken([variant.alg]).encode(header, dict(claims), key).decode("ascii")
        return Minted(token, _published(key.as_dict(is_private=False), variant, kid))


def _authlib_mint(variant: Variant, claims: Mapping[str, Any]) -> Minted:
    return _authlib_mint_with(_authlib_key(variant), variant, claims)


def _authlib_verify(token: str, jwks: Mapping[str, Any], variant: Variant) -> dict[str, Any]:
    with _quietly():
        from authlib.jose import JsonWebKey, JsonWebToken

        claims = JsonWebToken([variant.alg]).decode(token, JsonWebKey.import_key_set(dict(jwks)))
        claims.validate()
        return dict(claims)


AUTHLIB = Producer(
    "authlib",
    # No RFC 9864 names: authlib signs EdDSA only, on either curve.
    tuple(v for v in VARIANTS if v.alg not in ("Ed25519", "Ed448")),
    _authlib_mint,
    _authlib_verify,
)


def short_coordinates(variant: Variant, claims: Mapping[str, Any], tries: int = 5000) -> Minted:
    """An authlib token whose published EC key has an ``x`` or ``y`` shorter than its curve.

    authlib drops leading zero bytes from coordinates: about 3 P-521 keys in 4 are short,
    1 in 128 on P-256 and P-384. A few thousand tries find one for sure.
    """
    size = {"P-256": 32, "P-384": 48, "P-521": 66}[str(variant.key_type[1])]
    for _ in range(tries):
        key = _authlib_key(variant)
        public = key.as_dict(is_private=False)
        if min(len(_b64decode(public["x"])), len(_b64decode(public["y"]))) < size:
            return _authlib_mint_with(key, variant, claims)
    raise AssertionError(f"no short coordinate in {tries} {variant.alg} keys")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- joserfc ------------------------------------------------------------------------------


def _joserfc_mint(variant: Variant, claims: Mapping[str, Any]) -> Minted:
    with _quietly():
        from joserfc import jwt
        from joserfc.jwk import ECKey, OKPKey, RSAKey

        kty, size_or_curve = variant.key_type
        generator = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}[kty]
        key = generator.generate_key(size_or_curve, private=True)  # type: ignore[attr-defined]
        kid = _kid()
        header = {"alg": variant.alg, "kid": kid, "typ": "JWT"}
        token = jwt.encode(header, dict(claims), key, algorithms=[variant.alg])
        return Minted(token, _published(key.as_dict(private=False), variant, kid))


def _joserfc_verify(token: str, jwks: Mapping[str, Any], variant: Variant) -> dict[str, Any]:
    with _quietly():
        from joserfc import jwt
        from joserfc.jwk import KeySet

        decoded = jwt.decode(token, KeySet.import_key_set(dict(jwks)), algorithms=[variant.alg])  # type: ignore[arg-type]
        jwt.JWTClaimsRegistry().validate(decoded.claims)
        return dict(decoded.claims)


JOSERFC = Producer("joserfc", VARIANTS, _joserfc_mint, _joserfc_verify)

# The producers installed: none in the lowest-versions session of the matrix, and no joserfc
# on Python 3.10 (1.8, the first with the RFC 9864 names, needs 3.11).
PRODUCERS: tuple[Producer, ...] = tuple(
    producer
    for producer in (AUTHLIB, JOSERFC)
    if importlib.util.find_spec(producer.name) is not None
)
