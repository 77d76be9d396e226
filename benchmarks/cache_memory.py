"""Resident memory after verifying many distinct tokens twice each, in a process of its own.

``python benchmarks/cache_memory.py SHAPE COUNT [CACHE_BYTES]`` prints one JSON object:
the resident set size before and after, and how many tokens the cache holds. SHAPE is
``typical`` (an Auth0-shaped token, about 900 bytes), ``heavy`` (about 4 KiB of many small
claims: many Python objects per token) or ``large`` (near the 8 KiB size cap). The tokens
are minted before the first reading and stay alive to the last, so the growth is what
verifying them left behind. Keys come from an in-memory JWKS: no network.
"""

from __future__ import annotations

import gc
import json
import sys
from typing import Any

import httpx

from fastapi_isp_jwt import JWTAuth
from fastapi_isp_jwt.testing import TestIssuer

ISSUER = "https://tenant.example/"
DEFAULT_BYTES = 32 * 1024 * 1024

EXTRA_CLAIMS = {
    "typical": 0,
    "heavy": 230,
    "large": 540,
}


def rss_bytes() -> int:
    gc.collect()
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmRSS")


def remembered(auth: JWTAuth) -> int:
    cache = auth.verifier._verified  # how many entries: read the same way in every version
    return 0 if cache is None else len(cache) if hasattr(cache, "__len__") else cache.size[0]


def main(shape: str, count: int, cache_bytes: int) -> dict[str, int]:
    issuer = TestIssuer(ISSUER, algorithm="EdDSA")
    jwks = issuer.jwks()
    client = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(200, json=jwks)))
    options: dict[str, Any] = (
        {} if cache_bytes == DEFAULT_BYTES else {"token_cache_bytes": cache_bytes}
    )
    auth = JWTAuth(
        issuer=ISSUER,
        audience=issuer.audience,
        algorithms=["EdDSA"],
        sync_http_client=client,
        **options,  # the option is absent before the cache was bounded in bytes
    )
    extra: dict[str, Any] = {f"c{n}": n for n in range(EXTRA_CLAIMS[shape])}
    tokens = [issuer.mint(f"auth0|user-{n}", ["streams:read"], **extra) for n in range(count)]
    auth.verify_sync(issuer.mint())  # keys loaded, every code path warm
    before = rss_bytes()
    for token in tokens:
        auth.verify_sync(token)
        auth.verify_sync(token)
    after = rss_bytes()
    return {
        "token_bytes": len(tokens[0]),
        "rss_before": before,
        "rss_after": after,
        "growth": after - before,
        "remembered": remembered(auth),
    }


if __name__ == "__main__":
    cache_bytes = int(sys.argv[3]) if len(sys.argv) > 3 else DEFAULT_BYTES
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), cache_bytes)))
