"""A reference evaluator: SPEC.md's rule semantics, brute force, day by day.

Deliberately simple and slow. It shares nothing with the engine beyond parsing: it takes the parsed
rules (``tpi_cli.rules.parse_rules``) and histories (``tpi_cli.history.read_patients``), converts
them to plain records with ``fractions.Fraction`` doses, and evaluates every rule from its
definition in SPEC.md plus the README's "Where SPEC.md is silent" choices:

- every window / interval is computed with ``relativedelta`` from the original date;
- grace: one relativedelta ``interval - grace`` (or ``window - grace``) from the original date;
- the evaluated injection always counts for max-count and max-steroid-dose;
- ``check`` inserts the proposal after the history injections of its date, evaluates it against
  those before it, and lets a later injection whose status gets worse hold it back;
- earliest dates are found by trying every calendar day from ``on`` up to a horizon after which
  nothing can change any more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from functools import cache, lru_cache
from typing import Any

from dateutil.relativedelta import relativedelta

PG_PER_MG = 10**9

SKIP, PASS, WARN, FAIL = "skip", "pass", "warn", "fail"
_RANK = {SKIP: 0, PASS: 1, WARN: 2, FAIL: 3}


def frac(ratio: Any) -> Fraction | None:
    return None if ratio is None else Fraction(ratio.num, ratio.den)


@lru_cache(maxsize=1 << 20)
def shift(day: int, years: int = 0, months: int = 0, days: int = 0) -> int:
    """``date + relativedelta(...)`` from the original date, as an ordinal."""
    return (date.fromordinal(day) + relativedelta(years=years, months=months, days=days)).toordinal()


def plus(day: int, duration: Any) -> int:
    return shift(day, duration.years, duration.months, duration.days)


def plus_minus(day: int, duration: Any, grace: Any) -> int:
    """``day + (duration - grace)`` as ONE relativedelta."""
    return shift(day, duration.years - grace.years, duration.months - grace.months, duration.days - grace.days)


def is_zero(duration: Any) -> bool:
    return duration is None or (duration.years == 0 and duration.months == 0 and duration.days == 0)


def longest_days(duration: Any) -> int:
    return 0 if duration is None else duration.years * 366 + duration.months * 31 + duration.days


@dataclass
class Inj:
    """One injection, plain: what the rules need and nothing else."""

    day: int
    site: str
    region: str
    lateral: bool
    side: str | None
    category: str
    mg_ref: Fraction
    anesthetics: dict[str, Fraction] = field(default_factory=dict)  # drug name -> mg
    points: int = 1
    override: str | None = None


@dataclass
class Ref:
    """Rules in plain form."""

    rules: list[Any]
    drugs: dict[str, Any]
    reference: str

    def mg_ref(self, drug: Any, mg: Fraction) -> Fraction:
        eq_ref = frac(self.drugs[self.reference].equivalent_mg)
        eq = frac(drug.equivalent_mg)
        assert eq_ref is not None
        assert eq is not None
        return mg * eq_ref / eq


def make_ref(rules: Any) -> Ref:
    return Ref(list(rules.rules), {d.name: d for d in rules.drugs.values()}, rules.reference_steroid.name)


def category(drugs: list[Any]) -> str:
    classes = {d.drug_class for d in drugs}
    if not drugs:
        return "dry"
    if "corticosteroid" in classes:
        return "steroid"
    if "anesthetic" in classes:
        return "anesthetic"
    return "other"


def to_inj(ref: Ref, day: int, site: Any, side: str | None, drugs: dict[Any, Any], points: int | None,
           override: str | None = None) -> Inj:
    """``drugs``: {Drug: Amount} (Amount.value in picograms when Amount.kind == 'mg')."""
    mg_ref = Fraction(0)
    anesthetics: dict[str, Fraction] = {}
    for drug, amount in drugs.items():
        mg = Fraction(amount.value, PG_PER_MG) if amount.kind == "mg" else None
        if drug.drug_class == "corticosteroid":
            assert mg is not None
            mg_ref += ref.mg_ref(drug, mg)
        elif drug.drug_class == "anesthetic":
            assert mg is not None
            anesthetics[drug.name] = anesthetics.get(drug.name, Fraction(0)) + mg
    return Inj(day, site.name, site.region, site.lateral, side if site.lateral else None,
               category(list(drugs)), mg_ref, anesthetics, points if points is not None else 1, override)


def from_history(ref: Ref, history: Any) -> tuple[list[Inj], list[tuple[int, int, Fraction]]]:
    injections = [to_inj(ref, i.day, i.site, i.side, i.drugs, i.points, i.override) for i in history.injections]
    # SPEC: ordered by date, then first appearance (read_patients gives first appearance order for ties)
    assert [i.day for i in injections] == sorted(i.day for i in injections)
    weights = [(day, order, Fraction(w.num, w.den)) for day, order, w in history.weights]
    return injections, weights


def weight_on(weights: list[tuple[int, int, Fraction]], day: int) -> Fraction | None:
    """The latest weight recorded on or before ``day`` (latest by date, then by row order)."""
    known = [(d, o, w) for d, o, w in weights if d <= day]
    return max(known, key=lambda t: (t[0], t[1]))[2] if known else None


# --- one rule, one evaluated injection -----------------------------------------------------------

def active(rule: Any, profiles: frozenset[str]) -> bool:
    return not rule.profiles or bool(set(rule.profiles) & set(profiles))


def in_force(rule: Any, day: int) -> bool:
    return (rule.effective is None or day >= rule.effective) and (rule.until is None or day <= rule.until)


def overlap(a: Inj, b: Inj) -> bool:
    if not a.lateral:
        return True
    return a.side is None or b.side is None or a.side == "bilateral" or b.side == "bilateral" or a.side == b.side


def in_scope(rule: Any, x: Inj, b: Inj) -> bool:
    if rule.scope == "site":
        return b.site == x.site and overlap(x, b)
    if rule.scope == "region":
        return b.region == x.region
    if rule.scope == "patient":
        return True
    assert rule.scope == "session"
    return b.day == x.day


def status(ref: Ref, rule: Any, x: Inj, before: list[Inj], weight: Fraction | None) -> str:
    """The status of ``rule`` for injection ``x`` evaluated against ``before`` (those ordered before it).
    The rule is assumed active (profiles)."""
    if not in_force(rule, x.day) or x.category not in rule.applies_to:
        return SKIP
    session_kind = rule.kind in ("anesthetic-dose", "max-points", "max-regions")
    counted = [b for b in before if b.category in rule.counts and
               (b.day == x.day if session_kind else in_scope(rule, x, b))]
    grace = None if is_zero(rule.grace) else rule.grace
    result = PASS
    if rule.kind == "min-interval":
        for b in counted:
            if x.day < plus(b.day, rule.interval):
                one = WARN if grace is not None and x.day >= plus_minus(b.day, rule.interval, grace) else FAIL
                result = max(result, one, key=_RANK.__getitem__)
    elif rule.kind in ("max-count", "max-steroid-dose"):

        def total(strict: bool) -> Fraction | int:
            inside = []
            for b in counted:
                if rule.window is None or (strict and x.day < plus_minus(b.day, rule.window, grace)) or (not strict and x.day < plus(b.day, rule.window)):
                    inside.append(b)
            if rule.kind == "max-steroid-dose":
                return sum((b.mg_ref for b in inside), x.mg_ref)
            if rule.unit == "session":
                return len({b.day for b in inside} | {x.day})
            return len(inside) + 1

        limit = frac(rule.max_mg) if rule.kind == "max-steroid-dose" else rule.max
        if total(False) <= limit:
            result = PASS
        elif grace is not None and rule.window is not None and total(True) <= limit:
            result = WARN
        else:
            result = FAIL
    elif rule.kind == "anesthetic-dose":
        mg: dict[str, Fraction] = {}
        for b in [*counted, x]:
            for name, amount in b.anesthetics.items():
                mg[name] = mg.get(name, Fraction(0)) + amount
        used = Fraction(0)
        for name, amount in mg.items():
            drug = ref.drugs[name]
            limits = []
            if drug.max_mg is not None:
                limits.append(frac(drug.max_mg))
            if drug.max_mg_per_kg is not None and weight is not None:
                limits.append(frac(drug.max_mg_per_kg) * weight)
            if not limits:
                return _severity(rule, FAIL)
            used += amount / min(limits)
        result = PASS if used <= 1 else FAIL
    elif rule.kind == "max-points":
        result = PASS if sum(b.points for b in counted) + x.points <= rule.max else FAIL
    elif rule.kind == "max-regions":
        result = PASS if len({b.region for b in counted} | {x.region}) <= rule.max else FAIL
    else:  # pragma: no cover
        raise AssertionError(rule.kind)
    return _severity(rule, result)


def _severity(rule: Any, result: str) -> str:
    if result == FAIL and rule.severity == "warn":
        return WARN
    return result


# --- validate ------------------------------------------------------------------------------------

def validate(rules: Any, profiles: frozenset[str], histories: list[Any]) -> set[tuple[Any, ...]]:
    """{(patient_id, date, site, side, rule_id, severity, overridden)} of every violation."""
    ref = make_ref(rules)
    found: set[tuple[Any, ...]] = set()
    for history in histories:
        injections, weights = from_history(ref, history)
        for position, x in enumerate(injections):
            before = injections[:position]
            for rule in ref.rules:
                if not active(rule, profiles):
                    continue
                result = status(ref, rule, x, before, weight_on(weights, x.day))
                if result in (WARN, FAIL):
                    found.add((history.patient_id, date.fromordinal(x.day).isoformat(), x.site, x.side, rule.id,
                               "warn" if result == WARN else "block", x.override))
    return found


# --- check ---------------------------------------------------------------------------------------

def check(rules: Any, profiles: frozenset[str], history: Any, site: Any, side: str | None,
          drugs: dict[Any, Any], points: int | None, on: int, weight_kg: Fraction | None = None,
          own_on: dict[str, str] | None = None) -> tuple[str, str | None, dict[str, tuple[str, str | None]]]:
    """(verdict, earliest date, {rule id: (status on ``on``, rule earliest date)}) by trying every day.

    ``own_on``, if given, receives each rule's status on ``on`` for the proposal alone (before
    planned later injections are considered)."""
    ref = make_ref(rules)
    injections, weights = from_history(ref, history)

    def weight_at(day: int) -> Fraction | None:
        return weight_kg if weight_kg is not None else weight_on(weights, day)

    # statuses of every history injection without the proposal (for the planned-injection rule)
    baseline = {(rule.id, k): status(ref, rule, x, injections[:k], weight_at(x.day))
                for rule in ref.rules for k, x in enumerate(injections)}

    @cache
    def proposal_on(day: int) -> Inj:
        return to_inj(ref, day, site, side, drugs, points)

    def rule_status(rule: Any, day: int) -> str:
        if not active(rule, profiles):
            return SKIP
        x = proposal_on(day)
        cut = sum(1 for i in injections if i.day <= day)
        own = status(ref, rule, x, injections[:cut], weight_at(day))
        if own_on is not None and day == on:
            own_on[rule.id] = own
        worst = own
        with_proposal = [*injections[:cut], x, *injections[cut:]]
        for k in range(cut, len(injections)):
            later = injections[k]
            old = baseline[(rule.id, k)]
            if old == FAIL:
                continue
            new = status(ref, rule, later, with_proposal[:k + 1], weight_at(later.day))
            if _RANK[new] > _RANK[old] and new in (WARN, FAIL):
                worst = max(worst, new, key=_RANK.__getitem__)
        return worst

    last = max([on, *(i.day for i in injections)]
               + [d for r in ref.rules for d in (r.effective, r.until) if d is not None])
    longest = max([longest_days(r.interval) + longest_days(r.window) + longest_days(r.grace) for r in ref.rules],
                  default=0)
    horizon = last + longest + 3

    statuses: dict[str, str] = {}
    earliest: dict[str, str | None] = {}
    verdict_day: int | None = None
    pending = {r.id for r in ref.rules}
    for day in range(on, horizon + 1):
        # once the verdict's day is known only the rules still pending need evaluating
        today = {rule.id: rule_status(rule, day) for rule in ref.rules
                 if verdict_day is None or rule.id in pending}
        if day == on:
            statuses = dict(today)
        for rule_id in list(pending):
            if today[rule_id] in (PASS, SKIP):
                earliest[rule_id] = date.fromordinal(day).isoformat()
                pending.discard(rule_id)
        if verdict_day is None and all(s != FAIL for s in today.values()):
            verdict_day = day
        if verdict_day is not None and not pending:
            break
    for rule_id in pending:
        earliest[rule_id] = None
    if verdict_day is None:
        verdict, when = "blocked", None
    elif verdict_day == on:
        verdict, when = "allowed", date.fromordinal(on).isoformat()
    else:
        verdict, when = "not-yet", date.fromordinal(verdict_day).isoformat()
    return verdict, when, {r.id: (statuses[r.id], earliest[r.id]) for r in ref.rules}
