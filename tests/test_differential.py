"""Differential test: the real CLI (``tpi validate`` / ``tpi check`` / ``tpi next`` / ``tpi totals``,
``--format json``) against the brute-force reference evaluator in ``tests/reference.py``, on random
rules files and histories: validate's violations, summary, counts and exit code; check's verdict,
dates, per-rule status, earliest date and ``counted``, warnings, and the proposal's own keys
(patient, site, side, date, category, profiles, drugs with mg); next's rows; totals' rows.

The CI run is derandomized (fixed examples); set TPI_SLOW=1 for the long run (``-m slow``)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests import reference
from tests.conftest import ONE_SITE_RULES_HEAD
from tpi_cli.cli import cli
from tpi_cli.dates import Duration
from tpi_cli.history import read_patients
from tpi_cli.quantity import parse_dose
from tpi_cli.rules_file import parse_rules

# --- the fixed parts of every generated rules file -----------------------------------------------

SITES = {  # name: (region, lateral)
    "trapezius": ("cervical", True),
    "levator-scapulae": ("cervical", True),
    "infraspinatus": ("scapular", True),
    "interspinous-lumbar": ("lumbar", False),
}
STEROIDS = ["triamcinolone", "methylprednisolone", "dexamethasone", "betamethasone"]
ANESTHETICS = ["lidocaine", "bupivacaine", "ropivacaine"]
OTHERS = ["saline"]
STEROID_DOSES = ["20 mg", "40 mg", "10 mg", "4 mg", "3.75 mg", "500 mcg", "80 mg", "7.5 mg"]
ANESTHETIC_DOSES = ["3 mL @ 1%", "5 mL @ 2%", "10 mL @ 0.5%", "100 mg", "250 mg", "20 mL @ 1%", "2 mL @ 10 mg/mL"]
OTHER_DOSES = ["5 mL", "", "2 mL"]
PROFILES = ["medicare", "strict"]
CATEGORIES = ["steroid", "anesthetic", "other", "dry"]
WEIGHTS = ["70", "72.5", "50", "95", "40"]

DURATIONS_SHORT = ["1 day", "10 days", "14 days", "2 weeks", "6 weeks", "P6W", "1 month", "2 months",
                   "1 month 2 weeks", "3 months", "P1M", "29 days", "31 days"]
DURATIONS_LONG = ["6 months", "12 months", "1 year", "P1Y", "P1Y2M", "2 years", "13 months", "365 days"]
GRACES = ["0 days", "3 days", "1 week", "10 days", "1 month", "P2W"]


def ordinal(text: str) -> int:
    return date.fromisoformat(text).toordinal()


# --- strategies ----------------------------------------------------------------------------------

@st.composite
def dates(draw: Any, years: tuple[int, ...] = (2023, 2024, 2025)) -> str:
    """Dates biased towards month ends, 28 Feb / 29 Feb / 1 Mar and 31 Jan; now and then around
    2000 (a leap year) and 2100 (not one)."""
    year = draw(st.sampled_from(years)) if draw(st.integers(0, 15)) else draw(st.sampled_from([1999, 2000, 2099, 2100]))
    month = draw(st.one_of(st.sampled_from([1, 2, 2, 3]), st.integers(1, 12)))
    day = draw(st.one_of(st.sampled_from([28, 29, 30, 31, 1]), st.integers(1, 31)))
    while True:
        try:
            return date(year, month, day).isoformat()
        except ValueError:
            day -= 1


@st.composite
def dates_near(draw: Any, anchors: list[str]) -> str:
    """A date related to earlier ones: a whole number of months, weeks or days away, often a day or
    two off, or at a month end; sometimes unrelated."""
    if not anchors or draw(st.integers(0, 5)) == 0:
        return draw(dates())
    anchor = date.fromisoformat(draw(st.sampled_from(anchors)))
    how = draw(st.integers(0, 3))
    if how == 0:
        moved = anchor + relativedelta(months=draw(st.integers(-14, 14)))
    elif how == 1:
        moved = anchor + relativedelta(weeks=draw(st.integers(-8, 8)))
    elif how == 2:
        moved = anchor + relativedelta(years=draw(st.integers(-2, 2)))
    else:
        moved = anchor + relativedelta(days=draw(st.integers(-45, 45)))
    moved += relativedelta(days=draw(st.sampled_from([0, 0, 0, -1, 1, -2, 2])))
    return moved.isoformat()


@st.composite
def durations(draw: Any) -> str:
    return draw(st.one_of(st.sampled_from(DURATIONS_SHORT), st.sampled_from(DURATIONS_SHORT),
                          st.sampled_from(DURATIONS_LONG)))


@st.composite
def category_lists(draw: Any) -> str:
    if draw(st.integers(0, 4)) == 0:
        return "any"
    chosen = draw(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3, unique=True))
    return "[" + ", ".join(chosen) + "]"


@st.composite
def rule_texts(draw: Any, index: int, kinds: tuple[str, ...] = (), scopes: tuple[str, ...] = ()) -> str:
    kind = draw(st.sampled_from(list(kinds) or ["min-interval", "max-count", "max-steroid-dose", "anesthetic-dose",
                                                "max-points", "max-regions", "min-interval", "max-count",
                                                "max-steroid-dose"]))
    parts = [f"id: r{index}-{kind}", f"kind: {kind}"]
    if kind == "max-steroid-dose":
        applies = draw(st.sampled_from(["[steroid]", "[steroid]", "any", "[steroid, anesthetic]"]))
    else:
        applies = draw(category_lists())
    parts.append(f"applies_to: {applies}")
    if draw(st.booleans()):
        parts.append(f"counts: {draw(category_lists())}")
    session_kind = kind in ("anesthetic-dose", "max-points", "max-regions")
    if session_kind:
        if draw(st.booleans()):
            parts.append("scope: session")
    else:
        parts.append(f"scope: {draw(st.sampled_from(list(scopes) or ['site', 'site', 'region', 'patient', 'session']))}")
    base = None  # the interval or window a grace period shortens
    if kind == "min-interval":
        base = draw(durations())
        parts.append(f"interval: {base}")
    if kind in ("max-count", "max-steroid-dose") and draw(st.integers(0, 5)) > 0:
        base = draw(durations())
        parts.append(f"window: {base}")
    if kind == "max-count":
        parts.append(f"max: {draw(st.integers(0, 4))}")
        if draw(st.booleans()):
            parts.append(f"unit: {draw(st.sampled_from(['session', 'injection']))}")
    if kind == "max-steroid-dose":
        parts.append(f"max_mg: {draw(st.sampled_from(['40', '60', '80', '120', '3.75', '20', '0', '100.5']))}")
    if kind == "max-points":
        parts.append(f"max: {draw(st.integers(1, 8))}")
    if kind == "max-regions":
        parts.append(f"max: {draw(st.integers(1, 2))}")
    if base is not None and draw(st.integers(0, 2)) == 0:
        # tpi refuses a grace period that is not shorter than what it shortens, from every start date
        shorter = [g for g in GRACES if Duration.parse(base).minus(Duration.parse(g)).always_positive()]
        parts.append(f"grace: {draw(st.sampled_from(shorter))}")
    if draw(st.integers(0, 3)) == 0:
        parts.append("severity: warn")
    if draw(st.integers(0, 3)) == 0:
        chosen = draw(st.lists(st.sampled_from(PROFILES), min_size=1, max_size=2, unique=True))
        parts.append("profiles: [" + ", ".join(chosen) + "]")
    effective = until = None
    if draw(st.integers(0, 4)) == 0:
        effective = draw(dates((2023, 2024, 2025, 2026)))
    if draw(st.integers(0, 4)) == 0:
        until = draw(dates((2023, 2024, 2025, 2026)))
    if effective and until and until < effective:
        effective, until = until, effective
    if effective:
        parts.append(f"effective: {effective}")
    if until:
        parts.append(f"until: {until}")
    return "  - {" + ", ".join(parts) + "}\n"


@st.composite
def rules_files(draw: Any, scopes: tuple[str, ...] = ()) -> str:
    eq = {"triamcinolone": "4", "methylprednisolone": draw(st.sampled_from(["4", "5", "4.8"])),
          "dexamethasone": "0.75", "betamethasone": draw(st.sampled_from(["0.6", "0.75", "1.2"]))}
    reference_steroid = draw(st.sampled_from(["triamcinolone", "triamcinolone", "dexamethasone", "methylprednisolone"]))
    lines = ["version: 1", f"reference_steroid: {reference_steroid}", "drugs:"]
    lines += [f"  {name}: {{class: corticosteroid, equivalent_mg: {eq[name]}}}" for name in STEROIDS]
    lines += ["  lidocaine: {class: anesthetic, max_mg_per_kg: 4.5, max_mg: 300}",
              "  bupivacaine: {class: anesthetic, max_mg_per_kg: 2.5, max_mg: 175}",
              "  ropivacaine: {class: anesthetic, max_mg_per_kg: 3}",
              "  saline: {class: other}",
              "sites:"]
    lines += [f"  {name}: {{region: {region}, lateral: {'true' if lateral else 'false'}}}"
              for name, (region, lateral) in SITES.items()]
    lines.append("rules:")
    count = draw(st.integers(1, 6))
    return "\n".join(lines) + "\n" + "".join(draw(rule_texts(i, scopes=scopes)) for i in range(count))


@dataclass
class Shot:
    patient: str
    date: str
    site: str
    side: str
    drugs: list[tuple[str, str]] = field(default_factory=list)
    points: str = ""
    weight: str = ""
    override: str = ""


@st.composite
def drug_lists(draw: Any, max_size: int = 3, min_size: int = 0) -> list[tuple[str, str]]:
    kinds = draw(st.lists(st.sampled_from(["s", "a", "a", "o", "s"]), min_size=min_size, max_size=max_size))
    result: list[tuple[str, str]] = []
    for kind in kinds:
        if kind == "s":
            result.append((draw(st.sampled_from(STEROIDS)), draw(st.sampled_from(STEROID_DOSES))))
        elif kind == "a":
            result.append((draw(st.sampled_from(ANESTHETICS)), draw(st.sampled_from(ANESTHETIC_DOSES))))
        else:
            result.append(("saline", draw(st.sampled_from(OTHER_DOSES))))
    # saline at most once per injection (a volume and "no dose" of it cannot be summed)
    cleaned = []
    for name, dose in result:
        if name == "saline" and any(n == "saline" for n, _ in cleaned):
            continue
        cleaned.append((name, dose))
    return cleaned


@st.composite
def sides_for(draw: Any, site: str, proposal: bool = False) -> str:
    if not SITES[site][1]:
        return ""
    options = ["left", "right", "bilateral"] if proposal else ["left", "right", "bilateral", "", "L", "R", "B"]
    return draw(st.sampled_from(options))


@st.composite
def shots(draw: Any, patient: str, near: list[str], sites: tuple[str, ...] = ()) -> Shot:
    site = draw(st.sampled_from(list(sites or SITES)))
    when = draw(dates_near(near))
    shot = Shot(patient, when, site, draw(sides_for(site)), draw(drug_lists()))
    if draw(st.integers(0, 2)) == 0:
        shot.points = str(draw(st.integers(1, 6)))
    if draw(st.integers(0, 2)) == 0:
        shot.weight = draw(st.sampled_from(WEIGHTS))
    if draw(st.integers(0, 5)) == 0:
        shot.override = draw(st.sampled_from(["documented need", "second opinion"]))
    return shot


def _side_key(side: str) -> str:
    return {"L": "left", "R": "right", "B": "bilateral"}.get(side, side)


@st.composite
def histories(draw: Any, patients: tuple[str, ...] = ("P1", "P2", "P3"), sites: tuple[str, ...] = ()) -> list[Shot]:
    count = draw(st.integers(1, len(patients)))
    result: list[Shot] = []
    keys: set[tuple[str, str, str, str]] = set()
    for patient in patients[:count]:
        mine: list[str] = []
        for _ in range(draw(st.integers(0, 9))):
            shot = draw(shots(patient, mine, sites))
            key = (patient, shot.date, shot.site, _side_key(shot.side))
            if key in keys:
                continue
            keys.add(key)
            mine.append(shot.date)
            result.append(shot)
    return result


def interleave(text: str, data: Any) -> str:
    """The same CSV with the patients' rows interleaved at random, each patient's rows in order."""
    header, *lines = text.splitlines(keepends=True)
    queues: dict[str, list[str]] = {}
    for line in lines:
        queues.setdefault(line.split(",", 1)[0], []).append(line)
    result = []
    while queues:
        patient = data.draw(st.sampled_from(sorted(queues)))
        result.append(queues[patient].pop(0))
        if not queues[patient]:
            del queues[patient]
    return header + "".join(result)


def csv_text(shots: list[Shot], shuffle: Any = None, contiguous: bool = True) -> str:
    """One row per drug (a dry injection: one row without a drug); injection-wide fields on the first
    row, repeated or left empty on the others."""
    rows: list[list[str]] = []
    for shot in shots:
        drugs = shot.drugs or [("", "")]
        for position, (name, dose) in enumerate(drugs):
            repeat = position == 0 or (shuffle is not None and shuffle.draw(st.booleans()))
            rows.append([shot.patient, shot.date, shot.site, shot.side, name, dose,
                         shot.points if repeat else "", shot.weight if repeat else "",
                         shot.override if repeat else ""])
    if shuffle is not None and shuffle.draw(st.booleans()):
        rows = list(shuffle.draw(st.permutations(rows)))
        if contiguous:  # each patient's rows together (in the shuffled order within the patient)
            rows.sort(key=lambda row: row[0])
    header = "patient_id,date,site,side,drug,dose,points,weight_kg,override\n"
    return header + "".join(",".join(f'"{cell}"' if "," in cell else cell for cell in row) + "\n" for row in rows)


@dataclass
class Proposal:
    patient: str
    site: str
    side: str
    drugs: list[tuple[str, str]]
    on: str
    points: int | None
    weight: str | None
    profiles: list[str]


@st.composite
def proposals(draw: Any, shots: list[Shot], same_day: bool = False, sites: tuple[str, ...] = ()) -> Proposal:
    """``same_day``: half the time on a date of the patient's history (after its injections of
    that day), and mostly with a drug."""
    patients = sorted({s.patient for s in shots}) or [""]
    patient = draw(st.sampled_from(patients))
    mine = [s for s in shots if s.patient == patient]
    near = [s.date for s in mine]
    if mine and draw(st.booleans()):  # often where this patient has been injected, before or after
        like = draw(st.sampled_from(mine))
        site = like.site
        side = _side_key(like.side) or draw(sides_for(site, proposal=True))
    else:
        site = draw(st.sampled_from(list(sites or SITES)))
        side = draw(sides_for(site, proposal=True))
    on = draw(st.sampled_from(near)) if same_day and near and draw(st.booleans()) else draw(dates_near(near))
    wet = same_day and draw(st.integers(0, 3)) > 0
    drugs = [(name, dose) for name, dose in draw(drug_lists(2, min_size=1 if wet else 0)) if dose]
    return Proposal(patient, site, side, drugs, on,
                    draw(st.one_of(st.none(), st.integers(1, 6))),
                    draw(st.one_of(st.none(), st.none(), st.sampled_from(WEIGHTS))),
                    draw(st.lists(st.sampled_from(PROFILES), max_size=2, unique=True)))


# --- running both --------------------------------------------------------------------------------

RUNNER = CliRunner()


def run(*args: str) -> tuple[int, Any]:
    result = RUNNER.invoke(cli, list(args), env={"TPI_RULES": None, "TPI_PROFILE": None, "NO_COLOR": "1"},
                           catch_exceptions=False)
    assert result.exit_code in (0, 1), (args, result.exit_code, result.stderr)
    try:
        return result.exit_code, json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"not JSON: {args}\n{result.stdout}") from None


def usable_profiles(rules: Any, wanted: list[str]) -> list[str]:
    return [p for p in wanted if p in rules.profiles]


def cli_validate(rules_path: str, history_path: str, profiles: list[str]
                 ) -> tuple[int, set[tuple[Any, ...]], dict[str, Any]]:
    args = ["validate", history_path, "--rules", rules_path, "--format", "json"]
    for profile in profiles:
        args += ["--profile", profile]
    code, document = run(*args)
    found = {(v["patient_id"], v["date"], v["site"], v["side"], v["rule"], v["severity"], v["overridden"])
             for v in document["violations"]}
    assert len(found) == len(document["violations"]), "a violation reported twice"
    return code, found, document


def cli_check(rules_path: str, history_path: str, proposal: Proposal, profiles: list[str],
              patient: str | None = None
              ) -> tuple[int, tuple[str, str | None, dict[str, tuple[str, str | None]]], dict[str, Any]]:
    """(exit code, (verdict, earliest date, {rule id: (status, earliest date)}), the whole JSON
    document). ``patient``: the ``--patient`` option, if any."""
    args = ["check", history_path, "--rules", rules_path, "--format", "json", "--site", proposal.site,
            "--on", proposal.on]
    if patient is not None:
        args += ["--patient", patient]
    if proposal.side:
        args += ["--side", proposal.side]
    if proposal.drugs:
        for name, dose in proposal.drugs:
            args += ["--drug", f"{name}={dose}"]
    else:
        args.append("--dry")
    if proposal.points is not None:
        args += ["--points", str(proposal.points)]
    if proposal.weight is not None:
        args += ["--weight-kg", proposal.weight]
    for profile in profiles:
        args += ["--profile", profile]
    code, document = run(*args)
    per_rule = {r["id"]: (r["status"], r["earliest_date"]) for r in document["rules"]}
    return code, (document["verdict"], document["earliest_date"], per_rule), document


def proposal_drugs(rules: Any, proposal: Proposal) -> dict[Any, Any]:
    """{Drug: Amount}, a drug given twice summed, in the order first given."""
    drugs: dict[Any, Any] = {}
    for name, dose in proposal.drugs:
        drug = rules.drugs[name]
        amount = parse_dose(dose, mass_only=drug.drug_class != "other")
        drugs[drug] = amount if drug not in drugs else drugs[drug].plus(amount)
    return drugs


def reference_check(rules: Any, history: Any, proposal: Proposal, profiles: list[str],
                    own_on: dict[str, str] | None = None, counted_on: dict[str, list[str]] | None = None,
                    on_only: bool = False) -> tuple[str, str | None, dict[str, tuple[str, str | None]]]:
    site = rules.sites[proposal.site]
    weight = Fraction(proposal.weight) if proposal.weight is not None else None
    return reference.check(rules, frozenset(profiles), history, site, proposal.side or None,
                           proposal_drugs(rules, proposal), proposal.points, ordinal(proposal.on), weight, own_on,
                           counted_on=counted_on, on_only=on_only)


CHECK_HEADER = ("patient_id", "site", "side", "on", "category", "profiles", "drugs")


def patient_option(data: Any, parsed: list[Any], proposal: Proposal) -> tuple[str | None, str | None]:
    """(``--patient`` for check, None: not given; the ``patient_id`` check then reports). A history of
    several patients needs it; one of one patient may leave it out; an empty history accepts any
    (README choice 21)."""
    if not parsed:
        given = data.draw(st.sampled_from([None, "P9"]), label="patient")
        return given, given
    if len(parsed) == 1 and data.draw(st.booleans(), label="leave out --patient"):
        return None, proposal.patient
    return proposal.patient, proposal.patient


def compare_check_details(rules: Any, patient_id: str | None, proposal: Proposal, profiles: list[str],
                          document: dict[str, Any], counted_on: dict[str, list[str]]) -> None:
    """The rest of ``check --format json`` against the reference: the proposal's own keys
    (``check_header``), each rule's ``counted`` (README choice 4), ``warnings`` (one per rule whose
    status is ``warn``, in the rules' order, each starting with its id) and the rules' ids, kinds,
    severities and profiles in the file's order."""
    want = reference.check_header(rules, frozenset(profiles), patient_id, rules.sites[proposal.site],
                                  proposal.side or None, proposal_drugs(rules, proposal), ordinal(proposal.on))
    got = {key: document[key] for key in CHECK_HEADER}
    assert got == want, f"check header differs for {proposal}\nCLI:       {got}\nreference: {want}"
    assert document["schema_version"] == 1
    assert document["reference_steroid"] == rules.reference_steroid.name
    assert [(r["id"], r["kind"], r["severity"], r["profiles"]) for r in document["rules"]] == [
        (r.id, r.kind, r.severity, sorted(r.profiles)) for r in rules.rules]
    got_counted = {r["id"]: r["counted"] for r in document["rules"]}
    assert got_counted == counted_on, f"counted differs for {proposal}\n" + "\n".join(
        f"{rule_id}: CLI {got_counted[rule_id]}, reference {counted_on[rule_id]}"
        for rule_id in counted_on if got_counted.get(rule_id) != counted_on[rule_id])
    warned = [r["id"] for r in document["rules"] if r["status"] == "warn"]
    assert len(document["warnings"]) == len(warned), (document["warnings"], warned)
    for text, rule_id in zip(document["warnings"], warned, strict=True):
        assert text.startswith(f"{rule_id}: "), (text, rule_id)


