"""Reading injection histories: CSV and JSON, files and stdin (SPEC.md "History input", "Words",
"Exit codes"; README 9-12).

Bad input must exit 2 with one line on stderr, ``FILE:LINE: field: message``, and nothing on stdout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import SPEC_RULES
from tpi_cli.errors import TpiError
from tpi_cli.history import read_patients
from tpi_cli.model import PatientHistory
from tpi_cli.rules import Rules
from tpi_cli.rules_file import parse_rules

Write = Callable[[str, str], str]
Run = Callable[..., Result]

HEADER = "patient_id,date,site,side,drug,dose\n"
FULL_HEADER = "patient_id,date,site,side,drug,dose,technique,points,weight_kg,override\n"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(SPEC_RULES, "rules.yaml")


def read(path: str, rules: Rules) -> list[PatientHistory]:
    return list(read_patients(path, rules))


def summary(histories: list[PatientHistory]) -> list[tuple[Any, ...]]:
    """Each injection as (patient, date, site, side, {drug: dose text}) in evaluation order."""
    return [(history.patient_id, injection.date.isoformat(), injection.site.name, injection.side,
             {drug.name: amount.text() for drug, amount in injection.drugs.items()})
            for history in histories for injection in history.injections]


def validate(tpi: Run, path: str, rules_path: str, *extra: str, input: str | bytes | None = None) -> Result:
    return tpi("validate", path, "--rules", rules_path, "--format", "json", *extra, input=input)


def write_bytes(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def refusal(tmp_path: Path, rules: Rules, document: str) -> tuple[str, str]:
    """A JSON history's path and the one-line message reading it is refused with."""
    path = write_bytes(tmp_path, "h.json", document.encode())
    with pytest.raises(TpiError) as refused:
        read(path, rules)
    return path, str(refused.value)


# --- CSV -------------------------------------------------------------------------------------

def test_csv_rows_become_injections(write: Write, rules: Rules) -> None:
    path = write("h.csv", HEADER
                 + "P1,2026-01-05,trapezius,left,triamcinolone,20 mg\n"
                 + "P1,2026-03-01,infraspinatus,right,,\n"
                 + "P1,2026-04-01,interspinous-lumbar,,lidocaine,3 mL @ 1%\n")
    assert summary(read(path, rules)) == [
        ("P1", "2026-01-05", "trapezius", "left", {"triamcinolone": "20 mg"}),
        ("P1", "2026-03-01", "infraspinatus", "right", {}),
        ("P1", "2026-04-01", "interspinous-lumbar", None, {"lidocaine": "30 mg"}),
    ]


def test_csv_injection_categories(write: Write, rules: Rules) -> None:
    path = write("h.csv", HEADER
                 + "P1,2026-01-05,trapezius,left,triamcinolone,20 mg\n"
                 + "P1,2026-01-05,trapezius,left,lidocaine,3 mL @ 1%\n"
                 + "P1,2026-01-06,trapezius,left,lidocaine,3 mL @ 1%\n"
                 + "P1,2026-01-07,trapezius,left,saline,5 mL\n"
                 + "P1,2026-01-08,trapezius,left,,\n")
    (history,) = read(path, rules)
    assert [injection.category for injection in history.injections] == ["steroid", "anesthetic", "other", "dry"]


def test_csv_header_is_case_insensitive_in_any_order_with_extra_columns_ignored(write: Write, rules: Rules) -> None:
    path = write("h.csv", "Notes,DOSE,Drug,Side, Site ,DATE,Patient_ID,Clinician\n"
                 + "first visit,20 mg,triamcinolone,L,trapezius,2026-01-05,P1,Dr A\n")
    assert summary(read(path, rules)) == [("P1", "2026-01-05", "trapezius", "left", {"triamcinolone": "20 mg"})]


def test_csv_patient_id_column_is_optional_for_one_patient(write: Write, rules: Rules) -> None:
    path = write("h.csv", "date,site,side,drug,dose\n2026-01-05,trapezius,left,triamcinolone,20 mg\n")
    assert summary(read(path, rules)) == [(None, "2026-01-05", "trapezius", "left", {"triamcinolone": "20 mg"})]


@pytest.mark.parametrize("data", [
    b"\xef\xbb\xbf" + HEADER.encode() + b"P1,2026-01-05,trapezius,left,triamcinolone,20 mg\n",   # BOM
    HEADER.replace("\n", "\r\n").encode() + b"P1,2026-01-05,trapezius,left,triamcinolone,20 mg\r\n",  # CRLF
    b"\xef\xbb\xbf" + HEADER.replace("\n", "\r\n").encode() + b"P1,2026-01-05,trapezius,left,triamcinolone,20 mg\r\n",
    HEADER.encode() + b"P1,2026-01-05,trapezius,left,triamcinolone,20 mg",   # no final newline
    HEADER.encode() + b"\n\nP1,2026-01-05,trapezius,left,triamcinolone,20 mg\n\n",   # blank lines skipped
    # Rows of empty fields, as a spreadsheet saves its empty rows: skipped like blank lines (README 10).
    b",,,,,\n" + HEADER.encode() + b",,,,,\n P1,2026-01-05,trapezius,left,triamcinolone,20 mg\n , ,\t,,,\r\n,,\n",
    b",,,,,\r\n" + HEADER.replace("\n", "\r\n").encode() + b'"",,,,,\r\nP1,2026-01-05,trapezius,left,triamcinolone,20 mg\r\n',
])
def test_csv_bom_crlf_and_blank_lines(tmp_path: Path, rules: Rules, data: bytes) -> None:
    path = write_bytes(tmp_path, "h.csv", data)
    assert summary(read(path, rules)) == [("P1", "2026-01-05", "trapezius", "left", {"triamcinolone": "20 mg"})]


def test_other_drug_may_have_no_dose_or_a_volume(write: Write, rules: Rules) -> None:
    """README 12: a drug of class `other` may be given as `5 mL`, `100 units`, or no dose."""
    path = write("h.csv", HEADER
                 + "P1,2026-01-05,trapezius,left,saline,\n"
                 + "P1,2026-01-06,trapezius,left,saline,5 mL\n"
                 + "P1,2026-01-07,trapezius,left,saline,100 units\n")
    (history,) = read(path, rules)
    assert [injection.category for injection in history.injections] == ["other"] * 3
    assert [drug.name for injection in history.injections for drug in injection.drugs] == ["saline"] * 3


def test_csv_utf8_text_in_fields_is_fine(write: Write, rules: Rules) -> None:
    path = write("h.csv", FULL_HEADER + "Zoë Ünal,2026-01-05,trapezius,left,triamcinolone,20 mg,,,,patient préfère\n")
    (history,) = read(path, rules)
    assert history.patient_id == "Zoë Ünal"
    assert history.injections[0].override == "patient préfère"


def test_csv_optional_columns_are_read(write: Write, rules: Rules) -> None:
    path = write("h.csv", FULL_HEADER + "P1,2026-01-05,trapezius,left,triamcinolone,20 mg,wet,3,72.5,pain flare\n")
    (history,) = read(path, rules)
    injection = history.injections[0]
    assert injection.points == 3
    assert injection.weight is not None
    assert float(injection.weight) == 72.5
    assert injection.override == "pain flare"


# --- merging rows into injections -------------------------------------------------------------

def test_rows_of_one_injection_merge_with_drugs_summed_per_drug(write: Write, rules: Rules) -> None:
    path = write("h.csv", HEADER
                 + "P1,2026-01-05,trapezius,left,triamcinolone,10 mg\n"
                 + "P1,2026-01-05,trapezius,left,lidocaine,3 mL @ 1%\n"
                 + "P1,2026-01-05,trapezius,left,triamcinolone,500 mcg\n"
                 + "P1,2026-01-05,trapezius,left,lidocaine,2 mL @ 10 mg/mL\n")
    assert summary(read(path, rules)) == [
        ("P1", "2026-01-05", "trapezius", "left", {"triamcinolone": "10.5 mg", "lidocaine": "50 mg"})]


def test_rows_merge_across_spellings_of_site_side_drug_and_date(write: Write, rules: Rules) -> None:
    path = write("h.csv", HEADER
                 + "P1,2026-01-05,trapezius,left,triamcinolone,10 mg\n"
                 + "P1,2026-01-05,L trap,,Kenalog,10 mg\n"                     # side word in the site; alias
                 + "P1,2026-01-05T08:30:00,trapezius (L),L,TRIAMCINOLONE,5 mg\n"   # datetime cut to its date
                 + "P1,2026-01-05,Upper Trapezius,Left,xylocaine,3 mL @ 1%\n"  # aliases case-insensitive
                 + "P1,2026-01-05,left UPPER-trapezius,,LIGNOCAINE,1 mL @ 1%\n")
    assert summary(read(path, rules)) == [
        ("P1", "2026-01-05", "trapezius", "left", {"triamcinolone": "25 mg", "lidocaine": "40 mg"})]


def test_rows_that_differ_in_patient_date_site_or_side_are_separate_injections(write: Write, rules: Rules) -> None:
    path = write("h.csv", HEADER
                 + "P1,2026-01-05,trapezius,left,triamcinolone,10 mg\n"
                 + "P1,2026-01-05,trapezius,right,triamcinolone,10 mg\n"
                 + "P1,2026-01-05,trapezius,bilateral,triamcinolone,10 mg\n"
                 + "P1,2026-01-05,trapezius,,triamcinolone,10 mg\n"
                 + "P1,2026-01-05,levator-scapulae,left,triamcinolone,10 mg\n"
                 + "P1,2026-01-06,trapezius,left,triamcinolone,10 mg\n")
    sides = [(date, site, side) for _, date, site, side, _ in summary(read(path, rules))]
    assert sides == [("2026-01-05", "trapezius", "left"), ("2026-01-05", "trapezius", "right"),
                     ("2026-01-05", "trapezius", "bilateral"), ("2026-01-05", "trapezius", None),
                     ("2026-01-05", "levator-scapulae", "left"), ("2026-01-06", "trapezius", "left")]


def test_shared_fields_may_repeat_or_be_left_empty_on_other_rows(write: Write, rules: Rules) -> None:
    path = write("h.csv", FULL_HEADER
                 + "P1,2026-01-05,trapezius,left,lidocaine,3 mL @ 1%,wet,2,70,flare\n"
                 + "P1,2026-01-05,trapezius,left,triamcinolone,20 mg,,,,\n"
                 + "P1,2026-01-05,trapezius,left,saline,1 mL,wet,2,70.0,flare\n")
    (history,) = read(path, rules)
    (injection,) = history.injections
    assert (injection.points, float(injection.weight or 0), injection.override) == (2, 70.0, "flare")


