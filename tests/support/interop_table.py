"""Print the producer x algorithm tables that tests/test_interop*.py check.

    python -m tests.support.interop_table

"accepted" means `JWTAuth` (left table) or the library (right table) accepted the token;
"—", that the library does not sign (or verify) that algorithm. Node's ``jose`` is
installed into a temporary directory when Node and npm are on the machine, as in the tests.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from pathlib import Path

from fastapi_isp_jwt import AuthError
from tests.support.interop import dev_issuer_tokens, interop_claims, verified_by_jwtauth
from tests.support.issuer_server import IssuerServer
from tests.support.node_jose import JOSE_VARIANTS, NODE, NodeJose
from tests.support.producers import PRODUCERS, VARIANTS, Minted, Producer, Variant

Column = dict[Variant, str]


def _verdict(check: Callable[[], object]) -> str:
    try:
        check()
    except AuthError as refusal:
        return f"refused: {refusal.description}"
    except Exception as failure:  # any other library's refusal, whatever its class
        return f"refused: {type(failure).__name__}"
    return "accepted"


def _minted_by(producer: Producer, server: IssuerServer) -> Column:
    def check(variant: Variant) -> Callable[[], object]:
        minted = producer.mint(variant, interop_claims(server.url))
        return lambda: verified_by_jwtauth(server, minted, variant)

    return {variant: _verdict(check(variant)) for variant in producer.variants}


def _verified_by(producer: Producer, dev: dict[Variant, tuple[Minted, str]]) -> Column:
    def check(variant: Variant) -> Callable[[], object]:
        token, jwks = dev[variant][0].token, dev[variant][0].jwks
        return lambda: producer.verify(token, jwks, variant)

    return {variant: _verdict(check(variant)) for variant in producer.variants}


ROOT = Path(__file__).resolve().parent.parent.parent


def _python_columns(server: IssuerServer) -> tuple[dict[str, Column], dict[str, Column]]:
    dev = dev_issuer_tokens(VARIANTS)
    titles = {producer: f"{producer.name} {version(producer.name)}" for producer in PRODUCERS}
    minted_by = {titles[p]: _minted_by(p, server) for p in PRODUCERS}
    verified_by = {titles[p]: _verified_by(p, dev) for p in PRODUCERS}
    return minted_by, verified_by


def _jose_columns(server: IssuerServer, directory: Path) -> tuple[str, Column, Column] | str:
    if NODE.path is None:
        return "node not found"
    if not (directory / "node_modules" / "jose" / "package.json").is_file():
        return f"jose is not installed in {directory} (make node-jose installs it)"
    jose = NodeJose(NODE.path, directory)
    minted = jose.mint(JOSE_VARIANTS, interop_claims(server.url))
    accepted = {
        variant: (
            _verdict(partial(verified_by_jwtauth, server, token, variant))
            if isinstance(token, Minted)
            else f"not minted: {token}"
        )
        for variant, token in zip(JOSE_VARIANTS, minted, strict=True)
    }
    dev = dev_issuer_tokens(JOSE_VARIANTS)
    answers = jose.verify([(dev[v][0].token, dev[v][0].jwks, v) for v in JOSE_VARIANTS])
    verified = {
        v: "accepted" if isinstance(a, dict) else f"refused: {a}"
        for v, a in zip(JOSE_VARIANTS, answers, strict=True)
    }
    return f"jose {jose.version} (Node)", accepted, verified


def _table(title: str, columns: dict[str, Column]) -> str:
    names = list(columns)
    lines = [f"| {title} | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for variant in VARIANTS:
        cells = [columns[name].get(variant, "—") for name in names]
        lines.append(f"| {variant.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    warnings.simplefilter("ignore")
    # Each dev issuer says it is for development only; here that is known.
    logging.getLogger("fastapi_isp_jwt.dev_issuer").setLevel(logging.ERROR)
    directory = Path(os.environ.get("NODE_JOSE_DIR") or ROOT / ".venv" / "node-jose")
    with IssuerServer() as server:
        minted_by, verified_by = _python_columns(server)
        jose = _jose_columns(server, directory)
    if isinstance(jose, str):
        print(f"(Node jose left out: {jose})", file=sys.stderr)
    else:
        title, accepted, verified = jose
        minted_by[title], verified_by[title] = accepted, verified
    print(_table("minted by → verified by JWTAuth", minted_by))
    print()
    print(_table("minted by the dev issuer → verified by", verified_by))
    everything = [
        cell for column in (*minted_by.values(), *verified_by.values()) for cell in column.values()
    ]
    return 0 if all(cell == "accepted" for cell in everything) else 1


if __name__ == "__main__":
    sys.exit(main())