def history_of(histories: list[Any], patient: str) -> Any:
    from tpi_cli.model import PatientHistory

    if not patient:
        assert not histories
        return PatientHistory(None, [], [])
    for history in histories:
        if history.patient_id == patient:
            return history
    return PatientHistory(patient, [], [])


def proposal_ok(proposal: Proposal) -> bool:
    """The CLI refuses a proposal whose drugs repeat with mismatched dose kinds (a mass and a
    volume cannot be summed); skip those. A drug repeated with doses of one kind is summed."""
    kinds: dict[str, str] = {}
    for name, dose in proposal.drugs:
        kind = parse_dose(dose, mass_only=name not in OTHERS).kind
        if kinds.setdefault(name, kind) != kind:
            return False
    return True


def compare(data: Any, scopes: tuple[str, ...] = (), sites: tuple[str, ...] = ()) -> None:
    """``scopes``, ``sites``: only rules of those scopes, only injections and proposals at those
    sites."""
    rules_text = data.draw(rules_files(scopes), label="rules")
    shots_ = data.draw(histories(sites=sites) if sites else histories(), label="history")
    with tempfile.TemporaryDirectory() as tmp:
        rules_path = str(Path(tmp) / "rules.yaml")
        history_path = str(Path(tmp) / "history.csv")
        Path(rules_path).write_text(rules_text, encoding="utf-8")
        history_text = csv_text(shots_, data)
        Path(history_path).write_text(history_text, encoding="utf-8")
        # the same rows with the patients' rows interleaved (each patient's in the same order)
        interleaved_path = str(Path(tmp) / "interleaved.csv")
        Path(interleaved_path).write_text(interleave(history_text, data), encoding="utf-8")
        rules = parse_rules(rules_text, rules_path)
        parsed = list(read_patients(history_path, rules))
        profiles = usable_profiles(rules, data.draw(st.lists(st.sampled_from(PROFILES), max_size=2, unique=True)))
        dump = os.environ.get("TPI_DIFF_DUMP")
        if dump:
            Path(dump, "rules.yaml").write_text(rules_text, encoding="utf-8")
            Path(dump, "history.csv").write_text(history_text, encoding="utf-8")

        validate_path = data.draw(st.sampled_from([history_path, interleaved_path]))
        code, got, document = cli_validate(rules_path, validate_path, profiles)
        want = reference.validate(rules, frozenset(profiles), parsed)
        assert got == want, f"validate differs\nonly CLI: {got - want}\nonly reference: {want - got}"
        summary = reference.validate_summary(want)
        assert document["summary"] == summary, (document["summary"], summary)
        assert code == (1 if summary["block"] else 0)
        assert (document["schema_version"], document["patients"], document["injections"]) == (
            1, len(parsed), sum(len(h.injections) for h in parsed))

        for _ in range(data.draw(st.integers(1, 2))):
            proposal = data.draw(proposals(shots_, sites=sites))
            if not proposal_ok(proposal):
                continue
            chosen = usable_profiles(rules, proposal.profiles)
            path = data.draw(st.sampled_from([history_path, interleaved_path]))
            patient, patient_id = patient_option(data, parsed, proposal)
            code, got_check, document = cli_check(rules_path, path, proposal, chosen, patient)
            history = history_of(parsed, proposal.patient)
            counted_on: dict[str, list[str]] = {}
            want_check = reference_check(rules, history, proposal, chosen, {}, counted_on)
            assert got_check == want_check, f"check differs for {proposal}\nCLI:       {got_check}\nreference: {want_check}"
            assert code == (0 if want_check[0] == "allowed" else 1)
            compare_check_details(rules, patient_id, proposal, chosen, document, counted_on)


NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)  # TPI_NO_SHRINK=1: report the first failure as found


def fixed_settings(examples: int) -> Any:
    """The CI run: derandomized, ``examples`` fixed examples."""
    return settings(derandomize=True, max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                    phases=NO_SHRINK if os.environ.get("TPI_NO_SHRINK") else tuple(Phase))


def long_run(test: Callable[[Any], None]) -> Any:
    """A long, random run of ``test(data)``: only with TPI_SLOW=1, TPI_SLOW_EXAMPLES examples (3000)."""
    run_long = settings(max_examples=int(os.environ.get("TPI_SLOW_EXAMPLES", "3000")), deadline=None,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])(
        given(st.data())(test))
    skipped = pytest.mark.skipif(os.environ.get("TPI_SLOW") != "1", reason="long run: set TPI_SLOW=1")
    return pytest.mark.slow(skipped(run_long))


@fixed_settings(200)
@given(st.data())
def test_cli_matches_reference(data: Any) -> None:
    compare(data)


@long_run
def test_cli_matches_reference_long(data: Any) -> None:
    compare(data)


@fixed_settings(150)
@given(st.data())
def test_cli_matches_reference_at_one_lateral_site(data: Any) -> None:
    """Site-scope rules, injections and proposals at one lateral site: every injection meets the
    others through its side (left, right, bilateral, unspecified). It did not find the case of
    test_a_wider_planned_injection_sees_the_other_sides_sessions in 3,000 examples (that needs a
    session count, a planned wider injection and another side's injection between them): the
    explicit test holds that one."""
    compare(data, scopes=("site",), sites=("trapezius",))