def test_merged_doses_feed_the_totals(tpi: Run, write: Write, spec_rules: str) -> None:
    path = write("h.csv", HEADER
                 + "P1,2026-01-05,trapezius,left,triamcinolone,10 mg\n"
                 + "P1,2026-01-05,left trap,,kenalog,10.5 mg\n"
                 + "P1,2026-01-05,trapezius,right,dexamethasone,0.75 mg\n")
    result = tpi("totals", path, "--rules", spec_rules, "--on", "2026-02-01", "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = {(row["site"], row["side"]): row for row in json.loads(result.stdout)["rows"]}
    assert rows[("trapezius", "left")]["steroid_injections"] == 1
    assert rows[("trapezius", "left")]["by_drug"] == {"triamcinolone": 20.5}
    assert rows[("trapezius", "right")]["mg_ref"] == 4.0


# --- order: date, then first appearance ------------------------------------------------------

def test_injections_are_ordered_by_date_then_first_appearance(write: Write, rules: Rules) -> None:
    path = write("h.csv", HEADER
                 + "P1,2026-03-01,infraspinatus,right,,\n"
                 + "P1,2026-01-01,trapezius,left,,\n"
                 + "P1,2026-03-01,levator-scapulae,left,,\n"
                 + "P1,2026-02-01,trapezius,left,,\n"
                 + "P1,2026-03-01,infraspinatus,right,saline,1 mL\n"     # joins the first injection
                 + "P1,2026-03-01,trapezius,left,,\n")
    order = [(date, site) for _, date, site, _, _ in summary(read(path, rules))]
    assert order == [("2026-01-01", "trapezius"), ("2026-02-01", "trapezius"), ("2026-03-01", "infraspinatus"),
                     ("2026-03-01", "levator-scapulae"), ("2026-03-01", "trapezius")]


ONE_REGION = SPEC_RULES.split("rules:\n")[0] + (
    "rules:\n  - {id: one-region, kind: max-regions, applies_to: any, scope: session, max: 1}\n")


@pytest.mark.parametrize(("first", "second"), [("trapezius", "infraspinatus"), ("infraspinatus", "trapezius")])
def test_the_later_appearing_injection_of_a_day_is_the_one_that_breaks_a_rule(
        tpi: Run, write: Write, first: str, second: str) -> None:
    rules_path = write("rules.yaml", ONE_REGION)
    path = write("h.csv", HEADER
                 + f"P1,2026-03-01,{first},left,,\n"
                 + "P1,2026-01-01,levator-scapulae,left,,\n"
                 + f"P1,2026-03-01,{second},left,,\n")
    result = validate(tpi, path, rules_path)
    assert result.exit_code == 1, result.stderr
    violations = json.loads(result.stdout)["violations"]
    assert [(v["date"], v["site"], v["rule"]) for v in violations] == [("2026-03-01", second, "one-region")]


# --- several patients ------------------------------------------------------------------------

def test_patients_are_grouped_even_when_their_rows_are_not_contiguous(write: Write, rules: Rules) -> None:
    path = write("h.csv", HEADER
                 + "P1,2026-01-05,trapezius,left,triamcinolone,10 mg\n"
                 + "P2,2026-01-05,trapezius,left,triamcinolone,10 mg\n"
                 + "P1,2026-01-05,trapezius,left,triamcinolone,10 mg\n"
                 + "P1,2026-02-05,trapezius,left,triamcinolone,10 mg\n")
    found = {(pid, date): drugs for pid, date, _, _, drugs in summary(read(path, rules))}
    assert found == {("P1", "2026-01-05"): {"triamcinolone": "20 mg"}, ("P1", "2026-02-05"): {"triamcinolone": "10 mg"},
                     ("P2", "2026-01-05"): {"triamcinolone": "10 mg"}}


@pytest.mark.parametrize("via_stdin", [False, True])
def test_validate_counts_patients_and_injections(tpi: Run, write: Write, spec_rules: str, via_stdin: bool) -> None:
    text = (HEADER
            + "P1,2026-01-05,trapezius,left,triamcinolone,10 mg\n"
            + "P2,2026-01-05,trapezius,left,triamcinolone,10 mg\n"
            + "P1,2026-01-05,trapezius,left,lidocaine,3 mL @ 1%\n"
            + "P1,2026-06-05,trapezius,left,triamcinolone,10 mg\n")
    result = validate(tpi, "-", spec_rules, input=text) if via_stdin else validate(tpi, write("h.csv", text), spec_rules)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["patients"], document["injections"]) == (2, 3)


# --- JSON: the three shapes ------------------------------------------------------------------

EXPECTED = [
    ("P1", "2026-01-05", "trapezius", "left", {"lidocaine": "30 mg", "triamcinolone": "40 mg"}),
    ("P1", "2026-02-05", "infraspinatus", "right", {}),
    ("P1", "2026-03-05", "interspinous-lumbar", None, {"saline": "5 mL"}),
]
ROWS = [
    {"patient_id": "P1", "date": "2026-01-05", "site": "trapezius", "side": "L", "drug": "lidocaine",
     "dose": "3 mL @ 1%"},
    {"patient_id": "P1", "date": "2026-01-05", "site": "left trap", "drug": "Kenalog", "dose": "40 mg",
     "comment": "extra keys are ignored"},
    {"patient_id": "P1", "date": "2026-02-05", "site": "infraspinatus", "side": "right", "technique": "dry",
     "points": 3},
    {"patient_id": "P1", "date": "2026-03-05T10:00:00", "site": "interspinous-lumbar", "drug": "saline",
     "dose": "5 mL", "weight_kg": 70.5},
]
PATIENT = {
    "patient_id": "P1", "weight_kg": 70.5,
    "injections": [
        {"date": "2026-01-05", "site": "left trapezius",
         "drugs": [{"name": "lidocaine", "dose": "3 mL @ 1%"}, {"name": "kenalog", "dose": "40 mg"}]},
        {"date": "2026-02-05", "site": "infraspinatus", "side": "R", "technique": "dry", "points": 3},
        {"date": "2026-03-05", "site": "interspinous-lumbar", "drugs": [{"name": "saline", "dose": "5 mL"}]},
    ],
}


@pytest.mark.parametrize("document", [ROWS, PATIENT, [PATIENT]], ids=["rows", "patient", "patients"])
def test_json_shapes(write: Write, rules: Rules, document: Any) -> None:
    path = write("h.json", json.dumps(document, indent=2))
    assert summary(read(path, rules)) == EXPECTED


def test_json_list_of_patients(write: Write, rules: Rules) -> None:
    second = {"patient_id": "P2", "injections": [{"date": "2026-01-01", "site": "L trap",
                                                  "drugs": [{"name": "triamcinolone", "dose": "20 mg"}]}]}
    path = write("h.json", json.dumps([PATIENT, second]))
    histories = read(path, rules)
    assert [history.patient_id for history in histories] == ["P1", "P2"]
    assert summary(histories)[-1] == ("P2", "2026-01-01", "trapezius", "left", {"triamcinolone": "20 mg"})


def test_json_patient_weight_applies_to_its_injections(write: Write, rules: Rules) -> None:
    path = write("h.json", json.dumps(PATIENT))
    (history,) = read(path, rules)
    assert [float(weight) for _, _, weight in history.weights][:1] == [70.5]


def test_json_rows_merge_like_csv_rows(write: Write, rules: Rules) -> None:
    rows = [{"patient_id": "P1", "date": "2026-01-05", "site": "trapezius", "side": "left", "drug": "triamcinolone",
             "dose": "10 mg"},
            {"patient_id": "P1", "date": "2026-01-05", "site": "trapezius (L)", "drug": "kenalog", "dose": "5 mg"}]
    path = write("h.json", json.dumps(rows))
    assert summary(read(path, rules)) == [("P1", "2026-01-05", "trapezius", "left", {"triamcinolone": "15 mg"})]


def test_empty_json_list_is_an_empty_history(tpi: Run, write: Write, spec_rules: str) -> None:
    result = validate(tpi, write("h.json", "[]"), spec_rules)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["injections"] == 0


# --- stdin -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    HEADER + "P1,2026-01-05,L trap,,triamcinolone,20 mg\n",
    "\ufeff" + HEADER.replace("\n", "\r\n") + "P1,2026-01-05,L trap,,triamcinolone,20 mg\r\n",
    json.dumps(PATIENT),
    json.dumps(ROWS),
])
def test_history_from_stdin(tpi: Run, spec_rules: str, text: str) -> None:
    result = tpi("totals", "-", "--rules", spec_rules, "--on", "2026-02-01", "--format", "json", input=text)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [(row["site"], row["side"], row["steroid_injections"]) for row in rows] == [("trapezius", "left", 1)]


def test_bad_stdin_names_stdin_and_line(tpi: Run, spec_rules: str) -> None:
    result = validate(tpi, "-", spec_rules, input=HEADER + "P1,2026-01-05,trapezius,left,triamcinolone,20 mg\n"
                      + "P1,2026-02-05,trapezius,left,triamcinolone,20\n")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "<stdin>:3: dose: " in result.stderr


# --- bad input: exit 2, one line FILE:LINE: field: message, nothing on stdout ------------------

