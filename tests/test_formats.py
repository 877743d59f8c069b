"""Output formats: CSV (header, RFC 4180 quoting, formula cells neutralised), CDS Hooks cards, tables that print
user text literally, and one golden table.

The golden file tests/golden/check_table.txt is the `check` table of SPEC.md's README example at 80 columns
without colour. To regenerate it after a deliberate change of the table, run

    TPI_REGEN_GOLDEN=1 python -m pytest tests/test_formats.py -k golden

and review the diff before committing it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.conftest import EXAMPLES, HEADER, SPEC_RULES, as_json

Run = Callable[..., Result]
Write = Callable[[str, str], str]

GOLDEN = Path(__file__).resolve().parent / "golden"
PLAIN_80 = {"COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}

FORMULA_IDS = ["=cmd()", "+1", "@x", "-1"]

# Each patient: a left trapezius steroid on 1 Jan and again on 2 Jan (less than 6 weeks: one violation).
FORMULA_HISTORY = HEADER + "".join(
    f"{pid},2026-01-01,trapezius,left,triamcinolone,20 mg,,,\n{pid},2026-01-02,trapezius,left,triamcinolone,20 mg,,,"
    f'"reason, with ""quotes"" and a comma"\n'
    for pid in [*FORMULA_IDS, "plain"])


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


# --- CSV ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("command", "args", "header"),
    [
        ("validate", (), ["patient_id", "date", "site", "side", "rule", "severity", "message", "overridden"]),
        ("totals", ("--on", "2026-03-01"), ["patient_id", "site", "side", "steroid_injections", "mg_ref", "by_drug",
                                            "all_time_injections", "all_time_mg_ref"]),
    ],
)
def test_csv_neutralises_formula_cells(tpi: Run, spec_rules: str, write: Write, command: str, args: tuple[str, ...],
                                       header: list[str]) -> None:
    result = tpi(command, write("h.csv", FORMULA_HISTORY), "--rules", spec_rules, "--format", "csv", *args)
    assert result.exit_code in (0, 1), result.stderr
    rows = parse_csv(result.stdout)
    assert rows[0][:len(header)] == header  # the header row comes first
    width = len(rows[0])
    assert all(len(row) == width for row in rows)
    ids = {row[0] for row in rows[1:]}
    assert {f"'{pid}" for pid in FORMULA_IDS} | {"plain"} <= ids
    assert not any(cell[:1] in "=+-@" and cell for row in rows[1:] for cell in row)


def test_totals_csv_neutralises_rule_names(tpi: Run, write: Write) -> None:
    # Sites, drugs and the reference steroid come from the rules file: in totals' CSV (its text
    # cells each made safe once, the counts and mg being numbers) none may start like a formula.
    rules = write("formula-rules.yaml", """\
version: 1
reference_steroid: "@kenalog"
drugs:
  "@kenalog": {class: corticosteroid, equivalent_mg: 4}
  "-dex": {class: corticosteroid, equivalent_mg: 0.75}
sites:
  "+neck": {region: "@cervical"}
rules:
  - {id: cnt, kind: max-count, applies_to: [steroid], scope: site, window: 12 months, max: 3}