# --- tpi next and tpi totals against the reference -----------------------------------------------

@st.composite
def rules_files_with_defaults(draw: Any) -> str:
    """A random rules file (``rules_files``) with the ``defaults`` that ``tpi next`` proposes: a
    corticosteroid, sometimes with a local anesthetic; a local anesthetic, sometimes with another or
    saline (each form SPEC.md's rules file allows: one mapping or a list of them). Often one or two
    more max-steroid-dose rules, for ``steroid_mg_remaining``."""
    text = draw(rules_files())
    text += "".join(draw(rule_texts(100 + i, ("max-steroid-dose",))) for i in range(draw(st.integers(0, 2))))
    steroid = [(draw(st.sampled_from(STEROIDS)), draw(st.sampled_from(STEROID_DOSES)))]
    if draw(st.integers(0, 3)) == 0:
        steroid.append((draw(st.sampled_from(ANESTHETICS)), draw(st.sampled_from(ANESTHETIC_DOSES))))
    anesthetic = [(draw(st.sampled_from(ANESTHETICS)), draw(st.sampled_from(ANESTHETIC_DOSES)))]
    extra = draw(st.integers(0, 5))
    if extra == 0:
        anesthetic.append((draw(st.sampled_from([a for a in ANESTHETICS if a != anesthetic[0][0]])),
                           draw(st.sampled_from(ANESTHETIC_DOSES))))
    elif extra == 1:
        anesthetic.append(("saline", draw(st.sampled_from(["5 mL", "2 mL"]))))

    def entry(drugs: list[tuple[str, str]]) -> str:
        items = [f'{{drug: {name}, dose: "{dose}"}}' for name, dose in drugs]
        return items[0] if len(items) == 1 and draw(st.booleans()) else "[" + ", ".join(items) + "]"

    block = f"defaults:\n  steroid: {entry(steroid)}\n  anesthetic: {entry(anesthetic)}\n"
    return text.replace("drugs:\n", block + "drugs:\n", 1)


