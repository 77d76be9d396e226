"""A bounded fuzz run of the verifier entry point, seeded by the corpus in ``fuzz_corpus/``.

The corpus holds one JSON file per seed: either ``{"token": ...}`` (sent as written) or
``{"header": ..., "payload": ...}`` (signed here with the key its ``kid`` names, unless a
literal ``"signature"`` is given). ``"expect"`` is ``"accept"`` or the exact reason of the
refusal. Times in the corpus are relative to a fixed clock, so seeds never go stale.

The fuzz run grows hostile tokens from those seeds (claims and headers replaced by
arbitrary JSON and then signed for real, or the text of the token damaged) and from
nothing at all. Whatever it sends, the verifier answers with a principal or an
``InvalidTokenError``: never another exception, never a principal for a token our keys
did not sign.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fastapi_isp_jwt import InvalidRequestError, InvalidTokenError, JWTAuth, Principal
from fastapi_isp_jwt.credentials import b64token
from fastapi_isp_jwt.grammar import is_b64token
from fastapi_isp_jwt.testing import SigningKey
from fastapi_isp_jwt.verified import PendingVerification
from fastapi_isp_jwt.verifier import Verifier
from tests.security.hostile import ACME, b64url, segment, signature_of
from tests.security.mutations import (
    NOISE,
    character_substitutions,
    insertions_and_deletions,
    segment_rearrangements,
    truncations,
)
from tests.support.clock import FakeClock
from tests.support.issuer_server import IssuerServer

CORPUS = Path(__file__).parent / "fuzz_corpus"
TENANT = "https://istreamplanet.auth0.com/"
# 2027-01-15T08:00:00Z: the corpus's "now".
NOW = 1_800_000_000.0
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
_FITTING = {"fuzz-rsa": ("RS256", "PS256"), "fuzz-ec": ("ES256",), "fuzz-ed": ("EdDSA",)}


@dataclass(frozen=True)
class Seed:
    name: str
    expect: str
    token: str | None = None
    header: dict[str, Any] | None = None
    payload: Any = None
    signature: str | None = None


def _load_corpus() -> list[Seed]:
    seeds = []
    for path in sorted(CORPUS.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        seeds.append(Seed(name=path.stem, **document))
    return seeds


SEEDS = _load_corpus()


class Target:
    """The tenant's issuer, its keys on a real JWKS server, and a verifier on a fixed clock."""

    def __init__(self, server: IssuerServer) -> None:
        self.keys = {
            key.kid: key
            for key in (
                SigningKey.generate("RS256", kid="fuzz-rsa"),
                SigningKey.generate("ES256", kid="fuzz-ec"),
                SigningKey.generate("EdDSA", kid="fuzz-ed"),
            )
        }
        server.serve(lambda: {"keys": [key.public_jwk() for key in self.keys.values()]})
        auth = JWTAuth(
            issuer=TENANT, jwks_url=server.jwks_url, audience=ACME, algorithms=ALGORITHMS
        )
        self.verifier = Verifier(auth.settings, clock=FakeClock(NOW))
        self.signed: set[str] = set()

    def sign(self, header: Any, payload: Any, signature: str | None = None) -> str:
        """Sign for real with the key ``kid`` names (RSA when it names none of ours).

        The algorithm is the header's when it fits that key, else the key's own: a header
        that lies about either still gets a genuine signature.
        """
        data = f"{segment(header)}.{segment(payload)}".encode()
        if signature is None:
            named = header if isinstance(header, dict) else {}
            kid, alg = named.get("kid"), named.get("alg")
            key = self.keys.get(kid) if isinstance(kid, str) else None
            key = key or self.keys["fuzz-rsa"]
            chosen = alg if alg in _FITTING[key.kid] else _FITTING[key.kid][0]
            signature = b64url(signature_of(data, key.private_key, chosen))
        token = f"{data.decode()}.{signature}"
        self.signed.add(token)
        return token

    def token_of(self, seed: Seed) -> str:
        if seed.token is not None:
            return seed.token
        assert seed.header is not None
        return self.sign(seed.header, seed.payload, seed.signature)

    def outcome(self, token: str) -> str:
        try:
            principal = self.verifier.verify_sync(token)
        except InvalidTokenError as refusal:
            return refusal.description
        assert isinstance(principal, Principal)
        return "accept"


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with IssuerServer() as server:
        yield Target(server)


def test_the_corpus_is_not_empty() -> None:
    assert len(SEEDS) >= 40
    assert {seed.expect for seed in SEEDS} > {"accept"}


