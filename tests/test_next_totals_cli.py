"""`tpi next` and `tpi totals`: hand-computed examples with the spec rules, JSON key for key, exit codes.

The spec rules (tests/conftest.py): steroid-interval 6 weeks per site; steroid-count 3 per site in 12 months;
steroid-site-dose 120 mg per site in 12 months; sessions: 3 sessions per patient in 12 months for steroid,
anesthetic and other injections; anesthetic-dose; points (warn, 8); one-region (medicare only).
Defaults: steroid = triamcinolone 20 mg, anesthetic = lidocaine 3 mL @ 1% (30 mg).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import HEADER, ONE_SITE_RULES_HEAD, as_json

Run = Callable[..., Result]
Write = Callable[[str, str], str]

NEXT_KEYS = {"schema_version", "patient_id", "on", "sites"}
NEXT_ROW_KEYS = {"site", "side", "dry", "anesthetic", "steroid", "steroid_mg_remaining"}
TOTALS_KEYS = {"schema_version", "on", "window", "reference_steroid", "rows", "patients"}
TOTALS_ROW_KEYS = {"patient_id", "site", "side", "steroid_injections", "mg_ref", "by_drug", "all_time_injections",
                   "all_time_mg_ref"}
TOTALS_PATIENT_KEYS = {"patient_id", "steroid_injections", "mg_ref", "all_time_injections", "all_time_mg_ref"}

NEXT_HISTORY = HEADER + """\
P1,2026-01-10,trapezius,left,triamcinolone,40 mg,,,
P1,2026-03-01,trapezius,bilateral,triamcinolone,40 mg,,,
P1,2026-03-01,interspinous-lumbar,,,,,,
"""


def row_of(document: Any, site: str, side: str | None) -> Any:
    (found,) = [r for r in document["sites"] if r["site"] == site and r["side"] == side]
    return found


@pytest.mark.parametrize(("machine_date", "label"), [("2026-03-10", "today"), ("2026-12-06", "2026-03-10")])
def test_next_table_says_today_only_on_the_machines_date(tpi: Run, spec_rules: str, write: Write,
                                                         monkeypatch: pytest.MonkeyPatch, machine_date: str,
                                                         label: str) -> None:
    # A forecast from another --on (planning ahead, looking back) shows its own date, not "today".
    from datetime import date

    import tpi_cli.cli

    class Machine(date):
        @classmethod
        def today(cls) -> date:
            return date.fromisoformat(machine_date)

    monkeypatch.setattr(tpi_cli.cli, "date", Machine)
    result = tpi("next", write("h.csv", NEXT_HISTORY), "--rules", spec_rules, "--on", "2026-03-10")
    assert result.exit_code == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("interspinous-lumbar")]
    assert row.split()[1:4] == [label] * 3
    assert ("today" in result.stdout) == (label == "today")


def test_next_hand_computed(tpi: Run, spec_rules: str, write: Write) -> None:
    result = tpi("next", write("h.csv", NEXT_HISTORY), "--rules", spec_rules, "--on", "2026-03-10", "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = as_json(result)
    assert set(document) >= NEXT_KEYS
    assert document["schema_version"] == 1
    assert document["patient_id"] == "P1"
    assert document["on"] == "2026-03-10"
    for entry in document["sites"]:
        assert set(entry) >= NEXT_ROW_KEYS
    # one row per site of the history, left and right for a lateral site, sorted by site name
    assert [(r["site"], r["side"]) for r in document["sites"]] == [
        ("interspinous-lumbar", None), ("trapezius", "left"), ("trapezius", "right")]
    # dry needling: no rule applies to it but the session kinds, which pass: today.
    # anesthetic 30 mg: sessions 10 Jan, 1 Mar and 10 Mar = 3 <= 3; 30/300 <= 1: today.
    # steroid at the trapezius, either side: the bilateral 1 Mar counts against both: 1 Mar + 42 days = 12 Apr.
    #   On 12 Apr: left count 2 + 1 = 3 <= 3; left dose 40 + 40 + 20 = 100 <= 120; sessions 10 Jan, 1 Mar, 12 Apr = 3.
    # steroid at the interspinous-lumbar: nothing there before; sessions 3 <= 3: today.
    # mg left: left 120 - (40 + 40) = 40; right 120 - 40 (the bilateral) = 80; interspinous-lumbar 120.
    expected = {
        ("interspinous-lumbar", None): ("2026-03-10", "2026-03-10", "2026-03-10", 120.0),
        ("trapezius", "left"): ("2026-03-10", "2026-03-10", "2026-04-12", 40.0),
        ("trapezius", "right"): ("2026-03-10", "2026-03-10", "2026-04-12", 80.0),
    }
    for (site, side), (dry, anesthetic, steroid, remaining) in expected.items():
        entry = row_of(document, site, side)
        assert (entry["dry"], entry["anesthetic"], entry["steroid"], entry["steroid_mg_remaining"]) == (
            dry, anesthetic, steroid, remaining), (site, side)


def test_next_a_fourth_session_moves_every_anesthetic_and_steroid(tpi: Run, spec_rules: str, write: Write) -> None:
    history = NEXT_HISTORY + "P1,2026-02-01,levator-scapulae,right,lidocaine,3 mL @ 1%,,,\n"
    result = tpi("next", write("h.csv", history), "--rules", spec_rules, "--on", "2026-03-10", "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = as_json(result)
    # sessions (steroid, anesthetic, other) in the 12 months: 10 Jan, 1 Feb, 1 Mar = 3 already; a fourth is over
    # until 10 Jan drops out on 10 Jan 2027. Dry needling is not counted by that rule: still today.
    assert [(r["site"], r["side"]) for r in document["sites"]] == [
        ("interspinous-lumbar", None), ("levator-scapulae", "left"), ("levator-scapulae", "right"),
        ("trapezius", "left"), ("trapezius", "right")]
    for entry in document["sites"]:
        assert entry["dry"] == "2026-03-10"
        assert entry["anesthetic"] == "2027-01-10"
        # on 10 Jan 2027 the trapezius interval (12 Apr) has long passed; left count 1 + 1, dose 40 + 20
        assert entry["steroid"] == "2027-01-10"
    assert row_of(document, "levator-scapulae", "right")["steroid_mg_remaining"] == 120.0


def test_next_counts_a_planned_injection_in_the_budget(tpi: Run, spec_rules: str, write: Write) -> None:
    # planned 100 mg on 1 Jun 2026; on 10 Mar its 12-month window would include the date: 120 - 100 = 20 left
    history = HEADER + "P1,2026-06-01,trapezius,left,triamcinolone,100 mg,,,\n"
    result = tpi("next", write("h.csv", history), "--rules", spec_rules, "--on", "2026-03-10", "--site",
                 "left trapezius", "--format", "json")
    assert result.exit_code == 0, result.stderr
    (entry,) = as_json(result)["sites"]
    assert (entry["site"], entry["side"]) == ("trapezius", "left")
    assert entry["steroid_mg_remaining"] == 20.0
    # the default 20 mg steroid today: the planned one then sees 20 + 100 = 120 <= 120, and 10 Mar + 42 days =
    # 21 Apr <= 1 Jun keeps the interval: today
    assert entry["steroid"] == "2026-03-10"


def test_next_budget_is_never_below_zero(tpi: Run, spec_rules: str, write: Write) -> None:
    history = HEADER + "P1,2026-01-01,trapezius,left,triamcinolone,80 mg,,,\nP1,2026-03-01,trapezius,left," \
                       "triamcinolone,80 mg,,,\n"
    result = tpi("next", write("h.csv", history), "--rules", spec_rules, "--on", "2026-03-10", "--site",
                 "left trapezius", "--format", "json")
    (entry,) = as_json(result)["sites"]
    assert entry["steroid_mg_remaining"] == 0.0  # 120 - 160 < 0
    # 1 Jan drops out on 1 Jan 2027: 80 + 20 = 100 <= 120
    assert entry["steroid"] == "2027-01-01"


def test_next_refuses_a_side_on_a_site_without_sides_as_check_does(tpi: Run, spec_rules: str, write: Write) -> None:
    path = write("h.csv", NEXT_HISTORY)
    for command in (("next", path, "--site", "left interspinous-lumbar"),
                    ("check", path, "--site", "left interspinous-lumbar", "--dry")):
        result = tpi(*command, "--rules", spec_rules, "--on", "2026-03-10", "--format", "json")
        assert result.exit_code == 2, (command, result.stdout)
        assert result.stdout == ""
        assert "interspinous-lumbar has no sides" in result.stderr


def test_next_site_option_and_csv_and_table(tpi: Run, spec_rules: str, write: Write) -> None:
    path = write("h.csv", NEXT_HISTORY)
    both = as_json(tpi("next", path, "--rules", spec_rules, "--on", "2026-03-10", "--site", "trapezius",
                       "--format", "json"))
    assert [(r["site"], r["side"]) for r in both["sites"]] == [("trapezius", "left"), ("trapezius", "right")]
    right = as_json(tpi("next", path, "--rules", spec_rules, "--on", "2026-03-10", "--site", "trapezius (R)",
                        "--format", "json"))
    assert [(r["site"], r["side"]) for r in right["sites"]] == [("trapezius", "right")]
    as_csv = tpi("next", path, "--rules", spec_rules, "--on", "2026-03-10", "--format", "csv")
    assert as_csv.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert set(rows[0]) >= NEXT_ROW_KEYS
    assert [(r["site"], r["side"], r["steroid"], r["steroid_mg_remaining"]) for r in rows] == [
        ("interspinous-lumbar", "", "2026-03-10", "120.0"), ("trapezius", "left", "2026-04-12", "40.0"),
        ("trapezius", "right", "2026-04-12", "80.0")]
    table = tpi("next", path, "--rules", spec_rules, "--on", "2026-03-10")
    assert table.exit_code == 0
    assert "2026-04-12" in table.stdout
    assert "steroid-interval" in table.stdout  # which rule holds it back


def test_next_blocked_is_null(tpi: Run, write: Write) -> None:
    # a rules file whose default steroid dose alone exceeds the per-site maximum: steroid null, never
    rules = write("rules.yaml", """\
