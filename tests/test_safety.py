"""Safety of what tpi reads and writes (issue 5, part 4).

- YAML never constructs objects: a ``!!python/...`` tag is refused and never runs.
- User text is escaped before rich renders it; control characters (ANSI escape sequences) from a
  history do not reach the terminal raw.
- CSV output neutralises cells a spreadsheet would run as formulas.
- A history that cannot be read whole is refused (exit 2) with nothing written to stdout.
- No temporary files are left behind.
- Error messages quote only the field at fault, never the rest of the patient's row.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import EXAMPLES, HEADER, SPEC_RULES
from tests.test_fuzz import assert_contract, assert_process_contract, invoke, run_process

# --- YAML never constructs objects ------------------------------------------------------------------

PAYLOADS = [
    "!!python/object/apply:os.system [\"touch {marker}\"]",
    "!!python/object/apply:subprocess.check_call [[\"touch\", \"{marker}\"]]",
    "!!python/object/new:subprocess.Popen [[\"touch\", \"{marker}\"]]",
    "!!python/name:os.system",
    "!!python/module:os",
    "!python/object/apply:os.system [\"touch {marker}\"]",
    "!<tag:yaml.org,2002:python/object/apply:os.system> [\"touch {marker}\"]",
]
PLACES = {
    "rule item": lambda payload: SPEC_RULES + f"  - {payload}\n",
    "rule value": lambda payload: SPEC_RULES.replace('source: "test source"', f"source: {payload}"),
    "top-level key value": lambda payload: SPEC_RULES + f"description: {payload}\n",
    "whole document": lambda payload: payload + "\n",
    "behind an anchor": lambda payload: SPEC_RULES + f"x: &p {payload}\ny: *p\n",
    "merge key": lambda payload: SPEC_RULES.replace("- id: steroid-interval\n", f"- <<: {payload}\n    id: s\n"),
}


@pytest.mark.parametrize("place", list(PLACES))
@pytest.mark.parametrize("payload", PAYLOADS)
def test_python_tags_are_refused_and_never_run(tpi: Callable[..., Result], tmp_path: Path, place: str,
                                               payload: str, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"
    rules = tmp_path / "rules.yaml"
    rules.write_text(PLACES[place](payload.format(marker=marker)), encoding="utf-8")

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a YAML tag reached os.system / subprocess")

    monkeypatch.setattr(os, "system", forbidden)
    for args in (("rules", "check", str(rules)),
                 ("validate", str(EXAMPLES / "history.csv"), "--rules", str(rules)),
                 ("rules", "show", str(rules), "--format", "json")):
        result = invoke(tpi, *args)
        assert_contract(result, args)
        assert result.exit_code == 2, result.stdout
        assert str(rules) in result.stderr
    assert not marker.exists()


def test_python_tag_in_real_process_never_runs(tmp_path: Path) -> None:
    marker = Path("/tmp") / f"pwned-tpi-{os.getpid()}"
    marker.unlink(missing_ok=True)
    rules = tmp_path / "rules.yaml"
    rules.write_text(SPEC_RULES + f"  - !!python/object/apply:os.system [\"touch {marker}\"]\n", encoding="utf-8")
    done = run_process(["rules", "check", str(rules)], timeout=60)
    assert_process_contract(done)
    assert done.returncode == 2
    assert b"unsupported YAML tag" in done.stderr or b"tag" in done.stderr
    assert not marker.exists()


# --- rich markup and control characters -------------------------------------------------------------

MARKUP_RULES = SPEC_RULES.replace(
    "  interspinous-lumbar: {region: lumbar, lateral: false}\n",
    "  interspinous-lumbar: {region: lumbar, lateral: false}\n"
    "  \"[bold red]x[/]\": {region: \"[blink]zone[/]\", aliases: [\"[bold red]y[/]\"]}\n")


def test_markup_in_site_alias_and_region_prints_literally(tpi: Callable[..., Result], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(MARKUP_RULES, encoding="utf-8")
    result = invoke(tpi, "sites", "--rules", str(rules))
    assert_contract(result, ("sites",))
    assert result.exit_code == 0
    assert "[bold red]x[/]" in result.stdout
    assert "[bold red]y[/]" in result.stdout
    assert "[blink]zone[/]" in result.stdout


@pytest.mark.parametrize("command", [
    ("check", "--site", "left [bold red]y[/]", "--dry", "--on", "2026-06-01"),
    ("next", "--on", "2026-06-01"),
    ("totals", "--on", "2026-06-01"),
    ("validate",),
])
def test_markup_in_patient_id_and_site_prints_literally(tpi: Callable[..., Result], tmp_path: Path,
                                                        command: tuple[str, ...]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(MARKUP_RULES, encoding="utf-8")
    history = tmp_path / "h.csv"
    history.write_text(HEADER + "[bold red]x[/],2026-01-15,[bold red]x[/],left,triamcinolone,200 mg,,,[i]o[/i]\n",
                       encoding="utf-8")
    args = (command[0], str(history), *command[1:], "--rules", str(rules))
    result = invoke(tpi, *args, seconds=60, env={"COLUMNS": "200"})
    assert_contract(result, args)
    assert result.exit_code in (0, 1)
    assert result.stdout.count("[bold red]x[/]") >= 1, result.stdout
    if command[0] == "validate":
        assert "[i]o[/i]" in result.stdout


ESC_PATIENT = "P\x1b]0;pwned\x07\x1b[31mRED"


def _no_raw_escape(text: str) -> bool:
    return "\x1b" not in text and "\x07" not in text


def test_escape_sequence_in_patient_option_is_escaped_in_error(tpi: Callable[..., Result]) -> None:
    args = ("check", str(EXAMPLES / "history.csv"), "--site", "left trapezius", "--dry", "--on", "2026-11-28",
            "--patient", ESC_PATIENT)
    result = invoke(tpi, *args)
    assert_contract(result, args, controls=True)
    assert result.exit_code == 2
    assert _no_raw_escape(result.stderr)


@pytest.mark.parametrize("field", ["site", "side", "drug", "dose", "date", "points", "weight_kg", "technique"])
def test_escape_sequence_in_bad_field_is_escaped_in_error(tpi: Callable[..., Result], tmp_path: Path,
                                                          field: str) -> None:
    row = {"patient_id": "P1", "date": "2026-01-15", "site": "trapezius", "side": "left", "drug": "triamcinolone",
           "dose": "20 mg", "technique": "", "points": "", "weight_kg": "", "override": ""}
    row[field] = "x\x1b]0;pwned\x07\x1b[2J"
    history = tmp_path / "h.csv"
    history.write_text(csv_of([row]), encoding="utf-8")
    result = invoke(tpi, "validate", str(history))
    assert_contract(result, ("validate",), controls=True)
    assert result.exit_code == 2


def test_escape_sequence_in_patient_id_listed_in_error(tpi: Callable[..., Result], tmp_path: Path) -> None:
    history = tmp_path / "two.csv"
    history.write_text(HEADER + f"\"{ESC_PATIENT}\",2026-01-15,trapezius,left,,,,,\n"
                       + "P2,2026-01-15,trapezius,left,,,,,\n", encoding="utf-8")
    args = ("check", str(history), "--site", "left trapezius", "--dry", "--on", "2026-06-01")
    result = invoke(tpi, *args)
    assert_contract(result, args)
    assert result.exit_code == 2
    assert _no_raw_escape(result.stderr), repr(result.stderr)


def test_escape_sequence_in_json_key_is_escaped_in_error(tpi: Callable[..., Result], tmp_path: Path) -> None:
    history = tmp_path / "h.json"
    history.write_text(json.dumps({"patient_id": "P1", "injections": [], "k\x1b]0;pwned\x07": 1}), encoding="utf-8")
    result = invoke(tpi, "validate", str(history))
    assert_contract(result, ("validate",))
    assert result.exit_code == 2
    assert _no_raw_escape(result.stderr), repr(result.stderr)


def test_escape_sequence_in_csv_header_is_escaped_in_error(tpi: Callable[..., Result], tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    history.write_text("patient\x1b]0;pwned\x07,when,site,drug,dose\n", encoding="utf-8")
    result = invoke(tpi, "validate", str(history))
    assert_contract(result, ("validate",))
    assert result.exit_code == 2
    assert _no_raw_escape(result.stderr), repr(result.stderr)


@pytest.mark.parametrize("command", [
    pytest.param(("check", "--site", "left trapezius", "--dry", "--on", "2026-06-01"), id="check"),
    pytest.param(("next", "--on", "2026-06-01"), id="next"),
    pytest.param(("totals", "--on", "2026-06-01"), id="totals"),
    pytest.param(("validate",), id="validate"),
    pytest.param(("validate", "--format", "json"), id="validate-json"),
])
def test_escape_sequence_in_patient_id_is_refused_without_reaching_the_terminal(
        tpi: Callable[..., Result], tmp_path: Path, command: tuple[str, ...]) -> None:
    # A control character in an ID is refused (the same ID without it would be another
    # patient); the message names it escaped, never raw.
    rules = tmp_path / "rules.yaml"
    rules.write_text(SPEC_RULES, encoding="utf-8")
    history = tmp_path / "h.csv"
    history.write_text(HEADER + f"\"{ESC_PATIENT}\",2026-01-15,trapezius,left,triamcinolone,200 mg,,,\n",
                       encoding="utf-8")
    args = (command[0], str(history), *command[1:], "--rules", str(rules))
    result = invoke(tpi, *args)
    assert_contract(result, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "patient_id: contains U+001B" in result.stderr
    assert _no_raw_escape(result.stderr), repr(result.stderr)


# --- CSV output neutralises formulas ----------------------------------------------------------------

FORMULA_CELLS = ["=1+1", "+1", "-1", "@SUM(A1)", "=HYPERLINK(\"http://x\",\"y\")", "\t=1", "\r=1",
                 "=cmd|' /C calc'!A0"]


def csv_of(rows: list[dict[str, str]], columns: tuple[str, ...] = ("patient_id", "date", "site", "side", "drug",
                                                                    "dose", "technique", "points", "weight_kg",
                                                                    "override")) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _formula_free(text: str) -> list[str]:
    bad = []
    for row in csv.reader(io.StringIO(text, newline="")):
        bad += [cell for cell in row if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    return bad


@pytest.mark.parametrize("formula", FORMULA_CELLS)
def test_csv_output_neutralises_formula_cells(tpi: Callable[..., Result], tmp_path: Path, formula: str) -> None:
    history = tmp_path / "h.csv"
    rows = [{"patient_id": formula, "date": d, "site": "trapezius", "side": "left", "drug": "triamcinolone",
             "dose": "80 mg", "override": f"{formula} flare" if d.endswith("15") else ""}
            for d in ("2026-01-15", "2026-02-01")]
    history.write_text(csv_of(rows), encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text(SPEC_RULES, encoding="utf-8")
    for args in (("validate", str(history), "--format", "csv"),
                 ("next", str(history), "--on", "2026-06-01", "--format", "csv"),
                 ("totals", str(history), "--on", "2026-06-01", "--format", "csv")):
        result = invoke(tpi, *args, "--rules", str(rules))
        assert_contract(result, args)
        assert result.exit_code in (0, 1), result.stderr
        assert _formula_free(result.stdout) == [], result.stdout
        cells = [cell for row in csv.reader(io.StringIO(result.stdout, newline="")) for cell in row]
        assert "'" + formula.strip() in cells, result.stdout  # history fields are read stripped


def test_csv_output_of_rules_and_sites_neutralises_formula_cells(tpi: Callable[..., Result], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(SPEC_RULES.replace('source: "test source"', "source: \"=cmd|' /C calc'!A0\"").replace(
        "{region: scapular}", "{region: \"=1+1\", aliases: [\"@x\"], source: \"+1\"}"), encoding="utf-8")
    for args in (("rules", "show", str(rules), "--format", "csv"), ("sites", "--rules", str(rules), "--format", "csv")):
        result = invoke(tpi, *args)
        assert_contract(result, args)
        assert result.exit_code == 0, result.stderr
        assert _formula_free(result.stdout) == [], result.stdout


# --- a history that cannot be read whole is refused, nothing written ---------------------------------

def _long_history(patients: int = 30, per_patient: int = 40) -> str:
    rows = []
    for p in range(patients):
        for i in range(per_patient):
            rows.append(f"P{p:03d},{2000 + i // 12}-{i % 12 + 1:02d}-15,trapezius,left,triamcinolone,200 mg,,,\n")
    return HEADER + "".join(rows)


TAILS = {
    "unitless dose": b"P999,2026-01-15,trapezius,left,triamcinolone,20,,,\n",
    "unknown site": b"P999,2026-01-15,trapezoid,left,triamcinolone,20 mg,,,\n",
    "wrong column count": b"P999,2026-01-15,trapezius,left\n",
    "NUL byte": b"P999,2026-01-15,trape\x00zius,left,,,,,\n",
    "non-UTF-8 byte": b"P999,2026-01-15,trapezius,left,,,,,caf\xe9\n",
    "unterminated quote": b'P999,"2026-01-15,trapezius,left,,,,,\n',
    "field too large for csv": b"P999,2026-01-15," + b"x" * ((1 << 20) + 5) + b",left,,,,,\n",
    "mixed anonymous row": b",2026-01-15,trapezius,left,,,,,\n",
    "earlier patient again (re-read), then bad": b"P000,2026-01-15,trapezius,left,,,,,\nP999,bad-date,x,,,,,,\n",
}
FORMATS = [("validate", "--format", "json"), ("validate", "--format", "csv"), ("validate",),
           ("totals", "--on", "2026-06-01"), ("totals", "--on", "2026-06-01", "--format", "json"),
           ("next", "--on", "2026-06-01", "--patient", "P000", "--format", "csv"),
           ("check", "--patient", "P000", "--site", "left trap", "--dry", "--on", "2026-06-01"),
           ("validate", "--patient", "P000", "--format", "json")]


@pytest.mark.parametrize("tail", list(TAILS))
def test_history_not_readable_whole_is_refused_with_nothing_written(tpi: Callable[..., Result], tmp_path: Path,
                                                                    tail: str) -> None:
    data = _long_history().encode() + TAILS[tail]
    history = tmp_path / "h.csv"
    history.write_bytes(data)
    lines = data.count(b"\n")
    for index, command in enumerate(FORMATS):
        for source, stdin in ((str(history), None), ("-", data))[: 2 if index < 2 else 1]:
            args = (command[0], source, *command[1:])
            result = invoke(tpi, *args, input=stdin, seconds=120)
            assert_contract(result, args)
            assert result.exit_code == 2, (args, result.stdout[:300])
            assert result.stdout == ""
            assert ("<stdin>" if stdin else str(history)) in result.stderr
    # the message names the right line (the bad row is one of the last two)
    result = invoke(tpi, "validate", str(history))
    if tail != "field too large for csv":
        assert any(f":{n}:" in result.stderr for n in (lines - 1, lines, lines + 1)), result.stderr


def test_non_utf8_byte_error_names_its_line(tpi: Callable[..., Result], tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    history.write_bytes(HEADER.encode() + b"P1,2026-01-15,trapezius,left,,,,,\n" * 3
                        + b"P1,2026-01-16,trapezius,left,,,,,caf\xe9\n")
    result = invoke(tpi, "validate", str(history))
    assert result.exit_code == 2
    assert f"{history}:5:" in result.stderr, result.stderr


def test_json_history_not_readable_whole_is_refused(tpi: Callable[..., Result], tmp_path: Path) -> None:
    rows = [{"patient_id": f"P{p}", "date": "2026-01-15", "site": "trapezius", "side": "left",
             "drug": "triamcinolone", "dose": "200 mg"} for p in range(2000)]
    rows.append({"patient_id": "P9", "date": "2026-01-15", "site": "trapezius", "side": "left",
                 "drug": "triamcinolone", "dose": 20})
    history = tmp_path / "h.json"
    history.write_text(json.dumps(rows, indent=0), encoding="utf-8")
    for command in FORMATS:
        args = (command[0], str(history), *command[1:])
        result = invoke(tpi, *args, seconds=120)
        assert_contract(result, args)
        assert result.exit_code == 2
        assert result.stdout == ""


# --- no temp files left behind ----------------------------------------------------------------------

def test_no_temp_files_left_behind(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    history = tmp_path / "h.csv"
    history.write_text(_long_history(20, 30), encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text(_long_history(5, 5) + "P9,2026-01-15,trapezius,left,triamcinolone,20,,,\n", encoding="utf-8")
    before = sorted(os.listdir(scratch)), sorted(os.listdir(tmp_path))
    env = {"TMPDIR": str(scratch), "TMP": str(scratch), "TEMP": str(scratch)}
    for args in (["validate", str(history), "--format", "json"], ["validate", str(history), "--format", "csv"],
                 ["validate", str(history)], ["validate", str(bad)], ["totals", str(history), "--on", "2026-06-01"],
                 ["check", str(history), "--patient", "P001", "--site", "left trap", "--dry", "--on", "2026-06-01"]):
        done = run_process(args, env=env, timeout=120, cwd=tmp_path)
        assert_process_contract(done)
    assert (sorted(os.listdir(scratch)), sorted(os.listdir(tmp_path))) == before


# --- error messages quote only the field at fault ---------------------------------------------------

SECRET_ROW = {"patient_id": "PID-4242-secret", "date": "2026-01-15", "site": "trapezius", "side": "left",
              "drug": "triamcinolone", "dose": "17 mg", "technique": "wet", "points": "3", "weight_kg": "71.5",
              "override": "OVR-secret-clinical-note"}
BAD_VALUES = {"date": "15/01/2026", "site": "trapezoid", "side": "up", "drug": "aspirin", "dose": "17",
              "technique": "moist", "points": "three", "weight_kg": "heavy", "patient_id": None, "override": None}


@pytest.mark.parametrize("field", [name for name, value in BAD_VALUES.items() if value is not None])
@pytest.mark.parametrize("kind", ["csv", "json"])
def test_error_quotes_only_the_field_at_fault(tpi: Callable[..., Result], tmp_path: Path, field: str,
                                              kind: str) -> None:
    good = dict(SECRET_ROW)
    bad = dict(SECRET_ROW, date="2026-02-15")
    value = BAD_VALUES[field]
    assert value is not None
    bad[field] = value
    history = tmp_path / f"h.{kind}"
    if kind == "csv":
        history.write_text(csv_of([good, bad]), encoding="utf-8")
    else:
        history.write_text(json.dumps([good, bad], indent=1), encoding="utf-8")
    result = invoke(tpi, "validate", str(history))
    assert_contract(result, ("validate",))
    assert result.exit_code == 2
    err = result.stderr
    assert field in err, err
    assert "PID-4242" not in err, err
    assert "OVR-secret" not in err, err
    for other in ("17 mg", "71.5"):
        if other not in (SECRET_ROW[field], value):
            assert other not in err, err


@pytest.mark.parametrize("field", ["points", "weight_kg", "override", "technique"])
def test_conflicting_injection_fields_do_not_echo_the_row(tpi: Callable[..., Result], tmp_path: Path,
                                                          field: str) -> None:
    other = {"points": "4", "weight_kg": "80", "override": "OVR-other-note", "technique": "dry"}[field]
    second = dict(SECRET_ROW, drug="lidocaine", dose="3 mL @ 1%", **{field: other})
    history = tmp_path / "h.csv"
    history.write_text(csv_of([SECRET_ROW, second]), encoding="utf-8")
    result = invoke(tpi, "validate", str(history))
    assert_contract(result, ("validate",))
    assert result.exit_code == 2
    assert "PID-4242" not in result.stderr
    assert "OVR-secret" not in result.stderr
    assert "OVR-other" not in result.stderr


def test_wrong_column_count_does_not_echo_the_row(tpi: Callable[..., Result], tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    history.write_text(csv_of([SECRET_ROW]) + "PID-4242-secret,2026-01-15,trapezius,left,OVR-secret-note\n",
                       encoding="utf-8")
    result = invoke(tpi, "validate", str(history))
    assert result.exit_code == 2
    assert "PID-4242" not in result.stderr
    assert "OVR-secret" not in result.stderr


def test_long_bad_field_is_quoted_short(tpi: Callable[..., Result], tmp_path: Path) -> None:
    for field in ("site", "drug", "dose", "side", "technique", "points", "weight_kg", "date"):
        history = tmp_path / "h.csv"
        history.write_text(csv_of([dict(SECRET_ROW, **{field: "Z" * 999})]), encoding="utf-8")
        result = invoke(tpi, "validate", str(history))
        assert_contract(result, ("validate",))
        assert result.exit_code == 2
        assert result.stderr.count("Z") <= 1000, (field, len(result.stderr))
        assert "PID-4242" not in result.stderr


# --- a report that cannot be written whole ---------------------------------------------------------


class _FailingStdout(io.StringIO):
    """A stdout whose writes (or flushes) fail as a full disk or a closed pipe would."""

    def __init__(self, error: OSError, at_flush: bool, descriptor: int) -> None:
        super().__init__()
        self.error = error
        self.at_flush = at_flush
        self.descriptor = descriptor

    def fileno(self) -> int:  # a real stdout has one (tpi points it at /dev/null after a failure)
        return self.descriptor

    def write(self, text: str) -> int:
        if not self.at_flush:
            raise self.error
        return super().write(text)

    def flush(self) -> None:
        if self.at_flush and self.getvalue():
            raise self.error


OUTPUT_ERRORS = {
    "broken pipe": (BrokenPipeError(32, "Broken pipe"), "the output was closed before the report was complete"),
    "disk full": (OSError(28, "No space left on device"), "cannot write the report: No space left on device"),
}


@pytest.mark.parametrize("at_flush", [False, True], ids=["write", "flush"])
@pytest.mark.parametrize("error", list(OUTPUT_ERRORS))
@pytest.mark.parametrize("args", [
    ["validate", "{history}", "--format", "json"],
    ["validate", "{history}"],
    ["totals", "{history}", "--on", "2026-06-01", "--format", "csv"],
    ["check", "{history}", "--patient", "P001", "--site", "left trap", "--dry", "--on", "2026-06-01"],
    ["sites"],
    ["--help"],
], ids=["validate-json", "validate-table", "totals-csv", "check-table", "sites", "help"])
def test_output_that_cannot_be_written_is_exit_2_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                               args: list[str], error: str, at_flush: bool) -> None:
    # A verdict's exit code (0 allowed, 1 blocked) is never given for a report cut short.
    from tpi_cli.cli import main

    history = tmp_path / "h.csv"
    history.write_text(_long_history(3, 10), encoding="utf-8")
    exc, message = OUTPUT_ERRORS[error]
    monkeypatch.setattr("sys.argv", ["tpi", *[arg.format(history=history) for arg in args]])
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("TPI_DEBUG", raising=False)
    monkeypatch.setattr("tpi_cli.shell.OUTPUT_FAILED", [])
    descriptor = os.open(os.devnull, os.O_WRONLY)
    monkeypatch.setattr("sys.stdout", _FailingStdout(exc, at_flush, descriptor))
    try:
        with pytest.raises(SystemExit) as stopped:
            main()
    finally:
        os.close(descriptor)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"tpi: error: {message}"), err
    assert "internal error" not in err
    assert "Traceback" not in err


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "PYTHONUNBUFFERED"])
def test_reader_closing_the_pipe_early_gets_exit_2_and_no_traceback(tmp_path: Path, unbuffered: bool) -> None:
    # The real thing: `tpi validate big.csv | head -c 100`, with more output than a pipe holds.
    # Under PYTHONUNBUFFERED a single large write to a pipe whose reader left comes back short
    # (no error) and Python's text layer drops the rest: tpi puts a buffer under stdout.
    import subprocess
    import sys

    history = tmp_path / "h.csv"
    history.write_text(_long_history(1500, 4), encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TPI_", "PYTHONUNBUFFERED"))}
    if unbuffered:
        environment["PYTHONUNBUFFERED"] = "1"
    for args in (["validate", str(history), "--format", "json"], ["validate", str(history), "--format", "csv"],
                 ["validate", str(history), "--jobs", "1"],
                 ["totals", str(history), "--on", "2026-06-01", "--format", "csv"],
                 ["totals", str(history), "--on", "2026-06-01", "--format", "json"]):
        with subprocess.Popen([sys.executable, "-m", "tpi_cli", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=environment) as process:
            assert process.stdout is not None
            assert process.stderr is not None
            assert len(process.stdout.read(100)) == 100
            process.stdout.close()
            err = process.stderr.read().decode()
            code = process.wait(timeout=120)
        assert code == 2, (args, err)
        assert err == "tpi: error: the output was closed before the report was complete (broken pipe)\n", (args, err)


def test_stdout_open_for_reading_only_is_one_line_exit_2() -> None:
    # `tpi sites 1</dev/null`: one line saying the report could not be written (it said "cannot
    # read or write", then that again at exit).
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if not k.startswith("TPI_")}
    for args in (["sites"], ["validate", str(EXAMPLES / "history.csv"), "--format", "json"]):
        with open(os.devnull, "rb") as read_only:
            done = subprocess.run([sys.executable, "-m", "tpi_cli", *args], stdout=read_only, stderr=subprocess.PIPE,
                                  env=environment, check=False)
        assert done.returncode == 2
        assert done.stderr.decode().splitlines() == [
            "tpi: error: cannot write the report: Bad file descriptor; what was written is incomplete"]


def test_unbuffered_stdout_still_writes_the_whole_report(tmp_path: Path) -> None:
    import subprocess
    import sys

    history = tmp_path / "h.csv"
    history.write_text(_long_history(1500, 4), encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TPI_")}
    outputs = []
    for unbuffered in ("1", ""):
        environment["PYTHONUNBUFFERED"] = unbuffered
        done = subprocess.run([sys.executable, "-m", "tpi_cli", "validate", str(history), "--format", "csv"],
                              capture_output=True, env=environment, check=False, timeout=120)
        assert done.returncode == 1
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\n") > 1000


def test_interrupt_is_exit_130_not_a_verdict(tpi: Callable[..., Result], monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    history.write_text(_long_history(2, 3), encoding="utf-8")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("tpi_cli.cli._load", interrupted)
    result = tpi("validate", str(history))
    assert result.exit_code == 130
    assert result.stderr == "tpi: interrupted\n"
    assert result.stdout == ""


@pytest.mark.parametrize(("first", "message"), [
    ("Jane Doe,1980-02-03,SSN 123-45-6789,2026-01-01,trapezius,left,lidocaine,30 mg",
     "date: missing column: the first line holds a date, so it is a row, not the header (the header row is missing)"),
    ("Jane Doe SSN 123-45-6789 secret", "date: missing column (the header's only column is not named 'date')"),
    ("name,ssn 123-45-6789,visit,where,what,how much",
     "date: missing column (none of the header's 6 columns is named 'date')"),
    ("Dave,12/01/2026,trapezius,left,lidocaine,30 mg",  # no "did you mean 'dave'"
     "date: missing column (none of the header's 6 columns is named 'date')"),
    ("Jane,2026-01-01T10:00,trapezius,left,lidocaine,30 mg",
     "date: missing column: the first line holds a date, so it is a row, not the header (the header row is missing)"),
    # another format: named, still without quoting the line
    ("Jane;SSN 123-45-6789;trapezius", "date: missing column (the header is one column holding ';': tpi reads "
                                        "comma-separated CSV, or JSON)"),
    ("Jane\tSSN 123-45-6789\ttrapezius", "date: missing column (the header is one column holding '\\t': tpi reads "
                                          "comma-separated CSV, or JSON)"),
    ("# Jane SSN 123-45-6789", "date: missing column (the first line is a '#' comment: a CSV history starts with its "
                               "header)"),
    ("# Jane;SSN 123-45-6789", "date: missing column (the first line is a '#' comment: a CSV history starts with its "
                               "header)"),
    ("# Jane, SSN 123-45-6789, notes", "date: missing column (the first line is a '#' comment: a CSV history starts "
                                       "with its header)"),
    ("Jane|SSN 123-45-6789|trapezius", "date: missing column (the header is one column holding '|': tpi reads "
                                        "comma-separated CSV, or JSON)"),
])
def test_a_missing_header_is_not_quoted_back(tpi: Callable[..., Result], tmp_path: Path, first: str,
                                             message: str) -> None:
    # Without a header the first line is a patient's row: the message names no value of it.
    path = tmp_path / "h.csv"
    path.write_text(first + "\nP1,2026-01-01,trapezius,left,lidocaine,30 mg,,,\n", encoding="utf-8")
    result = tpi("validate", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"tpi: error: {path}:1: {message}\n"
    for secret in ("jane", "ssn", "123-45", "1980", "dave", "trapezius"):
        assert secret not in result.stderr.lower()


@pytest.mark.parametrize(("value", "line", "message"), [
    ("9" * 5000, 2, "a number of 5000 digits (tpi reads at most 40)"),
    ("-" + "9" * 500, 2, "a number of 500 digits (tpi reads at most 40)"),
    ("1" + "0" * 500 + ".5", 2, f"weight_kg: '{'1' + '0' * 58}…' is not a number tpi accepts"),
])
def test_json_numbers_too_long_are_refused_shortly(tpi: Callable[..., Result], tmp_path: Path, value: str, line: int,
                                                   message: str) -> None:
    # Not Python's "use sys.set_int_max_str_digits()", and never the whole number echoed.
    path = tmp_path / "h.json"
    path.write_text('[{"patient_id": "P1", "date": "2026-01-01", "site": "left trapezius", "drug": "",\n'
                    f'"dose": "", "weight_kg": {value}}}]', encoding="utf-8")
    result = tpi("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr == f"tpi: error: {path}:{line}: {message}\n"


def test_a_long_bad_number_in_csv_is_quoted_short(tpi: Callable[..., Result], tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("patient_id,date,site,side,drug,dose,weight_kg\n"
                    f"P1,2026-01-01,trapezius,left,,,{'9' * 900}\n", encoding="utf-8")
    result = tpi("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr == f"tpi: error: {path}:2: weight_kg: '{'9' * 59}…' has more than 18 digits (weight in kg)\n"


def test_closed_stdout_is_exit_2_with_one_line(tmp_path: Path) -> None:
    # `tpi validate h.csv >&-`: Python starts with sys.stdout None; nothing could be written.
    import subprocess
    import sys

    history = tmp_path / "h.csv"
    history.write_text(_long_history(2, 3), encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TPI_")}
    for args in (["validate", str(history)], ["--help"]):
        done = subprocess.run([sys.executable, "-m", "tpi_cli", *args], stderr=subprocess.PIPE, env=environment,
                              preexec_fn=lambda: os.close(1), check=False, timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr == b"tpi: error: cannot write the report: standard output is closed; what was written " \
                              b"is incomplete\n"


def test_full_disk_on_stdout_and_stderr_is_still_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    history = tmp_path / "h.csv"
    history.write_text(_long_history(40, 60), encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TPI_")}
    with open("/dev/full", "wb") as full:
        done = subprocess.run([sys.executable, "-m", "tpi_cli", "validate", str(history), "--format", "json"],
                              stdout=full, stderr=full, env=environment, check=False, timeout=60)
    assert done.returncode == 2


def test_a_long_number_is_found_on_its_line_not_in_a_string(tpi: Callable[..., Result], tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    path.write_text('[{"patient_id": "P1", "override": "reference ' + "1" * 45 + '",\n"date": "2026-01-01",\n'
                    '"site": "left trapezius", "drug": "", "dose": "", "weight_kg": ' + "9" * 50 + "}]",
                    encoding="utf-8")
    result = tpi("validate", str(path))
    assert result.stderr == f"tpi: error: {path}:3: a number of 50 digits (tpi reads at most 40)\n"


def test_stdin_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    # `tpi validate - 0>file`: stdin open for writing only; a read error, not a write error.
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if not k.startswith("TPI_")}
    with open(tmp_path / "out", "wb") as write_only:
        done = subprocess.run([sys.executable, "-m", "tpi_cli", "validate", "-"], stdin=write_only,
                              capture_output=True, env=environment, check=False, timeout=60)
    assert done.returncode == 2
    assert done.stdout == b""
    assert done.stderr == b"tpi: error: <stdin>: cannot read: Bad file descriptor\n"
