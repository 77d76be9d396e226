"""The documentation keeps its promises.

Every code block of the docs and of the README is either a copy of a file under
``examples/`` (or of marked sections of it) that a test here or elsewhere in the suite runs,
its first line naming the file and a test here keeping the two identical, or checked here: Python
blocks run, shell blocks may only name real make targets, commands the CLI parser accepts,
environment variables the library reads and routes that exist. The pages that describe
the code itself (the options table, the refusal table, the module map and the order of
checks) are compared with the code, and the behaviours the pages promise are exercised.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import contextlib
import inspect
import io
import json
import os
import re
import runpy
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI, Security
from fastapi.testclient import TestClient
from pydantic import Field
from starlette.routing import Match
from starlette.websockets import WebSocketDisconnect

import fastapi_isp_jwt
from fastapi_isp_jwt import (
    DEFAULT_LEEWAY,
    ConfigurationError,
    InvalidTokenError,
    JWTAuth,
    Principal,
    errors,
)
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.settings import ENV_PREFIX, options_from_env
from fastapi_isp_jwt.testing import SigningKey, TestIssuer, make_principal
from tests.support.challenges import BARE_CHALLENGE
from tests.support.issuer_server import IssuerServer

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
PACKAGE = ROOT / "fastapi_isp_jwt"
README = ROOT / "README.md"
ACME = "https://platform.dtc.istreamplanet.net/acme"
GLOBEX = "https://platform.dtc.istreamplanet.net/globex"


# -- reading markdown ------------------------------------------------------------------------

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<marker>[\w-]+)\s*-->")
# The first line of a block copied from an example: "# examples/app.py" for the whole file
# (its section markers left out), "# from examples/app.py" for marked sections of it.
_EXAMPLE_NAME = re.compile(r"^# (?P<excerpt>from )?(?P<path>examples/[\w/.-]+\.py)$")
_SECTION_MARKER = re.compile(r"^[^\n]*--8<-- \[(?:start|end):[\w-]+\][^\n]*\n", re.MULTILINE)
_SECTION = re.compile(
    r"^[^\n]*--8<-- \[start:(?P<name>[\w-]+)\][^\n]*\n(?P<body>.*?)^[^\n]*--8<-- \[end:(?P=name)\]",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    language: str
    text: str
    marker: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def example(self) -> Path | None:
        """The example file the block's first line names, if it is a copy of one."""
        match = _EXAMPLE_NAME.match(self.text.split("\n", 1)[0])
        return ROOT / match["path"] if match else None

    @property
    def is_excerpt(self) -> bool:
        match = _EXAMPLE_NAME.match(self.text.split("\n", 1)[0])
        return bool(match and match["excerpt"])

    @property
    def code(self) -> str:
        """The text below the line naming the example."""
        return self.text.split("\n", 1)[1]


def pages() -> list[Path]:
    return [*sorted(DOCS.glob("*.md")), README]


def code_blocks(page: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        start, indent, fence = index, len(opening["indent"]), opening["fence"]
        info = opening["info"].strip().strip("{}").split()
        previous = next((line for line in reversed(lines[:start]) if line.strip()), "")
        marker = _MARKER.search(previous)
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            line = lines[index]
            body.append(line[indent:] if line[:indent].isspace() else line)
            index += 1
        blocks.append(
            Block(
                page=page,
                line=start + 1,
                language=info[0].lstrip(".").lower() if info else "",
                text="\n".join(body) + "\n",
                marker=marker["marker"] if marker else None,
            )
        )
        index += 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in code_blocks(page)]


