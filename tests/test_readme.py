"""Every ``$ tpi ...`` example in README.md gives, today, exactly the output the README shows."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator

import pytest
from click.testing import Result

from tests.conftest import REPO

Run = Callable[..., Result]

_EXAMPLE = re.compile(r"```console\n\$ (tpi [^\n]*)\n(.*?)```", re.S)


def examples() -> Iterator[tuple[str, str]]:
    for match in _EXAMPLE.finditer((REPO / "README.md").read_text(encoding="utf-8")):
        yield match.group(1), match.group(2)


def test_the_readme_has_examples_of_every_command() -> None:
    commands = {shlex.split(command)[1] for command, _ in examples()}
    assert {"check", "next", "validate", "totals"} <= commands


@pytest.mark.parametrize(("command", "shown"), list(examples()), ids=[command for command, _ in examples()])
def test_readme_example_output(tpi: Run, monkeypatch: pytest.MonkeyPatch, command: str, shown: str) -> None:
    monkeypatch.chdir(REPO)  # the examples name files relative to the repository
    for variable in ("COLUMNS", "NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(variable, raising=False)
    result = tpi(*shlex.split(command)[1:])
    assert result.exit_code in (0, 1), result.stderr
    assert result.stdout == shown, f"README.md is out of date for: {command}"
