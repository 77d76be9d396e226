"""``fastapi-isp-jwt``: run the dev issuer, mint a dev token, inspect any token.

``dev-issuer`` serves the local stand-in for the Auth0 tenant, ``mint`` signs a token with
the very key the dev issuer uses (both keep it in the same file), and ``inspect`` shows what
a token says and whether a verifier would accept it, with the verifier's own reason.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from fastapi_isp_jwt import (
    PLATFORM_AUDIENCE_PREFIX,
    AuthError,
    ConfigurationError,
    IssuerUnavailableError,
    Principal,
    Settings,
    Verifier,
    __version__,
)
from fastapi_isp_jwt.dev_issuer import (
    DEFAULT_AUDIENCE,
    DEFAULT_CLIENT_ID,
    DEFAULT_PASSWORD,
    DEFAULT_PORT,
    DEFAULT_USERNAME,
    DevUser,
    default_key_file,
    load_config,
    load_or_create_key,
    serve,
)
from fastapi_isp_jwt.dev_issuer.config import one_client_and_user
from fastapi_isp_jwt.inspect_report import refusal_lines, skipped_key_lines, time_lines
from fastapi_isp_jwt.minting import NotUnicodeError, sign_token, tenant_claims

__all__ = ["main"]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


# -- dev-issuer ----------------------------------------------------------------------------


# The keyword arguments of one_client_and_user, each a flag of its own.
_ACCOUNT_FLAGS = {
    "client_id": f"the client's id (default {DEFAULT_CLIENT_ID})",
    "client_secret": "the client's secret (default: the pinned one)",
    "client_scopes": "space-delimited scopes of the client",
    "username": f"the user's login (default {DEFAULT_USERNAME})",
    "password": "the user's password (default: the pinned one)",
    "user_scopes": "space-delimited scopes of the user",
}


def _run_dev_issuer(args: argparse.Namespace, out: TextIO) -> int:
    accounts = {
        name: getattr(args, name) for name in _ACCOUNT_FLAGS if getattr(args, name) is not None
    }
    if args.config is not None:
        if accounts:
            raise ConfigurationError(
                "with --config, define clients and users in the file, not with flags"
            )
        config = load_config(args.config)
    else:
        # An empty flag is passed on, and refused, rather than mistaken for no flag.
        config = one_client_and_user(**accounts)
    changes: dict[str, Any] = {}
    if args.port is not None:
        changes["port"] = args.port
    if args.audience:
        changes["audiences"] = tuple(args.audience)
    if args.token_lifetime is not None:
        changes["token_lifetime"] = args.token_lifetime
    if args.dpop_nonce:
        changes["dpop_nonce"] = True
    changes["key_file"] = args.key_file or config.key_file or default_key_file()
    serve(dataclasses.replace(config, **changes), out=out)
    return EXIT_OK


# -- mint ----------------------------------------------------------------------------------


def _claim(text: str) -> tuple[str, Any]:
    name, equals, raw = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    try:
        value: Any = json.loads(raw)
    except RecursionError:  # JSON or not, deeper than the parser (and the signer) can follow
        raise argparse.ArgumentTypeError(f"the value of {name!r} is nested too deeply") from None
    except ValueError:
        value = raw  # not JSON: the text itself
    return name, value


def _mint(args: argparse.Namespace, out: TextIO) -> int:
    issuer_url = args.issuer or f"http://127.0.0.1:{args.port}/"
    if not issuer_url.endswith("/"):
        issuer_url += "/"
    key = load_or_create_key(args.key_file or default_key_file())
    audience = args.audience or PLATFORM_AUDIENCE_PREFIX + args.organization
    scopes = tuple(dict.fromkeys(s for group in args.scope for s in group.split()))
    user = args.subject or DevUser(DEFAULT_USERNAME, DEFAULT_PASSWORD).subject
    claims = tenant_claims(
        issuer_url,
        # As the dev issuer does: a user's token is for the issuer's userinfo too.
        audience if args.machine else [audience, issuer_url + "userinfo"],
        client_id=args.client_id,
        subject=None if args.machine else user,
        scopes=scopes,
        permissions=scopes,
        expires_in=args.expires_in,
    )
    # --claim comes last, so that it can replace any claim shaped above.
    claims.update(args.claim)
    out.write(sign_token(claims, key) + "\n")
    return EXIT_OK


# -- inspect -------------------------------------------------------------------------------


def _segment(encoded: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def _decode(token: str) -> tuple[dict[str, Any], dict[str, Any]] | str:
    """Header and claims, read without any check; or why they cannot be read."""
    if not token:
        return "no token given (pass it as an argument, or - to read standard input)"
    parts = token.split(".")
    if len(parts) != 3:
        return f"a JWS has 3 dot-separated parts, this has {len(parts)}"
    try:
        header, claims = _segment(parts[0]), _segment(parts[1])
    except (ValueError, RecursionError):  # binascii.Error and UnicodeError are ValueErrors
        # RecursionError: JSON nested deeper than the parser can follow.
        return "the header or payload is not base64url-encoded JSON"
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return "the header or payload is not a JSON object"
    return header, claims


def _verifier(
    args: argparse.Namespace, claims: dict[str, Any] | None, notes: list[str]
) -> Verifier | None:
    if not (args.issuer or args.domain or args.jwks_url):
        return None
    options: dict[str, Any] = {"algorithms": tuple(args.algorithm or ("RS256",))}
    if args.domain:
        options["domain"] = args.domain
    elif args.issuer:
        options["issuer"] = args.issuer
    elif claims is not None and isinstance(claims.get("iss"), str):
        options["issuer"] = claims["iss"]
        notes.append("issuer taken from the token itself (give --issuer to check it)")
    else:
        raise ConfigurationError("the token names no issuer: give --issuer or --domain")
    if args.jwks_url:
        options["jwks_url"] = args.jwks_url
    if args.audience:
        options["audience"] = args.audience
    else:
        audience = claims.get("aud") if claims is not None else None
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise ConfigurationError("the token names no audience: give --audience")
        options["audience"] = audiences
        notes.append("audience taken from the token itself (give --audience to check it)")
    return Verifier(Settings(**options))


def _describe(principal: Principal) -> str:
    parts = [f"subject {principal.subject}"]
    if principal.organization:
        parts.append(f"organization {principal.organization}")
    if principal.client_id:
        parts.append(f"client {principal.client_id}")
    parts.append("machine" if principal.is_machine else "user")
    parts.append("scopes " + (" ".join(sorted(principal.scopes)) or "(none)"))
    return ", ".join(parts)


def _read_token(args: argparse.Namespace, stdin: TextIO) -> str:
    token: str = args.token if args.token not in (None, "-") else stdin.read()
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    return token


def _inspect(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    try:
        token = _read_token(args, stdin)
    except UnicodeDecodeError:  # a UTF-8 locale's stdin, given other bytes: no token to check
        out.write("Cannot decode: standard input is not UTF-8 text\n")
        return EXIT_INVALID
    decoded = _decode(token)
    header: dict[str, Any] = {}
    claims: dict[str, Any] | None = None
    if isinstance(decoded, str):
        out.write(f"Cannot decode: {decoded}\n")
    else:
        header, claims = decoded
        out.write("Header\n" + _indent(json.dumps(header, indent=2, sort_keys=True)) + "\n")
        out.write("Claims\n" + _indent(json.dumps(claims, indent=2, sort_keys=True)) + "\n")
        out.write("Times\n" + "\n".join(time_lines(claims, time.time())) + "\n")
    notes: list[str] = []
    verifier = _verifier(args, claims, notes)
    out.write("Verdict\n")
    if verifier is None:
        out.write(
            "  not verified: give --issuer (or --domain, or --jwks-url) and --audience "
            "to check it\n"
            if claims is not None
            else "  invalid: not a token this library could verify\n"
        )
        return EXIT_OK if claims is not None else EXIT_INVALID
    try:
        principal = verifier.verify_sync(token)
    except AuthError as error:
        # An unavailable issuer is no verdict on the token: its keys could not be had.
        verdict = "cannot verify" if isinstance(error, IssuerUnavailableError) else "invalid"
        out.write(f"  {verdict}: {error.description}\n  reason: {error.reason.value}\n")
        if claims is not None:
            _write_lines(out, refusal_lines(verifier, header, claims, error.reason))
        outcome = EXIT_INVALID
    else:
        out.write(f"  valid: {_describe(principal)}\n")
        outcome = EXIT_OK
    _write_lines(out, skipped_key_lines(verifier))
    for note in notes:
        out.write(f"  note: {note}\n")
    return outcome


def _write_lines(out: TextIO, lines: list[str]) -> None:
    out.writelines(line + "\n" for line in lines)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


# -- the parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastapi-isp-jwt",
        description="Tools for services that verify iStreamPlanet platform access tokens.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser(
        "dev-issuer",
        help="serve a local stand-in for the Auth0 tenant (development only)",
        description="Serve discovery, JWKS, a login page and a token endpoint on 127.0.0.1. "
        "For development only.",
    )
    dev.add_argument("--port", type=int, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")
    dev.add_argument("--config", type=Path, help="a .json or .toml file with clients and users")
    dev.add_argument("--key-file", type=Path, help="where the signing key is kept")
    dev.add_argument(
        "--audience", action="append", help="an API tokens may be issued for (repeatable)"
    )
    dev.add_argument("--token-lifetime", type=int, help="access token lifetime in seconds")
    dev.add_argument(
        "--dpop-nonce",
        action="store_true",
        help="demand a server nonce in the DPoP proofs of token requests",
    )
    for name, help_text in _ACCOUNT_FLAGS.items():
        dev.add_argument("--" + name.replace("_", "-"), help=help_text)

    mint = commands.add_parser(
        "mint",
        help="print a token signed with the dev issuer's key",
        description="Sign a token with the dev issuer's key, as the dev issuer would.",
    )
    mint.add_argument("--port", type=int, default=DEFAULT_PORT, help="the dev issuer's port")
    mint.add_argument("--issuer", help="issuer URL (default http://127.0.0.1:<port>/)")
    mint.add_argument("--key-file", type=Path, help="the dev issuer's key file")
    who = mint.add_mutually_exclusive_group()
    who.add_argument("--subject", help="the user's sub (default: the dev user's)")
    who.add_argument("--machine", action="store_true", help="a Client Credentials token")
    mint.add_argument(
        "--scope", action="append", default=[], help="space-delimited scopes (repeatable)"
    )
    target = mint.add_mutually_exclusive_group()
    target.add_argument("--organization", default="acme", help="organization (default acme)")
    target.add_argument("--audience", help=f"audience URI (default {DEFAULT_AUDIENCE})")
    mint.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help="azp of the token")
    mint.add_argument("--expires-in", type=int, default=3600, help="lifetime in seconds")
    mint.add_argument(
        "--claim",
        type=_claim,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra claim, VALUE read as JSON when it is JSON (repeatable)",
    )

    inspect = commands.add_parser(
        "inspect",
        help="show a token's header, claims and times, and a verifier's verdict",
        description="Decode a token and, given where to get keys, verify it as a service "
        "would. Read the token from stdin with '-' to keep it out of shell history.",
    )
    inspect.add_argument("token", nargs="?", default="-", help="the token, or - for stdin")
    source = inspect.add_mutually_exclusive_group()
    source.add_argument("--issuer", help="the trusted issuer URL")
    source.add_argument("--domain", help="the trusted tenant domain")
    inspect.add_argument("--audience", action="append", help="an accepted audience")
    inspect.add_argument("--jwks-url", help="where the keys are (default <issuer>.well-known)")
    inspect.add_argument(
        "--algorithm", action="append", help="an accepted algorithm (default RS256)"
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run the command line; returns the exit status."""
    out = out or sys.stdout
    stdin = stdin or sys.stdin
    args = build_parser().parse_args(argv)
    commands: dict[str, Callable[[], int]] = {
        "dev-issuer": lambda: _run_dev_issuer(args, out),
        "mint": lambda: _mint(args, out),
        "inspect": lambda: _inspect(args, out, stdin),
    }
    try:
        return commands[args.command]()
    except (ConfigurationError, ImportError, NotUnicodeError) as error:
        sys.stderr.write(f"fastapi-isp-jwt {args.command}: {error}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