def section(page: Path, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    text = page.read_text(encoding="utf-8")
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.MULTILINE)
    assert match is not None, f"{page.name} has no heading {heading!r}"
    level = len(match[1])
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def table_rows(markdown: str) -> list[list[str]]:
    """The body rows of the first table in ``markdown``, cells stripped (``\\|`` kept)."""
    rows: list[list[str]] = []
    for line in markdown.splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if all(re.fullmatch(r":?-+:?", cell) for cell in cells):
            continue
        rows.append(cells)
    return rows[1:]  # without the header row


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def snippet_section(path: Path, name: str) -> str:
    """The lines between ``--8<-- [start:name]`` and ``--8<-- [end:name]``, as included."""
    text = path.read_text(encoding="utf-8")
    match = re.search(
        rf"^[^\n]*--8<-- \[start:{name}\][^\n]*\n(?P<body>.*?)^[^\n]*--8<-- \[end:{name}\]",
        text,
        re.MULTILINE | re.DOTALL,
    )
    assert match is not None, f"{path.name} has no snippet section {name!r}"
    return match["body"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- every block is a copied example or checked ---------------------------------------------

SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
# PromQL: metric names, labels and values checked by tests/test_operations_docs.py.
QUERY_LANGUAGES = {"promql"}
CHECKED_LANGUAGES = {"python", "py", "json", "toml"} | SHELL_LANGUAGES | QUERY_LANGUAGES
# Prose-like blocks (diagrams, sample output) that hold no code to run.
UNCHECKED_LANGUAGES = {"text", "txt", "plain"}


@pytest.mark.parametrize("block", all_blocks(), ids=lambda block: block.where)
def test_every_code_block_is_a_copied_example_or_of_a_checked_language(block: Block) -> None:
    assert block.example or block.language in CHECKED_LANGUAGES | UNCHECKED_LANGUAGES, (
        f"{block.where}: a {block.language or 'plain'!r} block is neither a named copy of an "
        "example nor of a language tests/test_docs.py checks"
    )


def example_blocks() -> list[Block]:
    return [block for block in all_blocks() if block.example]


def sections_of(path: Path) -> list[str]:
    """The bodies of the marked sections of an example, in file order."""
    return [match["body"] for match in _SECTION.finditer(path.read_text(encoding="utf-8"))]


def is_made_of_sections(code: str, sections: list[str]) -> bool:
    """Whether ``code`` is one or more of ``sections``, in file order, one after the other.

    Blank lines between two sections do not count (the formatter wants two before a ``def``).
    """
    rest, used = code.strip("\n"), 0
    for body in (section.strip("\n") for section in sections):
        if rest.startswith(body):
            rest, used = rest[len(body) :].lstrip("\n"), used + 1
    return used > 0 and rest == ""


def test_pages_include_no_example_by_reference() -> None:
    """A page read as a file (on a code host, in an editor) must show its code itself."""
    for page in pages():
        lines = page.read_text(encoding="utf-8").splitlines()
        assert not [line for line in lines if re.match(r'^--8<--\s+"examples/', line)], page.name


@pytest.mark.parametrize("block", example_blocks(), ids=lambda block: block.where)
def test_a_copied_example_is_identical_to_the_file_it_names(block: Block) -> None:
    assert block.example is not None
    assert block.example.is_file(), f"{block.where}: {block.example} is no file"
    assert block.example.parent == EXAMPLES, f"{block.where}: code must come from examples/"
    if block.is_excerpt:
        assert is_made_of_sections(block.code, sections_of(block.example)), (
            f"{block.where}: not the marked sections of {block.example.name}, in file order; "
            "copy them again from the file"
        )
    else:
        whole = _SECTION_MARKER.sub("", block.example.read_text(encoding="utf-8"))
        assert block.code.rstrip("\n") == whole.rstrip("\n"), (
            f"{block.where}: differs from {block.example.name}; copy the file again"
        )


# The docs examples this module runs (each by the tests named after it below).
DOCS_EXAMPLES_RUN_HERE = {
    "docs_configuration.py",
    "docs_optional_auth.py",
    "docs_quickstart.py",
    "docs_scopes.py",
    "docs_swagger.py",
    "docs_testing.py",
    "docs_websockets.py",
}


def test_every_docs_example_file_is_run_by_this_module() -> None:
    assert {path.name for path in EXAMPLES.glob("docs_*.py")} == DOCS_EXAMPLES_RUN_HERE


def is_run_by_some_test(example: Path, tests: str) -> bool:
    if example.name.startswith("test_"):
        return True  # pytest collects it: testpaths include examples/
    stem = re.escape(example.stem)
    return (
        re.search(rf"examples[./]{stem}\b|from examples import [^\n]*\b{stem}\b", tests) is not None
    )


def test_every_other_copied_example_is_run_by_some_test() -> None:
    tests = "\n".join(
        path.read_text(encoding="utf-8")
        for path in [*ROOT.glob("tests/**/*.py"), *EXAMPLES.glob("test_*.py")]
    )
    copied = {block.example for block in example_blocks() if block.example}
    unrun = sorted(
        example.name
        for example in copied
        if not example.name.startswith("docs_") and not is_run_by_some_test(example, tests)
    )
    assert unrun == [], f"examples copied into the docs but run by no test: {unrun}"


# -- Python blocks run -----------------------------------------------------------------------

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@contextlib.contextmanager
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Code from the docs may reach this machine only: a block that needs the tenant is a bug."""
    resolve = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOOPBACK:
            raise OSError(f"code in the docs tried to reach {name}")
        return resolve(host, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", guarded)
        yield


def pages_with_python() -> list[Path]:
    return [
        page
        for page in pages()
        if any(b.language in ("python", "py") and not b.example for b in code_blocks(page))
    ]


def unbound_names(source: str, known: set[str]) -> set[str]:
    """Names ``source`` reads that neither it, ``known`` nor the builtins define."""
    bound = known | set(dir(builtins))
    loaded: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return loaded - bound


INTEROP_EXTRA = {"mcp", "authlib", "joserfc"}


@pytest.mark.parametrize("page", pages_with_python(), ids=lambda page: page.name)
def test_the_python_blocks_of_a_page_run_in_order(
    page: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Complete blocks run, in page order and sharing names; fragments only compile.

    A fragment is a block that reads a name defined neither by itself nor by an earlier
    block of the page (``auth = issuer.auth()`` in prose about an ``issuer``). A block
    preceded by ``<!-- docs-test: compile-only -->`` is only compiled too.
    """
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for block in code_blocks(page):
        if block.language not in ("python", "py") or block.example:
            continue
        code = compile(
            block.text, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
        )
        if block.marker == "compile-only" or unbound_names(block.text, set(namespace)):
            continue
        with loopback_only(monkeypatch):
            try:
                result = eval(code, namespace)  # noqa: S307 - the docs' own code, under test
            except ModuleNotFoundError as missing:
                if missing.name not in INTEROP_EXTRA:
                    raise
                # The interop extra is left out of the matrix's lowest-versions session only.
                pytest.skip(f"{page.name} imports {missing.name}, from the interop extra")
            if inspect.iscoroutine(result):
                asyncio.run(result)


# -- shell blocks name real things -------------------------------------------------------------

_ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$", re.DOTALL)
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")
_SEPARATORS = {"|", "||", "&&", ";", "&"}


def console_input(text: str) -> str:
    """The commands of a console transcript: ``$ `` lines and their continuations."""
    commands: list[str] = []
    continued = False
    for line in text.splitlines():
        if line.startswith("$ ") or continued:
            commands.append(line.removeprefix("$ "))
            continued = line.endswith("\\")
    return "\n".join(commands) + "\n"


def shell_commands(text: str) -> list[list[str]]:
    """The simple commands of a shell snippet, command substitutions included."""
    commands: list[list[str]] = []
    for raw in text.replace("\\\n", " ").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        for inner in _SUBSTITUTION.findall(line):
            commands.extend(shell_commands(inner))
        lexer = shlex.shlex(
            _SUBSTITUTION.sub("SUBSTITUTED", line), posix=True, punctuation_chars="|&;"
        )
        lexer.whitespace_split = True
        current: list[str] = []
        for word in lexer:
            if word in _SEPARATORS:
                commands.append(current)
                current = []
            else:
                current.append(word)
        commands.append(current)
    return [command for command in commands if command]


@cache
def make_targets() -> frozenset[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return frozenset(re.findall(r"^([A-Za-z][\w-]*):", makefile, re.MULTILINE))


@cache
def project_name_and_extras() -> tuple[str, frozenset[str]]:
    # Read with patterns rather than tomllib, which Python 3.10 lacks.
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    name = re.search(r'^name = "([^"]+)"', text, re.MULTILINE)
    extras = re.search(r"^\[project\.optional-dependencies\]\n(.*?)^\[", text, re.M | re.S)
    assert name is not None
    assert extras is not None
    return name[1], frozenset(re.findall(r"^([\w-]+) = \[", extras[1], re.MULTILINE))


@cache
def example_sources() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in EXAMPLES.glob("*.py"))


@cache
def local_apps() -> dict[int, FastAPI]:
    """The servers the docs tell readers to start on 127.0.0.1, by port."""
    from fastapi_isp_jwt.dev_issuer import DEFAULT_PORT, create_app

    return {DEFAULT_PORT: create_app(), 8000: example_app()}


def example_app() -> FastAPI:
    namespace = runpy.run_path(str(EXAMPLES / "app.py"), run_name="docs_example_app")
    app = namespace["app"]
    assert isinstance(app, FastAPI)
    return app


def module_defines(module: str, name: str) -> bool:
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.is_file():
        return False
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
        definitions = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        if isinstance(node, definitions) and node.name == name:
            return True
    return False


def check_make(args: list[str]) -> list[str]:
    return [f"make has no target {arg!r}" for arg in args if arg not in make_targets()]


def check_cli(args: list[str]) -> list[str]:
    from fastapi_isp_jwt.cli import build_parser

    try:
        with contextlib.redirect_stderr(io.StringIO()) as complaint:
            build_parser().parse_args(args)
    except SystemExit:
        return [f"fastapi-isp-jwt {' '.join(args)}: {complaint.getvalue().strip()}"]
    return []


def check_uvicorn(args: list[str]) -> list[str]:
    targets = [arg for arg in args if ":" in arg and not arg.startswith("-")]
    if len(targets) != 1:
        return [f"uvicorn {' '.join(args)}: expected one module:attribute"]
    module, _, attribute = targets[0].partition(":")
    if not module_defines(module, attribute):
        return [f"uvicorn: {module} defines no {attribute}"]
    return []


def check_curl(args: list[str]) -> list[str]:
    method, url, sends_data = None, None, False
    words = iter(args)
    for word in words:
        if word in ("-X", "--request"):
            method = next(words)
        elif word in ("-d", "--data", "--data-urlencode", "-F", "--form"):
            next(words)
            sends_data = True
        elif word in ("-H", "--header", "-u", "--user"):
            next(words)
        elif word.startswith(("http://", "https://")):
            url = word
    if url is None:
        return [f"curl {' '.join(args)}: no URL"]
    method = method or ("POST" if sends_data else "GET")
    parts = urlsplit(url)
    if parts.hostname not in _LOOPBACK:
        return [] if parts.scheme == "https" else [f"curl: {url} is not https"]
    app = local_apps().get(parts.port or 80)
    if app is None:
        return [f"curl: the docs start no server on port {parts.port}"]
    scope = {"type": "http", "path": parts.path or "/", "method": method}
    if not any(route.matches(scope)[0] is Match.FULL for route in app.routes):
        return [f"curl: no route {method} {parts.path} on port {parts.port}"]
    return []


def check_pip(args: list[str]) -> list[str]:
    if not args or args[0] != "install":
        return [f"pip {' '.join(args)}: only pip install is documented"]
    project, extras = project_name_and_extras()
    problems = []
    for spec in (arg for arg in args[1:] if not arg.startswith("-")):
        match = re.fullmatch(r"(?P<name>[\w.-]+)(?:\[(?P<extras>[^\]]+)\])?", spec)
        if match is None or match["name"] not in (project, "."):
            problems.append(f"pip install {spec}: not this project")
            continue
        for extra in (match["extras"] or "").split(","):
            if extra and extra not in extras:
                problems.append(f"pip install {spec}: no extra {extra!r}")
    return problems


def check_pytest(args: list[str]) -> list[str]:
    paths = [arg.split("::")[0] for arg in args if not arg.startswith("-")]
    return [f"pytest: no file {path}" for path in paths if not (ROOT / path).exists()]


def check_python(args: list[str]) -> list[str]:
    if args[:1] == ["-m"] and len(args) > 1:
        module = ROOT / args[1].replace(".", "/")
        found = module.with_suffix(".py").is_file() or (module / "__main__.py").is_file()
        return [] if found else [f"python -m {args[1]}: no such module here"]
    if args[:1] == ["-c"] and len(args) > 1:
        compile(args[1], "python -c", "exec")
        return []
    if args and not (ROOT / args[0]).is_file():
        return [f"python: no file {args[0]}"]
    return []


COMMANDS: dict[str, Callable[[list[str]], list[str]]] = {
    "make": check_make,
    "fastapi-isp-jwt": check_cli,
    "uvicorn": check_uvicorn,
    "curl": check_curl,
    "pip": check_pip,
    "pytest": check_pytest,
    "python": check_python,
    "python3": check_python,
    "echo": lambda args: [],
}


def check_assignments(assignments: dict[str, str], block: Block) -> list[str]:
    problems = []
    for name, value in assignments.items():
        if name.startswith(ENV_PREFIX):
            try:
                read = options_from_env({name: value})
            except ConfigurationError as error:
                problems.append(f"{name}={value}: {error}")
                continue
            if not read and name not in example_sources():
                problems.append(f"{name} is read neither by JWTAuth.from_env nor by an example")
        elif f"${name}" not in block.text and name not in example_sources():
            problems.append(f"{name} is set but never used")
    options = {n: v for n, v in assignments.items() if n.startswith(ENV_PREFIX)}
    if {"ISP_JWT_AUDIENCE"} <= options.keys() and options.keys() & {
        "ISP_JWT_DOMAIN",
        "ISP_JWT_ISSUER",
    }:
        try:
            JWTAuth.from_env(options)
        except ConfigurationError as error:
            problems.append(f"the documented environment does not configure JWTAuth: {error}")
    return problems


def shell_blocks() -> list[Block]:
    return [b for b in all_blocks() if b.language in SHELL_LANGUAGES and not b.example]


@pytest.mark.parametrize("block", shell_blocks(), ids=lambda block: block.where)
def test_shell_blocks_name_only_real_targets_commands_and_variables(block: Block) -> None:
    problems: list[str] = []
    assignments: dict[str, str] = {}
    text = console_input(block.text) if block.language == "console" else block.text
    for words in shell_commands(text):
        if words[0] == "export":
            words = words[1:]
        while words and _ASSIGNMENT.match(words[0]):
            match = _ASSIGNMENT.match(words.pop(0))
            assert match is not None
            assignments[match["name"]] = match["value"]
        if not words:
            continue
        program = words[0].removeprefix(".venv/bin/")
        check = COMMANDS.get(program)
        if check is None:
            problems.append(f"{program}: a command tests/test_docs.py does not know")
        else:
            problems.extend(check(words[1:]))
    problems.extend(check_assignments(assignments, block))
    assert problems == [], f"{block.where}: {problems}"


@pytest.mark.parametrize(
    "block",
    [b for b in all_blocks() if b.language in ("json", "toml") and not b.example],
    ids=lambda block: block.where,
)
def test_data_blocks_parse_and_dev_issuer_configurations_load(block: Block) -> None:
    if block.language == "json":
        document = json.loads(block.text)
    elif sys.version_info >= (3, 11):
        import tomllib

        document = tomllib.loads(block.text)
    else:
        pytest.skip("TOML needs Python 3.11")
    if isinstance(document, dict) and document.keys() & {"clients", "users", "audiences"}:
        from fastapi_isp_jwt.dev_issuer.config import config_from_mapping

        config_from_mapping(document)


# -- the README --------------------------------------------------------------------------------


def readme_quickstart() -> str:
    blocks = [b for b in code_blocks(README) if b.language == "python"]
    assert len(blocks) == 1, "the README holds one Python block: the quickstart"
    return blocks[0].text


@pytest.fixture
def readme_app() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "readme_quickstart"}
    exec(compile(readme_quickstart(), str(README), "exec"), namespace)  # noqa: S102
    return namespace