version: 1
reference_steroid: triamcinolone
defaults:
  steroid: {drug: triamcinolone, dose: 40 mg}
  anesthetic: {drug: lidocaine, dose: 30 mg}
drugs:
  triamcinolone: {class: corticosteroid, equivalent_mg: 4}
  lidocaine: {class: anesthetic, max_mg: 300}
sites:
  trapezius: {region: cervical}
rules:
  - {id: dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, max_mg: 30}
""")
    history = write("h.csv", HEADER + "P1,2026-01-01,trapezius,left,,,,,\n")
    document = as_json(tpi("next", history, "--rules", rules, "--on", "2026-03-10", "--format", "json"))
    for entry in document["sites"]:
        assert entry["steroid"] is None
        assert entry["steroid_mg_remaining"] == 30.0
        assert entry["anesthetic"] == "2026-03-10"


TOTALS_HISTORY = HEADER + """\
P1,2025-01-10,trapezius,left,triamcinolone,40 mg,,,
P1,2025-06-01,trapezius,left,dexamethasone,3 mg,,,
P1,2025-06-01,trapezius,left,lidocaine,3 mL @ 1%,,,
P1,2026-03-10,trapezius,right,methylprednisolone,40 mg,,,
P1,2026-03-11,trapezius,right,triamcinolone,40 mg,,,
P2,2025-03-10,trapezius,,triamcinolone,10 mg,,,
P2,2026-03-10,trapezius,,triamcinolone,10 mg,,,
P3,2026-01-01,trapezius,left,lidocaine,3 mL @ 1%,,,
"""


def test_totals_hand_computed(tpi: Run, spec_rules: str, write: Write) -> None:
    result = tpi("totals", write("h.csv", TOTALS_HISTORY), "--rules", spec_rules, "--on", "2026-03-10",
                 "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = as_json(result)
    assert set(document) >= TOTALS_KEYS
    assert document["schema_version"] == 1
    assert document["on"] == "2026-03-10"
    # the default window: the longest of the active steroid count/dose rules = 12 months
    assert document["window"] == "12 months"
    assert document["reference_steroid"] == "triamcinolone"
    for entry in document["rows"]:
        assert set(entry) >= TOTALS_ROW_KEYS
    for entry in document["patients"]:
        assert set(entry) >= TOTALS_PATIENT_KEYS
    rows = {(r["patient_id"], r["site"], r["side"]): r for r in document["rows"]}
    # An injection on p is in the window iff p <= 10 Mar 2026 < p + 12 months.
    # P1 left: 10 Jan 2025 is out (+ 12 months = 10 Jan 2026 <= 10 Mar); 1 Jun 2025 is in: dexamethasone 3 mg =
    #   3 x 4 / 0.75 = 16 mg triamcinolone. All time: 40 + 16 = 56 mg, 2 injections. The lidocaine is no steroid.
    # P1 right: 10 Mar 2026 (p = on) is in: methylprednisolone 40 mg x 4 / 4 = 40. 11 Mar is after `on`: left out.
    # P2 unspecified side: 10 Mar 2025 + 12 months = 10 Mar 2026: dropped on that day; 10 Mar 2026 in: 10 mg.
    #   All time: 2 injections, 20 mg. An unknown side counts against both sides: a left and a right row
    #   (README choice 16); P2's patient total counts each injection once.
    # P3: anesthetic only: no steroid row (its patients entry: test_totals_every_patient_has_an_entry).
    expected_rows = {
        ("P1", "trapezius", "left"): (1, 16.0, {"dexamethasone": 3.0}, 2, 56.0),
        ("P1", "trapezius", "right"): (1, 40.0, {"methylprednisolone": 40.0}, 1, 40.0),
        ("P2", "trapezius", "left"): (1, 10.0, {"triamcinolone": 10.0}, 2, 20.0),
        ("P2", "trapezius", "right"): (1, 10.0, {"triamcinolone": 10.0}, 2, 20.0),
    }
    assert set(rows) == set(expected_rows)
    for key, (count, mg_ref, by_drug, all_count, all_mg) in expected_rows.items():
        entry = rows[key]
        assert (entry["steroid_injections"], entry["mg_ref"], entry["by_drug"], entry["all_time_injections"],
                entry["all_time_mg_ref"]) == (count, mg_ref, by_drug, all_count, all_mg), key
    patients = {p["patient_id"]: p for p in document["patients"]}
    expected_patients = {
        "P1": (2, 56.0, 3, 96.0),  # 16 + 40; all time 56 + 40
        "P2": (1, 10.0, 2, 20.0),
    }
    assert set(patients) - {"P3"} == set(expected_patients)
    for patient, (count, mg_ref, all_count, all_mg) in expected_patients.items():
        entry = patients[patient]
        assert (entry["steroid_injections"], entry["mg_ref"], entry["all_time_injections"],
                entry["all_time_mg_ref"]) == (count, mg_ref, all_count, all_mg), patient


def test_totals_window_option_and_patient(tpi: Run, spec_rules: str, write: Write) -> None:
    path = write("h.csv", TOTALS_HISTORY)
    # 6 months: 1 Jun 2025 + 6 months = 1 Dec 2025 <= 10 Mar 2026: out of the window; all time unchanged
    document = as_json(tpi("totals", path, "--rules", spec_rules, "--on", "2026-03-10", "--window", "6 months",
                           "--patient", "P1", "--format", "json"))
    assert {p["patient_id"] for p in document["patients"]} == {"P1"}
    assert {r["patient_id"] for r in document["rows"]} == {"P1"}
    left = next(r for r in document["rows"] if r["side"] == "left")
    assert (left["steroid_injections"], left["mg_ref"], left["all_time_injections"], left["all_time_mg_ref"]) == (
        0, 0.0, 2, 56.0)
    (p1,) = document["patients"]
    assert (p1["steroid_injections"], p1["mg_ref"]) == (1, 40.0)
    # 1 day: only injections on the date itself
    document = as_json(tpi("totals", path, "--rules", spec_rules, "--on", "2026-03-10", "--window", "1 day",
                           "--format", "json"))
    assert {p["patient_id"]: p["steroid_injections"] for p in document["patients"] if p["patient_id"] != "P3"} == {
        "P1": 1, "P2": 1}


@pytest.mark.parametrize("patient_args", [(), ("--patient", "P3")])
def test_totals_every_patient_has_an_entry(tpi: Run, spec_rules: str, write: Write,
                                           patient_args: tuple[str, ...]) -> None:
    document = as_json(tpi("totals", write("h.csv", TOTALS_HISTORY), "--rules", spec_rules, "--on", "2026-03-10",
                           "--format", "json", *patient_args))
    p3 = [p for p in document["patients"] if p["patient_id"] == "P3"]
    assert len(p3) == 1
    assert (p3[0]["steroid_injections"], p3[0]["mg_ref"], p3[0]["all_time_injections"],
            p3[0]["all_time_mg_ref"]) == (0, 0.0, 0, 0.0)


def test_totals_csv_and_table(tpi: Run, spec_rules: str, write: Write) -> None:
    path = write("h.csv", TOTALS_HISTORY)
    result = tpi("totals", path, "--rules", spec_rules, "--on", "2026-03-10", "--format", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert set(rows[0]) >= TOTALS_ROW_KEYS - {"by_drug"} | {"patient_id"}
    left = next(r for r in rows if r["patient_id"] == "P1" and r["side"] == "left")
    assert (left["steroid_injections"], float(left["mg_ref"]), float(left["all_time_mg_ref"])) == ("1", 16.0, 56.0)
    # JSON's rows (level "site") and then its patients (level "patient", site "(all sites)"), told apart
    document = as_json(tpi("totals", path, "--rules", spec_rules, "--on", "2026-03-10", "--format", "json"))
    assert [r["level"] for r in rows] == ["site"] * len(document["rows"]) + ["patient"] * len(document["patients"])
    totals = [r for r in rows if r["level"] == "patient"]
    assert [(r["patient_id"], r["site"], r["side"], float(r["mg_ref"])) for r in totals] == \
        [(p["patient_id"], "(all sites)", "", p["mg_ref"]) for p in document["patients"]]
    table = tpi("totals", path, "--rules", spec_rules, "--on", "2026-03-10")
    assert table.exit_code == 0
    assert "dexamethasone" in table.stdout  # the equivalence used is named


@pytest.mark.parametrize(("window", "heading"), [
    ("P6M", "in the 6 months (P6M) up to"), ("P6W", "in the 6 weeks (P6W) up to"),
    ("P1Y10D", "in the 1 year 1 week 3 days (P1Y10D) up to"), ("P1W3D", "in the 1 week 3 days (P1W3D) up to"),
    ("6 weeks", "in the 6 weeks up to")])
def test_totals_table_gives_an_iso_window_in_words(tpi: Run, spec_rules: str, write: Write, window: str,
                                                   heading: str) -> None:
    result = tpi("totals", write("h.csv", TOTALS_HISTORY), "--rules", spec_rules, "--on", "2026-03-10",
                 "--window", window, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert heading in result.stdout.splitlines()[0]


@pytest.mark.parametrize(("side", "noted"), [("left", False), ("bilateral", True), ("", True)])
def test_totals_table_says_when_site_rows_add_up_to_more_than_the_total(tpi: Run, spec_rules: str, write: Write,
                                                                       side: str, noted: bool) -> None:
    # A pharmacist summing the site rows would count a bilateral or unspecified injection twice.
    history = HEADER + f"P1,2026-01-10,trapezius,{side},triamcinolone,40 mg,,,\n" + \
        "P1,2026-02-10,infraspinatus,left,triamcinolone,20 mg,,,\n"
    result = tpi("totals", write("h.csv", history), "--rules", spec_rules, "--on", "2026-03-10",
                 env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert ("can add up to more than its total" in result.stdout) is noted


def test_next_table_without_a_site_says_to_give_one(tpi: Run, spec_rules: str, write: Write) -> None:
    path = write("h.json", '{"patient_id": "P9", "weight_kg": 70, "injections": []}')
    result = tpi("next", path, "--rules", spec_rules, "--on", "2026-03-10")
    assert result.exit_code == 0, result.stderr
    assert "No site in this patient's history to forecast: give one with --site" in result.stdout
    assert "judgement" in result.stdout
    document = as_json(tpi("next", path, "--rules", spec_rules, "--on", "2026-03-10", "--format", "json"))
    assert document["sites"] == []


@pytest.mark.parametrize(
    ("command", "args", "needle"),
    [
        ("next", (), "--patient"),  # several patients
        ("next", ("--patient", "P9"), "P9"),
        ("next", ("--patient", "P1", "--site", "trapzius"), "--site: unknown site 'trapzius' (did you mean 'trapezius'?)"),
        ("next", ("--patient", "P1", "--format", "cds-hooks"), "cds-hooks"),
        ("next", ("--patient", "P1", "--profile", "medicar"), "did you mean 'medicare'"),
        ("totals", ("--patient", "P9"), "P9"),
        ("totals", ("--window", "soon"), "--window"),
        ("totals", ("--window", "0 days"), "--window"),
        ("totals", ("--format", "cds-hooks"), "cds-hooks"),
        ("next", ("--patient", "P1", "--site", "left trapezius", "--site", "rhomboid"), "--site is given more than once"),
        ("totals", ("--window", "6 months", "--window", "1 year"), "--window is given more than once"),
        ("totals", ("--on", "2026-03-11"), "--on is given more than once"),  # after the --on 2026-03-10 below
    ],
)
def test_next_totals_bad_usage_exits_2(tpi: Run, spec_rules: str, write: Write, command: str,
                                       args: tuple[str, ...], needle: str) -> None:
    result = tpi(command, write("h.csv", TOTALS_HISTORY), "--rules", spec_rules, "--on", "2026-03-10", *args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_next_and_totals_exit_0(tpi: Run, spec_rules: str, write: Write) -> None:
    path = write("h.csv", TOTALS_HISTORY)
    for command, extra in (("next", ("--patient", "P1")), ("totals", ())):
        for fmt in ("table", "json", "csv"):
            result = tpi(command, path, "--rules", spec_rules, "--on", "2026-03-10", "--format", fmt, *extra)
            assert result.exit_code == 0, (command, fmt, result.stderr)
            assert result.stdout


def test_next_unspecified_side_feeds_both_rows_and_a_site_not_in_history(tpi: Run, spec_rules: str,
                                                                         write: Write) -> None:
    path = write("h.csv", HEADER + "P1,2026-03-01,trapezius,,triamcinolone,50 mg,,,\n")
    document = as_json(tpi("next", path, "--rules", spec_rules, "--on", "2026-03-10", "--format", "json"))
    # the unspecified-side steroid counts against both sides: 1 Mar + 42 days = 12 Apr; 120 - 50 = 70 left
    assert [(r["site"], r["side"], r["steroid"], r["steroid_mg_remaining"]) for r in document["sites"]] == [
        ("trapezius", "left", "2026-04-12", 70.0), ("trapezius", "right", "2026-04-12", 70.0)]
    # a site given with --site that the history never names: nothing counts there
    document = as_json(tpi("next", path, "--rules", spec_rules, "--on", "2026-03-10", "--site", "right infraspinatus",
                           "--format", "json"))
    assert [(r["site"], r["side"], r["dry"], r["steroid"], r["steroid_mg_remaining"]) for r in document["sites"]] == [
        ("infraspinatus", "right", "2026-03-10", "2026-03-10", 120.0)]


def test_totals_table_of_many_rows_is_laid_out_plainly(tpi: Run, spec_rules: str, write: Write,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Above PLAIN_ROWS rows (rich takes about 1 ms a row) the same cells, in columns, without rich.
    from tpi_cli.render import table

    path = write("h.csv", TOTALS_HISTORY)
    monkeypatch.setattr(table, "PLAIN_ROWS", 0)
    result = tpi("totals", path, "--rules", spec_rules, "--on", "2026-03-10")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("─"))
    assert lines[start - 2:start + 8] == [
        "                                        all    all  mg by drug",
        "patient  site               inj  mg-eq  inj  mg-eq  (in window)",
        "─" * 90,
        "P1       trapezius (left)     1     16    2     56  dexamethasone 3",
        "P1       trapezius (right)    1     40    1     40  methylprednisolone 40",
        "P2       trapezius (left)     1     10    2     20  triamcinolone 10",
        "P2       trapezius (right)    1     10    2     20  triamcinolone 10",
        "P1       all sites            2     56    3     96  dexamethasone 3, methylprednisolone 40",
        "P2       all sites            1     10    2     20  triamcinolone 10",
        "P3       all sites            0      0    0      0  -",
    ]
    assert lines[start + 9] == "mg triamcinolone-eq = mg x 4 / the drug's equivalent mg:"


def test_totals_table_of_a_big_history_lists_every_row(tpi: Run, spec_rules: str, write: Write) -> None:
    # 3,000 patients, 6,000 rows: over PLAIN_ROWS, so laid out plainly, every row there.
    rows = "".join(f"P{p:04d},2026-01-0{1 + p % 9},trapezius,left,triamcinolone,40 mg,,,\n" for p in range(3000))
    result = tpi("totals", write("h.csv", HEADER + rows), "--rules", spec_rules, "--on", "2026-03-10")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert sum(line.startswith("P") for line in lines) == 6000  # a site row and a patient row
    assert "P0000    trapezius (left)    1     40    1     40  triamcinolone 40" in lines  # the plain layout


def test_plain_totals_table_aligns_wide_characters(tpi: Run, spec_rules: str, write: Write,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from tpi_cli.render import table

    monkeypatch.setattr(table, "PLAIN_ROWS", 0)
    path = write("h.csv", HEADER + "患者一号,2026-01-01,trapezius,left,triamcinolone,40 mg,,,\n"
                 "P2,2026-01-02,trapezius,left,triamcinolone,40 mg,,,\n")
    result = tpi("totals", path, "--rules", spec_rules, "--on", "2026-03-10")
    rows = [line for line in result.stdout.splitlines() if "trapezius (left)" in line]
    assert rows == ["患者一号  trapezius (left)    1     40    1     40  triamcinolone 40",
                    "P2        trapezius (left)    1     40    1     40  triamcinolone 40"]


def test_totals_and_validate_of_a_new_patient_on_an_empty_history(tpi: Run, spec_rules: str, write: Write) -> None:
    # As check and next (README, choice 21): a history with no rows has no patient to miss.
    path = write("h.csv", HEADER)
    totals = tpi("totals", path, "--rules", spec_rules, "--patient", "NEW", "--on", "2026-03-10", "--format", "json")
    assert totals.exit_code == 0, totals.stderr
    document = as_json(totals)
    assert document["rows"] == []
    assert [(p["patient_id"], p["steroid_injections"], p["mg_ref"]) for p in document["patients"]] == [("NEW", 0, 0)]
    validated = tpi("validate", path, "--rules", spec_rules, "--patient", "NEW", "--format", "json")
    assert validated.exit_code == 0, validated.stderr
    assert (as_json(validated)["patients"], as_json(validated)["violations"]) == (0, [])
    for command in (["totals", "--on", "2026-03-10"], ["validate"]):  # a history with rows: refused
        other = tpi(command[0], write("h2.csv", TOTALS_HISTORY), *command[1:], "--rules", spec_rules,
                    "--patient", "NEW")
        assert other.exit_code == 2
        assert "no patient 'NEW' in the history" in other.stderr


def test_next_budget_is_rounded_half_up_like_every_mg(tpi: Run, spec_rules: str, write: Write) -> None:
    # 120 mg cap; dexamethasone 4 mg = 21.333... mg triamcinolone: 98.666... left, shown 98.67 (SPEC.md:
    # "JSON shows mg rounded to 2 decimals"); check decides on the exact budget.
    path = write("h.csv", HEADER + "P1,2026-01-01,trapezius,left,dexamethasone,4 mg,,,\n")
    forecast = tpi("next", path, "--rules", spec_rules, "--on", "2026-06-01", "--site", "left trapezius",
                   "--format", "json")
    (entry,) = as_json(forecast)["sites"]
    assert entry["steroid_mg_remaining"] == 98.67
    csv_rows = tpi("next", path, "--rules", spec_rules, "--on", "2026-06-01", "--site", "left trapezius",
                   "--format", "csv").stdout
    assert ",98.67," in csv_rows
    table = tpi("next", path, "--rules", spec_rules, "--on", "2026-06-01", "--site", "left trapezius").stdout
    assert "98.67" in table
    for dose, verdict in (("98.66mg", "allowed"), ("98.67mg", "not-yet")):  # (once the 4 mg leaves the window)
        checked = tpi("check", path, "--rules", spec_rules, "--on", "2026-06-01", "--site", "left trapezius",
                      "--drug", f"triamcinolone={dose}", "--format", "json")
        assert as_json(checked)["verdict"] == verdict, dose


def test_totals_give_mg_per_drug_all_time_too(tpi: Run, spec_rules: str, write: Write) -> None:
    # SPEC.md: "over the window ... and over all time up to DATE: number of steroid injections, mg_ref,
    # and mg per drug": `by_drug` is the window's, `all_time_by_drug` all time up to --on.
    path = write("h.csv", HEADER + "P1,2024-10-01,trapezius,left,dexamethasone,4 mg,,,\n"
                 "P1,2026-10-01,trapezius,left,triamcinolone,40 mg,,,\nP1,2026-12-01,trapezius,left,triamcinolone,"
                 "40 mg,,,\n")
    document = as_json(tpi("totals", path, "--rules", spec_rules, "--on", "2026-11-01", "--format", "json"))
    [row] = document["rows"]
    [patient] = document["patients"]
    for entry in (row, patient):
        assert entry["by_drug"] == {"triamcinolone": 40.0}
        assert entry["all_time_by_drug"] == {"dexamethasone": 4.0, "triamcinolone": 40.0}  # not the planned one
        assert (entry["all_time_injections"], entry["all_time_mg_ref"]) == (2, 61.33)
    rows = list(csv.DictReader(io.StringIO(tpi("totals", path, "--rules", spec_rules, "--on", "2026-11-01",
                                               "--format", "csv").stdout)))
    assert rows[0]["all_time_by_drug"] == "dexamethasone=4.0; triamcinolone=40.0"


# Every command that takes --patient, with what else it needs.
PATIENT_COMMANDS = [["totals", "--on", "2026-03-10"], ["validate"], ["next", "--on", "2026-03-10"],
                    ["check", "--on", "2026-03-10", "--site", "left trapezius", "--dry"]]


def test_an_unknown_patient_names_the_file_and_a_close_id(tpi: Run, spec_rules: str, write: Write) -> None:
    path = write("h.csv", HEADER + "P001,2026-01-01,trapezius,left,triamcinolone,40 mg,,,\n")
    for command in (["totals", "--on", "2026-03-10"], ["validate"], ["next", "--on", "2026-03-10"]):
        result = tpi(command[0], path, *command[1:], "--rules", spec_rules, "--patient", "p00")
        assert result.exit_code == 2, command
        assert result.stderr.count("\n") == 1
        assert f"{path}: --patient: no patient 'p00' in the history" in result.stderr, command
        assert "P001" in result.stderr, command  # did you mean, whatever the case typed


def test_an_unknown_patient_far_from_every_id_lists_a_small_historys_patients(tpi: Run, spec_rules: str,
                                                                               write: Write) -> None:
    # No ID is close to P9 (no "did you mean"): a history of up to 5 patients names them all; a larger
    # one names none (a clinic's export may hold thousands).
    few = write("few.csv", HEADER + "".join(f"P{k},2026-01-01,trapezius,left,triamcinolone,40 mg,,,\n"
                                            for k in (2, 1, 2)))
    many = write("many.csv", HEADER + "".join(f"{name},2026-01-01,trapezius,left,triamcinolone,40 mg,,,\n"
                                              for name in ("A1", "B2", "C3", "D4", "E5", "F6")))
    for command in PATIENT_COMMANDS:
        result = tpi(command[0], few, *command[1:], "--rules", spec_rules, "--patient", "P9")
        assert result.exit_code == 2, command
        assert result.stdout == ""
        assert result.stderr == (f"tpi: error: {few}: --patient: no patient 'P9' in the history "
                                 "(its patients: 'P1', 'P2')\n"), command
        result = tpi(command[0], many, *command[1:], "--rules", spec_rules, "--patient", "P9")
        assert result.exit_code == 2, command
        assert result.stderr == f"tpi: error: {many}: --patient: no patient 'P9' in the history\n", command
    one = write("one.csv", HEADER + "P001,2026-01-01,trapezius,left,triamcinolone,40 mg,,,\n")
    result = tpi("validate", one, "--rules", spec_rules, "--patient", "Q")
    assert result.stderr == f"tpi: error: {one}: --patient: no patient 'Q' in the history (its patient: 'P001')\n"


def test_a_patient_asked_of_a_history_that_names_none_is_told_so(tpi: Run, spec_rules: str, write: Write) -> None:
    path = write("h.csv", "date,site,side,drug,dose\n2026-01-01,trapezius,left,triamcinolone,40 mg\n")
    for command in PATIENT_COMMANDS:
        result = tpi(command[0], path, *command[1:], "--rules", spec_rules, "--patient", "P1")
        assert result.exit_code == 2, command
        assert result.stdout == ""
        assert result.stderr == (f"tpi: error: {path}: --patient: no patient 'P1' in the history: its rows name no "
                                 "patient (no patient_id), so it is one unnamed patient: leave out --patient\n")


def test_totals_count_a_bilateral_injection_in_full_on_each_side(tpi: Run, spec_rules: str, write: Write) -> None:
    # SPEC.md: "A bilateral injection's doses count in full against each side". Left: 40 + 20 mg in 2
    # injections; right: the bilateral 20 mg; a site without sides: one row, side null. The patient total
    # counts each injection once: 40 + 20 + 10.
    path = write("h.csv", HEADER + "P1,2026-01-05,trapezius,left,triamcinolone,40 mg,,,\n"
                 "P1,2026-02-05,trapezius,bilateral,triamcinolone,20 mg,,,\n"
                 "P1,2026-02-05,interspinous-lumbar,,triamcinolone,10 mg,,,\n")
    document = as_json(tpi("totals", path, "--rules", spec_rules, "--on", "2026-03-01", "--format", "json"))
    assert [(r["site"], r["side"], r["steroid_injections"], r["mg_ref"]) for r in document["rows"]] == [
        ("interspinous-lumbar", None, 1, 10.0), ("trapezius", "left", 2, 60.0), ("trapezius", "right", 1, 20.0)]
    (patient,) = document["patients"]
    assert (patient["steroid_injections"], patient["mg_ref"]) == (3, 70.0)


REGION_RULES = """version: 1
reference_steroid: triamcinolone
defaults:
  steroid: {drug: triamcinolone, dose: 20 mg}
  anesthetic: {drug: lidocaine, dose: 3 mL @ 1%}