def assert_bad_input(result: Result, path: str, line: int | None, field: str | None, *words: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    where = path + (f":{line}" if line is not None else "") + ": " + (f"{field}: " if field else "")
    assert where in lines[0], (where, lines[0])
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in result.stderr


GOOD_ROW = "P1,2026-01-05,trapezius,left,triamcinolone,20 mg\n"

CSV_ERRORS = [
    # doses
    ("unitless dose", "P1,2026-03-05,trapezius,left,triamcinolone,20\n", 3, "dose", ["no unit"]),
    ("negative dose", "P1,2026-03-05,trapezius,left,triamcinolone,-20 mg\n", 3, "dose", ["negative"]),
    ("zero dose", "P1,2026-03-05,trapezius,left,triamcinolone,0 mg\n", 3, "dose", ["more than 0"]),
    ("NaN dose", "P1,2026-03-05,trapezius,left,triamcinolone,NaN mg\n", 3, "dose", ["finite"]),
    ("infinite dose", "P1,2026-03-05,trapezius,left,triamcinolone,inf mg\n", 3, "dose", ["finite"]),
    ("huge exponent dose", "P1,2026-03-05,trapezius,left,triamcinolone,1e309 mg\n", 3, "dose", ["exponent"]),
    ("volume without strength", "P1,2026-03-05,trapezius,left,lidocaine,3 mL\n", 3, "dose", ["strength"]),
    ("strength over 100%", "P1,2026-03-05,trapezius,left,lidocaine,3 mL @ 120%\n", 3, "dose", ["100%"]),
    ("missing dose", "P1,2026-03-05,trapezius,left,triamcinolone,\n", 3, "dose", ["missing dose"]),
    ("dose without drug", "P1,2026-03-05,trapezius,left,,20 mg\n", 3, "dose", ["without a drug"]),
    ("unitless dose of other drug", "P1,2026-03-05,trapezius,left,saline,5\n", 3, "dose", ["no unit"]),
    ("mass and volume of one drug", "P1,2026-03-05,trapezius,left,saline,5 mL\nP1,2026-03-05,trapezius,left,saline,5 mg\n",
     4, "dose", []),
    # names
    ("unknown site", "P1,2026-03-05,trapezus,left,triamcinolone,20 mg\n", 3, "site",
     ["unknown site", "did you mean 'trapezius'"]),
    ("misspelt side word in the site", "P1,2026-03-05,rigth trapezius,,triamcinolone,20 mg\n", 3, "site",
     ["'rigth' is not a side word", "did you mean 'right trapezius'"]),
    ("unknown drug", "P1,2026-03-05,trapezius,left,triamcinolon,20 mg\n", 3, "drug",
     ["unknown drug", "did you mean 'triamcinolone'"]),
    ("misspelt alias", "P1,2026-03-05,trapezius,left,kenalgo,20 mg\n", 3, "drug", ["did you mean 'triamcinolone'"]),
    ("missing site", "P1,2026-03-05,,left,triamcinolone,20 mg\n", 3, "site", ["missing site"]),
    ("side word only", "P1,2026-03-05,left,,triamcinolone,20 mg\n", 3, "site", []),
    ("two sides in the site", "P1,2026-03-05,left right trapezius,,triamcinolone,20 mg\n", 3, "site", ["two sides"]),
    # dates
    ("ambiguous date", "P1,03/04/2026,trapezius,left,triamcinolone,20 mg\n", 3, "date", ["03/04/2026"]),
    ("basic ISO date", "P1,20260304,trapezius,left,triamcinolone,20 mg\n", 3, "date", ["20260304"]),
    ("date with slashes", "P1,2026/03/04,trapezius,left,triamcinolone,20 mg\n", 3, "date", []),
    ("impossible date", "P1,2026-02-30,trapezius,left,triamcinolone,20 mg\n", 3, "date", ["2026-02-30"]),
    ("date out of range", "P1,1899-12-31,trapezius,left,triamcinolone,20 mg\n", 3, "date", ["1900-01-01"]),
    ("missing date", "P1,,trapezius,left,triamcinolone,20 mg\n", 3, "date", ["missing date"]),
    # sides
    ("bad side", "P1,2026-03-05,trapezius,up,triamcinolone,20 mg\n", 3, "side", ["unknown side 'up'"]),
    ("side contradicts site text", "P1,2026-03-05,trapezius (L),right,triamcinolone,20 mg\n", 3, "side",
     ["contradicts"]),
    ("side for a non-lateral site", "P1,2026-03-05,interspinous-lumbar,left,lidocaine,3 mL @ 1%\n", 3, "side",
     ["no sides"]),
    ("side word for a non-lateral site", "P1,2026-03-05,left interspinous-lumbar,,lidocaine,3 mL @ 1%\n", 3, "side",
     ["no sides"]),
    # patients
    ("empty after named patient_id", ",2026-03-05,trapezius,left,triamcinolone,20 mg\n", 3, "patient_id",
     ["give every row a patient_id"]),
    # field counts
    ("too many fields", "P1,2026-03-05,trapezius,left,triamcinolone,20 mg,extra\n", 3, None, ["7 fields", "6"]),
    ("too few fields", "P1,2026-03-05,trapezius,left,triamcinolone\n", 3, None, ["5 fields", "6"]),
    ("unterminated quote", 'P1,2026-03-05,trapezius,left,triamcinolone,"20 mg\n', 3, None, ["CSV"]),
]


@pytest.mark.parametrize(("rows", "line", "field", "words"), [case[1:] for case in CSV_ERRORS],
                         ids=[case[0] for case in CSV_ERRORS])
def test_csv_bad_rows(tpi: Run, write: Write, spec_rules: str, rows: str, line: int, field: str | None,
                      words: list[str]) -> None:
    path = write("h.csv", HEADER + GOOD_ROW + rows)
    assert_bad_input(validate(tpi, path, spec_rules), path, line, field, *words)


FULL_ERRORS = [
    ("dry with a drug", "P1,2026-03-05,trapezius,left,lidocaine,3 mL @ 1%,dry,,,\n", 3, "technique", ["dry"]),
    ("wet without a drug", "P1,2026-03-05,trapezius,left,,,wet,,,\n", 3, "technique",
     ["technique is wet but the injection has no drug (on any row of the same patient, date, site and side)"]),
    ("dry with a drug on a later row", "P1,2026-03-05,trapezius,left,,,dry,,,\n"
     + "P1,2026-03-05,trapezius,left,lidocaine,3 mL @ 1%,,,,\n", 4, "drug",
     ["a drug, but an earlier row of the same injection (one patient, date, site and side) gives technique dry"]),
    ("dry with a drug on an earlier row", "P1,2026-03-05,trapezius,left,lidocaine,3 mL @ 1%,,,,\n"
     + "P1,2026-03-06,trapezius,left,,,,,,\n"  # another injection between them: the dry row is line 5
     + "P1,2026-03-05,trapezius,left,,,dry,,,\n", 5, "technique",
     ["dry, but an earlier row of the same injection (one patient, date, site and side) gives a drug"]),
    ("dry, then another drug row after a drug row", "P1,2026-03-05,trapezius,left,,,dry,,,\n"
     + "P1,2026-03-05,trapezius,left,,,,,,\n"
     + "P1,2026-03-05,trapezius,left,triamcinolone,20 mg,,,,\n", 5, "drug", ["gives technique dry"]),
    ("unknown technique", "P1,2026-03-05,trapezius,left,,,wat,,,\n", 3, "technique", ["wat"]),
    ("conflicting points", "P1,2026-03-05,trapezius,left,lidocaine,3 mL @ 1%,,2,,\n"
     + "P1,2026-03-05,trapezius,left,triamcinolone,20 mg,,3,,\n", 4, "points", ["line 3"]),
    ("conflicting weight", "P1,2026-03-05,trapezius,left,lidocaine,3 mL @ 1%,,,70,\n"
     + "P1,2026-03-05,trapezius,left,triamcinolone,20 mg,,,71,\n", 4, "weight_kg", ["line 3"]),
    ("conflicting override", "P1,2026-03-05,trapezius,left,lidocaine,3 mL @ 1%,,,,flare\n"
     + "P1,2026-03-05,trapezius,left,triamcinolone,20 mg,,,,other reason\n", 4, "override", ["line 3"]),
    ("conflicting technique", "P1,2026-03-05,trapezius,left,lidocaine,3 mL @ 1%,wet,,,\n"
     + "P1,2026-03-05,trapezius,left,triamcinolone,20 mg,dry,,,\n", 4, "technique", []),
    ("zero points", "P1,2026-03-05,trapezius,left,,,,0,,\n", 3, "points",
     ["'0' is not a whole number of trigger points from 1 to 1000"]),
    ("fractional points", "P1,2026-03-05,trapezius,left,,,,2.5,,\n", 3, "points",
     ["'2.5' is not a whole number of trigger points from 1 to 1000"]),
    ("negative points", "P1,2026-03-05,trapezius,left,,,,-3,,\n", 3, "points",
     ["'-3' is not a whole number of trigger points from 1 to 1000"]),
    ("negative weight", "P1,2026-03-05,trapezius,left,,,,,-70,\n", 3, "weight_kg", ["negative"]),
    ("NaN weight", "P1,2026-03-05,trapezius,left,,,,,NaN,\n", 3, "weight_kg", ["finite"]),
    ("zero weight", "P1,2026-03-05,trapezius,left,,,,,0,\n", 3, "weight_kg", []),
    ("impossible weight", "P1,2026-03-05,trapezius,left,,,,,7000,\n", 3, "weight_kg", []),
    ("weight just over 700 kg", "P1,2026-03-05,trapezius,left,,,,,700.000000000000001,\n", 3, "weight_kg",
     ["not a body weight"]),  # exact: a float would read it as 700
]


@pytest.mark.parametrize(("rows", "line", "field", "words"), [case[1:] for case in FULL_ERRORS],
                         ids=[case[0] for case in FULL_ERRORS])
def test_csv_bad_optional_columns(tpi: Run, write: Write, spec_rules: str, rows: str, line: int, field: str,
                                  words: list[str]) -> None:
    path = write("h.csv", FULL_HEADER + "P1,2026-01-05,trapezius,left,triamcinolone,20 mg,,,,\n" + rows)
    assert_bad_input(validate(tpi, path, spec_rules), path, line, field, *words)


def test_csv_named_patient_after_empty_patient_id(tpi: Run, write: Write, spec_rules: str) -> None:
    path = write("h.csv", HEADER + ",2026-01-05,trapezius,left,triamcinolone,20 mg\n"
                 + "P2,2026-03-05,trapezius,left,triamcinolone,20 mg\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 3, "patient_id", "give every row a patient_id")


@pytest.mark.parametrize(("header", "column"), [
    ("patient_id,site,side,drug,dose", "date"),
    ("patient_id,date,side,drug,dose", "site"),
    ("patient_id,date,site,side,dose", "drug"),      # README 10: else every row would look like dry needling
    ("patient_id,date,site,side,drug", "dose"),
    ("patient_id,date,site,side,drugs,dose", "drug"),
])
def test_csv_missing_required_column(tpi: Run, write: Write, spec_rules: str, header: str, column: str) -> None:
    path = write("h.csv", header + "\n" + ",".join(["x"] * (header.count(",") + 1)) + "\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 1, column, "missing column")


def test_csv_misnamed_column_gets_a_suggestion(tpi: Run, write: Write, spec_rules: str) -> None:
    path = write("h.csv", "patient_id,date,site,side,drugs,dose\nP1,2026-01-05,trapezius,left,triamcinolone,20 mg\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 1, None, "did you mean 'drugs'")


def test_lines_of_other_blanks_are_skipped_in_every_layout(write: Write, rules: Rules) -> None:
    # A no-break space or a form feed alone on a line is blank, in the usual column order (read
    # fast) as in any other.
    row = "P1,2026-01-05,trapezius,left,triamcinolone,20 mg,,,70,\n"
    for header, line in ((FULL_HEADER, row), (HEADER, row.replace(",,,70,", ""))):
        for blank in ("\u00a0", "\f", "\u00a0,,,,,", " , ,\t,,,"):
            path = write("h.csv", header + blank + "\n" + line + blank + "\n")
            assert summary(read(path, rules)) == [("P1", "2026-01-05", "trapezius", "left", {"triamcinolone": "20 mg"})]


def test_a_header_error_names_the_headers_line_after_leading_blank_rows(tpi: Run, write: Write,
                                                                       spec_rules: str) -> None:
    path = write("h.csv", ",,,,\n\nPatient ID,date,site,side,drug,dose\nP1,2026-01-05,trapezius,left,kenalog,20 mg\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 3, "patient_id", "'Patient ID'")
    path = write("h.csv", ",,,,\npatient_id,date,site,side,drugs,dose\nP1,2026-01-05,trapezius,left,kenalog,20 mg\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 2, "drug", "missing column")


def test_a_headerless_first_row_is_not_taken_for_a_misspelt_header(tpi: Run, write: Write, spec_rules: str) -> None:
    path = write("h.csv", "Patient,2026-01-05,trapezius,left,kenalog,20 mg\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 1, "date", "header row is missing")


def test_stdin_closed_is_a_refusal(monkeypatch: pytest.MonkeyPatch, rules: Rules) -> None:
    import sys

    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(TpiError, match="stdin is closed"):
        read("-", rules)


@pytest.mark.parametrize(("header", "column"), [
    ("Patient ID,date,site,side,drug,dose", "patient_id"),
    ("PatientID,date,site,side,drug,dose", "patient_id"),
    ("patient,date,site,side,drug,dose", "patient_id"),
    ("patient_id,date,site,side,drug,dose,Weight (kg)", "weight_kg"),
    ("patient_id,date,site,side,drug,dose,weight", "weight_kg"),
    ("patient_id,date,site,side,drug,dose,Over-ride", "override"),
    ("patient_id,date,site,side,drug,dose,trigger_points,Over-ride", "points"),
    # other words for a patient's ID (every row would be one patient's), the weight, the points
    ("MRN,date,site,side,drug,dose", "patient_id"),
    ("pt_id,date,site,side,drug,dose", "patient_id"),
    ("Patient No,date,site,side,drug,dose", "patient_id"),
    ("subject_id,date,site,side,drug,dose", "patient_id"),
    ("patient_id,date,site,side,drug,dose,wt_kg", "weight_kg"),
    ("patient_id,date,site,side,drug,dose,Body Weight (lb)", "weight_kg"),
    ("patient_id,date,site,side,drug,dose,Trigger Points", "points"),
    ("patient_id,date,site,side,drug,dose,TPs", "points"),
    ("patient_id,date,site,Laterality,drug,dose", "side"),
    ("patient_id,date,site,side,drug,dose,Override reason", "override"),
    ("Medical Record Number,date,site,side,drug,dose", "patient_id"),
    ("Chart Number,date,site,side,drug,dose", "patient_id"),
    ("patient_id,date,site,side,drug,dose,Wt (lb)", "weight_kg"),
    ("patient_id,date,site,side,drug,dose,Number of TPs", "points"),
    ("patient_id,date,site,side,drug,dose,Points Injected", "points"),
    ("patient_id,date,site,Side (L/R),drug,dose", "side"),
    ("patient_id,date,site,L/R,drug,dose", "side"),
    ("patient_id,date,site,side,drug,dose,Injection Technique", "technique"),
    ("record_id,date,site,side,drug,dose", "patient_id"),  # REDCap's ID column
    ("Patient MRN,date,site,side,drug,dose", "patient_id"),
    ("ID,date,site,side,drug,dose", "patient_id"),
    ("Pt #,date,site,side,drug,dose", "patient_id"),
    ("Patient Name,date,site,side,drug,dose", "patient_id"),
    ("Participant ID,date,site,side,drug,dose", "patient_id"),
    ("patient_id,date,site,side,drug,dose,Pt Weight", "weight_kg"),
    ("patient_id,date,site,side,drug,dose,Body Wt", "weight_kg"),
    ("patient_id,date,site,side,drug,dose,Weight in kilograms", "weight_kg"),
    ("patient_id,date,site,side,drug,dose,# of TPs", "points"),
    ("patient_id,date,site,side,drug,dose,# of trigger points", "points"),
    ("patient_id,date,site,Side (L/R/B),drug,dose", "side"),
    ("patient_id,date,site,L/R/B,drug,dose", "side"),
    ("patient_id,date,site,Side_,drug,dose", "side"),
])
def test_csv_column_spelt_otherwise_is_refused_not_ignored(tpi: Run, write: Write, spec_rules: str, header: str,
                                                           column: str) -> None:
    # Ignored as an extra column, "Patient ID" would make two patients one (P2's steroid counted
    # with P1's), "weight" would leave the mg/kg limits unknown.
    rows = [f"P{n},2026-01-0{n},trapezius,left,triamcinolone,20 mg" + ",x" * (header.count(",") - 5) for n in (1, 2)]
    path = write("h.csv", header + "\n" + "\n".join(rows) + "\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 1, column, f"did you mean {column!r}", "Rename it")
    if column == "weight_kg":  # a plain "weight" is often in pounds: renamed as it is, it would raise the limits
        assert "convert it first if it is not in kg" in validate(tpi, path, spec_rules).stderr


def test_a_lookalike_of_a_column_that_is_there_is_an_extra_column(write: Write, rules: Rules) -> None:
    path = write("h.csv", "patient_id,Patient Name,date,site,side,drug,dose,weight_kg,Weight (lb),patient\n"
                 "P1,Ann,2026-01-05,trapezius,left,triamcinolone,20 mg,70,154,x\n")
    assert summary(read(path, rules)) == [("P1", "2026-01-05", "trapezius", "left", {"triamcinolone": "20 mg"})]


@pytest.mark.parametrize("column", ["Appointment", "Inpatient", "Outside", "Ideal Body Weight", "Weight Bearing",
                                    "Tender Points", "Trigger Point Location", "Key Points", "Point", "Override By",
                                    "Override Approved By", "Needle Technique", "Injection Technique Notes",
                                    "Patient DOB", "Patient Position", "Subjective", "Team RN", "Lat"])
def test_other_columns_that_only_look_like_tpis_are_extra_columns(write: Write, rules: Rules, column: str) -> None:
    # A clinic's export holds columns like these, which name something else: ignored, as SPEC.md
    # says of extra columns (a file without tpi's side, points, weight_kg, ... columns).
    path = write("h.csv", f"{column},date,site,drug,dose\n"
                 "A7,2026-01-05,left trapezius,triamcinolone,20 mg\n")
    assert summary(read(path, rules)) == [(None, "2026-01-05", "trapezius", "left", {"triamcinolone": "20 mg"})]


@pytest.mark.parametrize("header", ["patient_id,date,site,side,drug,dose,drug2,dose2",
                                    "patient_id,date,site,side,drug,dose,Drug 2,Dose 2",
                                    "patient_id,date,site,side,drug,dose,drug_2_name,drug2_dose",
                                    "patient_id,date,site,side,drug,dose,2nd drug,Dose 2 (mg)",
                                    "patient_id,date,site,side,drug,dose,second_drug,dose_2",
                                    "patient_id,date,site,side,drug,dose,drugs",
                                    "patient_id,date,site,side,drug,dose,Medications",
                                    "patient_id,date,site,side,drug,dose,Secondary Drug",
                                    "patient_id,date,site,side,drug,dose,Steroid,Steroid Dose",
                                    "patient_id,date,site,side,drug,dose,Anaesthetic"])
def test_a_second_drug_column_is_refused_not_ignored(tpi: Run, write: Write, spec_rules: str, header: str) -> None:
    # Ignored as an extra column, the second drug would be lost (lidocaine 300 mg unseen).
    cells = ",".join(["lidocaine", "300 mg"][: header.count(",") - 5])
    path = write("h.csv", header + "\nP1,2026-01-05,trapezius,left,triamcinolone,20 mg," + cells + "\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 1, "drug", "is not one tpi reads",
                     "give each drug its own row")


@pytest.mark.parametrize("drug", ['"drug": "lidocaine", "dose": "30 mg"', '"technique": "dry"'])
def test_a_json_row_with_a_drugs_list_is_refused(tpi: Run, write: Write, spec_rules: str, drug: str) -> None:
    # The patient form's "drugs" in a row object: its triamcinolone would be lost.
    path = write("h.json", '[{"patient_id": "P1", "date": "2026-01-05", "site": "left trapezius",\n'
                           f'  {drug},\n'
                           '  "drugs": [{"name": "triamcinolone", "dose": "40 mg"}]}]')
    assert_bad_input(validate(tpi, path, spec_rules), path, 3, "drugs", "key 'drugs'", "give each drug its own row")


@pytest.mark.parametrize(("text", "line"), [
    # CSV: one row; and a row of the injection without a drug or technique before it
    ("csv:" + FULL_HEADER + "P1,2026-01-05,trapezius,left,lidocaine,30 mg,dry,,,\n", 2),
    ("csv:" + FULL_HEADER + "P1,2026-01-05,trapezius,left,,,,,,\nP1,2026-01-05,trapezius,left,lidocaine,30 mg,dry,,,\n",
     3),
    # JSON: a row object, and the patient form (the line of its "technique")
    ('json:[{"patient_id": "P1", "date": "2026-01-05", "site": "left trapezius",\n "drug": "lidocaine",'
     ' "dose": "30 mg",\n "technique": "dry"}]', 3),
    ('json:{"patient_id": "P1", "injections": [{"date": "2026-01-05", "site": "left trapezius",\n'
     ' "technique": "dry",\n "drugs": [{"name": "lidocaine", "dose": "30 mg"}]}]}', 2),
])
def test_dry_with_a_drug_on_the_same_row_says_so(tpi: Run, write: Write, spec_rules: str, text: str,
                                                  line: int) -> None:
    form, _, content = text.partition(":")
    path = write(f"h.{form}", content)
    assert_bad_input(validate(tpi, path, spec_rules), path, line, "technique", "dry, but the row has a drug")


@pytest.mark.parametrize("value", ["no", "No.", "NONE", "n/a", "N/A", "false", "0", "null", "not applicable", "-",
                                   ".", "?", "\u200b", "-\u200b-", "none\u200b", "#N/A", "(none)", "[none]", "(blank)",
                                   "N / A", "None;", "no overrides", "0.0", "00", "Y", "yes", "x", "1", "TRUE",
                                   "\u2713", "Not needed", "No override needed", "None required",
                                   "N/A - not required", "OK", "unknown", "\uff2e\uff2f", "\uff10", "2", "override"])
def test_an_override_that_says_none_is_refused(tpi: Run, write: Write, spec_rules: str, value: str) -> None:
    # Taken as a reason, it would mark the second injection's steroid-interval block overridden
    # (exit 0 where it must be 1); a yes/no flag ("Y", "1") gives no reason either.
    path = write("h.csv", FULL_HEADER + "P1,2026-01-05,trapezius,left,triamcinolone,20 mg,,,,\n"
                 f"P1,2026-01-15,trapezius,left,triamcinolone,20 mg,,,,{value}\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 3, "override", "not a reason")


def test_an_override_in_words_or_numbers_is_a_reason(tpi: Run, write: Write, spec_rules: str) -> None:
    for reason in ("no relief after 2 weeks, discussed", "N/A per Dr. Smith's note 2", "flare", "ok: 3"):
        path = write("h.csv", FULL_HEADER + "P1,2026-01-05,trapezius,left,triamcinolone,20 mg,,,,\n"
                     f'P1,2026-01-15,trapezius,left,triamcinolone,20 mg,,,,"{reason}"\n')
        result = validate(tpi, path, spec_rules)
        assert result.exit_code == 0, result.stderr
        assert [v["overridden"] for v in json.loads(result.stdout)["violations"]] == [reason]


def override_history(write: Write, reason: str, form: str) -> tuple[str, int]:
    """A history whose second injection (CSV) or only one (JSON) has ``reason`` as its override,
    and the line of that override."""
    if form == "csv":
        return write("h.csv", FULL_HEADER + "P1,2026-01-05,trapezius,left,triamcinolone,20 mg,,,,\n"
                     f'P1,2026-01-15,trapezius,left,triamcinolone,20 mg,,,,"{reason}"\n'), 3
    return write("h.json", json.dumps([{"patient_id": "P1", "date": "2026-01-15", "site": "left trapezius",
                                        "drug": "triamcinolone", "dose": "20 mg", "override": reason}])), 1


@pytest.mark.parametrize("control", ["\x1b[31m", "\x07", "\x7f", "\x9b", "\x0b"])
@pytest.mark.parametrize("form", ["csv", "json"])
def test_an_override_with_a_control_character_is_refused(tpi: Run, write: Write, spec_rules: str, control: str,
                                                         form: str) -> None:
    # The reason is written back as it is by `validate --format csv`: an escape sequence would
    # reach the terminal of whoever reads the report.
    reason = f"flare {control}per Dr A"
    path, line = override_history(write, reason, form)
    assert_bad_input(validate(tpi, path, spec_rules), path, line, "override",
                     f"contains a control character (U+{ord(control[0]):04X})")


@pytest.mark.parametrize(("hidden", "message"), [
    ("\u202e", "contains U+202E (RIGHT-TO-LEFT OVERRIDE), which reorders the text after it"),
    ("\u202b", "contains U+202B (RIGHT-TO-LEFT EMBEDDING), which reorders the text after it"),
    ("\u2067", "contains U+2067 (RIGHT-TO-LEFT ISOLATE), which reorders the text after it"),
    ("\u2028", "contains U+2028 (LINE SEPARATOR): use a line break"),
    ("\u2029", "contains U+2029 (PARAGRAPH SEPARATOR): use a line break"),
])
@pytest.mark.parametrize("form", ["csv", "json"])
def test_an_override_that_would_show_otherwise_than_it_reads_is_refused(tpi: Run, write: Write, spec_rules: str,
                                                                       hidden: str, message: str, form: str) -> None:
    # "flare per Dr A<RLO>2 gm" shows as "flare per Dr A mg 2" where the report is read; a line
    # separator is a line break to a text viewer but not to a CSV writer, which leaves it unquoted.
    reason = f"flare per Dr A{hidden}2 mg"
    path, line = override_history(write, reason, form)
    assert_bad_input(validate(tpi, path, spec_rules), path, line, "override", message)


def test_an_override_wrapped_in_direction_marks_is_the_text_inside(tpi: Run, write: Write, spec_rules: str) -> None:
    # A right-to-left export wraps the field in an embedding and its end (U+202B ... U+202C); the
    # marks inside (U+200F) are how such text is written, and stay.
    reason = "\u05d4\u05ea\u05dc\u05e7\u05d7\u05d5\u05ea\u200f 2 mg"
    path = write("h.csv", FULL_HEADER + "P1,2026-01-05,trapezius,left,triamcinolone,20 mg,,,,\n"
                 f'P1,2026-01-15,trapezius,left,triamcinolone,20 mg,,,,\u202b{reason}\u202c\n')
    result = validate(tpi, path, spec_rules)
    assert result.exit_code == 0, result.stderr
    assert {v["overridden"] for v in json.loads(result.stdout)["violations"]} == {reason}


def test_an_override_on_several_lines_or_with_a_tab_is_a_reason(tpi: Run, write: Write, spec_rules: str) -> None:
    path = write("h.csv", FULL_HEADER + "P1,2026-01-05,trapezius,left,triamcinolone,20 mg,,,,\n"
                 'P1,2026-01-15,trapezius,left,triamcinolone,20 mg,,,,"flare\tper Dr A\nsecond line"\n')
    result = validate(tpi, path, spec_rules)
    assert result.exit_code == 0, result.stderr
    assert {v["overridden"] for v in json.loads(result.stdout)["violations"]} == {"flare\tper Dr A\nsecond line"}


def test_a_json_override_that_says_none_is_refused(tpi: Run, write: Write, spec_rules: str) -> None:
    path = write("h.json", '[{"patient_id": "P1", "date": "2026-01-05", "site": "left trapezius",\n'
                           '  "drug": "triamcinolone", "dose": "20 mg",\n  "override": 0}]')
    assert_bad_input(validate(tpi, path, spec_rules), path, 3, "override", "'0' reads as no override")


@pytest.mark.parametrize("hidden", ["\u200b", "\ufeff", "\u00ad", "\u200d", "\u00a0", "\u202f", "\u034f", "\ufe0f",
                                    "\u3164", "\uffa0", "\u2800", "\u2028"])
@pytest.mark.parametrize("form", ["csv", "quoted", "json"])
def test_a_patient_id_with_a_character_that_does_not_show_is_refused(tpi: Run, write: Write, spec_rules: str,
                                                                      hidden: str, form: str) -> None:
    # "P1" and "P1<zero-width space>" look the same: read as two patients, the 40 mg 12 days
    # before would not count against the proposal.
    if form == "json":
        path = write("h.json", '[{"patient_id": "P1", "date": "2025-01-05", "site": "left trapezius",'
                               ' "drug": "triamcinolone", "dose": "20 mg"},\n'
                               f' {{"patient_id": "P{hidden}1", "date": "2026-01-20", "site": "left trapezius",'
                               ' "drug": "triamcinolone", "dose": "40 mg"}]')
    else:
        quote = '"' if form == "quoted" else ""
        path = write("h.csv", HEADER + "P1,2025-01-05,trapezius,left,triamcinolone,20 mg\n"
                     f"{quote}P{hidden}1{quote},2026-01-20,trapezius,left,triamcinolone,40 mg\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 2 if form == "json" else 3, "patient_id",
                     f"U+{ord(hidden):04X}", "which does not show on its own")


def test_a_patient_id_with_an_accent_written_apart_is_refused(tpi: Run, write: Write, spec_rules: str) -> None:
    # "Jose" + a combining acute looks like "José": read as it is, it would be another patient.
    path = write("h.csv", HEADER + "Jos\u00e9,2025-01-05,trapezius,left,triamcinolone,20 mg\n"
                 "Jose\u0301,2026-01-20,trapezius,left,triamcinolone,40 mg\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 3, "patient_id", "not in Unicode normal form NFC",
                     "save the IDs in NFC")
    path = write("h.csv", HEADER + "Jos\u00e9,2025-01-05,trapezius,left,triamcinolone,20 mg\n"
                 "Jos\u00e9,2025-01-20,trapezius,left,triamcinolone,40 mg\n")
    result = validate(tpi, path, spec_rules)
    assert result.exit_code == 1, result.stderr
    assert {v["patient_id"] for v in json.loads(result.stdout)["violations"]} == {"Jos\u00e9"}


def test_a_json_patient_without_injections_is_checked_like_any(tpi: Run, write: Write, spec_rules: str) -> None:
    path = write("h.json", '[{"patient_id": "P1", "injections": []},\n {"patient_id": "P\u200b1",\n'
                           '  "injections": []}]')
    assert_bad_input(validate(tpi, path, spec_rules), path, 2, "patient_id", "U+200B")


@pytest.mark.parametrize("hidden", ["\t", "\x7f", "\x1b", "\u0085"])
def test_a_patient_id_with_a_control_character_inside_is_refused(tpi: Run, write: Write, spec_rules: str,
                                                                  hidden: str) -> None:
    path = write("h.csv", HEADER + "P1,2025-01-05,trapezius,left,triamcinolone,20 mg\n"
                 f'"P{hidden}1",2026-01-20,trapezius,left,triamcinolone,40 mg\n')
    assert_bad_input(validate(tpi, path, spec_rules), path, 3, "patient_id", f"U+{ord(hidden):04X}")


def test_patient_ids_of_scripts_that_need_joiners_or_direction_marks_are_read(write: Write, rules: Rules) -> None:
    # A Persian name needs its zero-width non-joiner; a right-to-left export wraps fields in
    # direction marks, which are not part of the ID (stripped like spaces).
    persian = "\u0645\u06cc\u200c\u0631\u0648\u062f"
    path = write("h.csv", HEADER + f"{persian},2025-01-05,trapezius,left,triamcinolone,20 mg\n"
                 "\u200fH1\u200f,2025-01-06,trapezius,left,triamcinolone,20 mg\n"
                 "H1,2025-02-06,trapezius,left,triamcinolone,20 mg\n")
    assert [history.patient_id for history in read(path, rules)] == [persian, "H1"]
    assert [len(history.injections) for history in read(path, rules)] == [1, 2]


def test_a_patient_id_padded_with_spaces_of_any_kind_is_the_same_patient(write: Write, rules: Rules) -> None:
    path = write("h.csv", HEADER + "\u00a0P1 ,2025-01-05,trapezius,left,triamcinolone,20 mg\n"
                 "P1\u00a0,2026-01-20,trapezius,left,triamcinolone,40 mg\n")
    assert [history.patient_id for history in read(path, rules)] == ["P1"]


def test_json_row_key_spelt_otherwise_is_refused_not_ignored(tpi: Run, write: Write, spec_rules: str) -> None:
    path = write("h.json", '[{"date": "2026-01-05", "site": "trapezius", "side": "left", "drug": "kenalog",\n'
                           '  "dose": "20 mg",\n  "Patient ID": "P1"}]')
    assert_bad_input(validate(tpi, path, spec_rules), path, 3, "Patient ID", "key 'Patient ID'",
                     "did you mean 'patient_id'")


@pytest.mark.parametrize("text", ["42", '"P1,2026-01-05"', "date,site,drug,dose\n"])
def test_a_json_file_that_holds_no_list_or_object_is_told_so(tpi: Run, write: Write, spec_rules: str,
                                                            text: str) -> None:
    path = write("h.json", text)
    result = validate(tpi, path, spec_rules)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "JSON" in result.stderr or "expected an object" in result.stderr, result.stderr
    assert "column" not in result.stderr  # not read as a CSV file without its header


def test_csv_duplicate_column(tpi: Run, write: Write, spec_rules: str) -> None:
    path = write("h.csv", "patient_id,date,site,side,drug,dose,Date\nP1,2026-01-05,trapezius,left,kenalog,20 mg,x\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 1, None, "'date'", "twice")


def test_empty_csv_file(tpi: Run, write: Write, spec_rules: str) -> None:
    path = write("h.csv", "")
    assert_bad_input(validate(tpi, path, spec_rules), path, 1, None, "header")


def test_header_only_csv_is_an_empty_history(tpi: Run, write: Write, spec_rules: str) -> None:
    result = validate(tpi, write("h.csv", HEADER), spec_rules)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["injections"] == 0


def test_missing_history_file(tpi: Run, tmp_path: Path, spec_rules: str) -> None:
    path = str(tmp_path / "nope.csv")
    assert_bad_input(validate(tpi, path, spec_rules), path, None, None, "no such")


def test_line_numbers_count_blank_lines_and_quoted_newlines(tpi: Run, write: Write, spec_rules: str) -> None:
    path = write("h.csv", FULL_HEADER
                 + "\n"
                 + 'P1,2026-01-05,trapezius,left,triamcinolone,20 mg,,,,"a reason\nover two lines"\n'
                 + "\n"
                 + "P1,2026-03-05,trapezius,left,triamcinolone,20,,,,\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 6, "dose")


def test_crlf_line_numbers(tpi: Run, tmp_path: Path, spec_rules: str) -> None:
    data = (HEADER + GOOD_ROW + "P1,2026-03-05,trapezius,left,triamcinolone,20\n").replace("\n", "\r\n")
    path = write_bytes(tmp_path, "h.csv", data.encode())
    assert_bad_input(validate(tpi, path, spec_rules), path, 3, "dose")


def test_nul_byte_in_csv(tpi: Run, tmp_path: Path, spec_rules: str) -> None:
    path = write_bytes(tmp_path, "h.csv", (HEADER + GOOD_ROW).encode()
                       + b"P1,2026-03-05,trap\x00ezius,left,triamcinolone,20 mg\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 3, "site", "NUL")


def test_non_utf8_in_csv_header(tpi: Run, tmp_path: Path, spec_rules: str) -> None:
    path = write_bytes(tmp_path, "h.csv", b"patient_id,date,site,side,drug,dose,caf\xe9\n" + GOOD_ROW.encode())
    assert_bad_input(validate(tpi, path, spec_rules), path, 1, None, "UTF-8")


def test_non_utf8_in_csv_row_names_its_line(tpi: Run, tmp_path: Path, spec_rules: str) -> None:
    path = write_bytes(tmp_path, "h.csv", (HEADER + GOOD_ROW).encode()
                       + b"P1,2026-03-05,trap\xe9zius,left,triamcinolone,20 mg\n")
    assert_bad_input(validate(tpi, path, spec_rules), path, 3, None, "UTF-8")


def test_bad_input_from_check_and_totals_too(tpi: Run, write: Write, spec_rules: str) -> None:
    path = write("h.csv", HEADER + "P1,2026-01-05,trapezius,left,triamcinolone,20\n")
    check = tpi("check", path, "--rules", spec_rules, "--site", "left trapezius", "--dry", "--on", "2026-03-01",
                "--format", "json")
    assert_bad_input(check, path, 2, "dose", "no unit")
    totals = tpi("totals", path, "--rules", spec_rules, "--on", "2026-03-01", "--format", "json")
    assert_bad_input(totals, path, 2, "dose", "no unit")


def test_a_bad_row_late_in_a_long_file_writes_nothing(tpi: Run, write: Write, spec_rules: str) -> None:
    """Violations found before the bad row must not reach stdout (validate streams)."""
    good = "".join(f"P{n:04d},2026-01-05,trapezius,left,triamcinolone,200 mg\n" for n in range(300))
    path = write("h.csv", HEADER + good + "P9999,2026-01-05,trapezius,left,triamcinolone,20\n")
    for fmt in ("json", "csv"):
        result = tpi("validate", path, "--rules", spec_rules, "--format", fmt)
        assert_bad_input(result, path, 302, "dose")


# --- JSON errors -----------------------------------------------------------------------------

def patient_json(*injections: str) -> str:
    """A patient object with one injection per line from line 3 on."""
    return '{"patient_id": "P1",\n "injections": [\n' + ",\n".join(injections) + "\n]}\n"


GOOD_INJECTION = '  {"date": "2026-01-05", "site": "L trap", "drugs": [{"name": "triamcinolone", "dose": "20 mg"}]}'

JSON_ERRORS = [
    ("syntax error", '[\n  {"date": "2026-01-05",\n   "site": "trapezius" "side": "left"}\n]', 3, None, ["JSON"]),
    ("trailing comma", patient_json(GOOD_INJECTION + ",\n"), 5, None, ["JSON"]),
    ("bare number dose in a row", '[\n{"date": "2026-01-05", "site": "L trap", "drug": "kenalog", "dose": "20 mg"},\n'
     '{"date": "2026-02-05", "site": "L trap", "drug": "kenalog", "dose": 20}\n]', 3, "dose", ["no unit"]),
    ("bare number dose in a patient", patient_json(
        GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "drugs": [{"name": "kenalog", "dose": 20.5}]}'),
     4, "dose", ["no unit"]),
    ("unitless text dose", patient_json(
        GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "drugs": [{"name": "kenalog", "dose": "20"}]}'),
     4, "dose", ["no unit"]),
    ("NaN text dose", patient_json(
        GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "drugs": [{"name": "kenalog", "dose": "NaN mg"}]}'),
     4, "dose", ["finite"]),
    ("unknown drug", patient_json(
        GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "drugs": [{"name": "kenalgo", "dose": "20 mg"}]}'),
     4, "drug", ["did you mean 'triamcinolone'"]),
    ("unknown site", patient_json(GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trapezus"}'), 4, "site",
     ["did you mean 'left trapezius'"]),
    ("ambiguous date", patient_json(GOOD_INJECTION, '  {"date": "03/04/2026", "site": "L trap"}'), 4, "date", []),
    ("impossible date", patient_json(GOOD_INJECTION, '  {"date": "2026-02-30", "site": "L trap"}'), 4, "date", []),
    ("missing date", patient_json(GOOD_INJECTION, '  {"site": "L trap"}'), 4, "date", []),
    ("bad side", patient_json(GOOD_INJECTION, '  {"date": "2026-03-05", "site": "trapezius", "side": "up"}'), 4,
     "side", []),
    ("side for a non-lateral site", patient_json(
        GOOD_INJECTION, '  {"date": "2026-03-05", "site": "interspinous-lumbar", "side": "L"}'), 4, "side",
     ["no sides"]),
    ("unknown injection key", patient_json(GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "dose": "3 mg"}'),
     4, "dose", ["unknown key"]),
    ("drugs not a list", patient_json(GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "drugs": {}}'), 4,
     "drugs", []),
    ("boolean points", patient_json(GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "points": true}'), 4,
     "points", []),
    ("huge weight", patient_json(GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "weight_kg": 1e400}'), 4,
     "weight_kg", []),
    ("not an object", "[1]", 1, None, ["object"]),
    # Conflicting values within one injection: the earlier row's line is named, as in CSV.
    ("conflicting points", patient_json('  {"date": "2026-01-15", "site": "L trap", "points": 2}',
                                        '  {"date": "2026-01-16", "site": "L trap"}',
                                        '  {"date": "2026-01-15", "site": "L trap", "points": 3}'), 5, "points",
     ["differs from an earlier row of the same injection, which starts at line 3 (one patient"]),
    ("conflicting points, pretty-printed: the line the earlier row starts on",
     '[{"patient_id": "P1", "date": "2026-01-05", "site": "left trapezius",\n  "drug": "lidocaine", "dose": "30 mg",\n'
     '  "points": 2},\n {"patient_id": "P1", "date": "2026-01-05", "site": "left trapezius",\n'
     '  "drug": "triamcinolone", "dose": "20 mg",\n  "points": 3}]', 6, "points",
     ["differs from an earlier row of the same injection, which starts at line 1"]),
    ("conflicting points in the patient form: the line the earlier drug starts on",
     '{"patient_id": "P1", "injections": [\n {"date": "2026-01-05", "site": "left trapezius",\n  "points": 2,\n'
     '  "drugs": [{"name": "lidocaine", "dose": "30 mg"}]},\n {"date": "2026-01-05", "site": "left trapezius",\n'
     '  "points": 3,\n  "drugs": [{"name": "triamcinolone", "dose": "20 mg"}]}]}', 6, "points",
     ["differs from an earlier row of the same injection, which starts at line 4"]),
    ("conflicting override in rows", '[{"date": "2026-01-15", "site": "L trap", "drug": "", "override": "a"},\n'
     '{"date": "2026-01-15", "site": "L trap", "drug": "", "override": "b"}]', 2, "override",
     ["differs from an earlier row of the same injection, which starts at line 1"]),
    # Without a patient_id, two patient objects, or a patient object and rows, may be two people or one in two
    # parts; merged, they would count each other's injections (and the lower weight), so tpi asks which.
    ("two unnamed patients", '[{"weight_kg": 50, "injections": [' + GOOD_INJECTION.strip() + ']},\n'
     ' {"weight_kg": 90, "injections": []}]', 2, "patient_id",
     ["missing or empty, and another patient object before this one has none either: give each its patient_id"]),
    ("two patients, the second id empty", '[{"injections": []},\n{\n "patient_id": " ", "injections": []}]', 3,
     "patient_id", ["another patient object before this one"]),
    ("an unnamed patient, then a row", '[{"injections": [' + GOOD_INJECTION.strip() + ']},\n'
     '{"date": "2026-03-01", "site": "L trap", "drug": "kenalog", "dose": "40 mg"}]', 2, "patient_id",
     ["missing or empty, and a patient object before this one has none either"]),
    ("a row, then an unnamed patient", '[{"date": "2026-03-01", "site": "L trap", "drug": "kenalog", "dose": "40 mg"},'
     '\n{"patient_id": null, "injections": []}]', 2, "patient_id",
     ["missing or empty, and a row before this one has none either"]),
    # A drug object with an empty name would read as dry needling.
    ("empty drug name", patient_json(GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "drugs": [{"name": " "}]}'),
     4, "name", ["missing drug name"]),
    # Written out in full, 1e999999999 took 2 GB for the message alone.
    ("huge exponent", '[{"date": "2026-01-15", "site": "L trap", "drug": "", "points": 1e999999999}]', 1, "points",
     ["'1E+999999999' is not a number tpi accepts"]),
    ("tiny exponent", '[{"patient_id": 1e-999999999, "date": "2026-01-15", "site": "L trap", "drug": ""}]', 1,
     "patient_id", ["'1E-999999999' is not a number tpi accepts"]),
    ("NUL in a text", patient_json(GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L tr\\u0000ap"}'), 4, "site",
     ["NUL"]),
]


@pytest.mark.parametrize(("text", "line", "field", "words"), [case[1:] for case in JSON_ERRORS],
                         ids=[case[0] for case in JSON_ERRORS])
def test_json_bad_input(tpi: Run, write: Write, spec_rules: str, text: str, line: int, field: str | None,
                        words: list[str]) -> None:
    path = write("h.json", text)
    assert_bad_input(validate(tpi, path, spec_rules), path, line, field, *words)


PRETTY_PATIENT = {"patient_id": "P1", "weight_kg": 70, "injections": [
    {"date": "2026-01-05", "site": "trapezius", "side": "left", "points": 2,
     "drugs": [{"name": "lidocaine", "dose": "3 mL @ 1%"}, {"name": "triamcinolone", "dose": "20 mg"}]},
    {"date": "2026-02-05", "site": "infraspinatus", "side": "right", "drugs": []}]}

PRETTY_ERRORS = [  # (what to change, the bad value, its field)
    (("injections", 1, "site"), "infraspinatos", "site"),
    (("injections", 1, "date"), "2026-02-30", "date"),
    (("injections", 0, "drugs", 1, "name"), "kenalgo", "drug"),
    (("injections", 0, "drugs", 1, "dose"), "20", "dose"),
    (("injections", 0, "points"), True, "points"),
    (("injections", 0, "colour"), "blue", "colour"),
    (("weight_kg",), "heavy", "weight_kg"),
]


@pytest.mark.parametrize(("where", "value", "field"), PRETTY_ERRORS, ids=[case[2] for case in PRETTY_ERRORS])
@pytest.mark.parametrize("shape", ["patient", "list of patients", "rows"])
def test_json_errors_name_the_line_of_the_field(tpi: Run, write: Write, spec_rules: str, where: tuple[Any, ...],
                                                value: Any, field: str, shape: str) -> None:
    # SPEC.md: "naming the file, line and field": in pretty-printed JSON, the field's own line (not
    # the line where its object starts)
    patient = json.loads(json.dumps(PRETTY_PATIENT))
    node = patient
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value
    document: Any = patient
    if shape == "list of patients":
        document = [{"patient_id": "P0", "injections": []}, patient]
    elif shape == "rows":  # the same injections as flat rows
        if where[-1] == "colour":
            pytest.skip("a row ignores keys it does not know, like extra CSV columns")
        document = []
        for injection in patient["injections"]:
            base = {k: v for k, v in injection.items() if k != "drugs"}
            base = {"patient_id": "P1", "weight_kg": patient["weight_kg"], **base}
            for drug in injection["drugs"] or [{"name": "", "dose": ""}]:
                document.append({**base, "drug": drug["name"], "dose": drug["dose"]})
    text = json.dumps(document, indent=2)
    marker = f'"{where[-1] if where[-1] != "name" or shape != "rows" else "drug"}": {json.dumps(value)}'
    line = text[:text.index(marker)].count("\n") + 1
    path = write("h.json", text)
    assert_bad_input(validate(tpi, path, spec_rules), path, line, field)


def test_a_json_rows_drug_error_names_the_drug_key_not_another_name_key(tpi: Run, write: Write,
                                                                          spec_rules: str) -> None:
    rows = [{"patient_id": "P1", "name": "J. Smith", "date": "2026-01-05", "site": "trapezius", "side": "left",
             "drug": "kenalgo", "dose": "20 mg"}]
    text = json.dumps(rows, indent=2)
    path = write("h.json", text)
    line = text[:text.index('"drug"')].count("\n") + 1
    assert_bad_input(validate(tpi, path, spec_rules), path, line, "drug")


def test_non_utf8_in_json(tpi: Run, tmp_path: Path, spec_rules: str) -> None:
    path = write_bytes(tmp_path, "h.json", patient_json(GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap"}')
                       .replace("2026-03-05", "2026-03-05\xe9").encode("latin-1"))
    assert_bad_input(validate(tpi, path, spec_rules), path, 4, None, "UTF-8")


def test_a_json_patient_id_of_minus_zero_is_not_the_patient_zero(tpi: Run, write: Write, spec_rules: str) -> None:
    # JSON reads -0 as the integer 0; as CSV text it is "-0", another ID: kept apart, as CSV keeps them.
    row = '{"patient_id": %s, "date": "%s", "site": "trapezius", "side": "left", "drug": "kenalog", "dose": "20 mg"}'
    text = "[" + row % ("0", "2026-01-05") + ",\n" + row % ("-0", "2026-01-06") + "]"
    document = json.loads(validate(tpi, write("h.json", text), spec_rules).stdout)
    assert document["patients"] == 2
    assert document["violations"] == []  # 6 weeks apart would fail steroid-interval for one patient


JSON_LINE_BUGS = [
    ("duplicate key", patient_json(
        GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "drugs": [{"name": "kenalog", "dose": "20 mg",'
                        ' "dose": "30 mg"}]}'), 4, None, ["duplicate key 'dose'"]),
    ("NaN number", patient_json(GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "weight_kg": NaN}'), 4,
     None, ["NaN"]),
    ("Infinity number", patient_json(GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "points": Infinity}'),
     4, None, ["Infinity"]),
    ("dry with a drug", patient_json(
        GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "technique": "dry", '
                        '"drugs": [{"name": "lidocaine", "dose": "3 mL @ 1%"}]}'), 4, "technique", ["dry"]),
    ("wet without a drug", patient_json(GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "technique": "wet"}'),
     4, "technique", ["wet"]),
    ("conflicting points", patient_json(
        GOOD_INJECTION, '  {"date": "2026-03-05", "site": "L trap", "points": 2}',
        '  {"date": "2026-03-05", "site": "trapezius", "side": "left", "points": 3}'), 5, "points", ["differs"]),
    ("mixed empty and named patient_id", '[\n{"patient_id": "P1", "injections": [' + GOOD_INJECTION + ']},\n'
     '{"injections": [' + GOOD_INJECTION + ']}\n]', 3, "patient_id", []),
    # 12.0 would be patient "12.0", apart from 12 and "12" (one patient): an audit found its
    # injections never checked against theirs
    ("patient_id with a decimal point", '[\n{"patient_id": 12, "injections": [' + GOOD_INJECTION + ']},\n'
     '{"patient_id": 12.0, "injections": [' + GOOD_INJECTION + ']}\n]', 3, "patient_id",
     ["a number with a decimal point", "as a text"]),
    ("row patient_id with an exponent", '[\n{"patient_id": 1.2e1, "date": "2026-01-05", "site": "L trap", '
     '"drug": "kenalog", "dose": "20 mg"}\n]', 2, "patient_id", ["as a text"]),
    # the line where the nesting goes over 100 levels (Python's parser gives no position)
    ("nested too deeply", '[\n{"patient_id": "P1", "injections": [' + GOOD_INJECTION + '],\n "note":\n'
     + "[\n" * 2000 + "]\n" * 2000 + "}\n]", 102, None, ["nested too deeply"]),
    ("nested too deeply on one line", "[" * 100000 + "]" * 100000, 1, None, ["nested too deeply"]),
    # the deepest part is named, not an earlier one nested over 100 levels that the parser read;
    # brackets inside texts do not count
    ("nested too deeply after a deep but readable part",
     '[\n{"patient_id": "P1", "date": "2026-01-05", "site": "L trap", "drug": "kenalog", "dose": "20 mg",\n'
     ' "note": ' + "[" * 150 + "]" * 150 + ',\n "remark": "' + "[{" * 2000 + '"},\n'
     '{"patient_id": "P1", "date": "2026-02-05", "site": "L trap", "drug": "kenalog", "dose": "20 mg",\n'
     ' "note":\n' + "[\n" * 3000 + "]\n" * 3000 + "}\n]", 105, None, ["nested too deeply", "passes 100 levels here"]),
]


@pytest.mark.parametrize(("text", "line", "field", "words"), [case[1:] for case in JSON_LINE_BUGS],
                         ids=[case[0] for case in JSON_LINE_BUGS])
def test_json_bad_input_names_the_line(tpi: Run, write: Write, spec_rules: str, text: str, line: int,
                                       field: str | None, words: list[str]) -> None:
    path = write("h.json", text)
    assert_bad_input(validate(tpi, path, spec_rules), path, line, field, *words)


@pytest.mark.parametrize(("text", "field", "words"), [case[1:2] + case[3:] for case in JSON_LINE_BUGS],
                         ids=[case[0] for case in JSON_LINE_BUGS])
def test_json_bad_input_is_still_refused_with_exit_2(tpi: Run, write: Write, spec_rules: str, text: str,
                                                     field: str | None, words: list[str]) -> None:
    """Whatever the line, these inputs are refused cleanly: exit 2, one line naming the file (and the
    field where there is one), nothing on stdout."""
    path = write("h.json", text)
    result = validate(tpi, path, spec_rules)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert path in lines[0]
    for word in [*words, *([f"{field}: "] if field else [])]:
        assert word in lines[0]


@pytest.mark.parametrize("text", [
    "patient_id,date,site,side,drug,dose\nP2,2026-01-02,trapezius,left,lidocaine,20 mg\n"
    "P1,2026-01-01,trapezius,left,triamcinolone,40 mg\nP1,2026-01-20,trapezius,left,triamcinolone,40 mg\n",
    "patient_id,date,site,side,drug,dose\nP1,2026-01-01,trapezius,left,triamcinolone,40 mg\n"
    "P2,2026-01-02,trapezius,left,lidocaine,20 mg\nP1,2026-01-20,trapezius,left,triamcinolone,40 mg\n",
], ids=["IDs decreasing", "a patient's rows scattered"])
def test_a_pipe_is_read_once_whatever_the_patient_order(tmp_path: Path, rules: Rules, text: str) -> None:
    # A FIFO (or `<(...)`, /dev/stdin on a pipe) gives its bytes once: it is grouped in memory from
    # the start, like stdin, not read a second time when the IDs stop increasing.
    import os
    import threading

    fifo = tmp_path / "history.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "w", encoding="utf-8") as out:
            out.write(text)

    from_pipe: list[tuple[str | None, int]] = []

    def read() -> None:
        from_pipe.extend((p.patient_id, len(p.injections)) for p in read_patients(str(fifo), rules))

    writer = threading.Thread(target=feed, daemon=True)
    reader = threading.Thread(target=read, daemon=True)
    writer.start()
    reader.start()
    reader.join(timeout=30)
    stuck = reader.is_alive()  # waiting to open the pipe a second time: nobody writes to it again
    if stuck:
        with open(fifo, "w", encoding="utf-8"):
            pass  # lets the stuck reader see an empty pipe and end
    writer.join(timeout=30)
    assert not stuck, "the pipe was opened a second time"
    regular = tmp_path / "history.csv"
    regular.write_text(text, encoding="utf-8")
    from_file: list[tuple[str | None, int]] = []
    for patient in read_patients(str(regular), rules, on_restart=from_file.clear):  # read again: from the start
        from_file.append((patient.patient_id, len(patient.injections)))
    assert from_pipe == from_file
    assert sorted(from_pipe) == [("P1", 2), ("P2", 1)]


@pytest.mark.parametrize(("document", "field", "escape"), [
    ('{"patient_id": "P\\ud800", "injections": [{"date": "2026-01-01", "site": "left trapezius", '
     '"drugs": [{"name": "lidocaine", "dose": "30 mg"}]}]}', "patient_id", "\\ud800"),
    ('[{"patient_id": "P1", "date": "2026-01-01", "site": "left trapezius", "drug": "lidocaine", "dose": "30 mg", '
     '"override": "x\\udfff"}]', "override", "\\udfff"),
    ('[{"patient_id": "P\\udc00x", "date": "2026-01-01", "site": "left trapezius", "drug": "", "dose": ""}]',
     "patient_id", "\\udc00"),
])
def test_json_lone_surrogate_in_a_text_field_is_refused(tmp_path: Path, rules: Rules, document: str, field: str,
                                                         escape: str) -> None:
    # JSON can spell a lone surrogate (\ud800) that no UTF-8 output can carry: refused where read.
    path, message = refusal(tmp_path, rules, document)
    assert message == f"{path}:1: {field}: contains a lone surrogate ('{escape}'), not text"


def test_json_surrogate_pair_is_one_character_and_fine(tmp_path: Path, rules: Rules) -> None:
    document = ('[{"patient_id": "P\\ud83d\\ude00", "date": "2026-01-01", "site": "left trapezius", "drug": "",'
                ' "dose": ""}]')
    [history] = read(write_bytes(tmp_path, "h.json", document.encode()), rules)
    assert history.patient_id == "P\U0001f600"


def test_json_row_keys_match_like_csv_column_names(tmp_path: Path, rules: Rules) -> None:
    # "Drug" is the drug, as a CSV header's "Drug" is: never silently a dry needling row.
    document = ('[{"Patient_ID": "P1", " DATE ": "2026-01-01", "Site": "left trapezius", "Drug": "triamcinolone", '
                '"DOSE": "40 mg", "Points": 2}]')
    [history] = read(write_bytes(tmp_path, "h.json", document.encode()), rules)
    [injection] = history.injections
    assert history.patient_id == "P1"
    assert injection.date.isoformat() == "2026-01-01"
    assert {drug.name: amount.text() for drug, amount in injection.drugs.items()} == {"triamcinolone": "40 mg"}
    assert injection.points == 2


@pytest.mark.parametrize(("row", "message"), [
    ('"date": "2026-01-01", "DATE": "2026-02-01", "drug": "", "dose": ""',
     "date: given twice (keys are matched like CSV column names: case and spaces ignored)"),
    ('"date": "2026-01-01", "medication": "triamcinolone", "amount": "40 mg"',
     "drug: missing, and the row has keys tpi does not know ('medication', 'amount'): a drug under another name "
     'would read as dry needling (give "drug": "" for none)'),
])
def test_json_row_keys_that_could_hide_a_drug_are_refused(tmp_path: Path, rules: Rules, row: str,
                                                           message: str) -> None:
    path, refused = refusal(tmp_path, rules, f'[{{"patient_id": "P1", "site": "left trapezius", {row}}}]')
    assert refused == f"{path}:1: {message}"


@pytest.mark.parametrize("row", ['"technique": "dry"', '"note": "x", "drug": null', "", '"Technique": "dry", "note": "x"'])
def test_json_dry_needling_rows_without_unknown_keys_still_read(tmp_path: Path, rules: Rules, row: str) -> None:
    extra = f", {row}" if row else ""
    document = f'[{{"patient_id": "P1", "date": "2026-01-01", "site": "left trapezius"{extra}}}]'
    [history] = read(write_bytes(tmp_path, "h.json", document.encode()), rules)
    assert [injection.drugs for injection in history.injections] == [{}]


def _bad_byte_history(rows: int, bad: int, crlf: bool = False) -> bytes:
    end = "\r\n" if crlf else "\n"
    lines = [f"patient_id,date,site,side,drug,dose{end}"]
    lines += [f"P{i},2026-01-01,trapezius,left,,{end}" for i in range(rows)]
    data = "".join(lines).encode()
    at = data.index(f"P{bad - 2},".encode())  # the row on line `bad`
    return data[:at + 3] + b"\xff" + data[at + 3:]


@pytest.mark.parametrize(("rows", "bad", "crlf"), [(2, 3, False), (3000, 2501, False), (3000, 2999, True)])
def test_bad_utf8_from_stdin_names_its_line(tpi: Run, spec_rules: str, rows: int, bad: int, crlf: bool) -> None:
    # Stdin cannot be read again to find the line: it is counted in the chunk the decoder refused.
    result = tpi("validate", "-", "--rules", spec_rules, input=_bad_byte_history(rows, bad, crlf))
    assert result.exit_code == 2
    assert result.stderr == f"tpi: error: <stdin>:{bad}: not UTF-8 text (byte 0xff)\n"


def test_bad_utf8_in_a_fifo_is_refused_without_reopening_it(tmp_path: Path, rules: Rules) -> None:
    import os
    import threading

    fifo = tmp_path / "history.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as out:
            out.write(_bad_byte_history(3000, 2501))

    errors: list[str] = []

    def read() -> None:
        try:
            list(read_patients(str(fifo), rules))
        except TpiError as exc:
            errors.append(str(exc))

    writer = threading.Thread(target=feed, daemon=True)
    reader = threading.Thread(target=read, daemon=True)
    writer.start()
    reader.start()
    reader.join(timeout=30)
    stuck = reader.is_alive()  # waiting to open the pipe again, to look for the line
    if stuck:
        with open(fifo, "wb"):
            pass
    writer.join(timeout=30)
    assert not stuck, "the pipe was opened a second time"
    assert errors == [f"{fifo}:2501: not UTF-8 text (byte 0xff)"]


def test_json_patient_with_no_injections_is_a_patient(tmp_path: Path, rules: Rules) -> None:
    # Kept (validate counts it, totals lists it, check finds it), not dropped with its empty list.
    document = ('[{"patient_id": "P1", "weight_kg": 70, "injections": []}, '
                '{"patient_id": "P2", "injections": [{"date": "2026-01-01", "site": "left trapezius"}]}]')
    histories = read(write_bytes(tmp_path, "h.json", document.encode()), rules)
    assert [(h.patient_id, len(h.injections)) for h in histories] == [("P1", 0), ("P2", 1)]


@pytest.mark.parametrize(("patient", "message"), [
    ('"patient_id": "P1", "weight_kg": "heavy"', "weight_kg: 'heavy' is not a plain decimal number (weight in kg)"),
    ('"patient_id": "P\\u0000", "weight_kg": 70', "patient_id: contains a NUL byte"),
    ('"patient_id": ["P1"]', "patient_id: expected a text or a number, got list"),
])
def test_json_patient_with_no_injections_is_checked(tmp_path: Path, rules: Rules, patient: str,
                                                    message: str) -> None:
    path, refused = refusal(tmp_path, rules, f'[\n{{{patient}, "injections": []}}]')
    assert refused == f"{path}:2: {message}"


def test_a_json_patients_weight_holds_on_every_date(tpi: Run, write: Write, spec_rules: str) -> None:
    # 50 kg: lidocaine max min(300, 4.5 x 50) = 225 mg. The patient's weight_kg is not an injection's: a
    # check before the first injection, or for a patient with no injections, uses it (README choice 13).
    for injections in ("[]", '[{"date": "2026-03-01", "site": "trapezius", "side": "left", '
                             '"drugs": [{"name": "saline", "dose": "1 mL"}]}]'):
        path = write("h.json", f'{{"patient_id": "P1", "weight_kg": 50, "injections": {injections}}}')
        for dose, verdict in (("226mg", "blocked"), ("225mg", "allowed")):
            result = tpi("check", path, "--rules", spec_rules, "--site", "left trapezius", "--drug",
                         f"lidocaine={dose}", "--on", "2026-01-10", "--format", "json")
            document = json.loads(result.stdout)
            assert document["verdict"] == verdict, (injections, dose)
            (rule,) = [r for r in document["rules"] if r["kind"] == "anesthetic-dose"]
            assert "weight 50 kg" in rule["message"]


def test_validate_uses_a_json_patients_weight_too(tpi: Run, write: Write, spec_rules: str) -> None:
    # The weight given on an entry without injections is the patient's: validate sees the 250 mg of
    # lidocaine given later (without a weight) over 225 mg, as check does.
    path = write("h.json", '[{"patient_id": "P1", "weight_kg": 50, "injections": []},\n'
                           ' {"patient_id": "P1", "injections": [{"date": "2026-01-10", "site": "trapezius", '
                           '"side": "left", "drugs": [{"name": "lidocaine", "dose": "250 mg"}]}]}]')
    violation = _one_violation(tpi, path, spec_rules)
    assert violation["rule"] == "anesthetic-dose"
    assert "max 225 mg; weight 50 kg" in violation["message"]


def test_a_json_patient_given_twice_keeps_each_entrys_weight(tpi: Run, write: Write, spec_rules: str) -> None:
    # One entry per period, a weight each (README choice 13): the lowest entry weight holds before any
    # injection; each entry's injections carry its own weight from their dates on.
    path = write("h.json", '[{"patient_id": "P1", "weight_kg": 80, "injections": [{"date": "2025-01-10", '
                           '"site": "trapezius", "side": "left", "drugs": [{"name": "saline", "dose": "1 mL"}]}]},\n'
                           ' {"patient_id": "P1", "weight_kg": 50, "injections": [{"date": "2026-01-10", '
                           '"site": "trapezius", "side": "left", "drugs": [{"name": "saline", "dose": "1 mL"}]}]}]')
    for on, weight in (("2024-06-01", "50 kg"), ("2025-06-01", "80 kg"), ("2026-06-01", "50 kg")):
        result = tpi("check", path, "--rules", spec_rules, "--site", "left trapezius", "--drug", "lidocaine=100mg",
                     "--on", on, "--format", "json")
        assert result.exit_code == 0, result.stderr
        (rule,) = [r for r in json.loads(result.stdout)["rules"] if r["kind"] == "anesthetic-dose"]
        assert f"weight {weight}" in rule["message"], on


def _one_violation(tpi: Run, path: str, rules: str) -> Any:
    """``validate``'s one (blocking) violation of the history."""
    result = tpi("validate", path, "--rules", rules, "--format", "json")
    assert result.exit_code == 1, result.stderr
    (violation,) = json.loads(result.stdout)["violations"]
    return violation


def _lidocaine_weight(tpi: Run, path: str, rules: str, on: str) -> str:
    result = tpi("check", path, "--rules", rules, "--site", "left trapezius", "--drug", "lidocaine=100mg",
                 "--on", on, "--format", "json")
    assert result.exit_code in (0, 1), result.stderr  # 1: on a day whose session has lidocaine already
    (rule,) = [r for r in json.loads(result.stdout)["rules"] if r["kind"] == "anesthetic-dose"]
    return str(rule["message"]).rsplit("; ", 1)[1].rstrip(")")


def test_an_injection_without_a_weight_does_not_lift_an_earlier_lower_one(tpi: Run, write: Write,
                                                                          spec_rules: str) -> None:
    # Found by an audit: the patient's 80 kg, copied onto the 30 April visit (no weight of its own),
    # replaced the 45 kg measured on 30 March, and 250 mg of lidocaine passed against 300 mg instead
    # of failing against 4.5 x 45 = 202.5 mg. The two records are kept apart; the lower counts.
    path = write("h.json", '{"patient_id": "A", "weight_kg": 80, "injections": [\n'
                           ' {"date": "2026-03-30", "site": "trapezius", "side": "left", "weight_kg": 45, '
                           '"technique": "dry"},\n'
                           ' {"date": "2026-04-30", "site": "trapezius", "side": "right", "technique": "dry"},\n'
                           ' {"date": "2026-05-01", "site": "trapezius", "side": "left", '
                           '"drugs": [{"name": "lidocaine", "dose": "250 mg"}]}]}')
    violation = _one_violation(tpi, path, spec_rules)
    assert (violation["date"], violation["rule"]) == ("2026-05-01", "anesthetic-dose")
    assert "max 202.5 mg; weight 45 kg" in violation["message"]
    for on in ("2026-03-30", "2026-04-30", "2026-05-01", "2027-01-01"):
        assert _lidocaine_weight(tpi, path, spec_rules, on) == "weight 45 kg", on
    assert _lidocaine_weight(tpi, path, spec_rules, "2026-03-29") == "weight 80 kg"  # before any of its own


def test_an_entrys_weight_holds_from_its_injections_dates_even_where_they_give_their_own(
        tpi: Run, write: Write, spec_rules: str) -> None:
    # Two entries, 80 kg and then 45 kg; the 45 kg entry's one injection records 100 kg of its own.
    # From its date the patient's record is 45 kg, and the lower of 45 and 100 counts: 250 mg of
    # lidocaine on 10 February is over 202.5 mg. Dating an entry only by injections without a
    # weight of their own had left 80 kg in force there (found by a review).
    path = write("h.json", '[{"patient_id": "P1", "weight_kg": 80, "injections": [{"date": "2026-01-05", '
                           '"site": "trapezius", "side": "right", "technique": "dry"}]},\n'
                           ' {"patient_id": "P1", "weight_kg": 45, "injections": [{"date": "2026-02-05", '
                           '"site": "trapezius", "side": "right", "technique": "dry", "weight_kg": 100}]},\n'
                           ' {"patient_id": "P1", "date": "2026-02-10", "site": "trapezius", "side": "left", '
                           '"drug": "lidocaine", "dose": "250 mg"}]')
    violation = _one_violation(tpi, path, spec_rules)
    assert "max 202.5 mg; weight 45 kg" in violation["message"]
    assert _lidocaine_weight(tpi, path, spec_rules, "2026-01-20") == "weight 80 kg"
    assert _lidocaine_weight(tpi, path, spec_rules, "2026-02-05") == "weight 45 kg"


@pytest.mark.parametrize(("own", "expected"), [(100, "weight 80 kg"), (60, "weight 60 kg")])
def test_an_injections_own_weight_does_not_lift_the_patients(tpi: Run, write: Write, spec_rules: str,
                                                             own: int, expected: str) -> None:
    # The reverse: a heavier weight at one injection leaves the patient's 80 kg in force; a lighter one
    # counts from its date on. In CSV form (every row a weight of its own), the latest counts as before.
    path = write("h.json", f'{{"patient_id": "A", "weight_kg": 80, "injections": [{{"date": "2026-03-30", '
                           f'"site": "trapezius", "side": "left", "weight_kg": {own}, "technique": "dry"}}]}}')
    assert _lidocaine_weight(tpi, path, spec_rules, "2026-03-01") == "weight 80 kg"
    assert _lidocaine_weight(tpi, path, spec_rules, "2026-04-01") == expected
    rows = write("h.csv", FULL_HEADER + "A,2026-01-30,trapezius,right,,,dry,,80,\n"
                                        f"A,2026-03-30,trapezius,left,,,dry,,{own},\n")
    assert _lidocaine_weight(tpi, rows, spec_rules, "2026-04-01") == f"weight {own} kg"


@pytest.mark.parametrize("weights", [(80, 40), (40, 80)])
def test_a_json_patient_given_twice_without_injections_has_the_lower_weight(tpi: Run, write: Write, spec_rules: str,
                                                                            weights: tuple[int, int]) -> None:
    # Two entries, no injections: whatever their order, the lower weight counts (README choice 13):
    # lidocaine 200 mg against min(300, 4.5 x 40 = 180) mg is over.
    first, second = weights
    path = write("h.json", f'[{{"patient_id": "A", "weight_kg": {first}, "injections": []}},\n'
                           f' {{"patient_id": "A", "weight_kg": {second}, "injections": []}}]')
    result = tpi("check", path, "--rules", spec_rules, "--site", "left trapezius", "--drug", "lidocaine=200mg",
                 "--on", "2025-01-10", "--format", "json")
    assert result.exit_code == 1, result.stderr
    (rule,) = [r for r in json.loads(result.stdout)["rules"] if r["kind"] == "anesthetic-dose"]
    assert rule["status"] == "fail"
    assert "weight 40 kg" in rule["message"]


# --- a JSON list is read an item at a time --------------------------------------------------------

def _whole(text: str) -> tuple[str, Any]:
    """What reading the document whole gives: its items with their paths, or the error."""
    from tpi_cli.history_json import _json_load

    try:
        document = _json_load(text, "h.json")
    except TpiError as exc:
        return "error", (exc.message, exc.line)
    return "items", [((i,), item) for i, item in enumerate(document)] if isinstance(document, list) \
        else [((), document)]


def _by_item(text: str) -> tuple[str, Any]:
    from tpi_cli.history_json import _json_items

    try:
        return "items", list(_json_items(text, "h.json"))
    except TpiError as exc:
        return "error", (exc.message, exc.line)


ITEM = '{"patient_id": "P1", "date": "2026-01-05", "site": "trapezius", "dose": 2.5, "points": 3}'


@pytest.mark.parametrize("text", [
    f"[{ITEM}, {ITEM}]", f"\n [\n  {ITEM} ,\n\t{ITEM}\r\n]\n ", "[]", "[ ]", f"{ITEM}", "3",
    f"[{ITEM}, {ITEM}", f"[{ITEM} {ITEM}]", f"[{ITEM},]", f"[{ITEM}]]", f"[{ITEM}] x", "[", "[,]", "",
    f'[{ITEM}, {{"a": 1, "a": 2}}]', f'[{ITEM},\n {{"a": NaN}}]', f'[{ITEM},\n{{"a": -Infinity}}]',
    f'[{ITEM},\n {{"a": {"1" * 41}}}]', f"[{ITEM}, " + "[" * 100_000 + "]" * 100_000 + "]",
    f'[{ITEM}, {{"a": "\\x"}}]', f'[{ITEM}, "unterminated]',
])
def test_a_json_list_read_item_by_item_is_the_document_read_whole(text: str) -> None:
    # Each item is parsed as it is reached (the document built whole took several times the text's
    # memory: 90 MB of rows, 800 MB at the peak, now 370 MB). Items, paths, and every error's
    # message and line are those of json.loads over the whole text.
    assert _by_item(text) == _whole(text)


def test_a_json_list_is_read_lazily() -> None:
    # The first item comes before the rest of the text is parsed (an error there is still found,
    # and the reader acts on nothing until the end).
    from tpi_cli.history_json import _json_items

    items = _json_items(f"[{ITEM}, {{broken", "h.json")
    path, first = next(items)
    assert (path, first["site"]) == ((0,), "trapezius")
    with pytest.raises(TpiError, match="not valid JSON"):
        next(items)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(count=st.integers(0, 4), separators=st.lists(st.sampled_from(["", " ", "\n", "\t", "\r\n", ",", "]", "[", "x"]),
                                                     min_size=10, max_size=10),
       cut=st.integers(0, 400), insert=st.sampled_from(["", ",", "]", "[", "{", "}", '"', "1", "NaN", " "]))
def test_a_json_list_read_item_by_item_matches_on_damaged_texts(count: int, separators: list[str], cut: int,
                                                               insert: str) -> None:
    # Random layouts and one damage (a character inserted or the text cut short): the same items, or
    # the same error at the same line.
    parts = ["[", separators[0]]
    for index in range(count):
        if index:
            parts += [separators[index + 1].replace("]", " ").replace("[", " ").replace("x", " "), ",",
                      separators[index + 5]]
        parts.append(ITEM.replace("P1", f"P{index}"))
    parts += [separators[9], "]"]
    text = "".join(parts)
    at = min(cut, len(text))
    damaged = text[:at] + insert + text[at:] if insert else text[:at]
    for each in (text, damaged):
        assert _by_item(each) == _whole(each), each


def test_json_errors_come_in_file_order(tmp_path: Path, rules: Rules) -> None:
    # Items are checked as they are read: a bad date in the first row is named before the syntax
    # error of the second, as a CSV reader names the first bad row.
    path, refused = refusal(tmp_path, rules, '[{"patient_id": "P1", "date": "2026-13-01", "site": "trapezius", '
                                             '"side": "left"},\n {"patient_id": "P1", "date": "2026-01-01" "site": 1}]')
    assert refused == f"{path}:1: date: '2026-13-01' is not a date on the calendar"
    path, refused = refusal(tmp_path, rules, '[{"patient_id": "P1", "date": "2026-01-01", "site": "trapezius", '
                                             '"side": "left"},\n {"patient_id": "P1", "date": "2026-01-01" "site": 1}]')
    assert refused == f"{path}:2: not valid JSON: Expecting ',' delimiter"


@pytest.mark.parametrize(("document", "line"), [
    # one injection in two patient entries that give it different weights
    ('[{"patient_id": "P1", "weight_kg": 80, "injections": [{"date": "2026-01-10", "site": "trapezius", '
     '"side": "left", "drugs": [{"name": "lidocaine", "dose": "250 mg"}]}]},\n'
     ' {"patient_id": "P1", "weight_kg": 45, "injections": [{"date": "2026-01-10", "site": "trapezius", '
     '"side": "left"}]}]', 2),
    # a row object's weight against the patient entry's, for one injection
    ('[{"patient_id": "P1", "weight_kg": 80, "injections": [{"date": "2026-01-10", "site": "trapezius", '
     '"side": "left", "drugs": [{"name": "lidocaine", "dose": "250 mg"}]}]},\n'
     ' {"patient_id": "P1", "date": "2026-01-10", "site": "trapezius", "side": "left", "drug": "saline", '
     '"dose": "1 mL", "weight_kg": 45}]', 2),
    # an injection's own weight, then the same injection again without one (its entry's)
    ('{"patient_id": "P1", "weight_kg": 80, "injections": [{"date": "2026-01-10", "site": "trapezius", '
     '"side": "left", "weight_kg": 45, "drugs": [{"name": "saline", "dose": "1 mL"}]},\n'
     ' {"date": "2026-01-10", "site": "trapezius", "side": "left", "drugs": [{"name": "lidocaine", '
     '"dose": "250 mg"}]}]}', 1),
])
def test_rows_of_one_injection_give_one_weight_their_own_or_their_entrys(tmp_path: Path, rules: Rules,
                                                                         document: str, line: int) -> None:
    # SPEC.md: rows of one injection that give different non-empty values are refused. A row of a
    # patient entry gives the entry's weight_kg unless it has its own (found by a differential fuzz:
    # keeping the entry weights apart had let these through, with the lower weight).
    path, refused = refusal(tmp_path, rules, document)
    assert refused.startswith(f"{path}:{line}: weight_kg: differs from an earlier row of the same injection")


def test_rows_of_one_injection_that_agree_on_the_weight_are_one_injection(tmp_path: Path, rules: Rules) -> None:
    path = write_bytes(tmp_path, "h.json", (
        b'[{"patient_id": "P1", "weight_kg": 45, "injections": [{"date": "2026-01-10", "site": "trapezius", '
        b'"side": "left", "drugs": [{"name": "lidocaine", "dose": "250 mg"}]}]},\n'
        b' {"patient_id": "P1", "date": "2026-01-10", "site": "trapezius", "side": "left", "drug": "saline", '
        b'"dose": "1 mL", "weight_kg": 45},\n'
        b' {"patient_id": "P1", "date": "2026-01-10", "site": "trapezius", "side": "left", "drug": "saline", '
        b'"dose": "1 mL"}]'))
    (history,) = read(path, rules)
    (injection,) = history.injections
    assert (len(injection.drugs), injection.weight.decimal_text(1)) == (2, "45")
