"""`tpi validate`: the JSON document of SPEC.md key for key, CSV rows, the table, and exit codes 0 / 1 / 2."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Callable

import pytest
from click.testing import Result

from tests.conftest import EXAMPLES, HEADER, as_json

Run = Callable[..., Result]
Write = Callable[[str, str], str]

VALIDATE_KEYS = {"schema_version", "patients", "injections", "violations", "summary"}
VIOLATION_KEYS = {"patient_id", "date", "site", "side", "rule", "severity", "message", "overridden"}

# With the spec rules (steroid-interval 6 weeks, steroid-count 3 / 12 months, ...):
#  P1: left trapezius steroid 1 Jan, again 15 Jan (< 12 Feb = 1 Jan + 42 days): steroid-interval, block.
#      1 Mar: 15 Jan + 42 days = 26 Feb <= 1 Mar passes the interval; the third steroid and the third session in
#      12 months (3 <= 3), 60 mg <= 120: no violation.
#  P2: right trapezius 1 Jan, then 10 Jan with an override reason: steroid-interval, overridden.
#  P3: 10 points on one day: points (warn, max 8).
SCHEDULE = HEADER + """\
P1,2026-01-01,trapezius,left,triamcinolone,20 mg,,,
P1,2026-01-15,trapezius,left,triamcinolone,20 mg,,,
P1,2026-03-01,trapezius,left,triamcinolone,20 mg,,,
P2,2026-01-01,trapezius,right,triamcinolone,20 mg,,,
P2,2026-01-10,trapezius,right,triamcinolone,20 mg,,,"flare, discussed with patient"
P3,2026-01-05,infraspinatus,left,lidocaine,3 mL @ 1%,10,,
"""


@pytest.fixture
def schedule(write: Write) -> str:
    return write("schedule.csv", SCHEDULE)


def test_json_key_for_key(tpi: Run, spec_rules: str, schedule: str) -> None:
    result = tpi("validate", schedule, "--rules", spec_rules, "--format", "json")
    assert result.exit_code == 1  # P1's violation is blocking and not overridden
    document = as_json(result)
    assert set(document) == VALIDATE_KEYS
    assert document["schema_version"] == 1
    assert document["patients"] == 3
    assert document["injections"] == 6
    for violation in document["violations"]:
        assert set(violation) >= VIOLATION_KEYS
    found = [(v["patient_id"], v["date"], v["site"], v["side"], v["rule"], v["severity"], v["overridden"])
             for v in document["violations"]]
    assert sorted(found) == [
        ("P1", "2026-01-15", "trapezius", "left", "steroid-interval", "block", None),
        ("P2", "2026-01-10", "trapezius", "right", "steroid-interval", "block", "flare, discussed with patient"),
        ("P3", "2026-01-05", "infraspinatus", "left", "points", "warn", None),
    ]
    p1 = next(v for v in document["violations"] if v["patient_id"] == "P1")
    assert p1["message"] == "corticosteroid injection at left trapezius on 2026-01-01, less than 6 weeks before"
    assert document["summary"] == {"block": 1, "warn": 1, "overridden": 1}


@pytest.mark.parametrize(
    ("patient", "code", "summary"),
    [
        ("P1", 1, {"block": 1, "warn": 0, "overridden": 0}),
        ("P2", 0, {"block": 0, "warn": 0, "overridden": 1}),  # only overridden: exit 0
        ("P3", 0, {"block": 0, "warn": 1, "overridden": 0}),  # only a warning: exit 0
    ],
)
def test_patient_option_and_exit_codes(tpi: Run, spec_rules: str, schedule: str, patient: str, code: int,
                                       summary: dict[str, int]) -> None:
    result = tpi("validate", schedule, "--rules", spec_rules, "--format", "json", "--patient", patient)
    assert result.exit_code == code
    document = as_json(result)
    assert document["patients"] == 1
    assert {v["patient_id"] for v in document["violations"]} == {patient}
    assert document["summary"] == summary


def test_clean_history_exits_0(tpi: Run, spec_rules: str, write: Write) -> None:
    history = write("clean.csv", HEADER + "P1,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\n"
                                          "P1,2026-02-12,trapezius,left,triamcinolone,20 mg,,,\n")
    result = tpi("validate", history, "--rules", spec_rules, "--format", "json")
    assert result.exit_code == 0
    document = as_json(result)
    assert document["violations"] == []
    assert document["summary"] == {"block": 0, "warn": 0, "overridden": 0}


def test_csv_one_row_per_violation(tpi: Run, spec_rules: str, schedule: str) -> None:
    as_csv = tpi("validate", schedule, "--rules", spec_rules, "--format", "csv")
    as_doc = tpi("validate", schedule, "--rules", spec_rules, "--format", "json")
    assert as_csv.exit_code == as_doc.exit_code == 1
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert set(rows[0]) >= VIOLATION_KEYS
    expected = as_json(as_doc)["violations"]
    assert len(rows) == len(expected)
    for got, want in zip(sorted(rows, key=lambda r: r["patient_id"]), sorted(expected, key=lambda v: v["patient_id"]),
                         strict=True):
        for key in ("patient_id", "date", "site", "side", "rule", "severity", "message"):
            assert got[key] == want[key]
        assert got["overridden"] == (want["overridden"] or "")


def test_csv_with_no_violation_is_a_header(tpi: Run, spec_rules: str, write: Write) -> None:
    result = tpi("validate", write("one.csv", HEADER + "P1,2026-01-01,trapezius,left,,,,,\n"), "--rules",
                 spec_rules, "--format", "csv")
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert len(rows) == 1
    assert set(rows[0]) >= VIOLATION_KEYS


def test_table(tpi: Run, spec_rules: str, schedule: str) -> None:
    result = tpi("validate", schedule, "--rules", spec_rules)
    assert result.exit_code == 1
    assert "2026-01-15" in result.stdout
    assert "steroid-interval" in result.stdout
    assert "flare, discussed with patient" in result.stdout
    assert result.stderr == ""


def test_stdin_and_json_history(tpi: Run, spec_rules: str, write: Write) -> None:
    from_stdin = tpi("validate", "-", "--rules", spec_rules, "--format", "json", input=SCHEDULE)
    assert from_stdin.exit_code == 1
    assert as_json(from_stdin)["injections"] == 6
    patients = [
        {"patient_id": "P1", "injections": [
            {"date": "2026-01-01", "site": "trapezius", "side": "left",
             "drugs": [{"name": "triamcinolone", "dose": "20 mg"}]},
            {"date": "2026-01-15", "site": "trapezius", "side": "left", "override": "flare",
             "drugs": [{"name": "triamcinolone", "dose": "20 mg"}]}]},
        {"patient_id": "P2", "injections": [{"date": "2026-01-15", "site": "trapezius", "side": "left",
                                             "technique": "dry", "drugs": []}]},
    ]
    result = tpi("validate", write("history.json", json.dumps(patients)), "--rules", spec_rules, "--format", "json")
    assert result.exit_code == 0
    document = as_json(result)
    assert document["patients"] == 2
    assert document["injections"] == 3
    assert [(v["patient_id"], v["rule"], v["overridden"]) for v in document["violations"]] == [
        ("P1", "steroid-interval", "flare")]


def test_default_rules_on_the_examples(tpi: Run) -> None:
    for name in ("history.csv", "history.json", "clinic.csv"):
        result = tpi("validate", str(EXAMPLES / name), "--format", "json")
        assert result.exit_code in (0, 1), result.stderr
        document = as_json(result)
        assert result.exit_code == (1 if document["summary"]["block"] else 0)


@pytest.mark.parametrize(
    ("args", "text", "needle"),
    [
        (("--patient", "P9"), SCHEDULE, "P9"),
        (("--profile", "nope"), SCHEDULE, "nope"),
        (("--format", "cds-hooks"), SCHEDULE, "cds-hooks"),
        (("--patient", "P1", "--patient", "P2"), SCHEDULE, "--patient is given more than once"),
        (("--jobs", "1", "--jobs", "2"), SCHEDULE, "--jobs is given more than once"),
        ((), HEADER + "P1,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\nP1,2026-13-01,trapezius,left,,,,,\n",
         "history.csv:3"),
        ((), HEADER + "P1,2026-01-01,trapezius,sideways,,,,,\n", "history.csv:2"),
        ((), "patient_id,date,site,side\nP1,2026-01-01,trapezius,left\n", "history.csv"),  # no drug/dose columns
        # a bad row after many good ones: still nothing written to stdout
        ((), SCHEDULE + "P9,2026-01-01,trapzius,left,,,,,\n", "did you mean 'trapezius'"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tpi: Run, spec_rules: str, write: Write, args: tuple[str, ...],
                                              text: str, needle: str) -> None:
    for fmt in ("json", "csv", "table"):
        result = tpi("validate", write("history.csv", text), "--rules", spec_rules,
                     *(() if "--format" in args else ("--format", fmt)), *args)
        assert result.exit_code == 2
        assert needle in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_validate_output_is_whole_when_the_reader_starts_over(tpi: Run, write: Write, spec_rules: str,
                                                              fmt: str) -> None:
    # P2's violation is found while streaming; P1's rows then come back, so the file is read
    # again grouped in memory. The report must hold each violation once, in valid JSON/CSV.
    history = write("h.csv", HEADER
                    + "P2,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\n"
                    + "P2,2026-01-10,trapezius,left,triamcinolone,20 mg,,,\n"
                    + "P1,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\n"
                    + "P3,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\n"
                    + "P1,2026-01-10,trapezius,left,triamcinolone,20 mg,,,\n")
    result = tpi("validate", history, "--rules", spec_rules, "--format", fmt)
    assert result.exit_code == 1, result.stderr
    if fmt == "json":
        document = json.loads(result.stdout)
        assert [(v["patient_id"], v["rule"]) for v in document["violations"]] == [
            ("P2", "steroid-interval"), ("P1", "steroid-interval")]
        assert document["patients"] == 3
        assert document["summary"]["block"] == 2
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert [row[0] for row in rows[1:]] == ["P2", "P1"]
    else:
        assert result.stdout.count("steroid-interval") == 2


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_long_report_is_whole_when_the_reader_starts_over(tpi: Run, write: Write, spec_rules: str,
                                                            fmt: str) -> None:
    # P2's violations (several hundred KiB of text, past the 64 K characters gathered in memory
    # before each write to the spool) are written before P1's rows come back and the file is read
    # again: the report holds each once, the same as P2's file alone gives.
    from datetime import date, timedelta

    rows = "".join(f"P2,{date(2026, 1, 1) + timedelta(days=day)},trapezius,left,triamcinolone,20 mg,,,\n"
                   for day in range(800))
    alone = tpi("validate", write("p2.csv", HEADER + rows), "--rules", spec_rules, "--format", fmt)
    mixed = tpi("validate", write("mixed.csv", HEADER + rows
                                  + "P1,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\n"
                                  + "P3,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\n"
                                  + "P1,2026-01-10,trapezius,left,triamcinolone,20 mg,,,\n"),
                "--rules", spec_rules, "--format", fmt)
    assert alone.exit_code == mixed.exit_code == 1, mixed.stderr
    assert len(alone.stdout) > 4 * 64 * 1024
    if fmt == "json":
        want, got = json.loads(alone.stdout), json.loads(mixed.stdout)
        assert len(want["violations"]) == sum(want["summary"].values()) > 1000
        assert got["violations"] == [*want["violations"], {**got["violations"][-1], "patient_id": "P1"}]
        assert got["violations"][-1]["rule"] == "steroid-interval"
        assert got["patients"] == 3
        assert got["summary"]["block"] == want["summary"]["block"] + 1
    else:
        want_rows = list(csv.reader(io.StringIO(alone.stdout)))
        got_rows = list(csv.reader(io.StringIO(mixed.stdout)))
        assert got_rows[:-1] == want_rows
        assert got_rows[-1][:2] == ["P1", "2026-01-10"]


def test_violations_reach_the_spool_in_pieces_not_all_at_the_end() -> None:
    # The buffer is emptied into the spool every BUFFERED characters (so the spool, not the
    # buffer, holds a long report, and rolls over to its temporary file), and once more at the end.
    from datetime import date

    from tpi_cli.batch import BUFFERED, Batched
    from tpi_cli.render.stream import writer
    from tpi_cli.results import Violation

    spool = io.StringIO()
    batched = Batched(spool, lambda buffer: writer("csv", buffer))
    violation = Violation("P1", date(2026, 1, 5).toordinal(), "trapezius", "left", "steroid-interval", "block",
                          "x" * 1000, None)
    sizes = []
    for _ in range(300):
        batched.write(violation)
        sizes.append(len(spool.getvalue()))
    assert sizes[100] > 0
    assert sizes[-1] > 3 * BUFFERED
    assert all(later - earlier <= BUFFERED + 2000 for earlier, later in itertools.pairwise(sizes))
    batched.flush()
    assert spool.getvalue().count("steroid-interval") == 300