drugs:
  triamcinolone: {class: corticosteroid, equivalent_mg: 4}
  lidocaine: {class: anesthetic, max_mg: 300}
sites:
  trapezius: {region: cervical}
  levator-scapulae: {region: cervical}
  rhomboid: {region: scapular}
  gluteus: {region: gluteal}
rules:
  - {id: region-count, kind: max-count, applies_to: any, scope: region, window: 30 days, max: 1}
  - {id: one-region, kind: max-regions, applies_to: any, max: 1}
  - {id: patient-count, kind: max-count, applies_to: any, scope: patient, window: 60 days, max: 4}
"""


def test_next_rows_of_other_regions_do_not_share_a_regions_answer(tpi: Run, write: Write) -> None:
    # `next` shares a rule's statuses between the rows of one category when the rule does not read
    # the site (patient scope) or reads only its region (region scope, max-regions). Dry needling:
    # - cervical (levator, trapezius): the 10 Jan injection holds the region until 9 Feb (30 days);
    #   from then until 1 Mar a proposal would put the planned 1 Mar injection over: 31 Mar;
    # - gluteal: today's injection holds the region until 19 Feb;
    # - scapular (rhomboid): its 1 Dec injection is out of the window; one-region holds it today
    #   only (gluteal and scapular): 21 Jan.
    rules = write("r.yaml", REGION_RULES)
    history = write("h.csv", "patient_id,date,site,side,drug,dose\nP1,2025-12-01,rhomboid,right,,\n"
                             "P1,2026-01-10,trapezius,left,,\nP1,2026-01-20,gluteus,left,,\n"
                             "P1,2026-03-01,levator-scapulae,left,,\n")
    args = ("--rules", rules, "--on", "2026-01-20", "--format", "json")
    rows = as_json(tpi("next", history, *args))["sites"]
    dry = {(row["site"], row["side"]): row["dry"] for row in rows}
    assert dry == {("gluteus", "left"): "2026-02-19", ("gluteus", "right"): "2026-02-19",
                   ("levator-scapulae", "left"): "2026-03-31", ("levator-scapulae", "right"): "2026-03-31",
                   ("rhomboid", "left"): "2026-01-21", ("rhomboid", "right"): "2026-01-21",
                   ("trapezius", "left"): "2026-03-31", ("trapezius", "right"): "2026-03-31"}
    for site in ("gluteus", "levator-scapulae", "rhomboid", "trapezius"):  # each row: that site's forecast alone
        alone = as_json(tpi("next", history, "--site", site, *args))["sites"]
        assert alone == [row for row in rows if row["site"] == site], site


GRACE_DOSE_RULES = ONE_SITE_RULES_HEAD + """\
  - {id: dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 3 months, grace: 1 month, max_mg: 60}
