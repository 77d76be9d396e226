"""The rule for real components the suite needs: skip with one line, fail under CI=true."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.components import Component, find_executable, in_ci

MISSING = Component("chromium", None, "install it")
PRESENT = Component("chromium", Path("/opt/chromium"), "install it")


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes"])
def test_ci_is_recognised_from_the_ci_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci()


@pytest.mark.parametrize("value", ["", "false", "0"])
def test_a_developer_machine_is_not_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert not in_ci()


def test_a_present_component_is_given_to_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert PRESENT.require() == Path("/opt/chromium")


def test_a_missing_component_skips_with_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"^chromium not found: install it$"):
        MISSING.require()


def test_a_missing_component_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium not found: install it"):
        MISSING.require()


def test_a_missing_component_skips_its_module_off_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium not found"):
        MISSING.skip_module_if_missing()


def test_under_ci_the_module_is_not_skipped_so_its_selected_tests_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    MISSING.skip_module_if_missing()  # returns: the fixture's require() fails instead
    with pytest.raises(pytest.fail.Exception):
        MISSING.require()


def test_the_override_variable_names_the_program(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    program = tmp_path / "my-chromium"
    program.write_text("")
    monkeypatch.setenv("CHROMIUM", str(program))
    assert find_executable("CHROMIUM", "no-such-program") == program


def test_an_override_naming_no_file_finds_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "absent"))
    assert find_executable("CHROMIUM", "sh") is None


def test_without_override_the_path_is_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHROMIUM", raising=False)
    assert find_executable("CHROMIUM", "no-such-program-xyz") is None