""")
    history = write("h.csv", "patient_id,date,site,side,drug,dose\n+P,2026-01-01,+neck,left,@kenalog,20 mg\n"
                             "+P,2026-01-01,+neck,left,-dex,2 mg\n")
    result = tpi("totals", history, "--rules", rules, "--on", "2026-03-01", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    header, *rows = parse_csv(result.stdout)
    records = [dict(zip(header, row, strict=True)) for row in rows]
    assert [(r["patient_id"], r["site"], r["by_drug"], r["all_time_by_drug"], r["reference_steroid"], r["mg_ref"])
            for r in records] == [("'+P", "'+neck", "'-dex=2.0; @kenalog=20.0", "'-dex=2.0; @kenalog=20.0", "'@kenalog",
                                   "30.67"), ("'+P", "(all sites)", "'-dex=2.0; @kenalog=20.0",
                                              "'-dex=2.0; @kenalog=20.0", "'@kenalog", "30.67")]


def test_csv_quoting_round_trips(tpi: Run, spec_rules: str, write: Write) -> None:
    path = write("h.csv", FORMULA_HISTORY)
    as_csv = tpi("validate", path, "--rules", spec_rules, "--format", "csv", "--patient", "plain")
    as_doc = tpi("validate", path, "--rules", spec_rules, "--format", "json", "--patient", "plain")
    (header, *rows) = parse_csv(as_csv.stdout)
    (row,) = rows
    record = dict(zip(header, row, strict=True))
    (violation,) = as_json(as_doc)["violations"]
    # a message with a comma and an override with quotes and a comma come back whole (RFC 4180)
    assert record["message"] == violation["message"]
    assert "," in record["message"]
    assert record["overridden"] == 'reason, with "quotes" and a comma'
    assert violation["overridden"] == 'reason, with "quotes" and a comma'
    # quoted fields, doubled quotes, CRLF or LF line ends: the raw text is what RFC 4180 writes
    assert '"reason, with ""quotes"" and a comma"' in as_csv.stdout


@pytest.mark.parametrize("patient", FORMULA_IDS)
def test_next_csv_neutralises_patient_id(tpi: Run, spec_rules: str, write: Write, patient: str) -> None:
    result = tpi("next", write("h.csv", FORMULA_HISTORY), "--rules", spec_rules, "--on", "2026-03-01",
                 "--patient", patient, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    header, *rows = parse_csv(result.stdout)
    assert {"site", "side", "dry", "anesthetic", "steroid", "steroid_mg_remaining"} <= set(header)
    column = header.index("patient_id")
    assert {row[column] for row in rows} == {f"'{patient}"}


def test_sites_csv(tpi: Run, write: Write, spec_rules: str) -> None:
    result = tpi("sites", "--rules", spec_rules, "--format", "csv")
    assert result.exit_code == 0
    header, *rows = parse_csv(result.stdout)
    assert header[:2] == ["name", "region"]
    by_name = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(by_name) == {"trapezius", "levator-scapulae", "infraspinatus", "interspinous-lumbar"}
    assert by_name["trapezius"]["region"] == "cervical"
    assert "upper trapezius" in by_name["trapezius"]["aliases"]
    # user text from a rules file that a spreadsheet would read as a formula
    rules = write("formula-rules.yaml", """\
version: 1
reference_steroid: triamcinolone
drugs:
  triamcinolone: {class: corticosteroid, equivalent_mg: 4}
sites:
  trapezius: {region: "@cervical", aliases: ["+HYPERLINK(x)", "-trap"]}
rules:
  - {id: iv, kind: min-interval, applies_to: any, scope: site, interval: 6 weeks}
""")
    result = tpi("sites", "--rules", rules, "--format", "csv")
    header, (row,) = parse_csv(result.stdout)[0], parse_csv(result.stdout)[1:]
    record = dict(zip(header, row, strict=True))
    assert record["region"] == "'@cervical"
    assert record["aliases"].startswith("'+HYPERLINK(x)")  # (a name holding '=' is refused: test_rules_file)
    assert not any(cell[:1] in "=+-@" and cell for cell in row)


def test_default_sites_list(tpi: Run) -> None:
    result = tpi("sites", "--format", "csv")
    assert result.exit_code == 0
    names = {row[0] for row in parse_csv(result.stdout)[1:]}
    assert names >= {"trapezius", "levator-scapulae", "rhomboid", "infraspinatus", "supraspinatus",
                     "sternocleidomastoid", "splenius-capitis", "erector-spinae", "quadratus-lumborum",
                     "gluteus-medius", "piriformis", "interspinous-lumbar"}


# --- CDS Hooks ----------------------------------------------------------------------------------------------------

CDS_RULES = """\
version: 1
reference_steroid: triamcinolone
drugs:
  triamcinolone: {class: corticosteroid, equivalent_mg: 4}