def test_the_readme_starts_with_the_two_newcomer_commands() -> None:
    first = code_blocks(README)[0]
    assert first.language == "bash"
    assert shell_commands(first.text) == [["make", "demo"], ["make", "test"]]
    text = README.read_text(encoding="utf-8")
    assert text.index("make demo") < text.index("## Quickstart")


def test_the_readme_quickstart_is_the_quickstart_of_the_docs() -> None:
    included = snippet_section(EXAMPLES / "docs_quickstart.py", "app")
    assert readme_quickstart().strip() == included.strip()


def test_the_readme_quickstart_uses_the_pinned_surface() -> None:
    code = readme_quickstart()
    assert 'domain="istreamplanet.auth0.com"' in code
    assert 'audience="https://platform.dtc.istreamplanet.net/acme"' in code
    assert "Depends(require_token)" in code
    assert 'Security(require_token, scopes=["streams:write"])' in code


def test_the_readme_quickstart_answers_401_with_a_bare_challenge_without_a_token(
    readme_app: dict[str, Any],
) -> None:
    response = TestClient(readme_app["app"]).get("/streams")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == BARE_CHALLENGE


def test_the_readme_quickstart_shows_its_bearer_scheme_and_scopes_in_openapi(
    readme_app: dict[str, Any],
) -> None:
    schema = TestClient(readme_app["app"]).get("/openapi.json").json()
    assert schema["components"]["securitySchemes"] == {
        "JWTAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    assert schema["paths"]["/streams"]["post"]["security"] == [{"JWTAuth": ["streams:write"]}]


def test_the_readme_quickstart_answers_200_with_the_token_check_overridden(
    readme_app: dict[str, Any],
) -> None:
    app, require_token = readme_app["app"], readme_app["require_token"]
    app.dependency_overrides[require_token] = lambda: make_principal("auth0|alice")
    response = TestClient(app).get("/streams")
    assert response.status_code == 200
    assert response.json() == {"subject": "auth0|alice", "organization": "acme"}


def table_starting_with(markdown: str, header: str) -> list[str]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_the_readme_performance_table_is_the_one_of_the_performance_page() -> None:
    header = "| end to end"
    readme = section(README, "Performance")
    page = (DOCS / "performance.md").read_text(encoding="utf-8")
    assert table_starting_with(readme, header) == table_starting_with(page, header)


# -- configuration page -------------------------------------------------------------------------

OPTIONS_PAGE = DOCS / "configuration.md"


def documented_options() -> list[list[str]]:
    return table_rows(section(OPTIONS_PAGE, "Every option"))


def jwtauth_parameters() -> list[inspect.Parameter]:
    return list(inspect.signature(JWTAuth.__init__).parameters.values())[1:]


def shown_default(parameter: inspect.Parameter) -> str:
    if parameter.default is inspect.Parameter.empty:
        return "required"
    if isinstance(parameter.default, type):
        return parameter.default.__name__
    return repr(parameter.default)


def test_the_options_table_lists_every_jwtauth_option_in_signature_order() -> None:
    documented = [code_spans(row[0])[0] for row in documented_options()]
    assert documented == [parameter.name for parameter in jwtauth_parameters()]


def test_the_options_table_gives_each_option_its_default() -> None:
    documented = {code_spans(row[0])[0]: row[1].strip("`") for row in documented_options()}
    assert documented == {p.name: shown_default(p) for p in jwtauth_parameters()}


def test_each_documented_environment_variable_sets_its_option() -> None:
    for row in documented_options():
        option, variables = code_spans(row[0])[0], code_spans(row[2])
        if variables:
            assert variables == [ENV_PREFIX + option.upper()]
            assert option in options_from_env({variables[0]: "1"}), variables[0]


def test_options_documented_without_a_variable_are_not_read_from_the_environment() -> None:
    for row in documented_options():
        option = code_spans(row[0])[0]
        if not code_spans(row[2]):
            assert row[2] == "—"
            with pytest.raises(ConfigurationError, match="is not a setting"):
                options_from_env({ENV_PREFIX + option.upper(): "1"})


def test_the_configuration_example_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISP_JWT_DOMAIN", "istreamplanet.auth0.com")
    monkeypatch.setenv("ISP_JWT_AUDIENCE", f"{ACME},{GLOBEX}")
    monkeypatch.setenv("ISP_JWT_LEEWAY", "10")
    auth = runpy.run_path(str(EXAMPLES / "docs_configuration.py"))["require_token"]
    assert auth.settings.issuers == ("https://istreamplanet.auth0.com/",)
    assert auth.settings.audiences == (ACME, GLOBEX)
    assert auth.settings.leeway == 10.0
    assert auth.realm == "streams"


def test_the_configuration_example_names_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ISP_JWT_DOMAIN", "istreamplanet.auth0.com")
    with pytest.raises(ConfigurationError, match="ISP_JWT_AUDIENCE"):
        runpy.run_path(str(EXAMPLES / "docs_configuration.py"))


# -- troubleshooting page: every refusal explained ---------------------------------------------

REFUSALS_PAGE = DOCS / "troubleshooting.md"
_AUTH_ERRORS = {
    name
    for name, value in vars(errors).items()
    if isinstance(value, type)
    and issubclass(value, errors.AuthError)
    and value is not errors.AuthError
}


@dataclass(frozen=True)
class Refusal:
    pattern: str
    error_class: str
    where: str = field(compare=False)


@cache
def refusals_in_code() -> tuple[Refusal, ...]:
    """Every refusal the library can give: each reason's description, as a regex."""
    return tuple(
        Refusal(
            re.escape(reason.template).replace(re.escape("{}"), r"\S+"),
            next(
                name
                for name in sorted(_AUTH_ERRORS)
                if getattr(errors, name).outcome is reason.outcome
            ),
            reason.value,
        )
        for reason in Reason
    )


def documented_refusals() -> list[tuple[str, int]]:
    rows = table_rows(section(REFUSALS_PAGE, "What each refusal means"))
    return [(message, int(row[2])) for row in rows for message in code_spans(row[1])]


def test_the_refusal_table_names_the_reason_code_of_each_description() -> None:
    for row in table_rows(section(REFUSALS_PAGE, "What each refusal means")):
        codes = {
            refusal.where
            for message in code_spans(row[1])
            for refusal in refusals_in_code()
            if re.fullmatch(refusal.pattern, message)
        }
        assert set(code_spans(row[0])) == codes, row[1]


def test_every_reason_code_is_documented() -> None:
    rows = table_rows(section(REFUSALS_PAGE, "What each refusal means"))
    documented = {code for row in rows for code in code_spans(row[0])}
    assert documented == {reason.value for reason in Reason}


TEXT = (ast.Constant, ast.JoinedStr)


def test_no_refusal_is_raised_with_free_text() -> None:
    free_text = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = getattr(getattr(node, "func", None), "id", None)
            if not (isinstance(node, ast.Call) and node.args and name in _AUTH_ERRORS):
                continue
            if isinstance(node.args[0], TEXT):
                free_text.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert free_text == []


def test_the_refusal_table_explains_every_description_the_library_gives() -> None:
    documented = [message for message, _ in documented_refusals()]
    missing = [
        refusal.where
        for refusal in refusals_in_code()
        if not any(re.fullmatch(refusal.pattern, message) for message in documented)
    ]
    assert missing == []


def test_the_refusal_table_lists_only_descriptions_the_library_gives() -> None:
    invented = [
        message
        for message, _ in documented_refusals()
        if not any(re.fullmatch(refusal.pattern, message) for refusal in refusals_in_code())
    ]
    assert invented == []


def test_the_refusal_table_gives_each_description_its_status() -> None:
    for message, status in documented_refusals():
        classes = {r.error_class for r in refusals_in_code() if re.fullmatch(r.pattern, message)}
        assert {getattr(errors, name).status_code for name in classes} == {status}, message


def test_an_issuer_without_its_trailing_slash_refuses_the_tenants_tokens_without_a_download(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    auth = JWTAuth(issuer=issuer.issuer.rstrip("/"), audience=ACME)
    with pytest.raises(InvalidTokenError, match="The token issuer is not trusted"):
        auth.verify_sync(issuer.mint())
    assert server.jwks_requests == 0


@pytest.mark.parametrize("typ", ["JOSE", "dpop+jwt", "id_token"])
def test_a_token_whose_typ_is_neither_jwt_nor_at_jwt_is_refused(
    server: IssuerServer, issuer: TestIssuer, typ: str
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME)
    with pytest.raises(InvalidTokenError, match=re.escape("not an access token (typ)")):
        auth.verify_sync(issuer.mint(headers={"typ": typ}))


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "application/at+jwt", "AT+JWT"])
def test_a_token_whose_typ_is_jwt_or_at_jwt_is_accepted(
    server: IssuerServer, issuer: TestIssuer, typ: str
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME)
    assert (
        auth.verify_sync(issuer.mint("auth0|alice", headers={"typ": typ})).subject == "auth0|alice"
    )


