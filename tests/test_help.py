"""Every command documents itself with an example; `tpi --version` prints the version."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result

from tpi_cli import __version__

Run = Callable[..., Result]

# every command that does something; the `rules` group only lists its subcommands
COMMANDS = [("check",), ("next",), ("validate",), ("totals",), ("rules", "check"), ("rules", "show"),
            ("rules", "schema"), ("sites",)]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_has_an_example(tpi: Run, command: tuple[str, ...], flag: str) -> None:
    result = tpi(*command, flag)
    assert result.exit_code == 0
    assert result.stderr == ""
    assert "Example" in result.stdout
    assert f"tpi {' '.join(command)}" in result.stdout


def test_top_level_help_lists_every_command(tpi: Run) -> None:
    result = tpi("--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    for command in ("check", "next", "validate", "totals", "rules", "sites"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("check", ["--site", "--side", "--on", "--drug", "--dry", "--points", "--weight-kg", "--patient", "--rules",
                   "--profile", "--format"]),
        ("next", ["--site", "--on", "--patient", "--rules", "--profile", "--format"]),
        ("validate", ["--patient", "--rules", "--profile", "--format"]),
        ("totals", ["--on", "--window", "--patient", "--rules", "--profile", "--format"]),
    ],
)
def test_help_names_the_options_of_the_spec(tpi: Run, command: str, options: list[str]) -> None:
    text = tpi(command, "--help").stdout
    for option in options:
        assert option in text


def test_rules_group_lists_its_subcommands(tpi: Run) -> None:
    result = tpi("rules", "--help")
    assert result.exit_code == 0
    for command in ("check", "show", "schema"):
        assert command in result.stdout


def test_version(tpi: Run) -> None:
    result = tpi("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout
    assert result.stdout.startswith("tpi")


def test_unknown_command_exits_2(tpi: Run) -> None:
    result = tpi("chek")
    assert result.exit_code == 2
    assert result.stdout == ""


@pytest.mark.parametrize(("args", "says"), [
    (("check", "h.csv", "--site", "left trapezius", "--dry", "--on", "2026-02-30"),
     "Invalid value for '--on': '2026-02-30' is not a date on the calendar (see 'tpi check --help')"),
    (("check", "h.csv", "--sit", "trapezius"), "No such option '--sit'"),
    (("check",), "Missing argument 'HISTORY'. (see 'tpi check --help')"),
    (("bogus",), "No such command 'bogus'. (see 'tpi --help')"),
    (("totals", "h.csv", "--window", "0 days"), "--window"),
    (("check", "h.csv", "--site", "left trapezius", "--points", "0", "--dry"), "--points"),
    # a single-valued option given twice, in every command and in the `rules` group's
    (("rules", "check", "--format", "json", "--format", "table"),
     "--format is given more than once: give it once (see 'tpi rules check --help')"),
    (("rules", "show", "--rules=a.yaml", "--rules", "b.yaml"), "--rules is given more than once"),
    (("sites", "--format", "csv", "--format=json"), "--format is given more than once: give it once (see 'tpi sites --help')"),
])
def test_a_usage_error_is_one_line(tpi: Run, args: tuple[str, ...], says: str) -> None:
    # SPEC.md, exit code 2: "one clear message on stderr" (click's own usage errors included).
    result = tpi(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("tpi: error: ")
    assert says in result.stderr


def test_no_command_shows_the_help(tpi: Run) -> None:
    result = tpi()
    assert result.exit_code in (0, 2)  # click 8.2 on: 2, as for a usage error; click 8.1: 0
    assert "Commands:" in result.output


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_comes_first_even_after_a_repeated_option(tpi: Run, flag: str) -> None:
    result = tpi("check", "h.csv", "--side", "left", "--side", "right", flag)
    assert result.exit_code == 0
    assert "check [OPTIONS] HISTORY" in result.stdout.splitlines()[0]


def test_a_value_spelt_like_the_help_option_does_not_hide_a_repeat(tpi: Run) -> None:
    result = tpi("check", "h.csv", "--patient", "-h", "--site", "a", "--site", "b", "--dry")
    assert result.exit_code == 2
    assert "--site is given more than once" in result.stderr