sites:
  trapezius: {region: cervical}
rules:
  - id: iv-a-rather-long-identifier-for-a-rule-so-that-summaries-must-be-shortened-x
    kind: min-interval
    applies_to: [steroid]
    scope: site
    interval: 6 weeks
    grace: 1 week
    source: "Interval source: a long citation, with commas, that goes on and on well past the length of a summary"
  - {id: pts, kind: max-points, applies_to: any, scope: session, max: 2, severity: warn, source: "Points source"}
"""
IV = "iv-a-rather-long-identifier-for-a-rule-so-that-summaries-must-be-shortened-x"


@pytest.mark.parametrize(
    ("on", "points", "code", "expected"),
    [
        # 1 Jan + 5 weeks = 5 Feb (grace starts), + 6 weeks = 12 Feb
        ("2026-02-01", "1", 1, [("critical", IV)]),
        ("2026-02-01", "3", 1, [("critical", IV), ("warning", "pts")]),
        ("2026-02-05", "1", 0, [("warning", IV)]),  # inside the grace period: allowed, warns (no info card)
        ("2026-02-12", "3", 0, [("warning", "pts")]),
        ("2026-02-12", "1", 0, [("info", None)]),  # allowed: one info card
    ],
)
def test_cds_hooks_cards(tpi: Run, write: Write, on: str, points: str, code: int,
                         expected: list[tuple[str, str | None]]) -> None:
    history = write("h.csv", HEADER + "P1,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\n")
    result = tpi("check", history, "--rules", write("rules.yaml", CDS_RULES), "--site", "left trapezius",
                 "--drug", "triamcinolone=20mg", "--points", points, "--on", on, "--format", "cds-hooks")
    assert result.exit_code == code
    cards = as_json(result)["cards"]
    assert [card["indicator"] for card in cards] == [indicator for indicator, _ in expected]
    sources = {IV: "Interval source: a long citation, with commas, that goes on and on well past the length of a "
                   "summary", "pts": "Points source"}
    for card, (_, rule_id) in zip(cards, expected, strict=True):
        assert set(card) >= {"summary", "indicator", "detail", "source"}
        assert len(card["summary"]) < 140
        assert card["summary"]
        assert isinstance(card["detail"], str)
        if rule_id is not None:
            assert card["source"]["label"] == sources[rule_id]
        else:
            assert card["source"]["label"]


@pytest.mark.parametrize(("weight", "said"), [
    ((), "lidocaine 100 mg of max 300 mg; no weight known: only max\\_mg applies"),
    (("--weight-kg", "50"), "lidocaine 100 mg of max 225 mg; weight 50 kg"),
])
def test_cds_hooks_info_card_gives_the_anesthetic_share_and_its_weight(tpi: Run, write: Write,
                                                                       weight: tuple[str, ...], said: str) -> None:
    # SPEC.md: without a weight "only max_mg applies, and the result says so"; the info card may be
    # all an EHR shows, so it says it too (and the share of the maximum, which the weight changes).
    history = write("h.csv", HEADER + "P1,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\n")
    result = tpi("check", history, "--site", "right trapezius", "--drug", "lidocaine=100mg", *weight,
                 "--on", "2026-11-28", "--format", "cds-hooks")
    assert result.exit_code == 0
    (card,) = as_json(result)["cards"]
    assert card["indicator"] == "info"
    assert "**anesthetic-dose**: local anesthetics at " in card["detail"]
    assert said in card["detail"]
    dry = tpi("check", history, "--site", "right trapezius", "--dry", "--on", "2026-11-28", "--format", "cds-hooks")
    (card,) = as_json(dry)["cards"]
    assert "anesthetic-dose" not in card["detail"]  # no local anesthetic: nothing to say


def test_cds_hooks_warning_cards_of_an_allowed_proposal_give_the_anesthetic_share(tpi: Run, write: Write) -> None:
    # Allowed with a warning (9 points, over points-per-session's 8): the warning card is all an EHR
    # shows, so it too says that no weight is known. A proposal that is not allowed says nothing of it.
    history = write("h.csv", HEADER + "P1,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\n")
    allowed = tpi("check", history, "--site", "right trapezius", "--drug", "lidocaine=100mg", "--points", "9",
                  "--on", "2026-11-28", "--format", "cds-hooks")
    assert allowed.exit_code == 0
    (card,) = as_json(allowed)["cards"]
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("points-per-session")
    assert "Also: **anesthetic-dose**: local anesthetics at " in card["detail"]
    assert "no weight known: only max\\_mg applies" in card["detail"]
    assert card["detail"].endswith("tpi supports, and does not replace, a clinician's judgement.")
    refused = tpi("check", history, "--site", "left trapezius", "--drug", "lidocaine=100mg", "--drug",
                  "triamcinolone=20mg", "--on", "2026-01-05", "--format", "cds-hooks")
    assert refused.exit_code == 1
    assert all("Also:" not in card["detail"] for card in as_json(refused)["cards"])


@pytest.mark.parametrize(("on", "indicator", "tail"), [
    ("2026-02-01", "critical", "; allowed from 2026-02-05"),  # fails until 1 Jan + (6 weeks - 1 week of grace)
    ("2026-02-05", "warning", " on 2026-02-05"),  # inside the grace period
])
def test_cds_hooks_summary_keeps_its_dates_when_cut(tpi: Run, write: Write, on: str, indicator: str,
                                                    tail: str) -> None:
    # A long rule id and a long site name: the summary is cut in the site, never in the dates.
    site = "a-very-long-site-name-for-a-muscle-" + "x" * 40
    rules = CDS_RULES.replace("  trapezius: {region: cervical}", f"  {site}: {{region: cervical}}")
    history = write("h.csv", HEADER + f"P1,2026-01-01,{site},left,triamcinolone,20 mg,,,\n")
    result = tpi("check", history, "--rules", write("rules.yaml", rules), "--site", site, "--side", "left",
                 "--drug", "triamcinolone=20mg", "--on", on, "--format", "cds-hooks")
    (card,) = [c for c in as_json(result)["cards"] if c["indicator"] == indicator]
    assert len(card["summary"]) == 139
    assert card["summary"].startswith(IV)
    assert card["summary"].endswith("…" + tail)


def test_cds_hooks_summary_counts_as_a_client_does(tpi: Run, write: Write) -> None:
    # CDS Hooks' "< 140 characters" is read by JavaScript clients, which count UTF-16 code units: a
    # letter outside the BMP (mathematical script here) counts two. Cut to 139 units, dates whole.
    site = "m" + "\U0001d4c9" * 80
    rules = CDS_RULES.replace("  trapezius: {region: cervical}", f"  {site}: {{region: cervical}}")
    history = write("h.csv", HEADER + f"P1,2026-01-01,{site},left,triamcinolone,20 mg,,,\n")
    result = tpi("check", history, "--rules", write("rules.yaml", rules), "--site", site, "--side", "left",
                 "--drug", "triamcinolone=20mg", "--on", "2026-02-01", "--format", "cds-hooks")
    for card in as_json(result)["cards"]:
        units = len(card["summary"].encode("utf-16-le")) // 2
        assert units <= 139, card["summary"]
        if card["indicator"] == "critical":
            assert units >= 138  # cut as late as the two-unit letters allow
            assert card["summary"].endswith("…; allowed from 2026-02-05")


def test_cds_hooks_on_the_readme_example(tpi: Run) -> None:
    result = tpi("check", str(EXAMPLES / "history.csv"), "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                 "--on", "2026-11-28", "--format", "cds-hooks")
    assert result.exit_code == 1
    cards = as_json(result)["cards"]
    json_rules = as_json(tpi("check", str(EXAMPLES / "history.csv"), "--site", "left trapezius", "--drug",
                             "triamcinolone=20mg", "--on", "2026-11-28", "--format", "json"))["rules"]
    failed = [r for r in json_rules if r["status"] == "fail"]
    warned = [r for r in json_rules if r["status"] == "warn"]
    assert sorted(card["indicator"] for card in cards) == sorted(["critical"] * len(failed) + ["warning"] * len(warned))
    # a long source may be shortened for the label (the full text is in the detail): a prefix of the rule's source
    for card, rule in zip(cards, failed + warned, strict=True):
        label = card["source"]["label"]
        assert rule["source"].startswith(label.removesuffix("…"))
        assert rule["source"] in card["detail"].replace("\\", "")
    assert all(len(card["summary"]) < 140 for card in cards)


# --- tables: user text printed as typed ------------------------------------------------------------------------------

MARKUP_HISTORY = HEADER + (
    "[bold]x,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\n"
    "[bold]x,2026-01-02,trapezius,left,triamcinolone,20 mg,,,[red]flare[/red]\n")


@pytest.mark.parametrize(
    ("command", "args", "needles"),
    [
        ("check", ("--site", "left trapezius", "--dry", "--on", "2026-03-01"), ["[bold]x"]),
        ("validate", (), ["[bold]x", "[red]flare[/red]"]),
        ("next", ("--on", "2026-03-01"), ["[bold]x"]),
        ("totals", ("--on", "2026-03-01"), ["[bold]x"]),
    ],
)
def test_table_prints_user_text_literally(tpi: Run, spec_rules: str, write: Write, command: str,
                                          args: tuple[str, ...], needles: list[str]) -> None:
    result = tpi(command, write("h.csv", MARKUP_HISTORY), "--rules", spec_rules, *args,
                 env={**PLAIN_80, "COLUMNS": "200"})
    assert result.exit_code in (0, 1), result.stderr
    for needle in needles:
        assert needle in result.stdout


def test_table_prints_rule_source_literally(tpi: Run, write: Write) -> None:
    rules = write("rules.yaml", CDS_RULES.replace("Points source", "[bold]Points[/bold] source"))
    history = write("h.csv", HEADER + "P1,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\n")
    result = tpi("check", history, "--rules", rules, "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                 "--on", "2026-03-01", env={**PLAIN_80, "COLUMNS": "200"})
    assert "[bold]Points[/bold] source" in result.stdout


def test_table_is_plain_when_not_a_terminal(tpi: Run) -> None:
    result = tpi("check", str(EXAMPLES / "history.csv"), "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                 "--on", "2026-11-28", env={"COLUMNS": "80"})
    assert "\x1b[" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_sites_table_of_many_sites_is_laid_out_plainly(tpi: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    # Above PLAIN_ROWS sites (50,023 took 16.8 s through rich, 1.6 s plain) the same cells, one line a site.
    from tpi_cli.render import table

    rich_lines = tpi("sites", env={"COLUMNS": "200"}).stdout.splitlines()
    monkeypatch.setattr(table, "PLAIN_ROWS", 0)
    plain = tpi("sites", env={"COLUMNS": "200"})
    assert plain.exit_code == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[0].split() == ["site", "region", "sides", "aliases", "SNOMED", "CT"]
    assert set(lines[1]) == {"\u2500"}
    rows = [line.split() for line in lines[2:] if line]
    assert rows == [line.split() for line in rich_lines[2:] if line]  # the same cells as rich's table
    assert rows[[row[0] for row in rows].index("trapezius")][:3] == ["trapezius", "cervical", "left/right"]


def test_output_that_stdout_cannot_encode_is_escaped_not_an_error(tmp_path: Path) -> None:
    # PYTHONIOENCODING=ascii, a Latin-1 locale: "\u2026" instead of an internal error half-way through
    # the report; JSON stays valid JSON (the escape is JSON's own, UTF-16 pairs beyond U+FFFF).
    import json
    import os
    import subprocess
    import sys

    history = tmp_path / "h.csv"
    history.write_text("patient_id,date,site,side,drug,dose\n" + "".join(
        f"P\u4e2d\U0001f600\u00e9,2026-01-{day},trapezius,left,triamcinolone,20 mg\n" for day in (10, 11)),
        encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TPI_")}
    for encoding in ("ascii", "latin-1"):
        environment["PYTHONIOENCODING"] = encoding
        done = subprocess.run([sys.executable, "-m", "tpi_cli", "validate", str(history), "--format", "json"],
                              capture_output=True, env=environment, check=False)
        assert (done.returncode, done.stderr) == (1, b"")
        document = json.loads(done.stdout.decode(encoding))
        assert document["violations"][0]["patient_id"] == "P\u4e2d\U0001f600\u00e9"
        done = subprocess.run([sys.executable, "-m", "tpi_cli", "check", str(EXAMPLES / "history.csv"), "--site",
                               "left trapezius", "--drug", "triamcinolone=20mg", "--on", "2026-11-28"],
                              capture_output=True, env=environment, check=False)
        assert (done.returncode, done.stderr) == (1, b""), done.stderr
        assert b"NOT YET" in done.stdout


# --- golden ---------------------------------------------------------------------------------------------------------

def test_golden_check_table(tpi: Run) -> None:
    result = tpi("check", "examples/history.csv", "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                 "--on", "2026-11-28", env=PLAIN_80)
    assert result.exit_code == 1, result.stderr
    golden = GOLDEN / "check_table.txt"
    if os.environ.get("TPI_REGEN_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == golden.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _in_repository(monkeypatch: Any) -> None:
    # the golden command names examples/history.csv relative to the repository, as the README does
    monkeypatch.chdir(EXAMPLES.parent)


# --- rules show and sites: every format exits 0 -------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_rules_show_and_sites_formats(tpi: Run, spec_rules: str, fmt: str) -> None:
    for command in (("rules", "show", spec_rules), ("sites", "--rules", spec_rules)):
        result = tpi(*command, "--format", fmt, env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.stderr
        assert result.stdout


@pytest.mark.parametrize(("profiles", "active"), [((), False), (("--profile", "medicare"), True)])
def test_rules_show_marks_profile_rules(tpi: Run, spec_rules: str, profiles: tuple[str, ...], active: bool) -> None:
    result = tpi("rules", "show", spec_rules, "--format", "csv", *profiles)
    records = {row["id"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert records["one-region"]["active"] == str(active).lower()
    assert records["steroid-interval"]["active"] == "true"
    assert records["steroid-interval"]["source"] == "test source"
    assert list(records["steroid-interval"])[-2:] == ["description", "source"]  # as in the JSON


def test_rules_show_says_a_session_rules_limit_is_per_session(tpi: Run) -> None:
    # A session rule's window is its day: "max 4 injections all time" would misread it.
    result = tpi("rules", "show", "--format", "table", env={"COLUMNS": "250"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "max 4 injections a session" in text
    assert "max 1 region a session" in text  # medicare-one-region: listed, though not active without its profile
    assert "all time" not in text


def test_rules_show_unknown_profile_exits_2(tpi: Run, spec_rules: str) -> None:
    result = tpi("rules", "show", spec_rules, "--profile", "medicar")
    assert result.exit_code == 2
    assert "did you mean 'medicare'" in result.stderr
    assert result.stdout == ""


def test_check_table_shows_the_rule_group_whole_with_short_ids(tpi: Run, write: Write) -> None:
    # The rule column is as wide as the longest id or group line ("payer medicare", "clinical, warn only").
    rules = write("r.yaml", SPEC_RULES.replace("id: steroid-interval", "id: a").replace("id: points", "id: bb")
                  .replace("id: one-region", "id: c"))
    history = write("h.csv", "patient_id,date,site,side,drug,dose\nP1,2026-02-01,trapezius,left,triamcinolone,20 mg\n")
    result = tpi("check", history, "--rules", rules, "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                 "--on", "2026-02-01", "--profile", "medicare", env={"COLUMNS": "100"})
    assert "clinical, warn only" in result.stdout
    assert "payer medicare" in result.stdout
    assert "…" not in result.stdout.split("payer profiles")[1].split("tpi supports")[0].replace("...", "")


def test_cds_hooks_card_gives_the_date_every_rule_allows(tpi: Run, write: Write) -> None:
    # Two rules fail: the interval passes from 12 Feb, the count (at most 2 in 3 months) from 1 Apr.
    # A card that said "allowed from 12 Feb" for the interval would let a clinician act too early.
    rules = CDS_RULES.replace(
        "  - {id: pts,",
        "  - {id: count, kind: max-count, applies_to: any, scope: site, window: 3 months, max: 2, source: \"C\"}\n"
        "  - {id: pts,", 1).replace(
        "  triamcinolone: {class: corticosteroid, equivalent_mg: 4}\n",
        "  triamcinolone: {class: corticosteroid, equivalent_mg: 4}\n  lidocaine: {class: anesthetic, max_mg: 300}\n", 1)
    history = write("h.csv", HEADER + "P1,2026-01-01,trapezius,left,triamcinolone,20 mg,,,\n"
                                      "P1,2026-01-10,trapezius,left,lidocaine,2 mL @ 1%,,,\n")
    args = ("check", history, "--rules", write("rules.yaml", rules), "--site", "left trapezius", "--drug",
            "triamcinolone=20mg", "--on", "2026-02-01")
    document = as_json(tpi(*args, "--format", "json"))
    assert document["earliest_date"] == "2026-04-01"  # 1 Jan + 3 months: the count drops the 1 Jan one
    assert {r["id"]: r["earliest_date"] for r in document["rules"] if r["status"] == "fail"} == \
        {IV: "2026-02-12", "count": "2026-04-01"}
    cards = as_json(tpi(*args, "--format", "cds-hooks"))["cards"]
    assert len(cards) == 2
    for card in cards:
        assert card["summary"].endswith("allowed from 2026-04-01")
        assert "- Earliest date every rule allows: 2026-04-01" in card["detail"]
    assert "- Earliest date this rule passes: 2026-02-12" in cards[0]["detail"]


def test_cds_hooks_blocked_card_without_a_failed_rule_ends_with_the_reminder() -> None:
    # Choice 18: every card's detail ends with the reminder. A blocked verdict always has a failed
    # rule's card today; the card made when it has none must end with it too.
    from datetime import date

    from tpi_cli.check import check, make_proposal
    from tpi_cli.model import PatientHistory
    from tpi_cli.quantity import parse_dose
    from tpi_cli.render.cds import check_cds
    from tpi_cli.render.common import DISCLAIMER
    from tpi_cli.rules_file import load_rules

    rules = load_rules(None)
    site, _ = rules.find_site("left trapezius")
    day = date(2026, 11, 28).toordinal()
    proposal = make_proposal("P1", day, site, "left", [(rules.find_drug("triamcinolone"), parse_dose("500 mg", mass_only=True))])
    result = check(rules, frozenset(), PatientHistory("P1", []), proposal, day, None)
    assert result.verdict == "blocked"  # 500 mg alone is over every per-site cap
    result.rules = [outcome for outcome in result.rules if outcome.status not in ("fail", "warn")]
    (card,) = json.loads(check_cds(result))["cards"]
    assert (card["indicator"], card["summary"]) == ("critical", "Blocked: valid on no date")
    assert card["detail"].endswith(DISCLAIMER)