"""


@pytest.mark.parametrize(("on", "remaining", "allowed", "refused"), [
    # The planned 55 mg of 10 Mar is over (10 + 55 mg in 3 months) inside its grace period: it warns,
    # and fails only when its 2-month window (from 10 Jan) goes over: 5 mg more on 1 Feb. It was 0.
    ("2026-02-01", 5.0, "5mg", "5.01mg"),
    # On 5 Jan the proposal is outside that 2-month window: only the 10 mg of 15 Dec limits it.
    ("2026-01-05", 50.0, "50mg", "50.01mg"),
])
def test_steroid_remaining_beside_a_planned_injection_inside_its_grace(
        tpi: Run, write: Write, on: str, remaining: float, allowed: str, refused: str) -> None:
    rules = write("r.yaml", GRACE_DOSE_RULES)
    history = write("h.csv", "patient_id,date,site,side,drug,dose\nP1,2025-12-15,trapezius,left,triamcinolone,10 mg\n"
                             "P1,2026-03-10,trapezius,left,triamcinolone,55 mg\n")
    args = ("--rules", rules, "--on", on, "--format", "json")
    (row,) = as_json(tpi("next", history, "--site", "left trapezius", *args))["sites"]
    assert row["steroid_mg_remaining"] == remaining
    # the figure is what check allows: that dose, and not 0.01 mg more
    for dose, verdict in ((allowed, "allowed"), (refused, "not-yet")):
        result = tpi("check", history, "--site", "left trapezius", "--drug", f"triamcinolone={dose}", *args)
        assert as_json(result)["verdict"] == verdict, dose


@pytest.mark.parametrize("rows", [
    "",  # no rows: "rows": [] and a patients list of one
    "P1,2026-01-05,trapezius,left,triamcinolone,20 mg,,,\nP1,2026-01-05,trapezius,left,dexamethasone,2 mg,,,\n"
    "P2,2026-02-01,trapezius,bilateral,methylprednisolone,40 mg,,,\nP\u00e9,2026-03-01,trapezius,right,,,,,\n",
])
def test_totals_json_is_written_as_one_dump_of_the_document(tpi: Run, spec_rules: str, write: Write,
                                                           rows: str) -> None:
    # The report is written a few hundred rows at a time (the document built whole took 1.1 GB for
    # 150,000 patients); the text must be exactly json.dumps(document, indent=2) of what it holds.
    import json

    result = tpi("totals", write("h.csv", HEADER + rows), "--rules", spec_rules, "--on", "2026-11-28",
                 *(("--patient", "P9") if not rows else ()), "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert result.stdout == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    assert len(document["patients"]) == (3 if rows else 1)
    assert ("P\u00e9" in result.stdout) == bool(rows)  # not escaped


_NAMES = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_AMOUNTS = st.integers(min_value=0, max_value=10**22)


@given(patient=st.none() | _NAMES, place=st.none() | st.tuples(_NAMES, st.none() | st.sampled_from(["left", "right"])),
       counts=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), refs=st.tuples(_AMOUNTS, _AMOUNTS),
       by_drug=st.dictionaries(_NAMES, _AMOUNTS, max_size=4), all_time=st.dictionaries(_NAMES, _AMOUNTS, max_size=4),
       scale=st.sampled_from([10**9, 3 * 10**9, 4 * 10**9 + 1]))
@settings(max_examples=300, deadline=None)
def test_a_totals_row_is_written_as_json_dumps_writes_it(patient: str | None, place: tuple[str, str | None] | None,
                                                        counts: tuple[int, int], refs: tuple[int, int],
                                                        by_drug: dict[str, int], all_time: dict[str, int],
                                                        scale: int) -> None:
    # The totals report's rows are put together as text (hundreds of thousands of them in a
    # clinic's file): the text must be json.dumps' own of the row SPEC.md gives, in the report.
    import json

    from tpi_cli.quantity import PG_PER_MG, Ratio
    from tpi_cli.render.json_out import totals_row_text
    from tpi_cli.results import TotalsRow

    row = TotalsRow(patient, *(place or (None, None)))
    row.injections, row.all_time_injections = counts
    row.ref, row.all_time_ref = refs
    row.by_drug, row.all_time_by_drug = by_drug, all_time
    site = {"site": place[0], "side": place[1]} if place is not None else {}
    expected = {"patient_id": patient, **site, "steroid_injections": counts[0], "mg_ref": Ratio(refs[0], scale).round2(),
                "by_drug": {name: Ratio(value, PG_PER_MG).round2() for name, value in sorted(by_drug.items())},
                "all_time_injections": counts[1], "all_time_mg_ref": Ratio(refs[1], scale).round2(),
                "all_time_by_drug": {name: Ratio(value, PG_PER_MG).round2() for name, value in sorted(all_time.items())}}
    report = {"rows": [expected]}
    assert '{\n  "rows": [\n    ' + totals_row_text(row, scale) + "\n  ]\n}" == \
        json.dumps(report, indent=2, ensure_ascii=False)


def test_totals_csv_written_in_parts_is_the_json_report_row_for_row(tpi: Run, spec_rules: str, write: Write) -> None:
    # 700 patients give 1,400 rows (700 sites, then 700 patients): the CSV is written 500 rows at a
    # time, and no row may be lost, doubled or cut at a part's end. A formula-like ID stays neutralised.
    rows = "".join(f"{'=' if n == 0 else 'P'}{n:04d},2026-0{1 + n % 9}-1{n % 10},trapezius,left,"
                   f"triamcinolone,{10 + n % 3 * 10} mg,,,\n" for n in range(700))
    path = write("h.csv", HEADER + rows)
    result = tpi("totals", path, "--rules", spec_rules, "--on", "2026-11-28", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes.count(b"\r\n") == result.stdout_bytes.count(b"\n") == 1 + 1400  # each row ended once
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    document = as_json(tpi("totals", path, "--rules", spec_rules, "--on", "2026-11-28", "--format", "json"))
    def drugs(mg: dict[str, float]) -> str:
        return "; ".join(f"{name}={value}" for name, value in mg.items())

    expected = [(r["patient_id"], r["site"], r["side"], r["steroid_injections"], r["mg_ref"], drugs(r["by_drug"]),
                 r["all_time_injections"], r["all_time_mg_ref"], drugs(r["all_time_by_drug"]), "site")
                for r in document["rows"]] + \
        [(p["patient_id"], "(all sites)", None, p["steroid_injections"], p["mg_ref"], drugs(p["by_drug"]),
          p["all_time_injections"], p["all_time_mg_ref"], drugs(p["all_time_by_drug"]), "patient")
         for p in document["patients"]]
    expected = [("'" + pid if pid.startswith("=") else pid, *rest) for pid, *rest in expected]
    assert [(r["patient_id"], r["site"], r["side"] or None, int(r["steroid_injections"]), float(r["mg_ref"]),
             r["by_drug"], int(r["all_time_injections"]), float(r["all_time_mg_ref"]), r["all_time_by_drug"],
             r["level"]) for r in table] == expected
    assert {(r["window"], r["on"], r["reference_steroid"]) for r in table} == \
        {(document["window"] or "all time", "2026-11-28", document["reference_steroid"])}
    assert table[0]["patient_id"] == "'=0000"


def test_next_names_a_rule_that_holds_the_date_without_failing_on_it(tpi: Run, write: Write) -> None:
    # The packaged rules: steroid-interval holds a corticosteroid at the left trapezius until 5 April
    # (90 days after 5 January); that day a planned session already has 250 mg of lidocaine at 45 kg
    # (over 202.5 mg), so anesthetic-dose fails the proposal there too (README choice 25) and the
    # date is 6 April. anesthetic-dose passes on --on, yet it is the rule that holds the date last:
    # held_by named only steroid-interval (found by a differential fuzz).
    history = write("h.csv", HEADER + "P1,2026-01-05,trapezius,left,triamcinolone,20 mg,,45,\n"
                                      "P1,2026-04-05,deltoid,right,lidocaine,250 mg,,45,\n")
    document = as_json(tpi("next", history, "--on", "2026-02-01", "--site", "left trapezius", "--format", "json"))
    (row,) = document["sites"]
    assert (row["steroid"], row["held_by"]["steroid"]) == ("2026-04-06", ["anesthetic-dose", "steroid-interval"])
    assert (row["anesthetic"], row["held_by"]["anesthetic"]) == ("2026-02-01", [])
    table = tpi("next", history, "--on", "2026-02-01", "--site", "left trapezius")
    assert "anesthetic-dose" in table.stdout  # the table shows the rule that holds the date longest


def test_next_held_by_orders_rules_by_the_last_day_each_fails_before_the_date(tpi: Run, write: Write) -> None:
    # With --profile medicare, a corticosteroid at the left trapezius from 26 March is held by
    # steroid-interval until 26 June (90 days after 28 March) and by medicare-sessions, which passes
    # on some days in between and fails again up to 25 June (check: both fail on 24 and 25 June).
    # Ordered by the first day each passed, medicare-sessions came last (found by a review).
    history = write("h.csv", "patient_id,date,site,side,drug,dose\nP1,2026-02-22,trapezius,right,saline,2 mL\n"
                             "P1,2026-03-28,trapezius,left,triamcinolone,20 mg\n"
                             "P1,2026-06-26,levator-scapulae,right,lidocaine,60 mg\n")
    args = ("--site", "left trapezius", "--profile", "medicare", "--format", "json")
    (row,) = as_json(tpi("next", history, "--on", "2026-03-26", *args))["sites"]
    assert row["steroid"] == "2026-06-26"
    assert row["held_by"]["steroid"][:2] == ["steroid-interval", "medicare-sessions"]
    check = as_json(tpi("check", history, "--drug", "triamcinolone=20mg", "--on", "2026-06-25", *args))
    assert [r["id"] for r in check["rules"] if r["status"] == "fail"] == ["steroid-interval", "medicare-sessions"]
    # A rule that fails only on a day between --on and the date, then passes, held it back too.
    history = write("h2.csv", HEADER + "P1,2026-01-05,trapezius,left,triamcinolone,20 mg,,45,\n"
                                       "P1,2026-03-15,deltoid,right,lidocaine,250 mg,,45,\n")
    (row,) = as_json(tpi("next", history, "--on", "2026-02-01", "--site", "left trapezius", "--format", "json"))["sites"]
    assert (row["steroid"], row["held_by"]["steroid"]) == ("2026-04-05", ["steroid-interval", "anesthetic-dose"])
