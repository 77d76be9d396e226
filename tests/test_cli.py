"""The ``fastapi-isp-jwt`` command line: ``inspect``, ``mint`` and ``dev-issuer``."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from fastapi_isp_jwt import InvalidTokenError, JWTAuth
from fastapi_isp_jwt.cli import main
from fastapi_isp_jwt.dev_issuer import DEFAULT_AUDIENCE, DevIssuerConfig, running
from fastapi_isp_jwt.inspect_report import human_duration
from fastapi_isp_jwt.testing import ServedIssuer, SigningKey, TestIssuer
from tests.support.issuer_server import IssuerServer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="module")
def served(issuer: TestIssuer) -> Iterator[ServedIssuer]:
    with issuer.serve() as served:
        yield served


def run(*argv: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out, stdin=io.StringIO(stdin))
    return status, out.getvalue()


def verify_options(issuer: TestIssuer, served: ServedIssuer) -> list[str]:
    return ["--issuer", issuer.issuer, "--audience", issuer.audience, "--jwks-url", served.jwks_url]


def verifier_reason(served: ServedIssuer, token: str) -> str:
    with pytest.raises(InvalidTokenError) as refused:
        served.auth().verify_sync(token)
    return refused.value.description


# -- inspect ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(42, "42 s"), (23 * 60 + 10, "23 min"), (3599, "1 h"), (2 * 3600, "2 h"), (3 * 86400, "3 d")],
)
def test_durations_are_said_the_way_people_say_them(seconds: float, said: str) -> None:
    assert human_duration(seconds) == said
    assert human_duration(-seconds) == said


def test_inspect_prints_header_and_claims_but_never_the_token(issuer: TestIssuer) -> None:
    token = issuer.mint("auth0|ann", ["streams:read"])

    status, out = run("inspect", token)

    assert status == 0
    assert f'"kid": "{issuer.signing_key.kid}"' in out
    assert '"sub": "auth0|ann"' in out
    assert token not in out
    assert token.split(".")[2] not in out


def test_inspect_says_how_long_until_expiry(issuer: TestIssuer) -> None:
    _, out = run("inspect", issuer.mint(expires_in=23 * 60 + 20))

    assert "(expires in 23 min)" in out


def test_inspect_says_how_long_ago_a_token_expired(issuer: TestIssuer) -> None:
    _, out = run("inspect", issuer.mint_expired(ago=2 * 3600))

    assert "(expired 2 h ago)" in out


def test_inspect_without_a_key_source_decodes_but_does_not_verify(issuer: TestIssuer) -> None:
    status, out = run("inspect", issuer.mint())

    assert status == 0
    assert "not verified" in out


def test_inspect_reads_the_token_from_stdin(issuer: TestIssuer) -> None:
    _, out = run("inspect", "-", stdin=issuer.mint("auth0|from-stdin") + "\n")

    assert '"sub": "auth0|from-stdin"' in out


def test_inspect_of_standard_input_that_is_not_utf8_says_so_in_one_line() -> None:
    # Standard input as a UTF-8 locale opens it: bytes that are not UTF-8 fail to decode.
    stdin = io.TextIOWrapper(io.BytesIO(b"\xff\xfe.e30.c2ln\n"), encoding="utf-8")
    out = io.StringIO()

    status = main(["inspect", "-"], out=out, stdin=stdin)

    assert status == 1
    assert out.getvalue() == "Cannot decode: standard input is not UTF-8 text\n"


def test_inspect_of_something_that_is_no_jwt_says_it_cannot_decode() -> None:
    status, out = run("inspect", "not-a-token")

    assert status == 1
    assert "Cannot decode: a JWS has 3 dot-separated parts, this has 1" in out


def test_inspect_of_a_token_with_a_deeply_nested_header_says_it_cannot_decode() -> None:
    header = base64.urlsafe_b64encode(b"[" * 100_000).rstrip(b"=").decode()

    status, out = run("inspect", f"{header}.e30.c2ln")

    assert status == 1
    assert "Cannot decode: the header or payload is not base64url-encoded JSON" in out


@pytest.mark.parametrize("exp", [10**400, -(10**400)], ids=["far-future", "far-past"])
def test_inspect_of_a_token_whose_exp_is_beyond_any_float_says_it_is_out_of_range(
    exp: int,
) -> None:
    segments = [{"alg": "RS256"}, {"exp": exp}]
    header, claims = (base64.urlsafe_b64encode(json.dumps(s).encode()).decode() for s in segments)

    status, out = run("inspect", f"{header.rstrip('=')}.{claims.rstrip('=')}.c2ln")

    assert status == 0
    assert f"expires    {exp} (out of range)" in out


def test_inspect_accepts_a_valid_token_and_names_the_caller(
    issuer: TestIssuer, served: ServedIssuer
) -> None:
    token = issuer.mint("auth0|ann", ["streams:read"])

    status, out = run("inspect", token, *verify_options(issuer, served))

    assert status == 0
    assert "valid: subject auth0|ann, organization acme" in out
    assert "scopes streams:read" in out


def test_inspect_refuses_an_expired_token_with_the_verifier_reason(
    issuer: TestIssuer, served: ServedIssuer
) -> None:
    token = issuer.mint_expired(ago=7200)

    status, out = run("inspect", token, *verify_options(issuer, served))

    assert status == 1
    assert f"invalid: {verifier_reason(served, token)}\n" in out


def test_inspect_refuses_another_organization_with_the_verifier_reason(
    issuer: TestIssuer, served: ServedIssuer
) -> None:
    token = issuer.mint(organization="globex")

    status, out = run("inspect", token, *verify_options(issuer, served))

    assert status == 1
    assert f"invalid: {verifier_reason(served, token)}\n" in out


def test_inspect_refuses_a_token_signed_by_another_key_with_the_verifier_reason(
    issuer: TestIssuer, served: ServedIssuer
) -> None:
    token = TestIssuer(issuer.issuer).mint()

    status, out = run("inspect", token, *verify_options(issuer, served))

    assert status == 1
    assert f"invalid: {verifier_reason(served, token)}\n" in out


def test_inspect_says_it_cannot_verify_when_the_keys_cannot_be_fetched(
    issuer: TestIssuer,
) -> None:
    # Bound but not listening: connections to the port are refused, and no one else gets it.
    with socket.socket() as unreachable:
        unreachable.bind(("127.0.0.1", 0))
        jwks_url = f"http://127.0.0.1:{unreachable.getsockname()[1]}/.well-known/jwks.json"
        options = ["--issuer", issuer.issuer, "--audience", issuer.audience]

        status, out = run("inspect", issuer.mint(), *options, "--jwks-url", jwks_url)

    assert status == 1
    assert re.search(r"^  cannot verify: \S", out, re.MULTILINE), out
    assert "invalid:" not in out


def test_inspect_shows_the_token_value_beside_the_configured_one_for_a_failed_check(
    issuer: TestIssuer, served: ServedIssuer
) -> None:
    token = issuer.mint(audience="https://api.example.com/other")

    _, out = run("inspect", token, *verify_options(issuer, served))

    assert (
        f"  audience differs: token https://api.example.com/other, configured {issuer.audience}\n"
        in out
    )


def test_inspect_lists_only_the_checks_that_failed(
    issuer: TestIssuer, served: ServedIssuer
) -> None:
    _, out = run("inspect", issuer.mint_expired(ago=7200), *verify_options(issuer, served))

    assert " differs: " not in out


def test_inspect_names_the_published_key_ids_beside_an_unknown_one(
    issuer: TestIssuer, served: ServedIssuer
) -> None:
    stranger = TestIssuer(issuer.issuer)

    _, out = run("inspect", stranger.mint(), *verify_options(issuer, served))

    assert (
        f"  key id differs: token {stranger.signing_key.kid}, "
        f"published {issuer.signing_key.kid}\n" in out
    )


def test_inspect_hints_at_an_audience_differing_only_by_a_trailing_slash(
    issuer: TestIssuer, served: ServedIssuer
) -> None:
    token = issuer.mint(audience=issuer.audience + "/")

    _, out = run("inspect", token, *verify_options(issuer, served))

    assert re.search(
        r"^  hint: the token's audience differs from .* only by a trailing slash", out, re.M
    )


def test_inspect_hints_at_an_id_token_sent_instead_of_an_access_token(
    issuer: TestIssuer, served: ServedIssuer
) -> None:
    token = issuer.mint(audience="my-spa-client-id", nonce="n-0S6_WzA2Mj")

    _, out = run("inspect", token, *verify_options(issuer, served))

    assert "  hint: this looks like an ID token" in out


def test_inspect_of_a_valid_token_gives_no_hint(issuer: TestIssuer, served: ServedIssuer) -> None:
    _, out = run("inspect", issuer.mint(), *verify_options(issuer, served))

    assert "hint:" not in out


def test_inspect_names_a_published_key_the_key_cache_skipped(issuer: TestIssuer) -> None:
    shared_secret = {"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldA"}
    with IssuerServer(lambda: {"keys": [*issuer.jwks()["keys"], shared_secret]}) as server:
        options = ["--issuer", issuer.issuer, "--audience", issuer.audience]

        status, out = run("inspect", issuer.mint(), *options, "--jwks-url", server.jwks_url)

    assert status == 0
    assert (
        f"  skipped key 'shared' published at {server.jwks_url}: "
        "symmetric keys are never trusted\n" in out
    )


def test_inspect_with_only_a_jwks_url_takes_issuer_and_audience_from_the_token_and_says_so(
    issuer: TestIssuer, served: ServedIssuer
) -> None:
    status, out = run("inspect", issuer.mint(), "--jwks-url", served.jwks_url)

    assert status == 0
    assert "valid: subject" in out
    assert "note: issuer taken from the token itself" in out
    assert "note: audience taken from the token itself" in out


def test_inspect_with_a_plain_http_issuer_off_this_machine_is_a_usage_error(
    issuer: TestIssuer,
) -> None:
    status, _ = run(
        "inspect", issuer.mint(), "--issuer", "http://issuer.example/", "--audience", "x"
    )

    assert status == 2


@pytest.mark.parametrize(
    "options",
    [
        ["--issuer", "https://issuer.example/\udcff"],
        ["--issuer", "https://issuer.example/", "--jwks-url", "https://issuer.example/\udcff"],
    ],
)
def test_inspect_with_an_endpoint_url_holding_an_undecodable_byte_is_a_usage_error(
    issuer: TestIssuer, capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    # Undecodable bytes on a command line reach Python as lone surrogates.
    status, _ = run("inspect", issuer.mint(), *options, "--audience", issuer.audience)

    assert status == 2
    assert "not an absolute https URL" in capsys.readouterr().err


# -- mint ---------------------------------------------------------------------------------------


def test_minted_token_is_accepted_by_a_dev_issuer_sharing_the_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "dev-key.json"
    with running(DevIssuerConfig(port=0, key_file=key_file)) as dev:
        port = str(dev.config.port)
        _, out = run("mint", "--port", port, "--key-file", str(key_file), "--scope", "streams:read")
        auth = JWTAuth(issuer=dev.issuer, audience=DEFAULT_AUDIENCE)

        principal = auth.verify_sync(out.strip())

    assert principal.subject.startswith("auth0|")
    assert principal.scopes == {"streams:read"}


def test_mint_machine_token_has_the_client_credentials_shape(tmp_path: Path) -> None:
    _, out = run("mint", "--machine", "--key-file", str(tmp_path / "k.json"))

    claims = jwt.decode(out.strip(), options={"verify_signature": False})

    assert claims["sub"] == "dev-client@clients"
    assert claims["gty"] == "client-credentials"
    assert claims["iss"] == "http://127.0.0.1:8765/"


def test_mint_adds_extra_claims_read_as_json(tmp_path: Path) -> None:
    _, out = run(
        "mint",
        "--key-file",
        str(tmp_path / "k.json"),
        "--claim",
        "tier=gold",
        "--claim",
        "seats=3",
        "--organization",
        "globex",
    )

    claims = jwt.decode(out.strip(), options={"verify_signature": False})

    assert claims["tier"] == "gold"
    assert claims["seats"] == 3
    assert claims["aud"][0] == "https://platform.dtc.istreamplanet.net/globex"


@pytest.mark.parametrize(
    "name",
    [
        "audience",
        "expires_in",
        "headers",
        "organization",
        "client_id",
        "machine",
        "subject",
        "scopes",
        "permissions",
        "issued_at",
        "not_before",
        "key",
    ],
)
def test_mint_extra_claim_named_like_a_mint_option_is_only_a_claim(
    tmp_path: Path, name: str
) -> None:
    status, out = run("mint", "--key-file", str(tmp_path / "k.json"), "--claim", f"{name}=1")

    claims = jwt.decode(out.strip(), options={"verify_signature": False})

    assert status == 0
    assert claims[name] == 1
    assert claims["aud"] == [DEFAULT_AUDIENCE, "http://127.0.0.1:8765/userinfo"]
    assert claims["azp"] == "dev-client"
    assert claims["exp"] - claims["iat"] == 3600
    assert "gty" not in claims


@pytest.mark.parametrize("name", ["audience", "machine", "client_id", "scopes"])
def test_mint_machine_extra_claim_named_like_a_mint_option_is_only_a_claim(
    tmp_path: Path, name: str
) -> None:
    status, out = run(
        "mint", "--machine", "--key-file", str(tmp_path / "k.json"), "--claim", f"{name}=false"
    )

    claims = jwt.decode(out.strip(), options={"verify_signature": False})

    assert status == 0
    assert claims[name] is False
    assert claims["aud"] == DEFAULT_AUDIENCE
    assert claims["sub"] == "dev-client@clients"
    assert claims["gty"] == "client-credentials"


def test_mint_refuses_a_subject_that_is_not_unicode_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Undecodable bytes on a command line reach Python as lone surrogates.
    status, out = run("mint", "--key-file", str(tmp_path / "k.json"), "--subject", "ann\udcff")

    assert (status, out) == (2, "")
    assert "the claim 'sub' holds text that is not valid Unicode" in capsys.readouterr().err


def test_mint_refuses_an_extra_claim_whose_json_is_nested_too_deeply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        run("mint", "--key-file", str(tmp_path / "k.json"), "--claim", "tier=" + "[" * 100_000)

    assert exit_.value.code == 2
    assert "nested too deeply" in capsys.readouterr().err


def test_mint_refuses_an_extra_claim_whose_json_escapes_a_lone_surrogate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run(
        "mint", "--key-file", str(tmp_path / "k.json"), "--claim", 'tier=["gold", "\\ud800"]'
    )

    assert (status, out) == (2, "")
    assert "the claim 'tier'" in capsys.readouterr().err


def test_mint_refuses_a_key_file_whose_key_services_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weak_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    pem = SigningKey("weak", "RS256", weak_rsa).to_pem().decode()
    key_file = tmp_path / "k.json"
    key_file.write_text(json.dumps({"kid": "weak", "alg": "RS256", "private_key": pem}))

    status, out = run("mint", "--key-file", str(key_file))

    assert (status, out) == (2, "")
    assert f"fastapi-isp-jwt mint: key_file {key_file}: " in capsys.readouterr().err


# -- dev-issuer ----------------------------------------------------------------------------------


def start_dev_issuer(tmp_path: Path, *flags: str) -> tuple[subprocess.Popen[str], str, str]:
    """Start the command; return it, its issuer URL and its startup banner."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # noqa: S603 - a fixed command line, this interpreter
        [sys.executable, "-m", "fastapi_isp_jwt.cli", "dev-issuer", "--port", "0", *flags],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    banner = ""
    for line in process.stdout:
        banner += line
        if line.strip().startswith("key file"):
            break
    match = re.search(r"issuer\s+(http://127\.0\.0\.1:\d+/)", banner)
    assert match is not None, banner
    return process, match.group(1), banner


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=30)