def test_the_default_leeway_is_thirty_seconds() -> None:
    assert DEFAULT_LEEWAY == 30.0


def test_the_default_leeway_accepts_a_token_that_expired_moments_ago(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME)
    assert auth.verify_sync(issuer.mint_expired(ago=10)).subject == "auth0|test-user"


def test_the_default_leeway_refuses_a_token_that_expired_a_minute_ago(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME)
    with pytest.raises(InvalidTokenError, match="The token has expired"):
        auth.verify_sync(issuer.mint_expired(ago=60))


def test_the_verified_token_cache_remembers_a_token_from_its_second_verification_on(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME)
    token = issuer.mint()
    first, second, third = (auth.verify_sync(token) for _ in range(3))
    assert first is not second
    assert third is second


def test_a_token_cache_size_of_zero_verifies_a_repeated_token_again(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME, token_cache_size=0)
    token = issuer.mint()
    verified = [auth.verify_sync(token) for _ in range(3)]
    assert verified[2] is not verified[1]


# -- architecture page: the module map, the rules and the order of checks ------------------------

ARCHITECTURE = DOCS / "architecture.md"
OUTSIDE_THE_CORE = {
    "__init__",
    "security",
    "answers",
    "credentials",
    "binding",
    "metadata",
    "openapi",
    "client",
    "cli",
}
CORE = sorted(
    [path.stem for path in PACKAGE.glob("*.py") if path.stem not in OUTSIDE_THE_CORE]
    + [f"keycache/{path.stem}" for path in PACKAGE.glob("keycache/*.py")]
)