def write_case(tmp: str, rules_text: str, history_text: str, data: Any) -> tuple[str, str, str]:
    """(rules, history with each patient's rows together, the history the CLI reads: that one or the
    same rows with the patients interleaved)."""
    rules_path = str(Path(tmp) / "rules.yaml")
    history_path = str(Path(tmp) / "history.csv")
    interleaved_path = str(Path(tmp) / "interleaved.csv")
    Path(rules_path).write_text(rules_text, encoding="utf-8")
    Path(history_path).write_text(history_text, encoding="utf-8")
    Path(interleaved_path).write_text(interleave(history_text, data), encoding="utf-8")
    dump = os.environ.get("TPI_DIFF_DUMP")
    if dump:
        Path(dump, "rules.yaml").write_text(rules_text, encoding="utf-8")
        Path(dump, "history.csv").write_text(history_text, encoding="utf-8")
    return rules_path, history_path, data.draw(st.sampled_from([history_path, interleaved_path]))


NEXT_ROW = ("site", "side", "dry", "anesthetic", "steroid", "steroid_mg_remaining")


def compare_next(data: Any) -> None:
    rules_text = data.draw(rules_files_with_defaults(), label="rules")
    shots_ = data.draw(histories(), label="history")
    with tempfile.TemporaryDirectory() as tmp:
        rules_path, history_path, cli_path = write_case(tmp, rules_text, csv_text(shots_, data), data)
        rules = parse_rules(rules_text, rules_path)
        parsed = list(read_patients(history_path, rules))
        patients = sorted({s.patient for s in shots_}) or [""]
        patient = data.draw(st.sampled_from(patients), label="patient")
        on = data.draw(dates_near([s.date for s in shots_ if s.patient == patient]), label="on")
        args = ["next", cli_path, "--rules", rules_path, "--format", "json", "--on", on]
        if patient:
            args += ["--patient", patient]
        only = None
        if data.draw(st.integers(0, 3)) == 0:  # --site, with a side word now and then
            site = data.draw(st.sampled_from(list(SITES)))
            side = data.draw(st.sampled_from(["", "left", "right"])) if SITES[site][1] else ""
            args += ["--site", f"{side} {site}".strip()]
            only = (rules.sites[site], side or None)
        weight = data.draw(st.one_of(st.none(), st.none(), st.sampled_from(WEIGHTS)), label="weight")
        if weight is not None:
            args += ["--weight-kg", weight]
        profiles = usable_profiles(rules, data.draw(st.lists(st.sampled_from(PROFILES), max_size=2, unique=True)))
        for profile in profiles:
            args += ["--profile", profile]

        code, document = run(*args)
        history = history_of(parsed, patient)
        want = reference.next_forecast(rules, frozenset(profiles), history, ordinal(on), only,
                                       Fraction(weight) if weight is not None else None)
        got = [{key: row[key] for key in NEXT_ROW} for row in document["sites"]]
        assert code == 0
        assert (document["schema_version"], document["patient_id"], document["on"]) == (1, patient or None, on)
        assert got == want, "next differs\n" + "\n".join(
            f"CLI:       {g}\nreference: {w}" for g, w in zip(got, want, strict=False) if g != w) + \
            f"\n(rows: CLI {len(got)}, reference {len(want)})"
        # the reference's budget (SPEC.md's reading), cross-checked with the rule statuses alone, the
        # way check decides: that dose is allowed (no blocking max-steroid-dose rule fails, on DATE or
        # for a planned injection), and 0.01 mg more would not pass cleanly
        for site, side in reference.next_places(rules, history, only):
            budget = reference.steroid_budget(rules, frozenset(profiles), history, site, side, ordinal(on))
            if not budget:
                continue
            args_ = (rules, frozenset(profiles), history, site, side, ordinal(on))
            assert reference.steroid_dose_outcome(*args_, budget) != reference.FAIL, (site.name, side, budget)
            assert reference.steroid_dose_outcome(*args_, budget + Fraction(1, 100)) in (
                reference.WARN, reference.FAIL), (site.name, side, budget)


TOTALS_KEYS = ("steroid_injections", "mg_ref", "by_drug", "all_time_injections", "all_time_mg_ref",
               "all_time_by_drug")


