"""Rule semantics of SPEC.md "Words" and "Rules file", through `tpi check` and `tpi validate`.

Each test writes a small rules file with one or two rules, so that every expected date and dose can be
computed by hand; the arithmetic is in the comments. Dates follow SPEC.md: an interval rule allows `d`
iff `d >= p + interval`; an injection on `p` counts in a window at `d` iff `p <= d < p + window`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result

from tests.conftest import HEADER, as_json

RULES_HEAD = """\
version: 1
reference_steroid: triamcinolone
drugs:
  triamcinolone: {class: corticosteroid, equivalent_mg: 4}
  dexamethasone: {class: corticosteroid, equivalent_mg: 0.75}
  lidocaine: {class: anesthetic, max_mg_per_kg: 4.5, max_mg: 300}
  bupivacaine: {class: anesthetic, max_mg_per_kg: 2.5, max_mg: 175}
  saline: {class: other}
sites:
  trapezius: {region: cervical}
  levator-scapulae: {region: cervical}
  infraspinatus: {region: scapular}
  interspinous-lumbar: {region: lumbar, lateral: false}
rules:
"""

Run = Callable[..., Result]


def rules_with(*rules: str) -> str:
    return RULES_HEAD + "".join(f"  - {rule}\n" for rule in rules)


def row(date: str, site: str = "trapezius", side: str = "left", drug: str = "triamcinolone", dose: str = "20 mg",
        patient: str = "P1", points: str = "", weight: str = "", override: str = "") -> str:
    return f"{patient},{date},{site},{side},{drug},{dose},{points},{weight},{override}"


def history(*rows: str) -> str:
    return HEADER + "".join(f"{line}\n" for line in rows)


@pytest.fixture
def check(tpi: Run, write: Callable[[str, str], str]) -> Callable[..., tuple[int, Any]]:
    """check(rules_text, rows, *args) -> (exit code, JSON document)."""

    def _check(rules: str, rows: list[str], *args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
        rules_path = write("rules.yaml", rules)
        history_path = write("history.csv", history(*rows))
        result = tpi("check", history_path, "--rules", rules_path, "--format", "json", *args, env=env)
        assert result.exit_code in (0, 1), result.stderr
        return result.exit_code, as_json(result)

    return _check


@pytest.fixture
def validate(tpi: Run, write: Callable[[str, str], str]) -> Callable[..., tuple[int, Any]]:
    """validate(rules_text, rows, *args) -> (exit code, JSON document)."""

    def _validate(rules: str, rows: list[str], *args: str) -> tuple[int, Any]:
        rules_path = write("rules.yaml", rules)
        history_path = write("history.csv", history(*rows))
        result = tpi("validate", history_path, "--rules", rules_path, "--format", "json", *args)
        assert result.exit_code in (0, 1), result.stderr
        return result.exit_code, as_json(result)

    return _validate


def rule(document: Any, rule_id: str) -> Any:
    (found,) = [r for r in document["rules"] if r["id"] == rule_id]
    return found


def steroid_interval(interval: str, extra: str = "") -> str:
    return rules_with(f"{{id: iv, kind: min-interval, applies_to: [steroid], scope: site, interval: {interval}{extra}}}")


def assert_verdict(code: int, document: Any, verdict: str, earliest: str | None) -> None:
    assert document["verdict"] == verdict
    assert document["earliest_date"] == earliest
    assert code == (0 if verdict == "allowed" else 1)


# --- durations: calendar arithmetic from the original date, never chained ---------------------------------

@pytest.mark.parametrize(
    ("interval", "previous", "on", "earliest"),
    [
        # 31 Jan + 1 month = 28 Feb (2026 is not a leap year)
        ("1 month", "2026-01-31", "2026-02-27", "2026-02-28"),
        ("1 month", "2026-01-31", "2026-02-28", "2026-02-28"),
        # 2028 is a leap year: 31 Jan + 1 month = 29 Feb
        ("1 month", "2028-01-31", "2028-02-28", "2028-02-29"),
        ("1 month", "2028-01-31", "2028-02-29", "2028-02-29"),
        # 31 Jan + 2 months = 31 Mar (chained 1 month + 1 month would give 28 Mar)
        ("2 months", "2026-01-31", "2026-03-28", "2026-03-31"),
        ("2 months", "2026-01-31", "2026-03-30", "2026-03-31"),
        ("P1M", "2026-03-31", "2026-04-29", "2026-04-30"),
        # 31 Jan + (1 month 2 weeks) = 28 Feb + 14 days = 14 Mar
        ("1 month 2 weeks", "2026-01-31", "2026-03-13", "2026-03-14"),
        # 31 Dec 2025 + 1 year 2 months = 31 Feb 2027, clipped to 28 Feb 2027
        ("P1Y2M", "2025-12-31", "2027-02-27", "2027-02-28"),
        # 25 Feb + 10 days = 7 Mar (February 2026 has 28 days)
        ("10 days", "2026-02-25", "2026-03-06", "2026-03-07"),
        # leap day + 1 year / 12 months = 28 Feb 2025; + 4 years = 29 Feb 2028
        ("1 year", "2024-02-29", "2025-02-27", "2025-02-28"),
        ("12 months", "2024-02-29", "2025-02-28", "2025-02-28"),
        ("4 years", "2024-02-29", "2028-02-28", "2028-02-29"),
        # 1 Jan + 6 weeks = 1 Jan + 42 days = 12 Feb
        ("6 weeks", "2026-01-01", "2026-02-11", "2026-02-12"),
        ("6 weeks", "2026-01-01", "2026-02-12", "2026-02-12"),
        ("P6W", "2026-01-01", "2026-02-11", "2026-02-12"),
    ],
)
def test_min_interval_calendar_edges(check: Any, interval: str, previous: str, on: str, earliest: str) -> None:
    code, document = check(steroid_interval(interval), [row(previous)],
                           "--site", "left trapezius", "--drug", "triamcinolone=20mg", "--on", on)
    expected = "allowed" if on == earliest else "not-yet"
    assert_verdict(code, document, expected, earliest)
    iv = rule(document, "iv")
    assert iv["status"] == ("pass" if expected == "allowed" else "fail")
    assert iv["earliest_date"] == earliest
    assert iv["counted"] == [previous]


@pytest.mark.parametrize(
    ("window", "previous", "on", "counted"),
    [
        # 1 Mar + 10 days = 11 Mar: still counted on 10 Mar (p + window - 1), dropped on 11 Mar
        ("10 days", "2026-03-01", "2026-03-01", True),
        ("10 days", "2026-03-01", "2026-03-10", True),
        ("10 days", "2026-03-01", "2026-03-11", False),
        # 29 Feb 2024 + 12 months = 28 Feb 2025
        ("12 months", "2024-02-29", "2025-02-27", True),
        ("12 months", "2024-02-29", "2025-02-28", False),
        # 31 Jan + 1 month = 28 Feb
        ("1 month", "2026-01-31", "2026-02-27", True),
        ("1 month", "2026-01-31", "2026-02-28", False),
    ],
)
def test_window_drops_an_injection_on_p_plus_window(check: Any, validate: Any, window: str, previous: str, on: str,
                                                    counted: bool) -> None:
    rules = rules_with(f"{{id: cnt, kind: max-count, applies_to: [steroid], scope: site, window: {window}, max: 1}}")
    code, document = check(rules, [row(previous)], "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                           "--on", on)
    cnt = rule(document, "cnt")
    assert cnt["counted"] == ([previous] if counted else [])
    assert cnt["status"] == ("fail" if counted else "pass")
    if counted:
        # the first date on which the earlier injection has dropped out of the window is p + window
        drop = {"10 days": "2026-03-11", "12 months": "2025-02-28", "1 month": "2026-02-28"}[window]
        assert_verdict(code, document, "not-yet", drop)
        assert cnt["earliest_date"] == drop
    else:
        assert_verdict(code, document, "allowed", on)
    # the same pair as a recorded schedule: the violation is on the later injection, and only if counted
    code, report = validate(rules, [row(previous), row(on, side="bilateral")])
    violations = report["violations"]
    assert [(v["date"], v["rule"]) for v in violations] == ([(on, "cnt")] if counted else [])
    assert code == (1 if counted else 0)


def test_max_steroid_dose_window_drop(check: Any) -> None:
    # 100 mg on 1 Jan 2026; window 12 months: counted up to 31 Dec 2026, dropped on 1 Jan 2027
    rules = rules_with("{id: dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, "
                       "max_mg: 120}")
    args = ("--site", "left trapezius", "--drug", "triamcinolone=40mg")
    code, document = check(rules, [row("2026-01-01", dose="100 mg")], *args, "--on", "2026-12-31")
    assert_verdict(code, document, "not-yet", "2027-01-01")  # 100 + 40 = 140 > 120 until the drop
    code, document = check(rules, [row("2026-01-01", dose="100 mg")], *args, "--on", "2027-01-01")
    assert_verdict(code, document, "allowed", "2027-01-01")  # 40 <= 120


def test_counted_names_the_planned_injections_a_proposal_would_break(check: Any) -> None:
    # SPEC.md: "`counted` lists the dates of the injections that the rule counted." A proposal that
    # breaks a rule only through a planned (later) injection: that injection, and what the rule
    # counted with it besides the proposal, are what the rule counted.
    rules = rules_with("{id: dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, "
                       "max_mg: 60}",
                       "{id: iv, kind: min-interval, applies_to: [steroid], scope: site, interval: 90 days}")
    args = ("--site", "left trapezius", "--drug", "triamcinolone=50mg")
    # 50 proposed + 20 planned on 1 Jun = 70 > 60; 1 Mar + 90 days = 30 May, before 1 Jun: the interval passes
    code, document = check(rules, [row("2025-01-10", dose="5 mg"), row("2026-06-01")], *args, "--on", "2026-03-01")
    assert rule(document, "dose")["status"] == "fail"
    assert rule(document, "dose")["counted"] == ["2026-06-01"]  # the 2025 one is outside both windows
    assert rule(document, "iv")["status"] == "pass"
    assert rule(document, "iv")["counted"] == ["2025-01-10"]
    # a planned injection on 1 Apr: 1 Mar is then its latest counted, less than 90 days before
    code, document = check(rules, [row("2025-12-20", dose="5 mg"), row("2026-04-01", dose="5 mg")], *args,
                           "--on", "2026-03-25")
    interval = rule(document, "iv")
    assert interval["status"] == "fail"
    assert interval["counted"] == ["2025-12-20", "2026-04-01"]  # its own latest, and the planned one
    assert rule(document, "dose")["counted"] == ["2025-12-20"]  # 5 + 50 + 5 = 60: within, nothing broken
    assert code == 1


# --- grace (README choices 1 and 2) ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("on", "status", "verdict", "verdict_earliest"),
    [
        # 6 weeks - 1 week = 5 weeks: 1 Jan + 35 days = 5 Feb; 1 Jan + 42 days = 12 Feb
        ("2026-02-04", "fail", "not-yet", "2026-02-05"),
        ("2026-02-05", "warn", "allowed", "2026-02-05"),
        ("2026-02-11", "warn", "allowed", "2026-02-11"),
        ("2026-02-12", "pass", "allowed", "2026-02-12"),
    ],
)
def test_min_interval_grace_edges(check: Any, on: str, status: str, verdict: str, verdict_earliest: str) -> None:
    code, document = check(steroid_interval("6 weeks", ", grace: 1 week"), [row("2026-01-01")],
                           "--site", "left trapezius", "--drug", "triamcinolone=20mg", "--on", on)
    assert_verdict(code, document, verdict, verdict_earliest)
    iv = rule(document, "iv")
    assert iv["status"] == status
    # the rule's earliest date is its first strict pass, not the start of the grace period
    assert iv["earliest_date"] == "2026-02-12"
    assert bool(document["warnings"]) == (status == "warn")


@pytest.mark.parametrize(
    ("on", "status"),
    [
        # interval - grace = relativedelta(months=1, days=-3) from 31 Jan = 28 Feb - 3 days = 25 Feb
        # (taking the grace off p first would give 28 Jan + 1 month = 28 Feb)
        ("2026-02-24", "fail"),
        ("2026-02-25", "warn"),
        ("2026-02-27", "warn"),
        ("2026-02-28", "pass"),
    ],
)
def test_grace_at_a_month_end_is_one_relativedelta(check: Any, on: str, status: str) -> None:
    code, document = check(steroid_interval("1 month", ", grace: 3 days"), [row("2026-01-31")],
                           "--site", "left trapezius", "--drug", "triamcinolone=20mg", "--on", on)
    assert rule(document, "iv")["status"] == status
    assert code == (1 if status == "fail" else 0)


@pytest.mark.parametrize(
    ("on", "status", "verdict", "verdict_earliest"),
    [
        # one injection on 15 Mar 2025, max 1 in 12 months, grace 1 month. Over the limit while
        # p <= d < p + 12 months = 15 Mar 2026; not over a window shortened by the grace (11 months)
        # from p + 11 months = 15 Feb 2026.
        ("2026-02-14", "fail", "not-yet", "2026-02-15"),
        ("2026-02-15", "warn", "allowed", "2026-02-15"),
        ("2026-03-14", "warn", "allowed", "2026-03-14"),
        ("2026-03-15", "pass", "allowed", "2026-03-15"),
    ],
)
def test_max_count_grace_edges(check: Any, on: str, status: str, verdict: str, verdict_earliest: str) -> None:
    rules = rules_with("{id: cnt, kind: max-count, applies_to: [steroid], scope: site, window: 12 months, max: 1, "
                       "grace: 1 month}")
    code, document = check(rules, [row("2025-03-15")], "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                           "--on", on)
    assert_verdict(code, document, verdict, verdict_earliest)
    cnt = rule(document, "cnt")
    assert cnt["status"] == status
    assert cnt["earliest_date"] == "2026-03-15"


@pytest.mark.parametrize(("second", "severity", "code"), [("2026-02-04", "block", 1), ("2026-02-05", "warn", 0)])
def test_validate_reports_grace_as_warn(validate: Any, second: str, severity: str, code: int) -> None:
    exit_code, report = validate(steroid_interval("6 weeks", ", grace: 1 week"),
                                 [row("2026-01-01"), row(second)])
    assert [(v["date"], v["severity"]) for v in report["violations"]] == [(second, severity)]
    assert exit_code == code


# --- sides ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("recorded", "proposed", "overlap"),
    [
        ("left", "left", True),
        ("left", "right", False),
        ("right", "left", False),
        ("bilateral", "left", True),
        ("bilateral", "right", True),
        ("", "left", True),  # an unknown side counts against both sides
        ("", "right", True),
        ("left", "bilateral", True),
        ("right", "bilateral", True),
        ("L", "left", True),
        ("B", "right", True),
    ],
)
def test_side_overlap(check: Any, recorded: str, proposed: str, overlap: bool) -> None:
    # 1 Jan + 6 weeks = 12 Feb
    code, document = check(steroid_interval("6 weeks"), [row("2026-01-01", side=recorded)],
                           "--site", "trapezius", "--side", proposed, "--drug", "triamcinolone=20mg",
                           "--on", "2026-01-15")
    if overlap:
        assert_verdict(code, document, "not-yet", "2026-02-12")
        assert rule(document, "iv")["counted"] == ["2026-01-01"]
    else:
        assert_verdict(code, document, "allowed", "2026-01-15")
        assert rule(document, "iv")["counted"] == []


@pytest.mark.parametrize(("first", "second", "violation"),
                         [("left", "", True), ("", "right", True), ("right", "left", False), ("bilateral", "", True)])
def test_validate_unknown_side_counts_against_both(validate: Any, first: str, second: str, violation: bool) -> None:
    code, report = validate(steroid_interval("6 weeks"), [row("2026-01-01", side=first), row("2026-01-15", side=second)])
    assert len(report["violations"]) == (1 if violation else 0)
    assert code == (1 if violation else 0)


@pytest.mark.parametrize(
    ("recorded_side", "proposed_side", "dose", "status"),
    [
        # a bilateral 60 mg counts in full against each side: 60 + 60 = 120 = max_mg, within the limit
        ("bilateral", "left", "60mg", "pass"),
        ("bilateral", "right", "60mg", "pass"),
        ("bilateral", "left", "61mg", "fail"),  # 121 > 120
        ("bilateral", "right", "61mg", "fail"),
        ("", "right", "61mg", "fail"),  # unspecified: the same
        ("left", "right", "100mg", "pass"),  # left does not count against right: 100 <= 120
        ("left", "left", "61mg", "fail"),
    ],
)
def test_bilateral_dose_counts_in_full_on_each_side(check: Any, recorded_side: str, proposed_side: str, dose: str,
                                                    status: str) -> None:
    rules = rules_with("{id: dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, "
                       "max_mg: 120}")
    code, document = check(rules, [row("2026-01-01", side=recorded_side, dose="60 mg")],
                           "--site", f"{proposed_side} trapezius", "--drug", f"triamcinolone={dose}",
                           "--on", "2026-02-01")
    assert rule(document, "dose")["status"] == status
    assert code == (0 if status == "pass" else 1)


def test_a_bilateral_or_unknown_side_injection_counts_both_sides_together(check: Any, validate: Any) -> None:
    # README choice 5: SPEC.md's overlap is pairwise, so a site rule evaluating a bilateral (or
    # unspecified) injection counts the left and the right injections in one total, the safe
    # reading (it never counts less than a per-side total would).
    rules = rules_with("{id: dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, "
                       "max_mg: 60}")
    rows = [row("2025-01-01", side="left", dose="40 mg"), row("2025-01-02", side="right", dose="10 mg")]
    code, document = check(rules, rows, "--site", "trapezius", "--side", "bilateral", "--drug", "triamcinolone=10mg",
                           "--on", "2025-02-01")
    assert rule(document, "dose")["status"] == "pass"  # 40 + 10 + 10 = 60, on the limit
    code, document = check(rules, rows, "--site", "trapezius", "--side", "bilateral", "--drug", "triamcinolone=20mg",
                           "--on", "2025-02-01")
    assert rule(document, "dose")["counted"] == ["2025-01-01", "2025-01-02"]
    assert_verdict(code, document, "not-yet", "2026-01-01")  # 70 > 60 until the left 40 mg drops out
    code, document = validate(rules, [*rows, row("2025-03-01", side="", dose="20 mg")])
    (violation,) = document["violations"]
    assert violation["message"] == ("70 mg triamcinolone-equivalent at trapezius (side unspecified) in 12 months "
                                    "(50 before + 20 now), more than 60 mg")
    assert code == 1


def test_a_proposal_on_a_recorded_injections_date_site_and_side_is_a_second_injection(check: Any,
                                                                                       validate: Any) -> None:
    # README choice 23: the proposal comes after the day's history injections and is not merged into
    # the recorded one (a second needle that day); in a history the same two rows are one injection
    rules = rules_with("{id: iv, kind: min-interval, applies_to: [steroid, anesthetic], scope: site, "
                       "interval: 7 days}")
    rows = [row("2025-03-02", dose="20 mg")]
    code, document = check(rules, rows, "--site", "left trapezius", "--drug", "lidocaine=30mg", "--on", "2025-03-02")
    assert rule(document, "iv")["counted"] == ["2025-03-02"]
    assert_verdict(code, document, "not-yet", "2025-03-09")
    code, document = validate(rules, [*rows, row("2025-03-02", drug="lidocaine", dose="30 mg")])
    assert (code, document["injections"], document["violations"]) == (0, 1, [])


def test_a_dose_message_shows_enough_decimals_to_be_over_the_limit(check: Any) -> None:
    # 30 mg + 1 mcg is over a 30 mg cap (exact arithmetic); "30 mg ..., more than 30 mg" would read as a
    # contradiction, so the message shows as many decimals as it takes
    rules = rules_with("{id: dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, max_mg: 30}")
    rows = [row("2025-01-01", dose="30 mg")]
    for dose, total, now in (("1mcg", "30.001", "0.001"), ("4mcg", "30.004", "0.004"), ("6mcg", "30.01", "0.01"),
                             ("1mg", "31", "1")):
        code, document = check(rules, rows, "--site", "left trapezius", "--drug", f"triamcinolone={dose}",
                               "--on", "2025-03-01")
        assert rule(document, "dose")["message"] == (f"{total} mg triamcinolone-equivalent at left trapezius over all time "
                                                     f"(30 before + {now} now), more than 30 mg")
        assert_verdict(code, document, "blocked", None)
    # within a limit that 2 decimals would round past: as many as it takes to read as within
    rules = rules_with("{id: dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, max_mg: 29.999}")
    code, document = check(rules, [row("2025-01-01", dose="29 mg")], "--site", "left trapezius",
                           "--drug", "triamcinolone=999mcg", "--on", "2025-03-01")
    assert rule(document, "dose")["message"] == ("29.999 mg triamcinolone-equivalent at left trapezius over all time "
                                                 "(29 before + 0.999 now), at most 29.999 mg")
    rules = rules_with("{id: dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, max_mg: 30}")
    # within the limit: 2 decimals, as everywhere
    code, document = check(rules, [row("2025-01-01", dose="10 mg")], "--site", "left trapezius",
                           "--drug", "dexamethasone=1mg", "--on", "2025-03-01")
    assert rule(document, "dose")["message"] == ("15.33 mg triamcinolone-equivalent at left trapezius over all time "
                                                 "(10 before + 5.33 now), at most 30 mg")


def test_a_count_message_names_an_evaluated_injection_the_rule_does_not_count(check: Any) -> None:
    # SPEC.md: the evaluated injection is always included; a steroid one under a rule that counts
    # local anesthetic injections is not called one of them
    rules = rules_with("{id: b, kind: max-count, applies_to: [steroid], counts: [anesthetic], scope: patient, "
                       "window: 12 months, max: 1}")
    rows = [row("2025-02-01", side="right", drug="lidocaine", dose="20 mg")]
    code, document = check(rules, rows, "--site", "left trapezius", "--drug", "triamcinolone=10mg",
                           "--on", "2025-03-01")
    assert rule(document, "b")["message"] == ("2 injections in 12 months: 1 local anesthetic injection and this "
                                              "corticosteroid one, more than 1")
    assert_verdict(code, document, "not-yet", "2026-02-01")
    rules = rules_with("{id: b, kind: max-count, applies_to: [steroid], counts: [anesthetic], scope: patient, "
                       "window: 12 months, max: 0}")
    code, document = check(rules, [], "--site", "left trapezius", "--drug", "triamcinolone=10mg", "--on", "2025-03-01")
    assert rule(document, "b")["message"] == ("1 injection in 12 months: 0 local anesthetic injections and this "
                                              "corticosteroid one, more than 0")


# --- sites without sides ----------------------------------------------------------------------------------------

def test_lateral_false_site_has_no_sides(check: Any) -> None:
    code, document = check(steroid_interval("6 weeks"), [row("2026-01-01", site="interspinous-lumbar", side="")],
                           "--site", "interspinous-lumbar", "--drug", "triamcinolone=20mg", "--on", "2026-01-15")
    assert_verdict(code, document, "not-yet", "2026-02-12")
    assert document["side"] is None
    assert rule(document, "iv")["counted"] == ["2026-01-01"]


@pytest.mark.parametrize("site_args", [("--site", "left interspinous-lumbar"),
                                       ("--site", "interspinous-lumbar", "--side", "right")])
def test_side_on_lateral_false_site_is_refused_in_check(tpi: Run, write: Any, site_args: tuple[str, ...]) -> None:
    rules_path = write("rules.yaml", steroid_interval("6 weeks"))
    history_path = write("history.csv", history(row("2026-01-01")))
    result = tpi("check", history_path, "--rules", rules_path, *site_args, "--drug", "triamcinolone=20mg",
                 "--on", "2026-01-15")
    assert result.exit_code == 2
    assert "interspinous-lumbar" in result.stderr
    assert result.stdout == ""


def test_side_on_lateral_false_site_is_refused_in_history(tpi: Run, write: Any) -> None:
    rules_path = write("rules.yaml", steroid_interval("6 weeks"))
    history_path = write("history.csv", history(row("2026-01-01", site="interspinous-lumbar", side="left")))
    result = tpi("validate", history_path, "--rules", rules_path)
    assert result.exit_code == 2
    assert "history.csv:2" in result.stderr
    assert result.stdout == ""


# --- scopes ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("scope", "site", "on", "counted"),
    [
        # one history injection: left trapezius (region cervical) on 1 Jan 2026
        ("site", "left trapezius", "2026-06-01", True),
        ("site", "right trapezius", "2026-06-01", False),
        ("site", "left levator-scapulae", "2026-06-01", False),
        ("region", "right levator-scapulae", "2026-06-01", True),  # same region, any side
        ("region", "right trapezius", "2026-06-01", True),
        ("region", "left infraspinatus", "2026-06-01", False),  # region scapular
        ("patient", "right infraspinatus", "2026-06-01", True),
        ("patient", "interspinous-lumbar", "2026-06-01", True),
        ("session", "right infraspinatus", "2026-01-01", True),  # same date
        ("session", "left trapezius", "2026-01-02", False),
    ],
)
def test_scopes(check: Any, scope: str, site: str, on: str, counted: bool) -> None:
    # no window: all time, max 1 injection (the evaluated one included)
    rules = rules_with(f"{{id: cnt, kind: max-count, applies_to: any, scope: {scope}, max: 1}}")
    code, document = check(rules, [row("2026-01-01")], "--site", site, "--drug", "triamcinolone=20mg", "--on", on)
    cnt = rule(document, "cnt")
    assert cnt["counted"] == (["2026-01-01"] if counted else [])
    assert cnt["status"] == ("fail" if counted else "pass")
    assert code == (1 if counted else 0)


@pytest.mark.parametrize(
    ("unit", "maximum", "on", "status", "counted"),
    [
        # sessions on 1 Jan (two injections) and 1 Feb; with the proposal on 1 Mar: 3 dates > 2
        ("unit: session, ", 2, "2026-03-01", "fail", ["2026-01-01", "2026-02-01"]),
        # proposal on 1 Feb joins the 1 Feb session: 2 distinct dates <= 2
        ("unit: session, ", 2, "2026-02-01", "pass", ["2026-01-01", "2026-02-01"]),
        # counting injections instead: 3 + the proposal = 4 > 3
        ("", 3, "2026-02-01", "fail", ["2026-01-01", "2026-01-01", "2026-02-01"]),
    ],
)
def test_unit_session_counts_distinct_dates(check: Any, unit: str, maximum: int, on: str, status: str,
                                            counted: list[str]) -> None:
    rules = rules_with(f"{{id: sessions, kind: max-count, applies_to: any, scope: patient, {unit}window: 12 months, "
                       f"max: {maximum}}}")
    rows = [row("2026-01-01"), row("2026-01-01", site="infraspinatus", side="right"),
            row("2026-02-01", site="levator-scapulae")]
    code, document = check(rules, rows, "--site", "right trapezius", "--drug", "triamcinolone=20mg", "--on", on)
    sessions = rule(document, "sessions")
    assert sessions["status"] == status
    if unit:
        assert sorted(sessions["counted"]) == sorted(set(counted))
    else:
        assert sessions["counted"] == counted
    if status == "fail" and unit:
        # 1 Jan drops out on 1 Jan 2027: then 1 Feb and the proposal, 2 dates <= 2
        assert sessions["earliest_date"] == "2027-01-01"
    assert code == (1 if status == "fail" else 0)


# --- doses: exact reference-equivalent arithmetic ------------------------------------------------------------------

def steroid_dose_rule(max_mg: str) -> str:
    return rules_with(f"{{id: dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, "
                      f"max_mg: {max_mg}}}")


@pytest.mark.parametrize(
    ("max_mg", "recorded", "proposed", "status"),
    [
        # 40 + 40 + 40 = 120 = max_mg: within the limit
        ("120", [("triamcinolone", "40 mg"), ("triamcinolone", "40 mg")], "triamcinolone=40mg", "pass"),
        ("120", [("triamcinolone", "40 mg"), ("triamcinolone", "40 mg")], "triamcinolone=40.01mg", "fail"),
        # 0.1 + 0.2 = 0.3 exactly (binary floats give 0.30000000000000004)
        ("0.3", [("triamcinolone", "0.1 mg")], "triamcinolone=0.2mg", "pass"),
        # dexamethasone 1 mg = 1 x 4 / 0.75 = 16/3 mg triamcinolone; 3 x 16/3 = 16 exactly
        ("16", [("dexamethasone", "1 mg"), ("dexamethasone", "1 mg")], "dexamethasone=1mg", "pass"),
        ("16", [("dexamethasone", "1 mg"), ("dexamethasone", "1 mg")], "dexamethasone=1001mcg", "fail"),
        # 80 mg triamcinolone + dexamethasone 7.5 mg (7.5 x 16/3 = 40) = 120
        ("120", [("triamcinolone", "80 mg")], "dexamethasone=7.5mg", "pass"),
        ("120", [("triamcinolone", "80 mg")], "dexamethasone=7.6mg", "fail"),
    ],
)
def test_total_on_the_limit_is_within_it(check: Any, max_mg: str, recorded: list[tuple[str, str]], proposed: str,
                                         status: str) -> None:
    # the recorded injections: left trapezius, 1 Jan and 1 Feb 2026, all inside the 12 months before 1 Jun
    rows = [row(f"2026-0{month}-01", drug=drug, dose=dose) for month, (drug, dose) in enumerate(recorded, start=1)]
    code, document = check(steroid_dose_rule(max_mg), rows, "--site", "left trapezius", "--drug", proposed,
                           "--on", "2026-06-01")
    assert rule(document, "dose")["status"] == status
    assert code == (0 if status == "pass" else 1)


@pytest.mark.parametrize(
    ("drug", "dose_mg", "mg_ref"),
    [
        ("triamcinolone=20mg", 20.0, 20.0),
        ("dexamethasone=0.75mg", 0.75, 4.0),  # x 4/0.75 = x 16/3
        ("dexamethasone=3mg", 3.0, 16.0),
        ("dexamethasone=7.5mg", 7.5, 40.0),
        ("dexamethasone=1mg", 1.0, 5.33),  # 16/3 rounded to 2 decimals
        ("dexamethasone=500mcg", 0.5, 2.67),  # 8/3
    ],
)
def test_reference_equivalent_mg(check: Any, drug: str, dose_mg: float, mg_ref: float) -> None:
    _, document = check(steroid_dose_rule("120"), [row("2025-01-01")], "--site", "left trapezius",
                        "--drug", drug, "--on", "2026-06-01")
    (shown,) = document["drugs"]
    assert shown["name"] == drug.split("=", maxsplit=1)[0]
    assert shown["dose_mg"] == dose_mg
    assert shown["mg_ref"] == mg_ref
    assert document["category"] == "steroid"


# --- anesthetic dose: additive fractions of min(max_mg, max_mg_per_kg * weight) ---------------------------------------

ANESTHETIC = rules_with("{id: ad, kind: anesthetic-dose, applies_to: any, scope: session}")


@pytest.mark.parametrize(
    ("recorded_mg", "proposed", "weight_args", "history_weight", "status", "no_weight"),
    [
        # no weight: only max_mg: 150/300 + 87.5/175 = 0.5 + 0.5 = 1 <= 1
        ("150 mg", "bupivacaine=87.5mg", (), "", "pass", True),
        ("150 mg", "bupivacaine=88mg", (), "", "fail", True),  # 0.5 + 88/175 > 1
        # 40 kg: lidocaine min(300, 4.5 x 40 = 180) = 180; bupivacaine min(175, 2.5 x 40 = 100) = 100
        # 90/180 + 50/100 = 1 <= 1
        ("90 mg", "bupivacaine=50mg", ("--weight-kg", "40"), "", "pass", False),
        ("90 mg", "bupivacaine=51mg", ("--weight-kg", "40"), "", "fail", False),
        # the weight from the history (weight_kg column, on or before the date) works the same
        ("90 mg", "bupivacaine=50mg", (), "40", "pass", False),
        ("90 mg", "bupivacaine=51mg", (), "40", "fail", False),
        # with 40 kg the doses that fit without a weight are too much: 150/180 + 87.5/100 > 1
        ("150 mg", "bupivacaine=87.5mg", ("--weight-kg", "40"), "", "fail", False),
        # 100 kg: min(300, 450) = 300 and min(175, 250) = 175: 0.5 + 0.5 = 1
        ("150 mg", "bupivacaine=87.5mg", ("--weight-kg", "100"), "", "pass", False),
        # 15 mL @ 1% = 15 mL x 10 mg/mL = 150 mg: the same as the first case
        ("15 mL @ 1%", "bupivacaine=87.5mg", (), "", "pass", True),
        ("15 mL @ 10 mg/mL", "bupivacaine=88mg", (), "", "fail", True),
    ],
)
def test_anesthetic_fractions_add_up(check: Any, recorded_mg: str, proposed: str, weight_args: tuple[str, ...],
                                     history_weight: str, status: str, no_weight: bool) -> None:
    rows = [row("2026-01-01", drug="lidocaine", dose=recorded_mg, weight=history_weight)]
    code, document = check(ANESTHETIC, rows, "--site", "left infraspinatus", "--drug", proposed,
                           "--on", "2026-01-01", *weight_args)
    ad = rule(document, "ad")
    assert ad["status"] == status
    assert ad["counted"] == ["2026-01-01"]
    assert "weight" in ad["message"]
    assert ("no weight" in ad["message"]) == no_weight
    if status == "fail":
        # the next day is another session, where the proposal alone is within the limits
        assert_verdict(code, document, "not-yet", "2026-01-02")
    else:
        assert_verdict(code, document, "allowed", "2026-01-01")


@pytest.mark.parametrize(("recorded", "proposed", "shown", "status"), [
    ("250 mg", "lidocaine=100mg", "116.7%", "fail"),  # 350/300 = 116.66...%: rounded up, never understated
    ("200 mg", "lidocaine=120mg", "106.7%", "fail"),  # 320/300
    ("200 mg", "lidocaine=100mg", "100%", "pass"),  # exactly the maximum
    ("100 mg", "lidocaine=0.1mg", "33.4%", "pass"),  # 100.1/300 = 33.3666...%
])
def test_anesthetic_share_in_the_message_is_rounded_up(check: Any, recorded: str, proposed: str, shown: str,
                                                       status: str) -> None:
    code, document = check(ANESTHETIC, [row("2026-01-01", drug="lidocaine", dose=recorded)], "--site",
                           "left infraspinatus", "--drug", proposed, "--on", "2026-01-01")
    ad = rule(document, "ad")
    assert ad["status"] == status
    assert code == (1 if status == "fail" else 0)
    assert f"local anesthetics at {shown} of the maximum this session" in ad["message"]


def test_anesthetic_in_another_session_does_not_count(check: Any) -> None:
    code, document = check(ANESTHETIC, [row("2026-01-01", drug="lidocaine", dose="300 mg")],
                           "--site", "left infraspinatus", "--drug", "lidocaine=300mg", "--on", "2026-01-02")
    assert_verdict(code, document, "allowed", "2026-01-02")
    assert rule(document, "ad")["counted"] == []


@pytest.mark.parametrize("proposed", ["lidocaine=301mg", "lidocaine=31mL@1%", "bupivacaine=176mg"])
def test_dose_alone_over_max_mg_is_blocked(check: Any, proposed: str) -> None:
    code, document = check(ANESTHETIC, [row("2025-01-01")], "--site", "left infraspinatus", "--drug", proposed,
                           "--on", "2026-01-01")
    assert_verdict(code, document, "blocked", None)
    assert rule(document, "ad")["earliest_date"] is None


def test_steroid_dose_alone_over_max_mg_is_blocked(check: Any) -> None:
    code, document = check(steroid_dose_rule("120"), [row("2025-01-01")], "--site", "left trapezius",
                           "--drug", "triamcinolone=121mg", "--on", "2026-06-01")
    assert_verdict(code, document, "blocked", None)
    assert rule(document, "dose")["status"] == "fail"
    assert rule(document, "dose")["earliest_date"] is None


# --- points and regions per session ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("severity", "points", "status", "code"),
    [
        # recorded today: 5 points, and an injection without a points value (counts 1): 6 before
        ("block", ("--points", "2"), "pass", 0),  # 6 + 2 = 8 <= 8
        ("block", ("--points", "3"), "fail", 1),  # 9 > 8
        ("block", (), "pass", 0),  # no --points: 1; 7 <= 8
        ("warn", ("--points", "3"), "warn", 0),  # a warn rule warns: allowed
    ],
)
def test_max_points(check: Any, severity: str, points: tuple[str, ...], status: str, code: int) -> None:
    rules = rules_with(f"{{id: pts, kind: max-points, applies_to: any, scope: session, max: 8, severity: {severity}}}")
    rows = [row("2026-01-01", points="5"), row("2026-01-01", site="levator-scapulae", points="")]
    exit_code, document = check(rules, rows, "--site", "left infraspinatus", "--drug", "triamcinolone=20mg",
                                "--on", "2026-01-01", *points)
    assert rule(document, "pts")["status"] == status
    assert exit_code == code
    assert document["verdict"] == ("allowed" if code == 0 else "not-yet")


@pytest.mark.parametrize(
    ("site", "on", "status"),
    [
        ("right levator-scapulae", "2026-01-01", "pass"),  # cervical, like the trapezius: 1 region
        ("right trapezius", "2026-01-01", "pass"),
        ("right infraspinatus", "2026-01-01", "fail"),  # cervical + scapular = 2 > 1
        ("interspinous-lumbar", "2026-01-01", "fail"),
        ("right infraspinatus", "2026-01-02", "pass"),  # another session
    ],
)
def test_max_regions(check: Any, site: str, on: str, status: str) -> None:
    rules = rules_with("{id: region, kind: max-regions, applies_to: any, scope: session, max: 1}")
    code, document = check(rules, [row("2026-01-01")], "--site", site, "--drug", "triamcinolone=20mg", "--on", on)
    assert rule(document, "region")["status"] == status
    assert code == (1 if status == "fail" else 0)


# --- profiles and dates in force -------------------------------------------------------------------------------------

PROFILE_RULES = rules_with(
    "{id: medicare-iv, kind: min-interval, applies_to: any, scope: site, interval: 6 weeks, profiles: [medicare]}",
    "{id: commercial-iv, kind: min-interval, applies_to: any, scope: site, interval: 2 months, profiles: [commercial]}",
)


@pytest.mark.parametrize(
    ("args", "env", "profiles", "medicare", "commercial", "earliest"),
    [
        ((), None, [], "skip", "skip", "2026-01-15"),
        (("--profile", "medicare"), None, ["medicare"], "fail", "skip", "2026-02-12"),  # 1 Jan + 42 days
        ((), {"TPI_PROFILE": "medicare"}, ["medicare"], "fail", "skip", "2026-02-12"),
        (("--profile", "commercial"), None, ["commercial"], "skip", "fail", "2026-03-01"),  # 1 Jan + 2 months
        (("--profile", "medicare", "--profile", "commercial"), None, ["commercial", "medicare"], "fail", "fail",
         "2026-03-01"),
    ],
)
def test_profiles(check: Any, args: tuple[str, ...], env: dict[str, str] | None, profiles: list[str], medicare: str,
                  commercial: str, earliest: str) -> None:
    code, document = check(PROFILE_RULES, [row("2026-01-01")], "--site", "left trapezius", "--drug",
                           "triamcinolone=20mg", "--on", "2026-01-15", *args, env=env)
    assert sorted(document["profiles"]) == profiles
    assert rule(document, "medicare-iv")["status"] == medicare
    assert rule(document, "commercial-iv")["status"] == commercial
    for rule_id in ("medicare-iv", "commercial-iv"):
        if rule(document, rule_id)["status"] == "skip":
            assert rule(document, rule_id)["earliest_date"] == "2026-01-15"  # README choice 7
    assert_verdict(code, document, "allowed" if earliest == "2026-01-15" else "not-yet", earliest)


@pytest.mark.parametrize(
    ("on", "status", "verdict", "earliest"),
    [
        # in force 1 Mar .. 31 Mar 2026; history 20 Feb; 20 Feb + 42 days = 3 Apr
        ("2026-02-28", "skip", "allowed", "2026-02-28"),
        ("2026-03-01", "fail", "not-yet", "2026-04-01"),  # from 1 Apr the rule is no longer in force
        ("2026-03-31", "fail", "not-yet", "2026-04-01"),
        ("2026-04-01", "skip", "allowed", "2026-04-01"),
    ],
)
def test_effective_and_until(check: Any, on: str, status: str, verdict: str, earliest: str) -> None:
    rules = steroid_interval("6 weeks", ", effective: 2026-03-01, until: 2026-03-31")
    code, document = check(rules, [row("2026-02-20")], "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                           "--on", on)
    assert rule(document, "iv")["status"] == status
    assert_verdict(code, document, verdict, earliest)


# --- ordering -------------------------------------------------------------------------------------------------------

SESSION_ONE = rules_with("{id: one, kind: max-count, applies_to: any, scope: session, max: 1}")


@pytest.mark.parametrize(("first", "second"), [("left", "bilateral"), ("bilateral", "left")])
def test_same_date_earlier_in_file_is_seen_by_later(validate: Any, first: str, second: str) -> None:
    code, report = validate(SESSION_ONE, [row("2026-01-01", side=first), row("2026-01-01", side=second)])
    # reported once, on the second row of the file (it sees the first; the first does not see it)
    assert [(v["side"], v["rule"]) for v in report["violations"]] == [(second, "one")]
    assert code == 1


def test_injections_are_ordered_by_date_not_by_file_position(validate: Any) -> None:
    code, report = validate(steroid_interval("6 weeks"), [row("2026-02-01"), row("2026-01-01")])
    assert [v["date"] for v in report["violations"]] == ["2026-02-01"]
    assert code == 1


def test_check_proposal_comes_after_history_of_its_date(check: Any) -> None:
    code, document = check(SESSION_ONE, [row("2026-01-01", site="infraspinatus")],
                           "--site", "left trapezius", "--drug", "triamcinolone=20mg", "--on", "2026-01-01")
    one = rule(document, "one")
    assert one["status"] == "fail"
    assert one["counted"] == ["2026-01-01"]
    assert_verdict(code, document, "not-yet", "2026-01-02")


# --- planned (later) injections: README choice 6 --------------------------------------------------------------------

@pytest.mark.parametrize(
    ("on", "verdict", "earliest"),
    [
        # planned steroid on 1 Mar. A proposal on d < 1 Mar must leave 6 weeks: d + 42 days <= 1 Mar, d <= 18 Jan.
        # On or after 1 Mar it comes after the planned one: d >= 1 Mar + 42 days = 12 Apr.
        ("2026-01-18", "allowed", "2026-01-18"),
        ("2026-01-19", "not-yet", "2026-04-12"),
        ("2026-02-01", "not-yet", "2026-04-12"),
        ("2026-03-01", "not-yet", "2026-04-12"),
        ("2026-04-12", "allowed", "2026-04-12"),
    ],
)
def test_check_protects_a_planned_later_injection(check: Any, on: str, verdict: str, earliest: str) -> None:
    code, document = check(steroid_interval("6 weeks"), [row("2026-03-01")], "--site", "left trapezius",
                           "--drug", "triamcinolone=20mg", "--on", on)
    assert_verdict(code, document, verdict, earliest)
    iv = rule(document, "iv")
    assert iv["earliest_date"] == earliest
    if verdict == "not-yet":
        assert iv["status"] == "fail"
        assert "2026-03-01" in iv["message"]
    if on in ("2026-01-19", "2026-02-01"):  # before the planned one: it is what the proposal would break
        assert iv["message"] == ("no earlier corticosteroid injection at left trapezius; it would make the planned "
                                 "injection on 2026-03-01 at left trapezius fail: corticosteroid injection at left "
                                 f"trapezius on {on} (the proposal), less than 6 weeks before")


def test_check_protects_a_planned_injection_in_a_window(check: Any) -> None:
    # max 1 in 12 months; planned 1 Jun 2026. Before it, the proposal would count in its window;
    # on or after it, the planned one counts until 1 Jun 2027.
    rules = rules_with("{id: cnt, kind: max-count, applies_to: [steroid], scope: site, window: 12 months, max: 1}")
    code, document = check(rules, [row("2026-06-01")], "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                           "--on", "2026-01-01")
    assert_verdict(code, document, "not-yet", "2027-06-01")


@pytest.mark.parametrize(
    ("with_right", "verdict", "earliest"),
    [
        # with a right trapezius steroid on 1 Mar, the bilateral one of 10 Mar already fails; a left proposal
        # on 5 Mar (which does not see the right one) passes itself and does not make 10 Mar newly fail
        (True, "allowed", "2026-03-05"),
        # without it, 10 Mar would newly fail: the proposal must come 6 weeks after 10 Mar = 21 Apr
        (False, "not-yet", "2026-04-21"),
    ],
)
def test_a_planned_injection_that_already_fails_does_not_hold_back(check: Any, with_right: bool, verdict: str,
                                                                   earliest: str) -> None:
    rows = ([row("2026-03-01", side="right")] if with_right else []) + [row("2026-03-10", side="bilateral")]
    code, document = check(steroid_interval("6 weeks"), rows, "--site", "left trapezius", "--drug",
                           "triamcinolone=20mg", "--on", "2026-03-05")
    assert_verdict(code, document, verdict, earliest)
    message = rule(document, "iv")["message"]
    # The proposal does not make 10 Mar invalid, but 10 Mar would count it: the message says so.
    assert ("the planned injection on 2026-03-10 at bilateral trapezius already breaks it" in message) == with_right


@pytest.mark.parametrize(
    ("side", "said"),
    [
        ("left", True),  # the planned left injection would count the proposal: 50 + 5 + 40 = 95 mg
        ("right", False),  # another side: the planned injection does not count it, nothing to say
    ],
)
def test_a_proposal_adding_to_a_planned_injection_that_already_fails_is_allowed_and_said(
        check: Any, side: str, said: bool) -> None:
    # 60 mg in 12 months at a site; 50 mg on 1 Dec 2025 and a planned 40 mg on 1 Mar 2026 (90 mg: it already
    # fails). 5 mg on 1 Feb 2026 is within on its own (55 mg) and does not *make* 1 Mar invalid: allowed.
    rules = rules_with("{id: sd, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, "
                       "max_mg: 60}")
    code, document = check(rules, [row("2025-12-01", dose="50 mg"), row("2026-03-01", dose="40 mg")], "--site",
                           f"{side} trapezius", "--drug", "triamcinolone=5mg", "--on", "2026-02-01")
    assert_verdict(code, document, "allowed", "2026-02-01")
    sd = rule(document, "sd")
    assert sd["status"] == "pass"
    assert document["warnings"] == []
    note = ("the planned injection on 2026-03-01 at left trapezius already breaks it; with this proposal: 95 mg "
            "triamcinolone-equivalent at left trapezius in 12 months (50 before + 5 proposed + 40 planned), more than "
            "60 mg")
    assert sd["message"].endswith(note) == said
    assert ("already breaks" in sd["message"]) == said


def test_several_planned_injections_that_already_fail_are_summed_up_in_one_note(check: Any) -> None:
    # max 1 in 12 months; planned 1 Mar, 1 Apr and 1 May 2026 (the last two already fail). A proposal on
    # 1 Feb makes 1 Mar newly fail (held back) and would count in the other two: one note for both.
    rules = rules_with("{id: cnt, kind: max-count, applies_to: [steroid], scope: site, window: 12 months, max: 1}")
    code, document = check(rules, [row("2026-03-01"), row("2026-04-01"), row("2026-05-01")], "--site",
                           "left trapezius", "--drug", "triamcinolone=20mg", "--on", "2026-02-01")
    assert_verdict(code, document, "not-yet", "2027-05-01")
    message = rule(document, "cnt")["message"]
    assert message.count("planned injection") == 2  # the one it holds back, and the note
    assert message.endswith(
        "; 2 planned injections (2026-04-01 to 2026-05-01) already break it and would count this proposal; the "
        "first, on 2026-04-01 at left trapezius, with it: 3 corticosteroid injections at left trapezius in 12 "
        "months, the planned one and the proposal included, more than 1")


def test_a_planned_injection_inside_a_grace_period_is_said_as_already_breaking(check: Any) -> None:
    # 60 mg in 12 months with 3 months of grace. 50 mg on 1 Jun 2025 and 40 mg planned on 1 Mar 2026: 90 mg,
    # but within 9 months only 40: a warning. 5 mg on 1 Feb 2026 keeps it a warning (95 mg; 45 in 9 months).
    rules = rules_with("{id: sd, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, "
                       "max_mg: 60, grace: 3 months}")
    code, document = check(rules, [row("2025-06-01", dose="50 mg"), row("2026-03-01", dose="40 mg")], "--site",
                           "left trapezius", "--drug", "triamcinolone=5mg", "--on", "2026-02-01")
    assert_verdict(code, document, "allowed", "2026-02-01")
    sd = rule(document, "sd")
    assert sd["status"] == "pass"
    assert sd["message"].endswith("the planned injection on 2026-03-01 at left trapezius already breaks it; with "
                                  "this proposal: 95 mg triamcinolone-equivalent at left trapezius in 12 months (50 "
                                  "before + 5 proposed + 40 planned), more than 60 mg (inside the grace period)")


def test_a_skipped_rule_with_a_note_is_shown_in_the_table_and_the_cds_card(tpi: Run, write: Any) -> None:
    # The rule is in force from 15 Feb: skipped for a proposal on 1 Feb, but the planned 1 Mar injection
    # (already over 60 mg) would count it.
    rules = write("rules.yaml", rules_with(
        "{id: sd, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, max_mg: 60, "
        "effective: 2026-02-15}"))
    path = write("history.csv", history(row("2025-12-01", dose="50 mg"), row("2026-03-01", dose="40 mg")))
    args = ("check", path, "--rules", rules, "--site", "left trapezius", "--drug", "triamcinolone=5mg", "--on",
            "2026-02-01")
    table = tpi(*args, env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert "not applied" not in table.stdout
    (line,) = [text for text in table.stdout.splitlines() if text.lstrip().startswith("SKIP")]
    assert "in force from 2026-02-15, but the planned injection on 2026-03-01 at left trapezius already breaks it" \
        in line
    (card,) = as_json(tpi(*args, "--format", "cds-hooks"))["cards"]
    assert card["indicator"] == "info"
    assert "**sd**: the planned injection on 2026-03-01 at left trapezius already breaks it; with this proposal: " \
           "95 mg" in card["detail"]


# --- validate: once, on the injection that breaks it; overrides; several patients ------------------------------------

def test_validate_reports_a_violation_once_on_the_breaking_injection(validate: Any) -> None:
    rules = rules_with("{id: cnt, kind: max-count, applies_to: [steroid], scope: site, window: 12 months, max: 2}")
    rows = [row("2026-01-01"), row("2026-02-01"), row("2026-03-01"), row("2027-01-31"), row("2027-02-01", side="right"),
            row("2027-03-01", side="right")]
    code, report = validate(rules, rows)
    # 3 in 12 months on 1 Mar 2026: the third breaks it (the first two do not).
    # 31 Jan 2027: 1 Feb 2026 (+ 12 months = 1 Feb 2027 > 31 Jan), 1 Mar 2026 and itself = 3 > 2
    # (1 Jan 2026 dropped out on 1 Jan 2027).
    # Right side, 1 Feb 2027 and 1 Mar 2027: left-only injections do not count against it: no violation.
    assert [(v["date"], v["rule"], v["severity"]) for v in report["violations"]] == [
        ("2026-03-01", "cnt", "block"), ("2027-01-31", "cnt", "block")]
    assert report["injections"] == 6
    assert report["patients"] == 1
    assert report["summary"] == {"block": 2, "warn": 0, "overridden": 0}
    assert code == 1


@pytest.mark.parametrize(
    ("overrides", "summary", "code"),
    [
        (("", ""), {"block": 1, "warn": 0, "overridden": 0}, 1),
        (("", "acute flare, discussed"), {"block": 0, "warn": 0, "overridden": 1}, 0),
        (("first row only", ""), {"block": 1, "warn": 0, "overridden": 0}, 1),
    ],
)
def test_override_reasons(validate: Any, overrides: tuple[str, str], summary: dict[str, int], code: int) -> None:
    quoted = [f'"{reason}"' if reason else "" for reason in overrides]
    rows = [row("2026-01-01", override=quoted[0]), row("2026-01-15", override=quoted[1])]
    exit_code, report = validate(steroid_interval("6 weeks"), rows)
    (violation,) = report["violations"]
    assert violation["date"] == "2026-01-15"
    assert violation["overridden"] == (overrides[1] or None)
    assert report["summary"] == summary
    assert exit_code == code


def test_validate_many_patients_do_not_mix(validate: Any) -> None:
    rows = [row("2026-01-01", patient="P1"), row("2026-01-15", patient="P2"), row("2026-02-01", patient="P1"),
            row("2026-02-05", patient="P2"), row("2026-01-02", patient="P3", side="right")]
    code, report = validate(steroid_interval("6 weeks"), rows)
    # P1: 1 Jan then 1 Feb (< 12 Feb): violation. P2: 15 Jan then 5 Feb (< 26 Feb): violation. P3: one injection.
    assert sorted((v["patient_id"], v["date"]) for v in report["violations"]) == [
        ("P1", "2026-02-01"), ("P2", "2026-02-05")]
    assert report["patients"] == 3
    assert report["injections"] == 5
    assert code == 1
    code, report = validate(steroid_interval("6 weeks"), rows, "--patient", "P2")
    assert [(v["patient_id"], v["date"]) for v in report["violations"]] == [("P2", "2026-02-05")]
    assert report["patients"] == 1
    assert report["injections"] == 2
    code, report = validate(steroid_interval("6 weeks"), rows, "--patient", "P3")
    assert report["violations"] == []
    assert code == 0


def test_rows_of_one_injection_merge(validate: Any) -> None:
    # two rows, same patient, date, site and side: one injection of 20 + 20 mg = 40 mg
    rules = steroid_dose_rule("40")
    code, report = validate(rules, [row("2026-01-01"), row("2026-01-01")])
    assert report["injections"] == 1
    assert report["violations"] == []
    assert code == 0
    code, report = validate(rules, [row("2026-01-01"), row("2026-01-01"), row("2026-01-01")])
    assert [v["rule"] for v in report["violations"]] == ["dose"]  # 60 > 40


@pytest.mark.parametrize(
    ("on", "status", "code"),
    [
        # planned 1 Mar; 6 weeks, grace 1 week. The planned one warns when p + 5 weeks <= 1 Mar < p + 6 weeks
        # (p = the proposal): p in [19 Jan, 25 Jan]; it fails from p = 26 Jan (26 Jan + 35 days = 2 Mar).
        ("2026-01-18", "pass", 0),
        ("2026-01-19", "warn", 0),
        ("2026-01-25", "warn", 0),
        ("2026-01-26", "fail", 1),
    ],
)
def test_a_planned_injection_newly_warning_makes_the_proposal_warn(check: Any, on: str, status: str,
                                                                   code: int) -> None:
    exit_code, document = check(steroid_interval("6 weeks", ", grace: 1 week"), [row("2026-03-01")],
                                "--site", "left trapezius", "--drug", "triamcinolone=20mg", "--on", on)
    assert rule(document, "iv")["status"] == status
    assert exit_code == code


def test_verdict_earliest_is_the_first_date_on_which_no_rule_fails(check: Any) -> None:
    rules = rules_with("{id: iv, kind: min-interval, applies_to: [steroid], scope: site, interval: 6 weeks}",
                       "{id: pat, kind: min-interval, applies_to: any, scope: patient, interval: 1 month}")
    rows = [row("2025-12-20", site="infraspinatus", side="right"), row("2026-03-01")]
    code, document = check(rules, rows, "--site", "left trapezius", "--drug", "triamcinolone=20mg", "--on", "2026-01-10")
    # iv alone: d + 42 days <= 1 Mar (d <= 18 Jan) or d >= 1 Mar + 42 days = 12 Apr: passes on 10 Jan.
    # pat alone: d >= 20 Dec + 1 month = 20 Jan (and 20 Jan + 1 month <= 1 Mar): passes from 20 Jan.
    # Both: not before 12 Apr (1 Mar + 1 month = 1 Apr <= 12 Apr for pat).
    assert rule(document, "iv")["status"] == "pass"
    assert rule(document, "iv")["earliest_date"] == "2026-01-10"
    assert rule(document, "pat")["status"] == "fail"
    assert rule(document, "pat")["earliest_date"] == "2026-01-20"
    assert_verdict(code, document, "not-yet", "2026-04-12")


@pytest.mark.parametrize(
    ("applies", "counts", "recorded", "proposed", "status"),
    [
        # counts: any: an anesthetic-only injection counts against a steroid proposal (max 1, all time)
        ("[steroid]", "any", ("lidocaine", "30 mg"), "triamcinolone=20mg", "fail"),
        ("[steroid]", "[steroid]", ("lidocaine", "30 mg"), "triamcinolone=20mg", "pass"),
        # README choice 3: the evaluated injection is counted even if its category is not in counts:
        # 1 steroid + the anesthetic proposal = 2 > 1
        ("[anesthetic]", "[steroid]", ("triamcinolone", "20 mg"), "lidocaine=30mg", "fail"),
        ("[anesthetic]", "[anesthetic]", ("triamcinolone", "20 mg"), "lidocaine=30mg", "pass"),
        # other category: saline; dry: no drug
        ("[other]", "[other, dry]", ("", ""), "saline=5mL", "fail"),
        ("[other]", "[other]", ("", ""), "saline=5mL", "pass"),
    ],
)
def test_applies_to_and_counts(check: Any, applies: str, counts: str, recorded: tuple[str, str], proposed: str,
                               status: str) -> None:
    rules = rules_with(f"{{id: cnt, kind: max-count, applies_to: {applies}, counts: {counts}, scope: site, max: 1}}")
    code, document = check(rules, [row("2026-01-01", drug=recorded[0], dose=recorded[1])], "--site", "left trapezius",
                           "--drug", proposed, "--on", "2026-02-01")
    assert rule(document, "cnt")["status"] == status
    assert code == (1 if status == "fail" else 0)


@pytest.mark.parametrize(
    ("proposal", "category", "status"),
    [
        (("--drug", "triamcinolone=20mg"), "steroid", "fail"),
        (("--drug", "triamcinolone=20mg", "--drug", "lidocaine=30mg"), "steroid", "fail"),
        (("--drug", "lidocaine=30mg"), "anesthetic", "skip"),
        (("--drug", "saline=5mL"), "other", "skip"),
        (("--dry",), "dry", "skip"),
    ],
)
def test_category_decides_whether_a_rule_applies(check: Any, proposal: tuple[str, ...], category: str,
                                                 status: str) -> None:
    code, document = check(steroid_interval("6 weeks"), [row("2026-01-01")], "--site", "left trapezius", *proposal,
                           "--on", "2026-01-15")
    assert document["category"] == category
    iv = rule(document, "iv")
    assert iv["status"] == status
    if status == "skip":
        assert iv["earliest_date"] == "2026-01-15"
        assert_verdict(code, document, "allowed", "2026-01-15")


@pytest.mark.parametrize(
    ("weights", "status"),
    [
        # lidocaine 200 mg. Weight 40 kg on 1 Jan: min(300, 180) = 180 < 200: fail.
        ((("2026-01-01", "40"), ("2026-03-01", "100")), "fail"),
        # the latest weight on or before 1 Feb is 100 kg: min(300, 450) = 300 >= 200: pass
        ((("2026-01-01", "40"), ("2026-01-20", "100")), "pass"),
        # only a later weight (1 Mar): no weight known on 1 Feb, only max_mg 300 applies: pass
        ((("2026-03-01", "40"),), "pass"),
    ],
)
def test_weight_is_the_latest_on_or_before_the_date(check: Any, weights: tuple[tuple[str, str], ...],
                                                    status: str) -> None:
    rows = [row(day, site="infraspinatus", drug="saline", dose="1 mL", weight=kg) for day, kg in weights]
    _, document = check(ANESTHETIC, rows, "--site", "left trapezius", "--drug", "lidocaine=200mg", "--on", "2026-02-01")
    assert rule(document, "ad")["status"] == status


def test_check_chooses_a_patient(check: Any) -> None:
    rows = [row("2026-01-01", patient="P1"), row("2026-01-10", patient="P2")]
    # P2: 10 Jan + 42 days = 21 Feb; P1: 1 Jan + 42 days = 12 Feb
    code, document = check(steroid_interval("6 weeks"), rows, "--patient", "P2", "--site", "left trapezius",
                           "--drug", "triamcinolone=20mg", "--on", "2026-01-15")
    assert document["patient_id"] == "P2"
    assert_verdict(code, document, "not-yet", "2026-02-21")


@pytest.mark.parametrize(
    ("dose", "verdict", "earliest"),
    [
        # planned 100 mg on 1 Jun 2026, max 120 mg in 12 months: a proposal on 10 Mar counts in its window, so
        # at most 20 mg now. More: on or after 1 Jun the planned 100 mg counts against the proposal until 1 Jun 2027.
        ("triamcinolone=20mg", "allowed", "2026-03-10"),
        ("triamcinolone=20.01mg", "not-yet", "2027-06-01"),
    ],
)
def test_check_protects_a_planned_dose(check: Any, dose: str, verdict: str, earliest: str) -> None:
    code, document = check(steroid_dose_rule("120"), [row("2026-06-01", dose="100 mg")], "--site", "left trapezius",
                           "--drug", dose, "--on", "2026-03-10")
    assert_verdict(code, document, verdict, earliest)


@pytest.mark.parametrize(
    ("on", "status", "verdict", "earliest"),
    [
        # 60 mg (side unspecified) on 20 Feb 2026 and 20 mg left on 5 Mar; max 100 mg in 12 months, grace 1 month.
        # A 30 mg proposal: 110 > 100 while 20 Feb is in the window (until 20 Feb 2027); with the window 1 month
        # shorter, 20 Feb drops out on 20 Jan 2027: warn from then.
        ("2027-01-19", "fail", "not-yet", "2027-01-20"),
        ("2027-01-20", "warn", "allowed", "2027-01-20"),
        ("2027-02-19", "warn", "allowed", "2027-02-19"),
        ("2027-02-20", "pass", "allowed", "2027-02-20"),
    ],
)
def test_max_steroid_dose_grace(check: Any, on: str, status: str, verdict: str, earliest: str) -> None:
    rules = rules_with("{id: dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, "
                       "max_mg: 100, grace: 1 month}")
    rows = [row("2026-02-20", side="", dose="60 mg"), row("2026-03-05", dose="20 mg")]
    code, document = check(rules, rows, "--site", "left trapezius", "--drug", "triamcinolone=30mg", "--on", on)
    dose = rule(document, "dose")
    assert dose["status"] == status
    assert dose["earliest_date"] == "2027-02-20"
    assert_verdict(code, document, verdict, earliest)


def test_effective_rule_counts_earlier_injections(validate: Any) -> None:
    # in force for injections on or after 1 Mar; the 20 Feb one is not checked, but it is counted for 5 Mar
    # (20 Feb + 42 days = 3 Apr > 5 Mar)
    code, report = validate(steroid_interval("6 weeks", ", effective: 2026-03-01"),
                            [row("2026-02-10"), row("2026-02-20"), row("2026-03-05")])
    assert [v["date"] for v in report["violations"]] == ["2026-03-05"]
    assert code == 1


def test_a_warn_rule_that_never_passes_has_no_earliest_date_but_allows(check: Any) -> None:
    rules = rules_with("{id: pts, kind: max-points, applies_to: any, scope: session, max: 8, severity: warn}")
    code, document = check(rules, [row("2025-01-01")], "--site", "left trapezius", "--dry", "--points", "9",
                           "--on", "2026-01-01")
    assert rule(document, "pts")["status"] == "warn"
    assert rule(document, "pts")["earliest_date"] is None
    assert_verdict(code, document, "allowed", "2026-01-01")
    assert len(document["warnings"]) == 1


def test_weight_option_wins_over_the_history(check: Any) -> None:
    # history weight 100 kg (limit 300 mg); --weight-kg 40: limit min(300, 180) = 180 < 200 mg
    rows = [row("2026-01-01", site="infraspinatus", drug="saline", dose="1 mL", weight="100")]
    _, document = check(ANESTHETIC, rows, "--site", "left trapezius", "--drug", "lidocaine=200mg", "--on", "2026-02-01",
                        "--weight-kg", "40")
    assert rule(document, "ad")["status"] == "fail"


@pytest.mark.parametrize("order", ["dose first", "weights first"])
def test_two_weights_on_one_day_the_lower_one_counts(check: Any, validate: Any, order: str) -> None:
    # 200 mg lidocaine with 40 kg recorded (limit min(300, 4.5 x 40) = 180 mg: over), and a dry needling
    # the same day recording 80 kg (360: within). The safer reading: the day's lower weight, in any row order;
    # a later row's higher weight must not make the overdose pass.
    rows = [row("2025-01-10", drug="lidocaine", dose="200 mg", weight="40"),
            row("2025-01-10", site="infraspinatus", drug="", dose="", weight="80")]
    if order == "weights first":
        rows.reverse()
    code, report = validate(ANESTHETIC, rows)
    assert code == 1
    assert [(v["site"], v["rule"]) for v in report["violations"]] == \
        ([("trapezius", "ad"), ("infraspinatus", "ad")] if order == "dose first" else [("trapezius", "ad")])
    assert "weight 40 kg" in report["violations"][0]["message"]
    # a proposal that day, or later (no other weight recorded since), is held to 40 kg too: 180 mg at most
    for on, dose, status in (("2025-01-10", "1mg", "fail"), ("2025-02-01", "180mg", "pass"),
                             ("2025-02-01", "181mg", "fail")):
        _, document = check(ANESTHETIC, rows, "--site", "right trapezius", "--drug", f"lidocaine={dose}", "--on", on)
        assert rule(document, "ad")["status"] == status, (on, dose)
        assert "weight 40 kg" in rule(document, "ad")["message"]


def test_per_kg_only_anesthetic_without_weight_fails(check: Any) -> None:
    # README choice 13: only max_mg_per_kg and no weight: its limit is unknown
    rules = RULES_HEAD.replace("  saline:", "  ropivacaine: {class: anesthetic, max_mg_per_kg: 3}\n  saline:") + \
        "  - {id: ad, kind: anesthetic-dose, applies_to: any, scope: session}\n"
    code, document = check(rules, [row("2025-01-01")], "--site", "left trapezius", "--drug", "ropivacaine=30mg",
                           "--on", "2026-01-01")
    assert rule(document, "ad")["status"] == "fail"
    assert code == 1
    # 10 kg: 3 x 10 = 30 mg: exactly the limit
    code, document = check(rules, [row("2025-01-01")], "--site", "left trapezius", "--drug", "ropivacaine=30mg",
                           "--on", "2026-01-01", "--weight-kg", "10")
    assert rule(document, "ad")["status"] == "pass"
    assert code == 0


def test_rows_of_one_injection_merge_even_when_apart(validate: Any) -> None:
    # P1's two left trapezius rows of 1 Jan are one injection of 40 mg although other rows come between them
    rules = steroid_dose_rule("50")
    rows = [row("2026-01-01", dose="30 mg"), row("2026-01-01", patient="P2"),
            row("2026-01-01", site="infraspinatus", drug="lidocaine", dose="30 mg"), row("2026-01-01", dose="30 mg")]
    code, report = validate(rules, rows)
    assert report["injections"] == 3
    assert [(v["patient_id"], v["date"], v["rule"]) for v in report["violations"]] == [("P1", "2026-01-01", "dose")]
    assert code == 1


@pytest.mark.parametrize(
    ("on", "verdict", "earliest", "status"),
    [
        # right trapezius 20 Jan; bilateral planned 1 Mar already warns (20 Jan + 35 days = 24 Feb <= 1 Mar < 3 Mar).
        # A left proposal does not see the right one. On 25 Jan: 25 Jan + 35 days = 1 Mar: the planned one still
        # only warns (not worse): pass. On 26 Jan: 2 Mar > 1 Mar: warn -> fail, worse: the proposal fails.
        # From 1 Mar on it comes after the planned one: warns from 1 Mar + 35 days = 5 Apr, passes from 12 Apr.
        ("2026-01-25", "allowed", "2026-01-25", "pass"),
        ("2026-01-26", "not-yet", "2026-04-05", "fail"),
    ],
)
def test_a_planned_injection_going_from_warn_to_fail_holds_back(check: Any, on: str, verdict: str, earliest: str,
                                                                status: str) -> None:
    rows = [row("2026-01-20", side="right"), row("2026-03-01", side="bilateral")]
    code, document = check(steroid_interval("6 weeks", ", grace: 1 week"), rows, "--site", "left trapezius",
                           "--drug", "triamcinolone=20mg", "--on", on)
    assert_verdict(code, document, verdict, earliest)
    iv = rule(document, "iv")
    assert iv["status"] == status
    if status == "fail":
        assert iv["earliest_date"] == "2026-04-12"
        assert "2026-03-01" in iv["message"]


@pytest.mark.parametrize(
    ("on", "verdict", "earliest"),
    [
        # a bilateral proposal must respect both sides: after left 1 Jan (>= 12 Feb) and before the planned right
        # 1 Apr (d + 42 days <= 1 Apr: d <= 18 Feb); otherwise after 1 Apr + 42 days = 13 May
        ("2026-02-11", "not-yet", "2026-02-12"),
        ("2026-02-18", "allowed", "2026-02-18"),
        ("2026-02-19", "not-yet", "2026-05-13"),
    ],
)
def test_bilateral_proposal_respects_both_sides(check: Any, on: str, verdict: str, earliest: str) -> None:
    rows = [row("2026-01-01", side="left"), row("2026-04-01", side="right")]
    code, document = check(steroid_interval("6 weeks"), rows, "--site", "bilateral trapezius", "--drug",
                           "triamcinolone=20mg", "--on", on)
    assert_verdict(code, document, verdict, earliest)


def test_the_anesthetic_limit_is_the_exact_smaller_of_the_two() -> None:
    # 100,000,000.000000001 mg and 1,000,000 mg/kg x 100 kg are one float apart from nothing: the
    # smaller must still be the limit, so that a dose just above it fails (SPEC.md: exact arithmetic).
    from tests.conftest import SPEC_RULES
    from tpi_cli.engine import anesthetic_limit
    from tpi_cli.quantity import Ratio
    from tpi_cli.rules_file import parse_rules

    text = SPEC_RULES.replace("max_mg_per_kg: 4.5, max_mg: 300", "max_mg_per_kg: 1000000, max_mg: 100000000.000000001")
    rules = parse_rules(text, "rules.yaml")
    assert anesthetic_limit(rules.drugs["lidocaine"], Ratio(100)) == Ratio(100_000_000)
    text = SPEC_RULES.replace("max_mg_per_kg: 4.5, max_mg: 300", "max_mg_per_kg: 1000000.00000000001, max_mg: 100000000")
    rules = parse_rules(text, "rules.yaml")
    assert anesthetic_limit(rules.drugs["lidocaine"], Ratio(100)) == Ratio(100_000_000)