def imports_of(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                # "from package import submodule" names the submodule, anything else the module.
                candidate = ROOT / f"{node.module}.{alias.name}".replace(".", "/")
                is_submodule = candidate.with_suffix(".py").is_file() or candidate.is_dir()
                names.add(f"{node.module}.{alias.name}" if is_submodule else node.module)
    return names


def test_the_module_map_names_every_module_of_the_package() -> None:
    documented = {code_spans(row[0])[0] for row in table_rows(section(ARCHITECTURE, "Module map"))}
    actual = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")}
    assert documented == actual


def test_no_module_of_the_package_is_over_400_lines() -> None:
    lengths = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in lengths.items() if n > 400} == {}


def test_the_tests_map_names_every_test_file() -> None:
    tests = ROOT / "tests"
    mapped = {
        span
        for row in table_rows(section(tests / "README.md", "Behaviour → file"))
        for span in code_spans(row[1])
    }
    actual = {str(path.relative_to(tests)) for path in tests.rglob("test_*.py")}
    assert actual <= mapped, sorted(actual - mapped)


def test_the_core_never_imports_fastapi_or_starlette() -> None:
    for module in CORE:
        web = {n for n in imports_of(module) if n.split(".")[0] in ("fastapi", "starlette")}
        assert web == set(), module


