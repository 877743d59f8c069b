"""Limits (issue 5, part 5): each either works or is refused with a clear message.

- a 20,000-injection patient validates, and `check`, `next`, `totals` answer on it (no timing is
  asserted: only that it finishes and the answer is sane);
- dates from 1900 to 2200 work; outside 1900-01-01..2999-12-31 is refused, naming the range;
- a very large field is refused (over tpi's 1,000-character field limit, or over the CSV module's
  1 MiB field limit);
- a 10,000-rule file is handled and a 10,001-rule file refused. Loading 10,000 rules takes a few
  seconds, so only `rules check` runs on it here; `check`/`validate` run on 1,000 rules, and on
  10,000 in the slow set (TPI_SLOW=1);
- a ~100 MiB history is too slow for the suite: it runs in the slow set, streamed in a
  memory-capped process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import EXAMPLES, HEADER, SPEC_RULES
from tests.test_fuzz import assert_contract, assert_process_contract, invoke, run_process, slow

SITES = ("trapezius", "levator-scapulae", "infraspinatus")
DRUG_ROWS = (("lidocaine", "2 mL @ 1%"), ("triamcinolone", "10 mg"), ("", ""), ("dexamethasone", "1 mg"))


def _big_patient(count: int = 20_000) -> str:
    """One patient, ``count`` injections, one every two days from 1900-01-01 (to about 2009)."""
    start = dt.date(1900, 1, 1)
    rows = []
    for i in range(count):
        drug, dose = DRUG_ROWS[i % len(DRUG_ROWS)]
        side = "left" if i % 2 else "right"
        rows.append(f"P1,{start + dt.timedelta(days=2 * i)},{SITES[i % 3]},{side},{drug},{dose},1,70,\n")
    return HEADER + "".join(rows)


@pytest.fixture(scope="module")
def big_patient(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("limits")
    history = directory / "big.csv"
    history.write_text(_big_patient(), encoding="utf-8")
    rules = directory / "rules.yaml"
    rules.write_text(SPEC_RULES, encoding="utf-8")
    return history, rules


def test_20000_injection_patient_validates(tpi: Callable[..., Result], big_patient: tuple[Path, Path]) -> None:
    history, rules = big_patient
    args = ("validate", str(history), "--rules", str(rules), "--format", "json")
    result = invoke(tpi, *args, seconds=600)
    assert_contract(result, args)
    document = json.loads(result.stdout)
    assert document["patients"] == 1
    assert document["injections"] == 20_000
    assert (result.exit_code == 1) == (document["summary"]["block"] > 0)
    assert document["summary"]["block"] + document["summary"]["warn"] == len(document["violations"])
    assert {v["patient_id"] for v in document["violations"]} <= {"P1"}


def test_20000_injection_patient_check_next_totals(tpi: Callable[..., Result],
                                                   big_patient: tuple[Path, Path]) -> None:
    """Asked after the last injection (asking in the middle re-checks every later, planned
    injection: see the slow test below)."""
    history, rules = big_patient
    on = "2010-06-01"
    args: tuple[str, ...] = ("check", str(history), "--rules", str(rules), "--site", "left trapezius", "--drug",
                             "triamcinolone=20mg", "--on", on, "--format", "json")
    result = invoke(tpi, *args, seconds=600)
    assert_contract(result, args)
    document = json.loads(result.stdout)
    assert document["verdict"] in ("allowed", "not-yet", "blocked")
    assert (result.exit_code == 0) == (document["verdict"] == "allowed")
    if document["verdict"] == "not-yet":
        assert document["earliest_date"] > on

    args = ("next", str(history), "--rules", str(rules), "--on", on, "--format", "json")
    result = invoke(tpi, *args, seconds=600)
    assert_contract(result, args)
    rows = json.loads(result.stdout)["sites"]
    assert {(row["site"], row["side"]) for row in rows} == {(s, side) for s in SITES for side in ("left", "right")}

    args = ("totals", str(history), "--rules", str(rules), "--on", on, "--window", "100 years", "--format", "json")
    result = invoke(tpi, *args, seconds=600)
    assert_contract(result, args)
    patients = json.loads(result.stdout)["patients"]
    assert len(patients) == 1
    assert patients[0]["all_time_injections"] == 10_000  # the triamcinolone and dexamethasone rows
    assert patients[0]["all_time_mg_ref"] == pytest.approx(5_000 * 10 + 5_000 * 1 * 4 / 0.75, abs=0.01)


@slow
@pytest.mark.slow
def test_20000_injection_patient_check_in_the_middle(tpi: Callable[..., Result],
                                                     big_patient: tuple[Path, Path]) -> None:
    """About 10,000 planned injections after the proposal, each re-checked."""
    history, rules = big_patient
    for args in (("check", str(history), "--rules", str(rules), "--site", "left trapezius", "--drug",
                  "triamcinolone=20mg", "--on", "1950-01-01", "--format", "json"),
                 ("next", str(history), "--rules", str(rules), "--on", "1950-01-01", "--format", "json")):
        result = invoke(tpi, *args, seconds=1200)
        assert_contract(result, args)
        json.loads(result.stdout)


# --- dates ------------------------------------------------------------------------------------------

EDGE_DATES = ["1900-01-01", "1900-02-28", "1900-03-01", "2000-02-29", "2100-02-28", "2199-12-31", "2200-01-01",
              "2200-12-31"]


def test_dates_from_1900_to_2200_work(tpi: Callable[..., Result], tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    history.write_text(HEADER + "".join(f"P1,{day},trapezius,left,triamcinolone,10 mg,,,\n" for day in EDGE_DATES),
                       encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text(SPEC_RULES, encoding="utf-8")
    result = invoke(tpi, "validate", str(history), "--rules", str(rules), "--format", "json")
    assert_contract(result, ("validate",))
    document = json.loads(result.stdout)
    assert document["injections"] == len(EDGE_DATES)
    # 1900-03-01 is a day after 1900-02-28, 2200-01-01 a day after 2199-12-31: both less than 6 weeks
    assert [(v["date"], v["rule"]) for v in document["violations"]] == [("1900-03-01", "steroid-interval"),
                                                                        ("2200-01-01", "steroid-interval")]
    for on in ("1900-01-01", "2000-02-29", "2200-12-31"):
        args = ("check", str(history), "--rules", str(rules), "--site", "left trapezius", "--drug",
                "triamcinolone=10mg", "--on", on, "--format", "json")
        result = invoke(tpi, *args)
        assert_contract(result, args)
        assert json.loads(result.stdout)["verdict"] in ("allowed", "not-yet")
        for extra in (("next", "--on", on, "--format", "json"),
                      ("totals", "--on", on, "--window", "100 years", "--format", "json")):
            args = (extra[0], str(history), "--rules", str(rules), *extra[1:])
            result = invoke(tpi, *args)
            assert_contract(result, args)
            assert result.exit_code == 0


def test_dates_near_the_upper_end_answer_beyond_it(tpi: Callable[..., Result], tmp_path: Path) -> None:
    """An earliest date may fall after 2999-12-31: it is computed, not refused."""
    history = tmp_path / "h.csv"
    history.write_text(HEADER + "P1,2999-12-01,trapezius,left,triamcinolone,20 mg,,,\n", encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text(SPEC_RULES, encoding="utf-8")
    args = ("check", str(history), "--rules", str(rules), "--site", "left trapezius", "--drug", "triamcinolone=20mg",
            "--on", "2999-12-31", "--format", "json")
    result = invoke(tpi, *args)
    assert_contract(result, args)
    document = json.loads(result.stdout)
    assert document["verdict"] == "not-yet"
    assert document["earliest_date"] == "3000-01-12"


@pytest.mark.parametrize("day", ["1899-12-31", "3000-01-01", "0001-01-01", "9999-12-31", "1000-06-15"])
def test_dates_outside_the_range_are_refused_clearly(tpi: Callable[..., Result], tmp_path: Path, day: str) -> None:
    history = tmp_path / "h.csv"
    history.write_text(HEADER + f"P1,{day},trapezius,left,triamcinolone,20 mg,,,\n", encoding="utf-8")
    result = invoke(tpi, "validate", str(history))
    assert_contract(result, ("validate",))
    assert result.exit_code == 2
    assert f"{history}:2: date:" in result.stderr
    assert "1900-01-01" in result.stderr
    assert "2999-12-31" in result.stderr

    good = tmp_path / "good.csv"
    good.write_text(HEADER + "P1,2026-01-15,trapezius,left,triamcinolone,20 mg,,,\n", encoding="utf-8")
    for args in (("check", str(good), "--site", "left trap", "--dry", "--on", day),
                 ("next", str(good), "--on", day), ("totals", str(good), "--on", day)):
        result = invoke(tpi, *args)
        assert_contract(result, args)
        assert result.exit_code == 2
        assert "--on" in result.stderr
        assert "1900-01-01" in result.stderr, result.stderr

    rules = tmp_path / "rules.yaml"
    rules.write_text(SPEC_RULES.replace("source: \"test source\"", f"source: x\n    effective: {day}"),
                     encoding="utf-8")
    result = invoke(tpi, "rules", "check", str(rules))
    assert_contract(result, ("rules", "check"))
    assert result.exit_code == 2
    assert "effective" in result.stderr
    assert "1900-01-01" in result.stderr


@pytest.mark.parametrize(("window", "ok"), [
    # "1200 months", exactly 100 years, is refused: see test_corpus_window_of_1200_months_is_accepted
    ("100 years", True), ("36500 days", True), ("P100Y", True),
    ("101 years", False), ("100 years 1 day", False), ("1300 months", False), ("999999 days", False)])
def test_durations_up_to_100_years(tpi: Callable[..., Result], window: str, ok: bool) -> None:
    args = ("totals", str(EXAMPLES / "history.csv"), "--on", "2026-11-28", "--window", window)
    result = invoke(tpi, *args)
    assert_contract(result, args)
    assert (result.exit_code == 0) == ok, result.stderr
    if not ok:
        assert "100 years" in result.stderr


# --- large fields -----------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["patient_id", "site", "drug", "dose", "override", "date"])
def test_field_over_1000_characters_is_refused(tpi: Callable[..., Result], tmp_path: Path, field: str) -> None:
    row = {"patient_id": "P1", "date": "2026-01-15", "site": "trapezius", "side": "left", "drug": "triamcinolone",
           "dose": "20 mg", "points": "", "weight_kg": "", "override": ""}
    row[field] = "x" * 1001
    history = tmp_path / "h.csv"
    history.write_text(HEADER + ",".join(row.values()) + "\n", encoding="utf-8")
    result = invoke(tpi, "validate", str(history))
    assert_contract(result, ("validate",))
    assert result.exit_code == 2
    assert f"{history}:2: {field}:" in result.stderr
    assert len(result.stderr) < 300, result.stderr
    # the same in JSON
    history = tmp_path / "h.json"
    history.write_text(json.dumps([row]), encoding="utf-8")
    result = invoke(tpi, "validate", str(history))
    assert_contract(result, ("validate",))
    assert result.exit_code == 2
    assert field in result.stderr


def test_field_of_exactly_1000_characters_is_read(tpi: Callable[..., Result], tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    history.write_text(HEADER + f"P1,2026-01-15,trapezius,left,triamcinolone,20 mg,,,{'o' * 1000}\n", encoding="utf-8")
    result = invoke(tpi, "validate", str(history))
    assert_contract(result, ("validate",))
    assert result.exit_code == 0


@pytest.mark.parametrize("where", [
    "read column", "read column, quoted", "ignored column, quoted", "unterminated quote",
    "ignored column"])
def test_field_over_the_csv_field_limit_is_refused(tpi: Callable[..., Result], tmp_path: Path, where: str) -> None:
    huge = "y" * ((1 << 20) + 1)
    if where.startswith("read column"):
        text = HEADER + "P1,2026-01-15,trapezius,left,,,,," + (f'"{huge}"' if "quoted" in where else huge) + "\n"
    elif where.startswith("ignored column"):
        text = HEADER.strip() + ",notes\n" + "P1,2026-01-15,trapezius,left,,,,,," + (
            f'"{huge}"' if "quoted" in where else huge) + "\n"
    else:
        text = HEADER + "P1,2026-01-15,trapezius,left,,,,,\"" + huge + "\n"
    history = tmp_path / "h.csv"
    history.write_text(text, encoding="utf-8")
    for source, stdin in ((str(history), None), ("-", text)):
        result = invoke(tpi, "validate", source, "--format", "json", input=stdin)
        assert_contract(result, ("validate", source))
        assert result.exit_code == 2
        assert result.stdout == ""
        assert ":2:" in result.stderr, result.stderr
        assert len(result.stderr) < 300


def test_an_ignored_column_under_the_field_limit_is_read(tpi: Callable[..., Result], tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    history.write_text(HEADER.strip() + ",notes\n" + f"P1,2026-01-15,trapezius,left,,,,,,{'n' * 500_000}\n",
                       encoding="utf-8")
    result = invoke(tpi, "validate", str(history))
    assert_contract(result, ("validate",))
    assert result.exit_code == 0


def test_a_row_of_a_million_fields_is_refused(tpi: Callable[..., Result], tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    history.write_text(HEADER + "P1,2026-01-15" + "," * 1_000_000 + "\n", encoding="utf-8")
    result = invoke(tpi, "validate", str(history))
    assert_contract(result, ("validate",))
    assert result.exit_code == 2
    assert "fields, but the header has" in result.stderr


def test_a_long_json_string_is_refused(tpi: Callable[..., Result], tmp_path: Path) -> None:
    history = tmp_path / "h.json"
    history.write_text(json.dumps([{"date": "2026-01-15", "site": "t" * 5_000_000, "drug": "", "dose": ""}]),
                       encoding="utf-8")
    result = invoke(tpi, "validate", str(history))
    assert_contract(result, ("validate",))
    assert result.exit_code == 2
    assert "site" in result.stderr
    assert len(result.stderr) < 300


@pytest.mark.parametrize(("column", "value", "ok"), [("points", "1000", True), ("points", "1001", False),
                                                     ("weight_kg", "700", True), ("weight_kg", "700.5", False),
                                                     ("dose", "99999999999999999 g", True),
                                                     ("dose", "999999999999999999999 g", False),
                                                     ("dose", "0.000000001 mg", True),
                                                     ("dose", "0.0000000001 mg", False)])
def test_number_limits(tpi: Callable[..., Result], tmp_path: Path, column: str, value: str, ok: bool) -> None:
    row = {"patient_id": "P1", "date": "2026-01-15", "site": "trapezius", "side": "left", "drug": "triamcinolone",
           "dose": "20 mg", "points": "", "weight_kg": "", "override": ""}
    row[column] = value
    history = tmp_path / "h.csv"
    history.write_text(HEADER + ",".join(row.values()) + "\n", encoding="utf-8")
    result = invoke(tpi, "validate", str(history), "--format", "json")
    assert_contract(result, ("validate",))
    if ok:
        assert result.exit_code in (0, 1), result.stderr
    else:
        assert result.exit_code == 2
        assert f":2: {column}:" in result.stderr


# --- many rules -------------------------------------------------------------------------------------

RULE_TEMPLATES = (
    "{{id: r{i}, kind: min-interval, applies_to: [steroid], scope: site, interval: {n} days}}",
    "{{id: r{i}, kind: max-count, applies_to: any, scope: patient, window: 12 months, max: {n}}}",
    "{{id: r{i}, kind: max-steroid-dose, applies_to: [steroid], scope: region, window: 1 year, max_mg: {n}0}}",
    "{{id: r{i}, kind: max-points, applies_to: any, max: {n}, severity: warn, profiles: [p{n}]}}",
)


def many_rules(count: int) -> str:
    head = SPEC_RULES.split("rules:\n")[0]
    lines = [RULE_TEMPLATES[i % len(RULE_TEMPLATES)].format(i=i, n=i % 50 + 1) for i in range(count)]
    return head + "rules:\n" + "".join(f"  - {line}\n" for line in lines)


def test_10000_rules_are_handled(tpi: Callable[..., Result], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(many_rules(10_000), encoding="utf-8")
    result = invoke(tpi, "rules", "check", str(rules), seconds=300)
    assert_contract(result, ("rules", "check"))
    assert result.exit_code == 0
    assert "10000 rules" in result.stdout


def test_10001_rules_are_refused_clearly(tpi: Callable[..., Result], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(many_rules(10_001), encoding="utf-8")
    result = invoke(tpi, "rules", "check", str(rules), seconds=300)
    assert_contract(result, ("rules", "check"))
    assert result.exit_code == 2
    assert f"{rules}:" in result.stderr
    assert "10000 rules" in result.stderr


@pytest.mark.parametrize("count", [pytest.param(1_000, id="1000"),
                                   pytest.param(10_000, id="10000", marks=[slow, pytest.mark.slow])])
def test_many_rules_check_and_validate(tpi: Callable[..., Result], tmp_path: Path, count: int) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(many_rules(count), encoding="utf-8")
    history = str(EXAMPLES / "history.csv")
    for args in (("check", history, "--rules", str(rules), "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                  "--on", "2026-11-28", "--profile", "p4", "--format", "json"),
                 ("validate", history, "--rules", str(rules), "--format", "json")):
        result = invoke(tpi, *args, seconds=600)
        assert_contract(result, args)
        assert result.exit_code in (0, 1), result.stderr
        json.loads(result.stdout)


def test_rules_file_over_16_mib_is_refused(tpi: Callable[..., Result], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(SPEC_RULES + "description: \"" + "d" * (17 << 20) + "\"\n", encoding="utf-8")
    result = invoke(tpi, "rules", "check", str(rules))
    assert_contract(result, ("rules", "check"))
    assert result.exit_code == 2
    assert "16 MiB" in result.stderr


def test_rules_file_errors_are_capped(tpi: Callable[..., Result], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n" + "".join(f"k{i}: {i}\n" for i in range(20_000)), encoding="utf-8")
    result = invoke(tpi, "rules", "check", str(rules), seconds=120)
    assert_contract(result, ("rules", "check"))
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) <= 1000


# --- endless inputs ---------------------------------------------------------------------------------

needs_dev_zero = pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")


@needs_dev_zero
def test_endless_rules_file_is_refused_as_too_large() -> None:
    done = run_process(["rules", "check", "/dev/zero"], timeout=60, memory=512 << 20)
    assert_process_contract(done)
    assert done.returncode == 2
    assert b"16 MiB" in done.stderr


@needs_dev_zero
def test_endless_history_line_is_refused_at_the_field_limit() -> None:
    done = run_process(["validate", "/dev/zero"], timeout=60, memory=512 << 20)
    assert_process_contract(done)
    assert done.returncode == 2


# --- a ~100 MiB history (slow) ----------------------------------------------------------------------

@slow
@pytest.mark.slow
def test_100_mib_history_streams_in_bounded_memory(tmp_path: Path) -> None:
    history = tmp_path / "big.csv"
    row = "C{p:06d},{y}-{m:02d}-15,trapezius,left,triamcinolone,40 mg,2,70,\n"
    with history.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        p = 0
        while out.tell() < 100 << 20:
            out.write("".join(row.format(p=p, y=2020 + i // 12, m=i % 12 + 1) for i in range(24)))
            p += 1
    done = run_process(["validate", str(history), "--format", "csv"], timeout=3600, memory=1 << 30)
    assert_process_contract(done)
    assert done.returncode in (0, 1)


@pytest.mark.parametrize("count", [1_000, 1_400])  # 760 and 1,064 rules shown (the others do not apply)
def test_check_table_of_many_rules_is_one_plain_line_a_rule(tpi: Callable[..., Result], tmp_path: Path,
                                                            count: int) -> None:
    # Over 1,000 rows the check table is plain lines (rich took 6.7 s for 10,000 rules, now 1.8 s): the
    # same verdict, a line per rule shown with its status, and the footer. Up to 1,000, rich's table.
    rules = tmp_path / "rules.yaml"
    rules.write_text(many_rules(count), encoding="utf-8")
    args = ("check", str(EXAMPLES / "history.csv"), "--rules", str(rules), "--site", "left trapezius", "--drug",
            "triamcinolone=20mg", "--on", "2026-11-28", "--profile", "p4")
    document = json.loads(invoke(tpi, *args, "--format", "json", seconds=120).stdout)
    table = invoke(tpi, *args, seconds=120)
    assert_contract(table, args)
    lines = table.stdout.splitlines()
    shown = [r for r in document["rules"] if r["status"] != "skip"]
    assert (len(shown) > 1_000) == (count == 1_400)
    assert lines[0].startswith(f"{document['verdict'].upper().replace('-', ' ')}")
    assert lines[-1].endswith("judgement.") or lines[-1].endswith("judgement")
    rows = [line.split()[:2] for line in lines if line.split()[:1] and line.split()[0] in ("PASS", "WARN", "FAIL")]
    assert rows == [[r["status"].upper(), r["id"]] for r in shown]  # in order
    if len(shown) > 1_000:  # one line each, between the header's rule and a blank line
        under = lines.index(next(line for line in lines if line and set(line) <= {"\u2500", "-"}))
        assert lines[under + 1 + len(shown)] == ""
        for line, rule in zip(lines[under + 1:], shown, strict=False):
            assert rule["message"] in line, line  # the whole message, its notes and source after it
            assert "; source: " in line
            assert (rule["status"] != "fail") or "; passes " in line  # a failing rule says when it passes
    else:
        assert len(lines) > 2 * len(shown)  # rich's rows: id, then group, then source lines