def compare_totals(data: Any) -> None:
    rules_text = data.draw(rules_files(), label="rules")
    shots_ = data.draw(histories(), label="history")
    with tempfile.TemporaryDirectory() as tmp:
        rules_path, history_path, cli_path = write_case(tmp, rules_text, csv_text(shots_, data), data)
        rules = parse_rules(rules_text, rules_path)
        parsed = list(read_patients(history_path, rules))
        on = data.draw(dates_near([s.date for s in shots_]), label="on")
        args = ["totals", cli_path, "--rules", rules_path, "--format", "json", "--on", on]
        patient = None
        if parsed and data.draw(st.integers(0, 3)) == 0:
            patient = data.draw(st.sampled_from([h.patient_id for h in parsed]), label="patient")
            args += ["--patient", patient]
        window_text = data.draw(st.one_of(st.none(), st.none(), durations()), label="window")
        if window_text is not None:
            args += ["--window", window_text]
        profiles = usable_profiles(rules, data.draw(st.lists(st.sampled_from(PROFILES), max_size=2, unique=True)))
        for profile in profiles:
            args += ["--profile", profile]

        code, document = run(*args)
        assert code == 0
        if window_text is not None:
            windows = [Duration.parse(window_text)]
        else:
            windows = reference.default_windows(rules, frozenset(profiles), ordinal(on))
        texts = [None if w is None else w.text for w in windows]
        assert document["window"] in texts, f"window: CLI {document['window']!r}, reference one of {texts}"
        chosen = parsed if patient is None else [h for h in parsed if h.patient_id == patient]
        want_rows, want_patients = reference.totals(rules, chosen, ordinal(on), windows[0])
        got_rows = {(r["patient_id"], r["site"], r["side"]): {k: r[k] for k in TOTALS_KEYS} for r in document["rows"]}
        got_patients = {p["patient_id"]: {k: p[k] for k in TOTALS_KEYS} for p in document["patients"]}
        assert len(got_rows) == len(document["rows"])
        assert len(got_patients) == len(document["patients"])
        assert (document["schema_version"], document["on"], document["reference_steroid"]) == (
            1, on, rules.reference_steroid.name)
        assert got_rows == want_rows, f"totals rows differ\nCLI:       {got_rows}\nreference: {want_rows}"
        assert got_patients == want_patients, \
            f"totals patients differ\nCLI:       {got_patients}\nreference: {want_patients}"


@fixed_settings(100)  # the reference tries every day for 3 proposals per row: about 35 s
@given(st.data())
def test_next_matches_reference(data: Any) -> None:
    compare_next(data)


@fixed_settings(200)  # about 15 s
@given(st.data())
def test_totals_matches_reference(data: Any) -> None:
    compare_totals(data)


@long_run
def test_next_and_totals_match_reference_long(data: Any) -> None:
    compare_next(data)
    compare_totals(data)


# --- check's counted lists, statuses on the date and validate's summary, on dense histories ------

@st.composite
def dense_histories(draw: Any, patients: tuple[str, ...] = ("P1", "P2")) -> list[Shot]:
    """Histories packed on a few dates a few weeks or months apart: sessions of several injections,
    windows holding many, so that ``counted`` lists are long. Now and then the first patient has
    more than 64 injections (where the engine files its scope lists differently)."""
    base = date.fromisoformat(draw(dates()))
    big = draw(st.integers(0, 7)) == 0
    pool = sorted({(base + relativedelta(months=draw(st.integers(-5, 5)),
                                         days=draw(st.sampled_from([0, 0, 0, -1, 1, 3, 7, 14])))).isoformat()
                   for _ in range(draw(st.integers(12, 16)) if big else draw(st.integers(2, 6)))})
    result: list[Shot] = []
    keys: set[tuple[str, str, str, str]] = set()
    for number, patient in enumerate(patients[:draw(st.integers(1, len(patients)))]):
        wanted = draw(st.integers(65, 72)) if big and number == 0 else draw(st.integers(0 if number else 1, 10))
        mine = 0
        for _ in range(wanted * 3):
            if mine == wanted:
                break
            site = draw(st.sampled_from(list(SITES)))
            shot = Shot(patient, draw(st.sampled_from(pool)), site, draw(sides_for(site)), draw(drug_lists(2)))
            key = (patient, shot.date, site, _side_key(shot.side))
            if key in keys:
                continue
            keys.add(key)
            if draw(st.integers(0, 2)) == 0:
                shot.points = str(draw(st.integers(1, 4)))
            if draw(st.integers(0, 4)) == 0:
                shot.weight = draw(st.sampled_from(WEIGHTS))
            if draw(st.integers(0, 5)) == 0:
                shot.override = "documented need"
            result.append(shot)
            mine += 1
    return result


def compare_dense(data: Any) -> None:
    """validate (violations, summary, counts, exit code) and check on its date (each rule's status,
    ``counted``, the proposal's keys, warnings, allowed or not) against the reference, on a dense
    history; check's earliest dates are left to ``compare``, whose search is slower."""
    rules_text = data.draw(rules_files(), label="rules")
    shots_ = data.draw(dense_histories(), label="history")
    with tempfile.TemporaryDirectory() as tmp:
        rules_path, history_path, cli_path = write_case(tmp, rules_text, csv_text(shots_, data), data)
        rules = parse_rules(rules_text, rules_path)
        parsed = list(read_patients(history_path, rules))
        profiles = usable_profiles(rules, data.draw(st.lists(st.sampled_from(PROFILES), max_size=2, unique=True)))
        code, got, document = cli_validate(rules_path, cli_path, profiles)
        want = reference.validate(rules, frozenset(profiles), parsed)
        assert got == want, f"validate differs\nonly CLI: {got - want}\nonly reference: {want - got}"
        summary = reference.validate_summary(want)
        assert document["summary"] == summary, (document["summary"], summary)
        assert code == (1 if summary["block"] else 0)
        assert (document["patients"], document["injections"]) == (len(parsed), sum(len(h.injections) for h in parsed))

        for _ in range(data.draw(st.integers(1, 3))):
            proposal = data.draw(proposals(shots_, same_day=True), label="proposal")
            if not proposal_ok(proposal):
                continue
            chosen = usable_profiles(rules, proposal.profiles)
            patient, patient_id = patient_option(data, parsed, proposal)
            code, (verdict, _, per_rule), document = cli_check(rules_path, cli_path, proposal, chosen, patient)
            history = history_of(parsed, proposal.patient)
            counted_on: dict[str, list[str]] = {}
            want_verdict, _, want_rules = reference_check(rules, history, proposal, chosen, None, counted_on,
                                                          on_only=True)
            got_status = {rule_id: status for rule_id, (status, _) in per_rule.items()}
            want_status = {rule_id: status for rule_id, (status, _) in want_rules.items()}
            assert got_status == want_status, f"check statuses differ for {proposal}\nCLI:       {got_status}\n" \
                f"reference: {want_status}"
            assert (verdict == "allowed") == (want_verdict == "allowed"), (verdict, want_verdict)
            assert code == (0 if want_verdict == "allowed" else 1)
            compare_check_details(rules, patient_id, proposal, chosen, document, counted_on)