def test_within_the_core_only_the_io_drivers_send_requests() -> None:
    senders = {
        module
        for module in CORE
        if re.search(r"\.(send|stream)\(", (PACKAGE / f"{module}.py").read_text())
        and any(n.split(".")[0] == "httpx" for n in imports_of(module))
    }
    assert senders == {"io"}


def test_the_core_imports_no_second_http_client() -> None:
    for module in CORE:
        others = {
            n for n in imports_of(module) if n.split(".")[0] in ("urllib", "http", "requests")
        }
        assert others == set(), module


def test_the_core_never_imports_the_adapter_or_the_tools() -> None:
    outer = ("security", "client", "cli", "testing", "dev_issuer")
    for module in CORE:
        reached = {
            name
            for name in imports_of(module)
            if name == "fastapi_isp_jwt"
            or (name.startswith("fastapi_isp_jwt.") and name.split(".")[1] in outer)
        }
        assert reached == set(), module


TIER_CLAIM = "https://streams.example.com/tier"


def tier(value: object) -> dict[str, Any]:
    """The custom claim as keyword arguments for ``TestIssuer.mint``."""
    return {TIER_CLAIM: value}


class TierPrincipal(Principal):
    tier: str = Field(alias="https://streams.example.com/tier")


@dataclass
class Draft:
    """A token under construction, spoiled one check at a time."""

    header: dict[str, Any]
    payload: dict[str, Any]
    key: SigningKey | None = None
    suffix: str = ""


def _spoil_signature(draft: Draft, issuer: TestIssuer) -> None:
    draft.key = SigningKey.generate("RS256", kid=issuer.signing_key.kid)


def _expire(draft: Draft, issuer: TestIssuer) -> None:
    draft.payload.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)


# In the order the architecture page gives, each with a way to fail that check alone.
ORDERED_CHECKS: list[tuple[str, Callable[[Draft, TestIssuer], None]]] = [
    ("The token is too large", lambda d, i: d.payload.update(padding="x" * 9000)),
    ("The token is not a compact JWS", lambda d, i: setattr(d, "suffix", ".e30")),
    ("The token algorithm is not allowed", lambda d, i: d.header.update(alg="RS384")),
    ("The token has critical header parameters", lambda d, i: d.header.update(crit=["exp"])),
    (
        "The token carries its own key reference",
        lambda d, i: d.header.update(jku="https://attacker.example/jwks.json"),
    ),
    ("The token is not an access token (typ)", lambda d, i: d.header.update(typ="JOSE")),
    (
        "The token issuer is not trusted",
        lambda d, i: d.payload.update(iss="https://attacker.example/"),
    ),
    ("The token was signed by an unknown key", lambda d, i: d.header.update(kid="no-such-key")),
    ("The token signature is invalid", _spoil_signature),
    ("The token has expired", _expire),
    ("The token has no subject", lambda d, i: d.payload.pop("sub")),
    ("The token is not intended for this audience", lambda d, i: d.payload.update(aud=GLOBEX)),
    (
        "The token claims do not fit the expected principal",
        lambda d, i: d.payload.pop(TIER_CLAIM),
    ),
    ("The token lacks a required scope", lambda d, i: d.payload.pop("scope")),
]


def order_test_app(server: IssuerServer) -> FastAPI:
    auth = JWTAuth(issuer=server.url, audience=ACME, principal_class=TierPrincipal)
    app = FastAPI()

    @app.post("/streams")
    async def create_stream(
        principal: TierPrincipal = Security(auth, scopes=["streams:write"]),
    ) -> dict[str, str]:
        return {"tier": principal.tier}

    return app


def spoiled_token(issuer: TestIssuer, first_failing: int) -> str:
    draft = Draft(
        header={},
        payload=issuer.claims("auth0|alice", ["streams:write"], **tier("gold")),
    )
    for _, spoil in ORDERED_CHECKS[first_failing:]:
        spoil(draft, issuer)
    return issuer.sign(draft.payload, headers=draft.header, key=draft.key) + draft.suffix


