"""Distinct valid tokens made before any clock starts, on every core.

An RS256 signature costs a few hundred microseconds, so the tens of thousands of tokens
a run needs are minted in worker processes, each from the same private key.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

from fastapi_isp_jwt.testing import SigningKey, TestIssuer

# Fewer than this many tokens are minted in-process: starting workers would cost more.
_PARALLEL_THRESHOLD = 4000
_CHUNK = 2000


def _mint_range(
    pem: bytes, kid: str, alg: str, issuer: str, organization: str, start: int, count: int
) -> list[str]:
    signer = TestIssuer(
        issuer,
        organization=organization,
        signing_key=SigningKey.from_pem(pem, kid=kid, alg=alg),
    )
    return [
        signer.mint(f"auth0|bench-user-{index}", ["streams:read"])
        for index in range(start, start + count)
    ]


def mint_distinct(issuer: TestIssuer, count: int, *, first: int = 0) -> list[str]:
    """``count`` valid tokens of ``issuer``, each with its own subject (so each is unique).

    Subjects are numbered from ``first``: calls with disjoint ranges never repeat a token.
    """
    key = issuer.signing_key
    job = (key.to_pem(), key.kid, key.alg, issuer.issuer, issuer.organization)
    if count < _PARALLEL_THRESHOLD:
        return _mint_range(*job, first, count)
    end = first + count
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        chunks = [
            pool.submit(_mint_range, *job, start, min(_CHUNK, end - start))
            for start in range(first, end, _CHUNK)
        ]
        return [token for chunk in chunks for token in chunk.result()]