@fixed_settings(150)  # about 15 s
@given(st.data())
def test_check_counted_and_validate_summary_match_reference(data: Any) -> None:
    compare_dense(data)


@long_run
def test_check_counted_and_validate_summary_match_reference_long(data: Any) -> None:
    compare_dense(data)


# --- minimal reproductions of the engine bugs the differential test found ------------------------

BUG_RULES = """\
version: 1
reference_steroid: triamcinolone
drugs:
  triamcinolone: {class: corticosteroid, equivalent_mg: 4}
sites:
  trapezius: {region: cervical}
rules:
  - {id: steroid-interval, kind: min-interval, applies_to: [steroid], counts: any, scope: site, interval: 6 weeks}
  - {id: steroid-dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, max_mg: 120}
"""


def test_skip_status_does_not_hide_a_planned_conflict(tmp_path: Path) -> None:
    """Found by the differential test (fixed since): the proposal alone is outside the rule
    (status skip) but makes a later planned injection fail it: the rule fails (README choice 6)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(BUG_RULES, encoding="utf-8")
    history = tmp_path / "history.csv"
    history.write_text("patient_id,date,site,side,drug,dose\nP1,2025-02-01,trapezius,left,triamcinolone,20 mg\n",
                       encoding="utf-8")
    code, document = run("check", str(history), "--rules", str(rules), "--site", "left trapezius", "--dry",
                         "--on", "2025-01-10", "--format", "json")
    assert (code, document["verdict"], document["earliest_date"]) == (1, "not-yet", "2025-02-01")
    rule = next(r for r in document["rules"] if r["id"] == "steroid-interval")
    assert (rule["status"], rule["earliest_date"]) == ("fail", "2025-02-01")


SESSIONS_RULES = ONE_SITE_RULES_HEAD + """\
  - {id: site-sessions, kind: max-count, applies_to: [steroid], counts: [steroid], scope: site, unit: session,
     window: 12 months, max: 3}
"""


def test_a_wider_planned_injection_sees_the_other_sides_sessions(tmp_path: Path) -> None:
    """Found by a review of the shared candidate days (5a20e1b; fixed since): the planned bilateral
    injection on 20 January counts both sides' sessions. A left proposal on 10 January, the day of
    the right-side one, joins that session and leaves it at 3 sessions (allowed); any other day
    from 6 to 19 January makes it 4. The 10th is a day on which the proposal's status changes
    though no injection in its own scope (left) is on it: it was missed, and 20 January given."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(SESSIONS_RULES, encoding="utf-8")
    history = tmp_path / "history.csv"
    history.write_text("patient_id,date,site,side,drug,dose\n"
                       "P1,2026-01-05,trapezius,left,triamcinolone,20 mg\n"
                       "P1,2026-01-10,trapezius,right,triamcinolone,20 mg\n"
                       "P1,2026-01-20,trapezius,bilateral,triamcinolone,20 mg\n", encoding="utf-8")
    code, document = run("check", str(history), "--rules", str(rules), "--site", "left trapezius", "--drug",
                         "triamcinolone=20mg", "--on", "2026-01-06", "--format", "json")
    assert (code, document["verdict"], document["earliest_date"]) == (1, "not-yet", "2026-01-10")
    (rule,) = document["rules"]
    assert (rule["status"], rule["earliest_date"]) == ("fail", "2026-01-10")
    code, document = run("check", str(history), "--rules", str(rules), "--site", "left trapezius", "--drug",
                         "triamcinolone=20mg", "--on", "2026-01-10", "--format", "json")
    assert document["verdict"] == "allowed"
    code, document = run("next", str(history), "--rules", str(rules), "--on", "2026-01-06", "--format", "json")
    steroid = {row["side"]: row["steroid"] for row in document["sites"]}
    assert steroid["left"] == "2026-01-10"
    parsed = parse_rules(SESSIONS_RULES, str(rules))
    (history_,) = read_patients(str(history), parsed)
    want = reference.next_forecast(parsed, frozenset(), history_, ordinal("2026-01-06"), None, None)
    assert [row["steroid"] for row in want if row["side"] == "left"] == ["2026-01-10"]


def test_validate_json_with_interleaved_patients(tmp_path: Path) -> None:
    """Found by the differential test (fixed since): validate --format json printed a stray ','
    when a patient's rows were not contiguous (the restart kept the JSON writer's separator)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(BUG_RULES, encoding="utf-8")
    history = tmp_path / "history.csv"
    history.write_text("patient_id,date,site,side,drug,dose\n"
                       "P1,2025-01-31,trapezius,left,triamcinolone,200 mg\n"
                       "P2,2025-01-31,trapezius,left,,\n"
                       "P1,2025-02-28,trapezius,left,,\n", encoding="utf-8")
    code, document = run("validate", str(history), "--rules", str(rules), "--format", "json")
    assert code == 1
    assert [(v["patient_id"], v["rule"]) for v in document["violations"]] == [("P1", "steroid-dose")]


def test_validate_reports_a_session_scoped_steroid_dose(tmp_path: Path) -> None:
    """Found by the differential test (fixed since): max-steroid-dose with ``scope: session`` was
    never reported by ``tpi validate`` (its screen had no branch for that kind)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(BUG_RULES.replace("scope: site, window: 12 months", "scope: session, window: 12 months"),
                     encoding="utf-8")
    history = tmp_path / "history.csv"
    history.write_text("patient_id,date,site,side,drug,dose\n"
                       "P1,2024-02-29,trapezius,left,triamcinolone,100 mg\n"
                       "P1,2024-02-29,trapezius,right,triamcinolone,40 mg\n", encoding="utf-8")
    code, document = run("validate", str(history), "--rules", str(rules), "--format", "json")
    assert code == 1
    assert [(v["date"], v["side"], v["rule"]) for v in document["violations"]] == [
        ("2024-02-29", "right", "steroid-dose")]


# --- regressions: disagreements with SPEC.md that the next / totals differential tests found ------

LATER_RULES = ONE_SITE_RULES_HEAD + """\
  - {id: site-dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, max_mg: 120,
     effective: 2025-06-01}
"""


