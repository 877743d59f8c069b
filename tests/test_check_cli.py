"""`tpi check`: SPEC.md's JSON example key for key, the accepted site and dose forms, and every exit code."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result

from tests.conftest import EXAMPLES, HEADER, as_json

Run = Callable[..., Result]

# SPEC.md's `check` example: a steroid at the left trapezius on 20 Nov 2026; the proposal on 28 Nov.
# 20 Nov + 6 weeks = 20 Nov + 42 days = 1 Jan 2027.
SPEC_EXAMPLE_HISTORY = HEADER + "P001,2026-11-20,trapezius,left,triamcinolone,20 mg,,,\n"

CHECK_KEYS = {"schema_version", "patient_id", "site", "side", "on", "category", "profiles", "drugs", "verdict",
              "earliest_date", "rules", "warnings"}
DRUG_KEYS = {"name", "dose_mg", "mg_ref"}
RULE_KEYS = {"id", "kind", "severity", "status", "earliest_date", "message", "counted", "source"}


@pytest.fixture
def example(write: Callable[[str, str], str]) -> str:
    return write("history.csv", SPEC_EXAMPLE_HISTORY)


def spec_check(tpi: Run, spec_rules: str, history: str, *args: str) -> Result:
    return tpi("check", history, "--rules", spec_rules, *args)


def test_spec_json_example_key_for_key(tpi: Run, spec_rules: str, example: str) -> None:
    result = spec_check(tpi, spec_rules, example, "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                        "--on", "2026-11-28", "--format", "json")
    assert result.exit_code == 1
    assert result.stderr == ""
    document = as_json(result)
    assert set(document) >= CHECK_KEYS
    assert document["schema_version"] == 1
    assert document["patient_id"] == "P001"
    assert document["site"] == "trapezius"
    assert document["side"] == "left"
    assert document["on"] == "2026-11-28"
    assert document["category"] == "steroid"
    assert document["profiles"] == []
    assert document["drugs"] == [{"name": "triamcinolone", "dose_mg": 20.0, "mg_ref": 20.0}]
    assert document["verdict"] == "not-yet"
    assert document["earliest_date"] == "2027-01-01"
    assert document["warnings"] == []
    for entry in document["rules"]:
        assert set(entry) >= RULE_KEYS
        assert entry["status"] in {"pass", "fail", "warn", "skip"}
        assert entry["severity"] in {"block", "warn"}
        assert isinstance(entry["counted"], list)
    interval = next(entry for entry in document["rules"] if entry["id"] == "steroid-interval")
    assert {key: interval[key] for key in RULE_KEYS} == {
        "id": "steroid-interval", "kind": "min-interval", "severity": "block", "status": "fail",
        "earliest_date": "2027-01-01",
        "message": "corticosteroid injection at left trapezius on 2026-11-20, less than 6 weeks before",
        "counted": ["2026-11-20"], "source": "test source"}
    # every rule of the file is listed, in the file's order; the medicare one is inactive
    assert [entry["id"] for entry in document["rules"]] == [
        "steroid-interval", "steroid-count", "steroid-site-dose", "sessions", "anesthetic-dose", "points",
        "one-region"]
    statuses = {entry["id"]: entry["status"] for entry in document["rules"]}
    assert statuses == {"steroid-interval": "fail", "steroid-count": "pass", "steroid-site-dose": "pass",
                        "sessions": "pass", "anesthetic-dose": "pass", "points": "pass", "one-region": "skip"}


def test_spec_example_allowed_on_the_earliest_date(tpi: Run, spec_rules: str, example: str) -> None:
    result = spec_check(tpi, spec_rules, example, "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                        "--on", "2027-01-01", "--format", "json")
    assert result.exit_code == 0
    document = as_json(result)
    assert document["verdict"] == "allowed"
    assert document["earliest_date"] == "2027-01-01"  # equals `on` when allowed


def test_readme_example_exit_code_and_table(tpi: Run) -> None:
    result = tpi("check", str(EXAMPLES / "history.csv"), "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                 "--on", "2026-11-28")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0].startswith("NOT YET")
    assert "2027-01-15" in result.stdout.splitlines()[0]


@pytest.mark.parametrize(
    "site_args",
    [
        ("--site", "left trapezius"),
        ("--site", "Left Trapezius"),
        ("--site", "L trap"),
        ("--site", "trapezius (L)"),
        ("--site", "trapezius", "--side", "left"),
        ("--site", "trapezius", "--side", "L"),
        ("--site", "upper trapezius", "--side", "left"),
        ("--site", "trap left"),
    ],
)
def test_site_forms(tpi: Run, spec_rules: str, example: str, site_args: tuple[str, ...]) -> None:
    result = spec_check(tpi, spec_rules, example, *site_args, "--drug", "triamcinolone=20mg", "--on", "2026-11-28",
                        "--format", "json")
    assert result.exit_code == 1, result.stderr
    document = as_json(result)
    assert (document["site"], document["side"]) == ("trapezius", "left")
    assert document["earliest_date"] == "2027-01-01"


@pytest.mark.parametrize(
    ("drug", "name", "dose_mg"),
    [
        ("triamcinolone=20mg", "triamcinolone", 20.0),
        ("triamcinolone=20 mg", "triamcinolone", 20.0),
        ("kenalog=20mg", "triamcinolone", 20.0),
        ("dexamethasone=500 mcg", "dexamethasone", 0.5),
        ("lidocaine=3mL@1%", "lidocaine", 30.0),  # 1% = 10 mg/mL: 3 x 10 = 30 mg
        ("lidocaine=3 mL @ 1%", "lidocaine", 30.0),
        ("lidocaine=3 mL @ 10 mg/mL", "lidocaine", 30.0),
        ("xylocaine=2 mL @ 2%", "lidocaine", 40.0),  # 2 x 20
        ("lidocaine=0.1 g", "lidocaine", 100.0),
    ],
)
def test_dose_forms(tpi: Run, spec_rules: str, example: str, drug: str, name: str, dose_mg: float) -> None:
    result = spec_check(tpi, spec_rules, example, "--site", "right trapezius", "--drug", drug, "--on", "2026-11-28",
                        "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    (shown,) = as_json(result)["drugs"]
    assert shown["name"] == name
    assert shown["dose_mg"] == dose_mg


def test_several_drugs_and_weight(tpi: Run, spec_rules: str, example: str) -> None:
    # lidocaine 30 mg of min(300, 4.5 x 10 = 45) = 2/3; bupivacaine 10 mg of min(175, 25) = 2/5: 16/15 > 1
    args = ("--site", "right trapezius", "--drug", "lidocaine=30mg", "--drug", "bupivacaine=10mg", "--on",
            "2026-11-28", "--format", "json")
    result = spec_check(tpi, spec_rules, example, *args, "--weight-kg", "10")
    assert result.exit_code == 1
    document = as_json(result)
    assert [d["name"] for d in document["drugs"]] == ["lidocaine", "bupivacaine"]
    assert document["category"] == "anesthetic"
    assert next(r for r in document["rules"] if r["id"] == "anesthetic-dose")["status"] == "fail"
    # bupivacaine 10 mg of min(175, 2.5 x 20 = 50) = 1/5 and 30 / min(300, 90) = 1/3: 8/15 <= 1
    result = spec_check(tpi, spec_rules, example, *args, "--weight-kg", "20")
    assert result.exit_code == 0
    assert as_json(result)["verdict"] == "allowed"


@pytest.mark.parametrize("points", ["8", "9"])
def test_points_option(tpi: Run, spec_rules: str, example: str, points: str) -> None:
    result = spec_check(tpi, spec_rules, example, "--site", "right trapezius", "--drug", "lidocaine=30mg",
                        "--points", points, "--on", "2026-11-28", "--format", "json")
    document = as_json(result)
    entry = next(r for r in document["rules"] if r["id"] == "points")
    # the spec rules' points rule is a warn rule with max 8
    assert entry["status"] == ("pass" if points == "8" else "warn")
    assert document["verdict"] == "allowed"
    assert result.exit_code == 0


def test_history_from_stdin_and_json(tpi: Run, spec_rules: str, write: Callable[[str, str], str]) -> None:
    args = ("--site", "left trapezius", "--drug", "triamcinolone=20mg", "--on", "2026-11-28", "--format", "json")
    from_stdin = tpi("check", "-", "--rules", spec_rules, *args, input=SPEC_EXAMPLE_HISTORY)
    document = {"patient_id": "P001", "weight_kg": 70, "injections": [
        {"date": "2026-11-20", "site": "trapezius", "side": "left",
         "drugs": [{"name": "triamcinolone", "dose": "20 mg"}]}]}
    from_json = tpi("check", write("history.json", json.dumps(document)), "--rules", spec_rules, *args)
    for result in (from_stdin, from_json):
        assert result.exit_code == 1, result.stderr
        assert as_json(result)["earliest_date"] == "2027-01-01"


def test_rules_from_environment(tpi: Run, spec_rules: str, example: str) -> None:
    result = tpi("check", example, "--site", "left trapezius", "--drug", "triamcinolone=20mg", "--on", "2026-11-28",
                 "--format", "json", env={"TPI_RULES": spec_rules})
    assert result.exit_code == 1
    assert next(r for r in as_json(result)["rules"] if r["id"] == "steroid-interval")["source"] == "test source"


def test_empty_history_is_allowed(tpi: Run, spec_rules: str, write: Callable[[str, str], str]) -> None:
    result = tpi("check", write("empty.csv", HEADER), "--rules", spec_rules, "--site", "left trapezius",
                 "--drug", "triamcinolone=20mg", "--on", "2026-11-28", "--format", "json")
    assert result.exit_code == 0
    assert as_json(result)["verdict"] == "allowed"


# --- exit 2: bad usage and bad input -------------------------------------------------------------------------

TWO_PATIENTS = HEADER + "P1,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\nP2,2026-01-01,trapezius,left,,,,,\n"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--site", "left trapezius"), "--drug"),  # neither --drug nor --dry
        (("--site", "left trapezius", "--dry", "--drug", "triamcinolone=20mg"), "--dry"),
        (("--site", "left trapzius", "--dry"), "--site: unknown site 'left trapzius' (did you mean 'left trapezius'?)"),
        (("--site", "lefft trapezius", "--dry"),
         "--site: unknown site 'lefft trapezius': 'lefft' is not a side word (did you mean 'left trapezius'?)"),
        (("--site", "trapezius rigth", "--dry"), "(did you mean 'right trapezius'?)"),
        (("--site", "l\u0435ft trapezius", "--dry"), "(did you mean 'left trapezius'?)"),  # a Cyrillic e
        # "lower" is no side word, and no site is close: the rules' few sites are named
        (("--site", "lower trap", "--dry"), "--site: unknown site 'lower trap' (the rules file's sites: infraspinatus, "
                                            "interspinous-lumbar, levator-scapulae, trapezius)\n"),
        (("--site", "left trapezius", "--drug", "zzzz=20mg"),
         "--drug: unknown drug 'zzzz' (the rules file's drugs: bupivacaine, dexamethasone, lidocaine, "
         "methylprednisolone, saline, triamcinolone)\n"),
        # More than one slip from a side word: never "bilateral trapezius" for "lateral trapezius"
        (("--site", "lateral trapezius", "--dry"), "--site: unknown site 'lateral trapezius' (did you mean"),
        (("--site", "tight trapezius", "--dry"), "--site: unknown site 'tight trapezius' (did you mean"),
        (("--site", "rigth interspinous-lumbar", "--dry"), "(did you mean 'interspinous-lumbar'?)"),  # no sides
        (("--site", "left right trapezius", "--dry"), "--site: site 'left right trapezius' names two sides"),
        (("--site", "trapezius", "--dry"), "side"),  # a lateral site needs a side
        (("--site", "left trapezius", "--side", "right", "--dry"), "contradicts"),
        (("--site", "left trapezius", "--drug", "triamcinolon=20mg"), "did you mean 'triamcinolone'"),
        (("--site", "left trapezius", "--drug", "triamcinolone=20"), "unit"),  # unitless dose
        (("--site", "left trapezius", "--drug", "triamcinolone"), "NAME=DOSE"),
        (("--site", "left trapezius", "--drug", "triamcinolone=-20mg"), "triamcinolone"),
        (("--site", "left trapezius", "--drug", "triamcinolone=0mg"), "triamcinolone"),
        (("--site", "left trapezius", "--drug", "triamcinolone=20 mL"), "triamcinolone"),  # a steroid needs a mass
        (("--site", "left trapezius", "--dry", "--profile", "medicar"), "did you mean 'medicare'"),
        (("--site", "left trapezius", "--dry", "--format", "csv"), "csv"),
        (("--site", "left trapezius", "--dry", "--on", "03/04/2026"), "--on"),
        (("--site", "left trapezius", "--dry", "--on", "2026-02-30"), "--on"),
        (("--site", "left trapezius", "--dry", "--points", "0"), "--points"),
        (("--site", "left trapezius", "--dry", "--weight-kg", "heavy"), "--weight-kg"),
        (("--site", "interspinous-lumbar", "--side", "left", "--dry"), "interspinous-lumbar"),
        # a repeated single-valued option: click would keep the last one without a word
        (("--site", "trapezius", "--side", "left", "--side", "right", "--dry"), "--side is given more than once"),
        (("--site", "right trapezius", "--site", "left trapezius", "--dry"), "--site is given more than once"),
        (("--site", "left trapezius", "--dry", "--on", "2026-11-28", "--on", "2026-11-29"),
         "--on is given more than once"),
        (("--site", "left trapezius", "--dry", "--weight-kg", "70", "--weight-kg", "80"),
         "--weight-kg is given more than once"),
    ],
)
def test_bad_usage_exits_2(tpi: Run, spec_rules: str, example: str, args: tuple[str, ...], needle: str) -> None:
    result = tpi("check", example, "--rules", spec_rules, *args,
                 *(() if "--on" in args else ("--on", "2026-11-28")))
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("args", "needle"), [
    # the packaged rules: 17 drugs are named; 23 sites are too many for one line, `tpi sites` lists them
    (("--site", "left trapezius", "--drug", "zzzz=20mg"),
     "--drug: unknown drug 'zzzz' (the rules file's drugs: betamethasone, botulinum-toxin, bupivacaine, "),
    (("--site", "left zzzz", "--dry"), "--site: unknown site 'left zzzz' ('tpi sites' lists the 23 sites of these rules, "
                                       "with their aliases)\n"),
])
def test_an_unknown_name_with_no_close_one_says_where_the_names_are(tpi: Run, example: str, args: tuple[str, ...],
                                                                     needle: str) -> None:
    result = tpi("check", example, *args, "--on", "2026-11-28")
    assert result.exit_code == 2
    assert needle in result.stderr
    assert result.stdout == ""


def test_a_long_drug_name_is_shortened_in_the_list(tpi: Run, example: str, write: Callable[[str, str], str]) -> None:
    rules = write("long.yaml", "version: 1\nreference_steroid: triamcinolone\ndrugs:\n"
                  "  triamcinolone: {class: corticosteroid, equivalent_mg: 4}\n"
                  f"  {'x' * 1000}: {{class: other}}\nsites:\n  trapezius: {{region: cervical}}\nrules: []\n")
    result = tpi("check", example, "--rules", rules, "--site", "left trapezius", "--drug", "zzzz=20mg",
                 "--on", "2026-11-28")
    assert result.exit_code == 2
    assert result.stderr.endswith(f"(the rules file's drugs: triamcinolone, {'x' * 59}…)\n")


def test_an_unknown_drug_among_many_is_not_followed_by_every_name(tpi: Run, example: str,
                                                                  write: Callable[[str, str], str]) -> None:
    drugs = "".join(f"  drug{k:02d}: {{class: other}}\n" for k in range(21))
    rules = write("many.yaml", "version: 1\nreference_steroid: triamcinolone\ndrugs:\n"
                  "  triamcinolone: {class: corticosteroid, equivalent_mg: 4}\n" + drugs +
                  "sites:\n  trapezius: {region: cervical}\nrules: []\n")
    result = tpi("check", example, "--rules", rules, "--site", "left trapezius", "--drug", "zzzz=20mg",
                 "--on", "2026-11-28")
    assert result.exit_code == 2
    assert result.stderr.endswith("--drug: unknown drug 'zzzz' (none of the rules file's 22 drugs or their aliases "
                                  "is close)\n")


def test_several_patients_need_patient(tpi: Run, spec_rules: str, write: Callable[[str, str], str]) -> None:
    history = write("two.csv", TWO_PATIENTS)
    args = ("--rules", spec_rules, "--site", "left trapezius", "--dry", "--on", "2026-11-28")
    result = tpi("check", history, *args)
    assert result.exit_code == 2
    assert result.stderr == f"tpi: error: {history}: the history holds 2 patients (P1, P2): choose one with --patient\n"
    assert result.stdout == ""
    four = write("four.csv", TWO_PATIENTS + "".join(f"P{k},2026-01-01,trapezius,left,,,,,\n" for k in (7, 8)))
    result = tpi("check", four, *args)
    assert result.stderr == f"tpi: error: {four}: the history holds 4 patients (P1, P2, P7, ...): choose one with --patient\n"
    result = tpi("check", history, *args, "--patient", "P3")
    assert result.exit_code == 2
    assert "P3" in result.stderr
    assert result.stdout == ""
    result = tpi("check", history, *args, "--patient", "P2", "--format", "json")
    assert result.exit_code == 0
    assert as_json(result)["patient_id"] == "P2"


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("bad-drug.csv", HEADER + "P1,2026-01-01,trapezius,left,triamcinolon,20 mg,,,\n", "bad-drug.csv:2"),
        ("bad-site.csv", HEADER + "P1,2026-01-01,trapzius,left,triamcinolone,20 mg,,,\n", "bad-site.csv:2"),
        ("bad-date.csv", HEADER + "P1,03/04/2026,trapezius,left,triamcinolone,20 mg,,,\n", "bad-date.csv:2"),
        ("unitless.csv", HEADER + "P1,2026-01-01,trapezius,left,triamcinolone,20,,,\n", "unitless.csv:2"),
    ],
)
def test_bad_history_exits_2_with_file_and_line(tpi: Run, spec_rules: str, write: Callable[[str, str], str],
                                                name: str, text: str, needle: str) -> None:
    result = tpi("check", write(name, text), "--rules", spec_rules, "--site", "left trapezius", "--dry",
                 "--on", "2026-11-28")
    assert result.exit_code == 2
    assert needle in result.stderr
    assert result.stdout == ""


def test_missing_files_exit_2(tpi: Run, spec_rules: str, example: str, tmp_path: Any) -> None:
    args = ("--site", "left trapezius", "--dry", "--on", "2026-11-28")
    result = tpi("check", str(tmp_path / "nope.csv"), "--rules", spec_rules, *args)
    assert result.exit_code == 2
    assert "nope.csv" in result.stderr
    result = tpi("check", example, "--rules", str(tmp_path / "nope.yaml"), *args)
    assert result.exit_code == 2
    assert "nope.yaml" in result.stderr
    assert result.stdout == ""


def test_check_a_new_patient_on_an_empty_history(tpi: Run, write: Callable[[str, str], str], spec_rules: str) -> None:
    # A header and no rows: any --patient is a new patient with no injections yet.
    history = write("empty.csv", "patient_id,date,site,side,drug,dose\n")
    result = tpi("check", history, "--patient", "NEW1", "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                 "--on", "2026-11-28", "--rules", spec_rules, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["patient_id"], document["verdict"]) == ("NEW1", "allowed")


@pytest.mark.parametrize("points", ["٣", "３", "0", "1001", "2.5", "00001001", "1" * 4400])
def test_points_option_takes_ascii_whole_numbers_1_to_1000(tpi: Run, write: Callable[[str, str], str], points: str) -> None:
    result = tpi("check", write("h.csv", "patient_id,date,site,side,drug,dose\n"), "--site", "left trapezius",
                 "--dry", "--points", points, "--on", "2026-11-28")
    assert result.exit_code == 2
    assert "is not a whole number of trigger points from 1 to 1000" in result.stderr
    assert len(result.stderr) < 300  # the value is quoted short


def test_points_option_with_leading_zeros(tpi: Run, write: Callable[[str, str], str]) -> None:
    result = tpi("check", write("h.csv", "patient_id,date,site,side,drug,dose\n"), "--site", "left trapezius",
                 "--dry", "--points", "0001000", "--on", "2026-11-28", "--format", "json")
    assert result.exit_code == 0, result.stderr


def test_default_rules_keep_seven_days_between_wet_injections_with_or_without_steroid(
        tpi: Run, write: Callable[[str, str], str]) -> None:
    # A steroid injection is a wet injection too (usually with a local anesthetic): the packaged
    # anesthetic-interval holds it 7 days after an anesthetic-only one, as it holds another
    # anesthetic-only one (the steroid interval alone counts only corticosteroid injections).
    history = write("h.csv", HEADER + "P1,2026-02-02,rhomboid,left,lidocaine,3 mL @ 1%,,,\n")
    for drug in ("triamcinolone=20mg", "lidocaine=3mL@1%"):
        result = tpi("check", history, "--site", "left rhomboid", "--drug", drug, "--on", "2026-02-04",
                     "--format", "json")
        document = as_json(result)
        assert result.exit_code == 1
        assert (document["verdict"], document["earliest_date"]) == ("not-yet", "2026-02-09")
        (interval,) = [r for r in document["rules"] if r["id"] == "anesthetic-interval"]
        assert (interval["status"], interval["counted"]) == ("fail", ["2026-02-02"])
    forecast = as_json(tpi("next", history, "--site", "left rhomboid", "--on", "2026-02-04", "--format", "json"))
    (row,) = forecast["sites"]
    assert (row["anesthetic"], row["steroid"]) == ("2026-02-09", "2026-02-09")


ONE_RULE_HEAD = """version: 1
reference_steroid: triamcinolone
drugs:
  triamcinolone: {class: corticosteroid, equivalent_mg: 4}
  lidocaine: {class: anesthetic, max_mg: 300}