@pytest.mark.parametrize("seed", SEEDS, ids=[seed.name for seed in SEEDS])
def test_every_corpus_seed_gets_its_recorded_outcome(target: Target, seed: Seed) -> None:
    assert target.outcome(target.token_of(seed)) == seed.expect


@pytest.mark.anyio
@pytest.mark.parametrize("seed", SEEDS, ids=[seed.name for seed in SEEDS])
async def test_every_corpus_seed_gets_the_same_outcome_from_the_async_entry_point(
    target: Target, seed: Seed
) -> None:
    token = target.token_of(seed)
    try:
        await target.verifier.verify(token)
    except InvalidTokenError as refusal:
        outcome = refusal.description
    else:
        outcome = "accept"
    assert outcome == seed.expect


@pytest.mark.anyio
@pytest.mark.parametrize("seed", SEEDS, ids=[seed.name for seed in SEEDS])
async def test_every_corpus_seed_gets_the_same_outcome_on_a_requests_path(
    target: Target, seed: Seed
) -> None:
    # A request carries bytes and checks them against RFC 6750's grammar only once the
    # verifier refuses them: the outcome must be what it was with the grammar checked first.
    raw = target.token_of(seed).encode("utf-8", "surrogatepass")
    try:
        found = target.verifier.verify_now(raw, grammar=b64token)
        if isinstance(found, PendingVerification):
            found = await found.finish()
    except InvalidRequestError:
        outcome = "invalid_request"
    except InvalidTokenError as refusal:
        outcome = refusal.description
    else:
        outcome = "accept"
    assert outcome == (seed.expect if is_b64token(raw) else "invalid_request")


# -- the fuzz run ------------------------------------------------------------------------

# Every code point, lone surrogates and noncharacters included: text a signed claim may
# hold that the application could not encode in its answer.
ANY_CHARACTER = st.characters(exclude_categories=()) | st.sampled_from("\ud800\udfff\ufffe\uffff")
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(ANY_CHARACTER, max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(ANY_CHARACTER, max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
HEADER_NAMES = st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jku", "jwk", "x5c", "cty"])
CLAIM_NAMES = st.sampled_from(
    ["iss", "sub", "aud", "exp", "nbf", "iat", "scope", "permissions", "azp", "gty", "client_id"]
)
SIGNED_SEEDS = [seed for seed in SEEDS if seed.header is not None and seed.signature is None]


@st.composite
def _rewritten(draw: st.DrawFn, members: Any, names: st.SearchStrategy[str]) -> Any:
    """Members replaced by arbitrary JSON, removed or added; sometimes not an object at all."""
    if not isinstance(members, dict) or draw(st.integers(0, 19)) == 0:
        return draw(JSON_VALUES)
    result = dict(members)
    for _ in range(draw(st.integers(0, 3))):
        name = draw(names | st.text(ANY_CHARACTER, max_size=6))
        if draw(st.booleans()):
            result[name] = draw(JSON_VALUES)
        else:
            result.pop(name, None)
    return result


@st.composite
def _signed_hostile(draw: st.DrawFn, target: Target) -> str:
    seed = draw(st.sampled_from(SIGNED_SEEDS))
    assert seed.header is not None
    header = draw(_rewritten(seed.header, HEADER_NAMES))
    payload = draw(_rewritten(seed.payload, CLAIM_NAMES))
    return target.sign(header, payload)


@st.composite
def _damaged(draw: st.DrawFn, target: Target) -> str:
    token = draw(st.sampled_from(SEEDS).map(target.token_of))
    if not token:
        return token
    damage = draw(st.sampled_from(["substitute", "insert or delete", "truncate", "rearrange"]))
    if damage == "substitute":
        return draw(character_substitutions(token))
    if damage == "insert or delete":
        return draw(insertions_and_deletions(token))
    if damage == "truncate":
        return draw(truncations(token))
    return draw(segment_rearrangements(token))


def _hostile_tokens(target: Target) -> st.SearchStrategy[str]:
    return st.one_of(
        _signed_hostile(target),
        _damaged(target),
        st.text(NOISE, max_size=64),
        # Any text a caller could pass in, lone surrogates included.
        st.text(ANY_CHARACTER, max_size=64),
    )


@settings(
    max_examples=2500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_the_verifier_only_ever_accepts_what_our_keys_signed_or_raises_invalid_token(
    target: Target, data: st.DataObject
) -> None:
    token = data.draw(_hostile_tokens(target))
    outcome = target.outcome(token)
    event(outcome)  # --hypothesis-show-statistics tells how deep the run reached
    if outcome == "accept":
        assert token in target.signed
