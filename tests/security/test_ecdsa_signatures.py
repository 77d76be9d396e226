"""ECDSA signatures that must never verify: the "psychic signature" class and bad encodings.

JWS ECDSA signatures are R || S, each exactly as long as the curve order (RFC 7518 §3.4).
r and s must lie in [1, n-1]; r = s = 0 verified anything under some Java releases
(CVE-2022-21449). A DER-encoded signature is another format, not another spelling.
"""

from __future__ import annotations

from base64 import urlsafe_b64decode
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from fastapi.testclient import TestClient

from fastapi_isp_jwt.algorithms import ALGORITHMS
from fastapi_isp_jwt.testing import SigningKey
from tests.security.conftest import ClientFactory
from tests.security.hostile import assert_refused, b64url, bearer, sign, signing_input
from tests.support.issuer_server import IssuerServer

# The order n of each curve's base point (SEC 2 §2.4.2, §2.5.1, §2.6.1), written out here
# rather than borrowed from the library, and checked against OpenSSL by the first test.
ORDER = {
    "ES256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "ES384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
        "C7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    "ES512": int(
        "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
        "A51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}
_SIZE = {"ES256": 32, "ES384": 48, "ES512": 66}
_HASH: dict[str, hashes.HashAlgorithm] = {
    "ES256": hashes.SHA256(),
    "ES384": hashes.SHA384(),
    "ES512": hashes.SHA512(),
}

Forge = Callable[[str, dict[str, Any], dict[str, Any]], str]


@pytest.fixture(params=["ES256", "ES384", "ES512"])
def alg(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def ec_key(alg: str, server: IssuerServer) -> SigningKey:
    """A fresh EC key of the algorithm's curve, the only key the server publishes."""
    key = SigningKey.generate(alg, kid=f"ec-{alg}")
    server.serve(lambda: {"keys": [key.public_jwk()]})
    return key


@pytest.fixture
def ec_client(make_client: ClientFactory, alg: str) -> TestClient:
    return make_client(algorithms=[alg])


@pytest.fixture
def ec_header(ec_key: SigningKey) -> dict[str, Any]:
    return {"alg": ec_key.alg, "typ": "JWT", "kid": ec_key.kid}


def _with_signature(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    return f"{signing_input(header, claims).decode()}.{b64url(signature)}"


def _rs(alg: str, r: int, s: int) -> bytes:
    size = _SIZE[alg]
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _genuine_rs(key: SigningKey, header: dict[str, Any], claims: dict[str, Any]) -> tuple[int, int]:
    raw = sign(header, claims, key.private_key).rsplit(".", 1)[1]
    signature = urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    size = _SIZE[key.alg]
    return int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")


def test_the_curve_orders_used_here_are_those_of_the_curves(alg: str) -> None:
    # ECDSA is malleable: (r, n - s) verifies wherever (r, s) does, for the true n only.
    key = SigningKey.generate(alg).private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(key.sign(b"data", ec.ECDSA(_HASH[alg])))
    mirrored = encode_dss_signature(r, ORDER[alg] - s)
    key.public_key().verify(mirrored, b"data", ec.ECDSA(_HASH[alg]))


class _AcceptingKey:
    """A backend that accepts every signature, as Java's did for r = s = 0.

    It proves the range and length checks are the verifier's own, not OpenSSL's.
    """

    def __init__(self) -> None:
        self.calls = 0

    def verify(self, signature: bytes, data: bytes, algorithm: object) -> None:
        self.calls += 1


@pytest.mark.parametrize(
    "r_s",
    [
        pytest.param(lambda n, size: (0, 1), id="r=0"),
        pytest.param(lambda n, size: (1, 0), id="s=0"),
        pytest.param(lambda n, size: (n, 1), id="r=n"),
        pytest.param(lambda n, size: (1, n), id="s=n"),
        pytest.param(lambda n, size: (n + 1, 1), id="r=n+1"),
        pytest.param(lambda n, size: (1, (1 << (8 * size)) - 1), id="s=max"),
    ],
)
def test_r_or_s_out_of_range_never_reaches_the_signature_backend(
    alg: str, r_s: Callable[[int, int], tuple[int, int]]
) -> None:
    n, size = ORDER[alg], _SIZE[alg]
    r, s = r_s(n, size)
    if max(r, s) >= 1 << (8 * size):
        pytest.skip("the value does not fit the fixed width of this curve")
    backend = _AcceptingKey()
    assert ALGORITHMS[alg].verify(backend, b"data", _rs(alg, r, s)) is False
    assert backend.calls == 0


def test_an_in_range_r_s_does_reach_the_signature_backend(alg: str) -> None:
    backend = _AcceptingKey()
    assert ALGORITHMS[alg].verify(backend, b"data", _rs(alg, 1, ORDER[alg] - 1)) is True
    assert backend.calls == 1


def test_a_genuine_r_s_signature_is_accepted(
    ec_client: TestClient, ec_key: SigningKey, ec_header: dict[str, Any], claims: dict[str, Any]
) -> None:
    token = sign(ec_header, claims, ec_key.private_key)
    assert ec_client.get("/streams", headers=bearer(token)).status_code == 200


def test_r_and_s_both_zero_is_refused(
    ec_client: TestClient, alg: str, ec_header: dict[str, Any], claims: dict[str, Any]
) -> None:
    token = _with_signature(ec_header, claims, _rs(alg, 0, 0))
    description = assert_refused(ec_client.get("/streams", headers=bearer(token)))
    assert description == "The token signature is invalid"


def test_r_zero_with_a_genuine_s_is_refused(
    ec_client: TestClient,
    alg: str,
    ec_key: SigningKey,
    ec_header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    _, s = _genuine_rs(ec_key, ec_header, claims)
    token = _with_signature(ec_header, claims, _rs(alg, 0, s))
    description = assert_refused(ec_client.get("/streams", headers=bearer(token)))
    assert description == "The token signature is invalid"


def test_s_zero_with_a_genuine_r_is_refused(
    ec_client: TestClient,
    alg: str,
    ec_key: SigningKey,
    ec_header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    r, _ = _genuine_rs(ec_key, ec_header, claims)
    token = _with_signature(ec_header, claims, _rs(alg, r, 0))
    description = assert_refused(ec_client.get("/streams", headers=bearer(token)))
    assert description == "The token signature is invalid"


@pytest.mark.parametrize(("r_is_n", "s_is_n"), [(True, True), (True, False), (False, True)])
def test_r_or_s_equal_to_the_curve_order_is_refused(
    ec_client: TestClient,
    alg: str,
    ec_key: SigningKey,
    ec_header: dict[str, Any],
    claims: dict[str, Any],
    r_is_n: bool,
    s_is_n: bool,
) -> None:
    r, s = _genuine_rs(ec_key, ec_header, claims)
    n = ORDER[alg]
    token = _with_signature(ec_header, claims, _rs(alg, n if r_is_n else r, n if s_is_n else s))
    description = assert_refused(ec_client.get("/streams", headers=bearer(token)))
    assert description == "The token signature is invalid"


@pytest.mark.parametrize("alg", ["ES512"])
@pytest.mark.parametrize("member", ["r", "s"])
def test_r_or_s_plus_the_curve_order_is_refused(
    ec_client: TestClient,
    alg: str,
    ec_key: SigningKey,
    ec_header: dict[str, Any],
    claims: dict[str, Any],
    member: str,
) -> None:
    # r + n is r modulo n; only a range check tells them apart. P-521 is the one curve
    # whose fixed width (66 octets, 528 bits) has room for it.
    r, s = _genuine_rs(ec_key, ec_header, claims)
    n = ORDER[alg]
    signature = _rs(alg, r + n, s) if member == "r" else _rs(alg, r, s + n)
    token = _with_signature(ec_header, claims, signature)
    description = assert_refused(ec_client.get("/streams", headers=bearer(token)))
    assert description == "The token signature is invalid"


def test_all_ones_r_and_s_are_refused(
    ec_client: TestClient, alg: str, ec_header: dict[str, Any], claims: dict[str, Any]
) -> None:
    size = _SIZE[alg]
    token = _with_signature(ec_header, claims, b"\xff" * (2 * size))
    description = assert_refused(ec_client.get("/streams", headers=bearer(token)))
    assert description == "The token signature is invalid"


def test_a_der_encoded_genuine_signature_is_refused(
    ec_client: TestClient,
    alg: str,
    ec_key: SigningKey,
    ec_header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    assert isinstance(ec_key.private_key, ec.EllipticCurvePrivateKey)
    der = ec_key.private_key.sign(signing_input(ec_header, claims), ec.ECDSA(_HASH[alg]))
    assert der[0] == 0x30  # an ASN.1 SEQUENCE
    token = _with_signature(ec_header, claims, der)
    description = assert_refused(ec_client.get("/streams", headers=bearer(token)))
    assert description == "The token signature is invalid"


@pytest.mark.parametrize(
    "reshape",
    [
        pytest.param(lambda sig: sig[:-1], id="one byte short"),
        pytest.param(lambda sig: sig + b"\x00", id="one byte long"),
        pytest.param(lambda sig: b"\x00" + sig, id="leading zero byte"),
        pytest.param(lambda sig: sig[: len(sig) // 2], id="r only"),
        pytest.param(lambda sig: sig + sig, id="doubled"),
        pytest.param(lambda sig: b"", id="empty"),
    ],
)
def test_a_genuine_signature_of_the_wrong_length_is_refused(
    ec_client: TestClient,
    alg: str,
    ec_key: SigningKey,
    ec_header: dict[str, Any],
    claims: dict[str, Any],
    reshape: Callable[[bytes], bytes],
) -> None:
    r, s = _genuine_rs(ec_key, ec_header, claims)
    signature = reshape(_rs(alg, r, s))
    token = _with_signature(ec_header, claims, signature)
    if not signature:
        # An empty third segment is not a compact JWS at all.
        assert_refused(ec_client.get("/streams", headers=bearer(token)))
        return
    description = assert_refused(ec_client.get("/streams", headers=bearer(token)))
    assert description == "The token signature is invalid"


def test_a_signature_from_another_key_on_the_same_curve_is_refused(
    ec_client: TestClient,
    alg: str,
    ec_header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    stranger = SigningKey.generate(alg)
    token = sign(ec_header, claims, stranger.private_key)
    description = assert_refused(ec_client.get("/streams", headers=bearer(token)))
    assert description == "The token signature is invalid"