def test_a_token_passing_every_ordered_check_reaches_the_route(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    client = TestClient(order_test_app(server))
    response = client.post("/streams", headers=bearer(spoiled_token(issuer, len(ORDERED_CHECKS))))
    assert response.json() == {"tier": "gold"}


@pytest.mark.parametrize(
    "position", range(len(ORDERED_CHECKS)), ids=[message for message, _ in ORDERED_CHECKS]
)
def test_a_token_failing_several_checks_is_refused_for_the_first_in_the_documented_order(
    server: IssuerServer, issuer: TestIssuer, position: int
) -> None:
    client = TestClient(order_test_app(server))
    response = client.post("/streams", headers=bearer(spoiled_token(issuer, position)))
    assert response.json() == {"detail": ORDERED_CHECKS[position][0]}


def test_the_architecture_page_lists_the_checks_in_the_order_they_run() -> None:
    order = " ".join(section(ARCHITECTURE, "Order of checks").split())
    positions = [order.find(f'"{message}"') for message, _ in ORDERED_CHECKS]
    assert -1 not in positions, [
        m for (m, _), p in zip(ORDERED_CHECKS, positions, strict=True) if p == -1
    ]
    assert positions == sorted(positions)


# -- getting started: the walk-through and its testing example ----------------------------------


def test_the_testing_example_passes_under_pytest() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "examples/docs_testing.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


@pytest.fixture
def dev_issuer(tmp_path: Path) -> Iterator[Any]:
    from fastapi_isp_jwt.dev_issuer import DevIssuerConfig, running

    with running(DevIssuerConfig(port=0, key_file=tmp_path / "key.json")) as issuer:
        yield issuer


@pytest.fixture
def example_api(dev_issuer: Any, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """examples/app.py configured as Getting started says, against a running dev issuer."""
    monkeypatch.setenv("ISP_JWT_ISSUER", dev_issuer.issuer)
    monkeypatch.setenv("ISP_JWT_AUDIENCE", ACME)
    return TestClient(example_app())


def minted(dev_issuer: Any, *arguments: str) -> str:
    from fastapi_isp_jwt.cli import main

    out = io.StringIO()
    port = str(dev_issuer.config.port)
    key_file = str(dev_issuer.config.key_file)
    assert main(["mint", "--port", port, "--key-file", key_file, *arguments], out=out) == 0
    return out.getvalue().strip()


def test_getting_started_a_minted_token_reaches_the_example_api(
    dev_issuer: Any, example_api: TestClient
) -> None:
    token = minted(dev_issuer, "--scope", "streams:read streams:write")
    assert example_api.get("/me", headers=bearer(token)).status_code == 200
    assert example_api.get("/streams", headers=bearer(token)).status_code == 200


def test_getting_started_a_request_without_a_token_gets_401(example_api: TestClient) -> None:
    response = example_api.get("/streams")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == BARE_CHALLENGE


def test_getting_started_a_client_credentials_token_is_a_machine_caller(
    dev_issuer: Any, example_api: TestClient
) -> None:
    answer = httpx.post(
        dev_issuer.issuer + "oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "dev-client",
            "client_secret": "dev-secret",
            "audience": ACME,
        },
    )
    token = answer.json()["access_token"]
    me = example_api.get("/me", headers=bearer(token)).json()
    assert me["is_machine"] is True
    assert me["subject"] == "dev-client@clients"


# -- the examples of the guides ------------------------------------------------------------------


def load_example(name: str) -> ModuleType:
    module = ModuleType(f"docs_example_{name}")
    module.__dict__.update(runpy.run_path(str(EXAMPLES / f"{name}.py")))
    return module


@pytest.fixture
def scopes_example(server: IssuerServer) -> Iterator[tuple[ModuleType, TestClient]]:
    example = load_example("docs_scopes")
    example.app.dependency_overrides[example.require_token] = JWTAuth(
        issuer=server.url,
        audience=example.require_token.settings.audiences,
        organizations=example.require_token.settings.organizations,
        principal_class=example.StreamsPrincipal,
    )
    yield example, TestClient(example.app)
    example.app.dependency_overrides.clear()


def test_the_organization_template_admits_an_organization_of_the_allow_list(
    scopes_example: tuple[ModuleType, TestClient], issuer: TestIssuer
) -> None:
    _, client = scopes_example
    token = issuer.mint(scopes=["streams:read"], organization="globex")
    response = client.get("/organizations/globex/streams", headers=bearer(token))
    assert response.json() == {"organization": "globex", "tier": "free", "streams": []}


def test_the_organization_template_refuses_an_organization_outside_the_allow_list(
    scopes_example: tuple[ModuleType, TestClient], issuer: TestIssuer
) -> None:
    _, client = scopes_example
    token = issuer.mint(scopes=["streams:read"], organization="initech")
    response = client.get("/organizations/initech/streams", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == {"detail": "The token is not intended for this audience"}


def test_a_token_naming_two_accepted_organizations_is_refused(
    scopes_example: tuple[ModuleType, TestClient], issuer: TestIssuer
) -> None:
    _, client = scopes_example
    token = issuer.mint(scopes=["streams:read"], audience=[ACME, GLOBEX])
    response = client.get("/organizations/acme/streams", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == {"detail": "The token names more than one organization"}


def test_a_route_hides_another_organizations_resources(
    scopes_example: tuple[ModuleType, TestClient], issuer: TestIssuer
) -> None:
    _, client = scopes_example
    token = issuer.mint(scopes=["streams:read"], organization="acme")
    assert client.get("/organizations/globex/streams", headers=bearer(token)).status_code == 404


def test_a_custom_claim_fills_the_principal_subclass(
    scopes_example: tuple[ModuleType, TestClient], issuer: TestIssuer
) -> None:
    _, client = scopes_example
    token = issuer.mint(scopes=["streams:read"], **tier("gold"))
    response = client.get("/organizations/acme/streams", headers=bearer(token))
    assert response.json()["tier"] == "gold"


def test_a_custom_claim_of_the_wrong_type_is_refused_with_401(
    scopes_example: tuple[ModuleType, TestClient], issuer: TestIssuer
) -> None:
    _, client = scopes_example
    token = issuer.mint(scopes=["streams:read"], **tier(3))
    response = client.get("/organizations/acme/streams", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == {"detail": "The token claims do not fit the expected principal"}


def test_authorize_in_a_route_refuses_like_security_does(
    scopes_example: tuple[ModuleType, TestClient], issuer: TestIssuer
) -> None:
    _, client = scopes_example
    token = issuer.mint(scopes=["streams:delete"])
    response = client.delete("/organizations/acme/streams/live-news", headers=bearer(token))
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"].endswith('scope="streams:delete-live"')


def test_authorize_in_a_route_lets_a_sufficient_scope_through(
    scopes_example: tuple[ModuleType, TestClient], issuer: TestIssuer
) -> None:
    _, client = scopes_example
    token = issuer.mint(scopes=["streams:delete"])
    response = client.delete("/organizations/acme/streams/news", headers=bearer(token))
    assert response.status_code == 204


@pytest.fixture
def optional_example(server: IssuerServer) -> Iterator[TestClient]:
    example = load_example("docs_optional_auth")
    example.app.dependency_overrides[example.maybe_token] = JWTAuth(
        issuer=server.url, audience=ACME, auto_error=example.maybe_token.auto_error
    )
    yield TestClient(example.app)
    example.app.dependency_overrides.clear()


def test_an_optional_route_serves_anonymous_callers(optional_example: TestClient) -> None:
    assert optional_example.get("/catalog").json() == {"streams": ["trailer"]}


def test_an_optional_route_serves_a_valid_token_its_full_answer(
    optional_example: TestClient, issuer: TestIssuer
) -> None:
    response = optional_example.get("/catalog", headers=bearer(issuer.mint("auth0|alice")))
    assert response.json() == {"streams": ["trailer", "match-of-the-day"], "for": "auth0|alice"}


def test_an_optional_route_still_refuses_a_bad_token(
    optional_example: TestClient, issuer: TestIssuer
) -> None:
    response = optional_example.get("/catalog", headers=bearer(issuer.mint_expired()))
    assert response.status_code == 401
    assert response.json() == {"detail": "The token has expired"}


@pytest.fixture
def websocket_example(server: IssuerServer) -> Iterator[tuple[ModuleType, JWTAuth]]:
    example = load_example("docs_websockets")
    auth = JWTAuth(
        issuer=server.url,
        audience=ACME,
        websocket_query_param=example.require_token.websocket_query_param,
    )
    example.app.dependency_overrides[example.require_token] = auth
    yield example, auth
    example.app.dependency_overrides.clear()


def test_a_websocket_accepts_a_token_in_the_authorization_header(
    websocket_example: tuple[ModuleType, JWTAuth], issuer: TestIssuer
) -> None:
    example, _ = websocket_example
    token = issuer.mint("auth0|alice", ["streams:read"])
    with TestClient(example.app).websocket_connect(
        "/streams/news/events", headers=bearer(token)
    ) as websocket:
        assert websocket.receive_json() == {"stream": "news", "watcher": "auth0|alice"}


def test_a_websocket_accepts_a_token_in_the_configured_query_parameter(
    websocket_example: tuple[ModuleType, JWTAuth], issuer: TestIssuer
) -> None:
    example, _ = websocket_example
    token = issuer.mint("auth0|alice", ["streams:read"])
    url = f"/streams/news/events?access_token={token}"
    with TestClient(example.app).websocket_connect(url) as websocket:
        assert websocket.receive_json()["watcher"] == "auth0|alice"


@pytest.mark.parametrize(
    ("scopes", "reason"),
    [
        (None, "Bearer credentials are required"),
        ([], "The token lacks a required scope"),
    ],
    ids=["no token", "missing scope"],
)
def test_a_refused_websocket_handshake_is_closed_with_1008_before_accept(
    websocket_example: tuple[ModuleType, JWTAuth],
    issuer: TestIssuer,
    scopes: list[str] | None,
    reason: str,
) -> None:
    example, _ = websocket_example
    headers = bearer(issuer.mint(scopes=scopes)) if scopes is not None else {}
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        TestClient(example.app).websocket_connect("/streams/news/events", headers=headers),
    ):
        pass
    assert (closed.value.code, closed.value.reason) == (1008, reason)


def test_a_worker_runs_a_job_whose_token_grants_the_scope(
    websocket_example: tuple[ModuleType, JWTAuth], issuer: TestIssuer
) -> None:
    example, auth = websocket_example
    job = {"token": issuer.mint("auth0|alice", ["streams:write"]), "stream": "news"}
    assert example.handle_job(job, auth) == "transcoding news for auth0|alice"


def test_a_worker_refuses_a_job_whose_token_is_invalid(
    websocket_example: tuple[ModuleType, JWTAuth], issuer: TestIssuer
) -> None:
    example, auth = websocket_example
    job = {"token": issuer.mint_expired(scopes=["streams:write"]), "stream": "news"}
    assert example.handle_job(job, auth) == "refused: The token has expired"


def test_a_worker_refuses_a_job_whose_token_lacks_the_scope(
    websocket_example: tuple[ModuleType, JWTAuth], issuer: TestIssuer
) -> None:
    example, auth = websocket_example
    job = {"token": issuer.mint(scopes=["streams:read"]), "stream": "news"}
    assert example.handle_job(job, auth) == "refused: the token lacks streams:write"


@pytest.mark.anyio
async def test_verify_outside_routes_names_the_subject_of_a_valid_token(
    websocket_example: tuple[ModuleType, JWTAuth], issuer: TestIssuer
) -> None:
    example, auth = websocket_example
    assert await example.who_is(issuer.mint("auth0|alice"), auth) == "auth0|alice"


@pytest.mark.anyio
async def test_verify_outside_routes_gives_none_for_an_invalid_token(
    websocket_example: tuple[ModuleType, JWTAuth],
) -> None:
    example, auth = websocket_example
    assert await example.who_is("not-a-token", auth) is None


@pytest.fixture
def swagger_schema() -> dict[str, Any]:
    example = load_example("docs_swagger")
    schema: dict[str, Any] = TestClient(example.app).get("/openapi.json").json()
    return schema


def test_swagger_login_makes_the_scheme_an_authorization_code_flow_against_the_tenant(
    swagger_schema: dict[str, Any],
) -> None:
    flow = swagger_schema["components"]["securitySchemes"]["JWTAuth"]["flows"]["authorizationCode"]
    assert flow == {
        "authorizationUrl": "https://istreamplanet.auth0.com/authorize",
        "tokenUrl": "https://istreamplanet.auth0.com/oauth/token",
        "scopes": {"streams:read": "List streams", "streams:write": "Create streams"},
    }


def test_swagger_login_keeps_each_routes_scopes_in_openapi(swagger_schema: dict[str, Any]) -> None:
    assert swagger_schema["paths"]["/streams"]["get"]["security"] == [{"JWTAuth": ["streams:read"]}]


def test_swagger_login_sets_up_pkce_and_the_audience_in_swagger_ui() -> None:
    example = load_example("docs_swagger")
    assert example.app.swagger_ui_init_oauth == {
        "clientId": "your-single-page-application-client-id",
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": "streams:read streams:write",
        "additionalQueryStringParams": {"audience": ACME},
    }


def test_the_package_face_exports_what_the_reference_page_documents() -> None:
    reference = (DOCS / "reference.md").read_text(encoding="utf-8")
    for name in re.findall(r"^::: fastapi_isp_jwt\.(\w+)$", reference, re.MULTILINE):
        assert name in fastapi_isp_jwt.__all__ or name == "errors", name