def test_dev_issuer_command_serves_until_interrupted(tmp_path: Path) -> None:
    process, issuer, _ = start_dev_issuer(tmp_path)
    try:
        meta = httpx.get(issuer + ".well-known/openid-configuration").json()
    finally:
        status = stop(process)

    assert meta["issuer"] == issuer
    assert status == 0


def test_dev_issuer_command_stops_on_ctrl_c_sent_as_soon_as_its_banner_is_out(
    tmp_path: Path,
) -> None:
    statuses = []
    for _ in range(3):
        process, _, _ = start_dev_issuer(tmp_path)
        statuses.append(stop(process))
    assert statuses == [0, 0, 0]


def test_dev_issuer_command_says_development_only_and_keeps_its_key_in_the_cache_dir(
    tmp_path: Path,
) -> None:
    process, _, banner = start_dev_issuer(tmp_path)
    stop(process)

    assert "FOR DEVELOPMENT ONLY" in banner
    assert (tmp_path / "cache" / "fastapi-isp-jwt" / "dev-issuer-key.json").exists()


def test_dev_issuer_command_takes_the_client_secret_from_a_flag(tmp_path: Path) -> None:
    process, issuer, _ = start_dev_issuer(tmp_path, "--client-secret", "flag-secret")
    try:
        form = {
            "grant_type": "client_credentials",
            "client_id": "dev-client",
            "client_secret": "flag-secret",
            "audience": DEFAULT_AUDIENCE,
        }
        response = httpx.post(issuer + "oauth/token", data=form)
    finally:
        stop(process)

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("flag", "named"),
    [
        ("--client-id", "client_id"),
        ("--client-secret", "client_secret"),
        ("--username", "username"),
        ("--password", "password"),
    ],
)
def test_dev_issuer_refuses_an_empty_account_flag_instead_of_using_the_default(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    named: str,
) -> None:
    served: list[DevIssuerConfig] = []
    monkeypatch.setattr("fastapi_isp_jwt.cli.serve", lambda config, out: served.append(config))

    status = main(["dev-issuer", "--key-file", str(tmp_path / "k.json"), flag, ""])

    assert status == 2
    assert named in capsys.readouterr().err
    assert served == []


