"""Resident memory of a verifier that has seen many distinct tokens, in a process of its own.

Run apart from the timing rounds so that nothing else the benchmark holds (token pools,
peer libraries) moves the numbers. The verifier keeps its default verified-token cache
size; the tokens are minted before the first reading and stay alive to the last, so the
growth measured is what verifying them left behind. Each token is verified twice, as a
client in use would send it, so that every one of them enters the verified-token cache
(which admits a token on its second verification): this is the cache at its largest.
"""

from __future__ import annotations

import asyncio
import gc
import resource
from dataclasses import asdict, dataclass

from contenders import ISSUER, ORGANIZATION, isp_jwt_auth
from jwks_server import LocalIssuerServer
from minting import mint_distinct

from fastapi_isp_jwt.testing import TestIssuer


@dataclass
class MemoryReport:
    tokens: int
    cache_size: int
    rss_before: int
    rss_cache_full: int | None
    rss_after: int

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)


def rss_bytes() -> int:
    """The current resident set size (Linux ``/proc``), else the peak reported by rusage."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _settled_rss() -> int:
    gc.collect()
    return rss_bytes()


async def _verify_all(server: LocalIssuerServer, tokens: list[str]) -> MemoryReport:
    auth = isp_jwt_auth(server)
    cache_size = auth.settings.token_cache_size
    try:
        # The first token loads the keys and warms every code path before the baseline.
        await auth.verify(tokens[0])
        before = _settled_rss()
        cache_full: int | None = None
        for seen, token in enumerate(tokens[1:], start=2):
            await auth.verify(token)
            await auth.verify(token)
            if seen == cache_size:
                cache_full = _settled_rss()
        after = _settled_rss()
    finally:
        await auth.aclose()
    return MemoryReport(len(tokens), cache_size, before, cache_full, after)


def measure(count: int) -> MemoryReport:
    """Verify ``count`` distinct tokens, twice each, with one default ``JWTAuth``; report RSS."""
    issuer = TestIssuer(ISSUER, organization=ORGANIZATION)
    tokens = mint_distinct(issuer, count)
    with LocalIssuerServer(ISSUER, issuer.jwks) as server:
        return asyncio.run(_verify_all(server, tokens))