def test_next_budget_counts_a_rule_in_force_only_later(tmp_path: Path) -> None:
    """A planned 100 mg at the left trapezius on 2025-06-10, under a 120 mg / 12 months rule in force
    from 2025-06-01. On 2025-05-01, check allows 20 mg there and refuses 21 mg (the planned injection
    would fail the rule); so the largest dose still allowed is 20 mg (next said null, no limit)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(LATER_RULES, encoding="utf-8")
    history = tmp_path / "history.csv"
    history.write_text("patient_id,date,site,side,drug,dose\nP1,2025-06-10,trapezius,left,triamcinolone,100 mg\n",
                       encoding="utf-8")
    common = ("--rules", str(rules), "--on", "2025-05-01", "--format", "json")
    for dose, verdict in (("20mg", "allowed"), ("21mg", "not-yet")):
        _, document = run("check", str(history), "--site", "left trapezius", "--drug", f"triamcinolone={dose}",
                          *common)
        assert document["verdict"] == verdict
    # the rule is not in force on the date (skip) but holds the proposal back: both said, with the
    # planned injection's total broken down
    message = document["rules"][0]["message"]
    assert message.startswith("in force from 2025-06-01, but it would make the planned injection on 2025-06-10 ")
    assert message.endswith("121 mg triamcinolone-equivalent at left trapezius in 12 months "
                            "(0 before + 21 proposed + 100 planned), more than 120 mg")
    parsed_rules = parse_rules(LATER_RULES, str(rules))
    (parsed,) = read_patients(str(history), parsed_rules)
    site = parsed_rules.sites["trapezius"]
    assert reference.steroid_budget(parsed_rules, frozenset(), parsed, site, "left", ordinal("2025-05-01")) == 20
    _, document = run("next", str(history), *common)
    left = next(row for row in document["sites"] if row["side"] == "left")
    assert left["steroid_mg_remaining"] == 20.0


def test_totals_default_window_with_a_windowless_rule(tmp_path: Path) -> None:
    """steroid-count has no window (SPEC.md: all time), steroid-dose 12 months: the longest window of
    the active steroid rules is all time, so the window totals include the 2020 injection (tpi took
    12 months)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(BUG_RULES.replace("  - {id: steroid-interval, kind: min-interval, applies_to: [steroid], counts: any, "
                                       "scope: site, interval: 6 weeks}",
                                       "  - {id: steroid-count, kind: max-count, applies_to: [steroid], scope: site, "
                                       "max: 3}"), encoding="utf-8")
    assert "steroid-count" in rules.read_text(encoding="utf-8")
    history = tmp_path / "history.csv"
    history.write_text("patient_id,date,site,side,drug,dose\n"
                       "P1,2020-01-01,trapezius,left,triamcinolone,40 mg\n"
                       "P1,2025-01-01,trapezius,left,triamcinolone,20 mg\n", encoding="utf-8")
    _, document = run("totals", str(history), "--rules", str(rules), "--on", "2025-06-01", "--format", "json")
    assert document["window"] is None
    assert (document["patients"][0]["steroid_injections"], document["patients"][0]["mg_ref"]) == (2, 60.0)


def test_totals_default_window_is_the_longest_on_the_date(tmp_path: Path) -> None:
    """'31 days' is never shorter than '1 month'; on 2025-03-02 it still counts an injection of
    2025-02-01 (2025-02-01 + 31 days = 2025-03-04), which check's rule b counts too, while '1 month'
    (2025-02-01 + 1 month = 2025-03-01) does not. (tpi took '1 month', the first in the file.)"""
    rules = tmp_path / "rules.yaml"
    rules.write_text(BUG_RULES.replace(
        "  - {id: steroid-interval, kind: min-interval, applies_to: [steroid], counts: any, scope: site, "
        "interval: 6 weeks}\n  - {id: steroid-dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, "
        "window: 12 months, max_mg: 120}",
        "  - {id: a, kind: max-count, applies_to: [steroid], scope: site, window: 1 month, max: 3}\n"
        "  - {id: b, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 31 days, max_mg: 120}"),
        encoding="utf-8")
    assert "31 days" in rules.read_text(encoding="utf-8")
    history = tmp_path / "history.csv"
    history.write_text("patient_id,date,site,side,drug,dose\nP1,2025-02-01,trapezius,left,triamcinolone,40 mg\n",
                       encoding="utf-8")
    _, document = run("check", str(history), "--rules", str(rules), "--on", "2025-03-02", "--site", "left trapezius",
                      "--drug", "triamcinolone=100mg", "--format", "json")
    assert {r["id"]: r["counted"] for r in document["rules"]} == {"a": [], "b": ["2025-02-01"]}
    _, document = run("totals", str(history), "--rules", str(rules), "--on", "2025-03-02", "--format", "json")
    assert document["window"] == "31 days"
    assert (document["patients"][0]["steroid_injections"], document["patients"][0]["mg_ref"]) == (1, 40.0)


def test_check_drugs_round_half_up(tmp_path: Path) -> None:
    """check's ``drugs``: mg rounded half up to 2 decimals (README choice 20), ties included, which
    the random cases seldom reach: 7.5 mg methylprednisolone (equivalent 5) is 1.125 mg
    dexamethasone-equivalent (0.75), shown 1.13 (a binary float rounds 1.125 to 1.12); a drug that
    is not a corticosteroid has no mg_ref; an empty history takes any --patient."""
    rules_text = """\
version: 1
reference_steroid: dexamethasone
drugs:
  dexamethasone: {class: corticosteroid, equivalent_mg: 0.75}
  methylprednisolone: {class: corticosteroid, equivalent_mg: 5}
  lidocaine: {class: anesthetic, max_mg: 300}
sites:
  trapezius: {region: cervical}
rules:
  - {id: dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, max_mg: 10}
"""
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(rules_text, encoding="utf-8")
    history = tmp_path / "history.csv"
    history.write_text("patient_id,date,site,side,drug,dose\n", encoding="utf-8")
    proposal = Proposal("", "trapezius", "left", [("methylprednisolone", "7.5 mg"), ("dexamethasone", "0.125 mg"),
                                                  ("lidocaine", "5 mcg"), ("dexamethasone", "0.5 mg")],
                        "2025-01-01", None, None, [])
    _, _, document = cli_check(str(rules_path), str(history), proposal, [], "P7")
    assert document["drugs"] == [{"name": "methylprednisolone", "dose_mg": 7.5, "mg_ref": 1.13},
                                 {"name": "dexamethasone", "dose_mg": 0.63, "mg_ref": 0.63},
                                 {"name": "lidocaine", "dose_mg": 0.01, "mg_ref": None}]
    rules = parse_rules(rules_text, str(rules_path))
    want = reference.check_header(rules, frozenset(), "P7", rules.sites["trapezius"], "left",
                                  proposal_drugs(rules, proposal), ordinal("2025-01-01"))
    assert {key: document[key] for key in CHECK_HEADER} == want
    assert (want["patient_id"], want["category"]) == ("P7", "steroid")