def test_dev_issuer_without_uvicorn_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)

    status = main(["dev-issuer", "--port", "0", "--key-file", str(tmp_path / "k.json")])

    assert status == 2
    assert "pip install -e '.[dev-issuer]'" in capsys.readouterr().err


def test_dev_issuer_refuses_account_flags_next_to_a_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "issuer.json"
    config.write_text("{}")

    status = main(["dev-issuer", "--config", str(config), "--client-secret", "x"])

    assert status == 2
    assert "define clients and users in the file" in capsys.readouterr().err


# -- make demo ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_demo_prints_a_working_curl_and_stops_both_servers_on_ctrl_c(tmp_path: Path) -> None:
    issuer_port, app_port = free_port(), free_port()
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
    }
    demo = subprocess.Popen(  # noqa: S603 - a fixed command line, this interpreter
        [
            sys.executable,
            str(REPO / "examples" / "demo.py"),
            "--issuer-port",
            str(issuer_port),
            "--app-port",
            str(app_port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    printed = ""
    for line in demo.stdout:
        printed += line
        if "Ctrl-C" in line:
            break
    try:
        curl = re.search(r'curl -H "Authorization: Bearer ([^"]+)" (\S+)', printed)
        assert curl is not None, printed
        token, url = curl.groups()
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    finally:
        demo.send_signal(signal.SIGINT)
        status = demo.wait(timeout=60)

    assert f"http://127.0.0.1:{app_port}/docs" in printed
    assert "dev@example.com / password dev" in printed
    assert response.status_code == 200
    assert status == 0
    for port in (issuer_port, app_port):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/")


def test_inspect_names_the_stable_reason_code_of_a_refusal(
    issuer: TestIssuer, served: ServedIssuer
) -> None:
    status, out = run("inspect", issuer.mint_expired(ago=7200), *verify_options(issuer, served))
    assert (status, "  reason: expired\n" in out) == (1, True)


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from fastapi_isp_jwt import __version__

    with pytest.raises(SystemExit) as finished:
        main(["--version"])
    assert finished.value.code == 0
    assert capsys.readouterr().out == f"fastapi-isp-jwt {__version__}\n"


def test_inspect_of_empty_input_says_no_token_was_given() -> None:
    status, out = run("inspect", "-", stdin="")
    assert status == 1
    assert "no token given" in out


def test_inspect_of_garbage_without_an_issuer_does_not_ask_for_one() -> None:
    status, out = run("inspect", "garbage")
    assert status == 1
    assert "give --issuer" not in out
    assert "  invalid: not a token this library could verify\n" in out


def test_inspect_names_the_leeway_of_a_token_just_expired(issuer: TestIssuer) -> None:
    _, out = run("inspect", issuer.mint(expires_in=0))
    assert "expired 0 s ago, within the 30 s leeway" in out