sites:
  spine: {region: lumbar, lateral: false}
rules:
"""


def test_anesthetic_message_shows_mg_to_2_decimals(tpi: Run, write: Callable[[str, str], str]) -> None:
    # README choice 24: messages show mg to 2 decimals. At 1, 300.04 mg read "300 mg of max 300 mg", over 100%.
    rules = write("r.yaml", ONE_RULE_HEAD + "  - {id: la, kind: anesthetic-dose, applies_to: any, scope: session}\n")
    history = write("h.csv", "date,site,side,drug,dose\n")
    result = tpi("check", history, "--rules", rules, "--site", "spine", "--drug", "lidocaine=300.04mg",
                 "--on", "2026-01-01", "--format", "json")
    assert result.exit_code == 1
    (rule,) = as_json(result)["rules"]
    assert "(lidocaine 300.04 mg of max 300 mg; no weight known: only max_mg applies)" in rule["message"]
    # Over by less than 0.005 mg: more places, so the dose does not read as equal to its maximum.
    result = tpi("check", history, "--rules", rules, "--site", "spine", "--drug", "lidocaine=300.004mg",
                 "--on", "2026-01-01", "--format", "json")
    (rule,) = as_json(result)["rules"]
    assert "(lidocaine 300.004 mg of max 300 mg; no weight" in rule["message"]
    # A maximum from the weight (4.5 mg/kg x 55.55 kg = 249.975 mg) is shown to 2 decimals too.
    weighed = write("w.yaml", ONE_RULE_HEAD.replace("lidocaine: {class: anesthetic, max_mg: 300}",
                                                    "lidocaine: {class: anesthetic, max_mg: 300, max_mg_per_kg: 4.5}")
                    + "  - {id: la, kind: anesthetic-dose, applies_to: any, scope: session}\n")
    result = tpi("check", history, "--rules", weighed, "--site", "spine", "--drug", "lidocaine=100mg",
                 "--weight-kg", "55.55", "--on", "2026-01-01", "--format", "json")
    (rule,) = as_json(result)["rules"]
    assert "(lidocaine 100 mg of max 249.98 mg; weight 55.6 kg)" in rule["message"]


def test_a_rule_of_no_chosen_profile_is_said_not_to_apply(tpi: Run, write: Callable[[str, str], str]) -> None:
    rules = write("r.yaml", ONE_RULE_HEAD + "  - {id: both, kind: min-interval, applies_to: any, scope: site, "
                                            "interval: 10 days, profiles: [medicare, commercial]}\n")
    history = write("h.csv", "date,site,side,drug,dose\n2025-12-30,spine,,,\n")
    args = ("check", history, "--rules", rules, "--site", "spine", "--dry", "--on", "2026-01-01")
    (rule,) = as_json(tpi(*args, "--format", "json"))["rules"]
    assert (rule["status"], rule["message"]) == ("skip", "payer rule: needs --profile commercial or medicare")
    table = tpi(*args, env={"COLUMNS": "120"})
    assert table.exit_code == 0
    assert "no rule applies to this proposal\nnot applied: both (payer rule: needs --profile commercial or " \
           "medicare)" in table.stdout
    assert "─" not in table.stdout  # no empty table
