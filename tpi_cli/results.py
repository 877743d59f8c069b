"""Result objects: what each command found. Renderers read them; nothing here computes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tpi_cli.model import Injection
from tpi_cli.quantity import Amount
from tpi_cli.rules import Drug, Rule, Site

if TYPE_CHECKING:
    from tpi_cli.dates import Duration

ALLOWED, NOT_YET, BLOCKED = "allowed", "not-yet", "blocked"


class RuleOutcome:
    """One rule's verdict on a proposal: status on the date asked, the first date it passes
    (None: never), the dates it counted, a message; ``note``: what the proposal adds to planned
    injections that already break the rule (also at the end of the message), else None."""

    __slots__ = ("counted", "earliest", "message", "note", "rule", "status")

    def __init__(self, rule: Rule, status: str, earliest: int | None, counted: list[int], message: str,
                 note: str | None = None) -> None:
        self.rule = rule
        self.status = status
        self.earliest = earliest
        self.counted = counted
        self.message = message
        self.note = note


class DrugLine:
    __slots__ = ("amount", "drug", "mg_ref")

    def __init__(self, drug: Drug, amount: Amount, mg_ref: int | None) -> None:
        self.drug = drug
        self.amount = amount
        self.mg_ref = mg_ref  # in the rules' reference units; None for a drug that is not a corticosteroid


class CheckResult:
    __slots__ = (
        "category",
        "drugs",
        "earliest",
        "on",
        "patient_id",
        "profiles",
        "proposal",
        "ref_scale",
        "reference",
        "rules",
        "side",
        "site",
        "verdict",
        "warnings",
    )

    def __init__(self, *, proposal: Injection, on: int, profiles: list[str], drugs: list[DrugLine],
                 verdict: str, earliest: int | None, rules: list[RuleOutcome], warnings: list[str],
                 reference: str, ref_scale: int) -> None:
        self.proposal = proposal
        self.patient_id = proposal.patient_id
        self.site: Site = proposal.site
        self.side = proposal.side
        self.category = proposal.category
        self.on = on
        self.profiles = profiles
        self.drugs = drugs
        self.verdict = verdict
        self.earliest = earliest
        self.rules = rules
        self.warnings = warnings
        self.reference = reference
        self.ref_scale = ref_scale


class Violation:
    __slots__ = ("day", "message", "overridden", "patient_id", "rule", "severity", "side", "site")

    def __init__(self, patient_id: str | None, day: int, site: str, side: str | None, rule: str, severity: str,
                 message: str, overridden: str | None) -> None:
        self.patient_id = patient_id
        self.day = day
        self.site = site
        self.side = side
        self.rule = rule
        self.severity = severity
        self.message = message
        self.overridden = overridden


class ValidationCounts:
    """What ``validate`` found: patients, injections, and violations by kind."""

    __slots__ = ("block", "injections", "overridden", "patients", "warn")

    def __init__(self) -> None:
        self.patients = 0
        self.injections = 0
        self.block = 0
        self.warn = 0
        self.overridden = 0

    def tally(self, violation: Violation) -> None:
        if violation.overridden is not None:
            self.overridden += 1
        elif violation.severity == "block":
            self.block += 1
        else:
            self.warn += 1

    def add(self, other: ValidationCounts) -> None:
        self.patients += other.patients
        self.injections += other.injections
        self.block += other.block
        self.warn += other.warn
        self.overridden += other.overridden


class ForecastRow:
    """``tpi next``: one site and side; per category the earliest day (None: blocked) and the
    rules that hold it back on the date asked."""

    __slots__ = ("earliest", "held_by", "mg_remaining", "side", "site")

    def __init__(self, site: Site, side: str | None, earliest: dict[str, int | None],
                 held_by: dict[str, list[str]], mg_remaining: int | None) -> None:
        self.site = site
        self.side = side
        self.earliest = earliest
        self.held_by = held_by
        self.mg_remaining = mg_remaining  # reference units; None when no dose rule limits it


class ForecastResult:
    __slots__ = ("defaults", "on", "patient_id", "profiles", "ref_scale", "reference", "rows")

    def __init__(self, patient_id: str | None, on: int, rows: list[ForecastRow], profiles: list[str],
                 reference: str, ref_scale: int, defaults: dict[str, str]) -> None:
        self.patient_id = patient_id
        self.on = on
        self.rows = rows
        self.profiles = profiles
        self.reference = reference
        self.ref_scale = ref_scale
        self.defaults = defaults


class TotalsRow:
    __slots__ = ("all_time_by_drug", "all_time_injections", "all_time_ref", "by_drug", "injections", "patient_id",
                 "ref", "side", "site")

    def __init__(self, patient_id: str | None, site: str | None, side: str | None) -> None:
        self.patient_id = patient_id
        self.site = site
        self.side = side
        self.injections = 0
        self.ref = 0
        self.by_drug: dict[str, int] = {}  # picograms of the drug itself, in the window
        self.all_time_injections = 0
        self.all_time_ref = 0
        self.all_time_by_drug: dict[str, int] = {}  # picograms of the drug itself, all time up to --on


class TotalsResult:
    __slots__ = ("drugs", "on", "patients", "ref_scale", "reference", "rows", "window")

    def __init__(self, on: int, window: Duration | None, reference: Drug, ref_scale: int, drugs: list[Drug]) -> None:
        self.on = on
        self.window = window  # None: all time
        self.reference = reference
        self.ref_scale = ref_scale
        self.drugs = drugs  # the corticosteroids of the rules, for the equivalence table
        self.rows: list[TotalsRow] = []
        self.patients: list[TotalsRow] = []
