"""A reference evaluator: SPEC.md's rule semantics, brute force, day by day.

Deliberately simple and slow. It shares nothing with the engine beyond parsing: it takes the parsed
rules (``tpi_cli.rules_file.parse_rules``) and histories (``tpi_cli.history.read_patients``), converts
them to plain records with ``fractions.Fraction`` doses, and evaluates every rule from its
definition in SPEC.md plus the README's "Where SPEC.md is silent" choices:

- every window / interval is computed with ``relativedelta`` from the original date;
- grace: one relativedelta ``interval - grace`` (or ``window - grace``) from the original date;
- the evaluated injection always counts for max-count and max-steroid-dose;
- ``check`` inserts the proposal after the history injections of its date, evaluates it against
  those before it, and lets a later injection whose status gets worse hold it back;
- earliest dates are found by trying every calendar day from ``on`` up to a horizon after which
  nothing can change any more;
- ``counted`` (README choice 4) is read from the proposal's own evaluation on ``on`` (nothing for
  a rule that does not apply, skip, or is inactive), plus each planned later injection the
  proposal makes worse and what the rule counted for it besides the proposal;
- ``validate``'s summary counts the violations not overridden by severity, and the overridden ones;
- ``next`` asks ``check`` for each row's dry, anesthetic and steroid proposal (the rules'
  ``defaults``), and reads ``steroid_mg_remaining`` from the max-steroid-dose rules' windows
  (cross-checked with ``status`` alone by ``steroid_dose_outcome``);
- ``totals`` adds up every history injection with Fractions, and finds the default window's start
  by trying every day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
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
    """The weight recorded on the latest date on or before ``day`` that has one; the lowest of
    that date's weights when it has several (the safer reading: lower limits)."""
    known = [(d, w) for d, _, w in weights if d <= day]
    if not known:
        return None
    latest = max(d for d, _ in known)
    return min(w for d, w in known if d == latest)


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


def counted_injections(rule: Any, x: Inj, before: list[Inj]) -> list[Inj]:
    """The injections ``rule`` counts evaluating ``x`` against ``before`` (README choice 4): never
    ``x``; nothing when the rule does not apply to ``x`` (status skip); min-interval: the latest
    counted injection in scope (passing or not); max-count / max-steroid-dose: those inside the
    (whole) window at ``x.day``; session kinds: the earlier injections of the same day that the
    rule counts. The rule is assumed active (profiles)."""
    if not in_force(rule, x.day) or x.category not in rule.applies_to:
        return []
    session_kind = rule.kind in ("anesthetic-dose", "max-points", "max-regions")
    counted = [b for b in before if b.category in rule.counts and
               (b.day == x.day if session_kind else in_scope(rule, x, b))]
    if rule.kind == "min-interval":
        return [max(counted, key=lambda b: b.day)] if counted else []
    if rule.kind in ("max-count", "max-steroid-dose"):
        return [b for b in counted if b.day <= x.day and (rule.window is None or x.day < plus(b.day, rule.window))]
    return counted


def counted_days(rule: Any, injections: list[Inj]) -> list[int]:
    """The dates ``counted`` lists for those injections: ascending, distinct for max-count with
    ``unit: session``."""
    days = sorted(b.day for b in injections)
    return sorted(set(days)) if rule.kind == "max-count" and rule.unit == "session" else days


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


def validate_summary(violations: set[tuple[Any, ...]]) -> dict[str, int]:
    """``summary`` of ``validate`` (README choice 15): ``block`` / ``warn`` count the violations that
    are not overridden, by severity; ``overridden`` the overridden ones."""
    return {"block": sum(1 for v in violations if v[5] == "block" and v[6] is None),
            "warn": sum(1 for v in violations if v[5] == "warn" and v[6] is None),
            "overridden": sum(1 for v in violations if v[6] is not None)}


# --- check ---------------------------------------------------------------------------------------

def check(rules: Any, profiles: frozenset[str], history: Any, site: Any, side: str | None,
          drugs: dict[Any, Any], points: int | None, on: int, weight_kg: Fraction | None = None,
          own_on: dict[str, str] | None = None, verdict_only: bool = False,
          counted_on: dict[str, list[str]] | None = None, on_only: bool = False
          ) -> tuple[str, str | None, dict[str, tuple[str, str | None]]]:
    """(verdict, earliest date, {rule id: (status on ``on``, rule earliest date)}) by trying every day.

    ``own_on``, if given, receives each rule's status on ``on`` for the proposal alone (before
    planned later injections are considered). ``counted_on``, if given, receives each rule's
    ``counted`` dates on ``on`` (``counted_days``; an inactive rule counts nothing), ISO text.
    ``verdict_only``: only the verdict and its date are wanted (``tpi next``): each day stops at its
    first failing rule, the search at the verdict's day, and the per-rule dict is empty.
    ``on_only``: only ``on`` is evaluated, no search: the verdict is ``allowed`` or ``not-allowed``
    (no rule fails on ``on``, or one does), and every earliest date is None."""
    ref = make_ref(rules)
    injections, weights = from_history(ref, history)

    @cache
    def weight_at(day: int) -> Fraction | None:
        return weight_kg if weight_kg is not None else weight_on(weights, day)

    # statuses of every history injection without the proposal (for the planned-injection rule)
    baseline = {(rule.id, k): status(ref, rule, x, injections[:k], weight_at(x.day))
                for rule in ref.rules for k, x in enumerate(injections)}

    proposal = to_inj(ref, on, site, side, drugs, points)

    @cache
    def proposal_on(day: int) -> Inj:
        return replace(proposal, day=day)  # the same injection on another day

    if counted_on is not None:
        cut_on = sum(1 for i in injections if i.day <= on)
        for rule in ref.rules:
            chosen = counted_injections(rule, proposal, injections[:cut_on]) if active(rule, profiles) else []
            if active(rule, profiles):
                # a planned injection the proposal makes worse: the rule counted it, and what it
                # counted with it besides the proposal (the proposal is an interval's latest then)
                with_proposal = [*injections[:cut_on], proposal, *injections[cut_on:]]
                for k in range(cut_on, len(injections)):
                    later, old = injections[k], baseline[(rule.id, k)]
                    new = status(ref, rule, later, with_proposal[:k + 1], weight_at(later.day))
                    if old != FAIL and _RANK[new] > _RANK[old] and new in (WARN, FAIL):
                        if rule.kind != "min-interval":
                            chosen += counted_injections(rule, later, injections[:k])
                        chosen.append(later)
            unique = list({id(i): i for i in chosen}.values())
            counted_on[rule.id] = [date.fromordinal(day).isoformat() for day in counted_days(rule, unique)]

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

    if on_only:
        today = {rule.id: rule_status(rule, on) for rule in ref.rules}
        verdict = "allowed" if all(s != FAIL for s in today.values()) else "not-allowed"
        return verdict, None, {rule_id: (s, None) for rule_id, s in today.items()}

    if verdict_only:
        order = list(ref.rules)
        for day in range(on, horizon + 1):
            # the same day-by-day search; a day is settled by its first failing rule (tried first
            # the next day, as it is likely to fail again)
            failing = next((rule for rule in order if rule_status(rule, day) == FAIL), None)
            if failing is None:
                when = date.fromordinal(day).isoformat()
                return ("allowed" if day == on else "not-yet"), when, {}
            order.remove(failing)
            order.insert(0, failing)
        return "blocked", None, {}

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


def check_header(rules: Any, profiles: frozenset[str], patient_id: str | None, site: Any, side: str | None,
                 drugs: dict[Any, Any], on: int) -> dict[str, Any]:
    """The keys of ``check --format json`` that describe the proposal itself: ``patient_id``,
    ``site``, ``side`` (null for a site without sides), ``on``, ``category``, ``profiles`` (the
    chosen ones, sorted) and ``drugs``: per drug, in the order first given (a drug given twice
    summed), ``dose_mg`` (null for a dose that is not a mass) and ``mg_ref`` (null for a drug that
    is not a corticosteroid), rounded half up to 2 decimals (README choice 20)."""
    ref = make_ref(rules)
    lines = []
    for drug, amount in drugs.items():
        mg = Fraction(amount.value, PG_PER_MG) if amount.kind == "mg" else None
        mg_ref = ref.mg_ref(drug, mg) if drug.drug_class == "corticosteroid" and mg is not None else None
        lines.append({"name": drug.name, "dose_mg": None if mg is None else round_half_up(mg),
                      "mg_ref": None if mg_ref is None else round_half_up(mg_ref)})
    return {"patient_id": patient_id, "site": site.name, "side": side if site.lateral else None,
            "on": date.fromordinal(on).isoformat(), "category": category(list(drugs)),
            "profiles": sorted(profiles), "drugs": lines}


# --- next ----------------------------------------------------------------------------------------

NEXT_CATEGORIES = ("dry", "anesthetic", "steroid")


def default_proposal(rules: Any, category: str) -> dict[Any, Any]:
    """The proposal ``tpi next`` evaluates for a category: no drug for ``dry``, else the rules'
    ``defaults`` (README choice 17), as {Drug: Amount} with a drug given twice summed."""
    if category == "dry":
        return {}
    drugs: dict[Any, Any] = {}
    for drug, amount in rules.defaults[category]:
        drugs[drug] = amount if drug not in drugs else drugs[drug].plus(amount)
    return drugs


def next_places(rules: Any, history: Any, only: tuple[Any, str | None] | None = None) -> list[tuple[Any, str | None]]:
    """The (site, side) rows: every site of the history (any date), sorted by name, or the one given
    (``--site``; a side word narrows a lateral site to that side); ``left`` and ``right`` for a lateral
    site, one row without a side otherwise."""
    if only is not None:
        sites = [only[0]]
        wanted = only[1]
    else:
        sites = [rules.sites[name] for name in sorted({i.site.name for i in history.injections})]
        wanted = None
    places: list[tuple[Any, str | None]] = []
    for site in sites:
        if not site.lateral:
            places.append((site, None))
        elif wanted in ("left", "right"):
            places.append((site, wanted))
        else:
            places += [(site, "left"), (site, "right")]
    return places


def _budget_rules(ref: Ref, profiles: frozenset[str]) -> list[Any]:
    """The active blocking max-steroid-dose rules."""
    return [rule for rule in ref.rules if active(rule, profiles) and rule.kind == "max-steroid-dose"
            and rule.severity != "warn"]


def _window_mg(rule: Any, x: Inj, before: list[Inj]) -> Fraction:
    """mg_ref of the injections of ``before`` that ``rule`` counts for ``x`` inside its (whole) window
    at ``x.day`` (``p <= d < p + window``), ``x`` itself not included."""
    return sum((b.mg_ref for b in before if b.category in rule.counts and in_scope(rule, x, b)
                and b.day <= x.day and (rule.window is None or x.day < plus(b.day, rule.window))), Fraction(0))


def steroid_budget(rules: Any, profiles: frozenset[str], history: Any, site: Any, side: str | None,
                   on: int) -> Fraction | None:
    """``steroid_mg_remaining`` exactly (before rounding): SPEC.md's "largest mg_ref dose that the
    rules would still allow at that site on DATE (the smallest budget left by the active blocking
    max-steroid-dose rules, never below 0)", with README choice 8's reading of "budget left". Over
    the active blocking max-steroid-dose rules, the smallest of

    - ``max_mg`` minus the mg_ref already in the window at ``on`` (the injections ordered before a
      proposal on ``on``: every one dated on or before it), for a rule in force on ``on`` that applies
      to steroid injections (else the proposal itself is outside the rule), and
    - ``max_mg`` minus the total of each later injection that the rule evaluates (its category, in
      force on its date), that does not already fail it (choice 6) and whose window would count a
      steroid injection on ``on``: the proposal must not make a planned injection invalid. One that
      is over the limit inside its grace period (it warns) counts only its window shortened by the
      grace, and only when that would count the proposal: beyond it, it fails.

    Never below 0; None when nothing limits the dose."""
    ref = make_ref(rules)
    injections, _ = from_history(ref, history)
    x = to_inj(ref, on, site, side, default_proposal(rules, "steroid"), None)
    assert x.category == "steroid"
    cut = sum(1 for i in injections if i.day <= on)
    budget: Fraction | None = None
    for rule in _budget_rules(ref, profiles):
        limit = frac(rule.max_mg)
        assert limit is not None
        left: list[Fraction] = []
        if "steroid" in rule.applies_to and in_force(rule, on):
            left.append(limit - _window_mg(rule, x, injections[:cut]))
        for k in range(cut, len(injections)):
            later = injections[k]
            if later.category not in rule.applies_to or not in_force(rule, later.day):
                continue
            if "steroid" not in rule.counts or not in_scope(rule, later, x):
                continue
            if rule.window is not None and later.day >= plus(on, rule.window):
                continue  # the proposal would be out of this injection's window
            now = status(ref, rule, later, injections[:k], None)
            if now == FAIL:
                continue  # already over without the proposal (choice 6)
            if now == WARN:  # over, inside its grace period: it fails only when its shorter window is over
                grace = rule.grace
                if later.day < plus_minus(on, rule.window, grace):  # its shorter window counts the proposal
                    left.append(limit - later.mg_ref - sum(
                        (b.mg_ref for b in injections[:k] if b.category in rule.counts and in_scope(rule, later, b)
                         and b.day <= later.day and later.day < plus_minus(b.day, rule.window, grace)), Fraction(0)))
                continue
            left.append(limit - later.mg_ref - _window_mg(rule, later, injections[:k]))
        if left:
            budget = min(left) if budget is None else min(budget, *left)
    return None if budget is None else max(budget, Fraction(0))


def steroid_dose_outcome(rules: Any, profiles: frozenset[str], history: Any, site: Any, side: str | None, on: int,
                         mg_ref: Fraction) -> str:
    """A cross-check of ``steroid_budget`` with ``status`` alone, the way ``check`` decides: the worst
    outcome, over the active blocking max-steroid-dose rules (in force on ``on`` or not), of a steroid
    injection of ``mg_ref`` on ``on`` at (site, side): its own status, and ``fail`` / ``warn`` if it
    makes a later injection's status worse (README choice 6)."""
    ref = make_ref(rules)
    injections, _ = from_history(ref, history)
    x = to_inj(ref, on, site, side, default_proposal(rules, "steroid"), None)
    x.mg_ref = mg_ref
    cut = sum(1 for i in injections if i.day <= on)
    with_x = [*injections[:cut], x, *injections[cut:]]
    worst = SKIP
    for rule in _budget_rules(ref, profiles):
        worst = max(worst, status(ref, rule, x, injections[:cut], None), key=_RANK.__getitem__)
        for k in range(cut, len(injections)):
            old = status(ref, rule, injections[k], injections[:k], None)
            new = status(ref, rule, injections[k], with_x[:k + 1], None)
            if old != FAIL and _RANK[new] > _RANK[old] and new in (WARN, FAIL):
                worst = max(worst, new, key=_RANK.__getitem__)
    return worst


def round_half_up(value: Fraction) -> float:
    """mg as JSON shows them: half up to 2 decimals (README choice 20)."""
    return math.floor(value * 100 + Fraction(1, 2)) / 100


def next_forecast(rules: Any, profiles: frozenset[str], history: Any, on: int,
                  only: tuple[Any, str | None] | None = None,
                  weight_kg: Fraction | None = None) -> list[dict[str, Any]]:
    """``tpi next``'s rows: per (site, side), the earliest date of each category's default proposal
    (the verdict's earliest date of ``check``, tried day by day; None when blocked) and
    ``steroid_mg_remaining`` rounded half up to 2 decimals, like every mg in JSON."""
    rows: list[dict[str, Any]] = []
    for site, side in next_places(rules, history, only):
        row: dict[str, Any] = {"site": site.name, "side": side}
        for category in NEXT_CATEGORIES:
            _, when, _ = check(rules, profiles, history, site, side, default_proposal(rules, category), None, on,
                               weight_kg, verdict_only=True)
            row[category] = when
        budget = steroid_budget(rules, profiles, history, site, side, on)
        row["steroid_mg_remaining"] = None if budget is None else round_half_up(budget)
        rows.append(row)
    return rows


# --- totals --------------------------------------------------------------------------------------

def window_start(window: Any, on: int) -> int | None:
    """The first day ``p`` whose injection is inside the window ending on ``on`` (``p <= on < p +
    window``), found by trying every day; None for all time (no window)."""
    if window is None:
        return None
    inside = [p for p in range(on - longest_days(window) - 2, on + 1) if on < plus(p, window)]
    assert inside
    assert inside[-1] == on
    return inside[0]


def default_windows(rules: Any, profiles: frozenset[str], on: int) -> list[Any]:
    """The longest window, at ``on``, of the active steroid rules (max-count / max-steroid-dose rules
    that apply to or count steroid injections, README choice 16): every candidate that reaches back
    furthest from ``on`` (equal durations and durations equal at ``on`` all qualify). ``[None]``:
    all time, when no such rule has a window or one of them has none (SPEC.md: a max-count /
    max-steroid-dose rule without a window counts all time). Session rules aside: their window is
    the day."""
    candidates = [rule.window for rule in rules.rules if active(rule, profiles)
                  and rule.kind in ("max-count", "max-steroid-dose") and rule.scope != "session"
                  and ("steroid" in rule.applies_to or "steroid" in rule.counts)]
    if any(window is None for window in candidates):
        return [None]
    windows = [window for window in candidates if window is not None]
    if not windows:
        return [None]
    starts = {id(window): window_start(window, on) for window in windows}
    first = min(starts.values())  # type: ignore[type-var]
    return [window for window in windows if starts[id(window)] == first]


def totals(rules: Any, histories: list[Any], on: int, window: Any) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """``tpi totals`` by brute force with Fractions: ({(patient, site, side): row}, {patient: total}),
    each row ``{"steroid_injections", "mg_ref", "by_drug", "all_time_injections", "all_time_mg_ref",
    "all_time_by_drug"}`` with mg rounded half up to 2 decimals. Rows per site and side: ``left`` and
    ``right`` for a lateral site, a bilateral or unspecified injection in both (SPEC.md: "an unknown
    side is counted against both sides", "a bilateral injection's doses count in full against each
    side"; README choice 16), only where a steroid injection dated on or before ``on`` was given;
    every patient has a total once per injection. ``window``: a Duration, or None for all time."""
    ref = make_ref(rules)
    exact_rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    exact_patients: dict[Any, dict[str, Any]] = {}

    def empty() -> dict[str, Any]:
        return {"steroid_injections": 0, "mg_ref": Fraction(0), "by_drug": {},
                "all_time_injections": 0, "all_time_mg_ref": Fraction(0), "all_time_by_drug": {}}

    for history in histories:
        assert history.patient_id not in exact_patients
        patient = exact_patients[history.patient_id] = empty()
        for injection in history.injections:
            steroids = {drug: Fraction(amount.value, PG_PER_MG) for drug, amount in injection.drugs.items()
                        if drug.drug_class == "corticosteroid"}
            if not steroids or injection.day > on:
                continue
            assert category(list(injection.drugs)) == "steroid"
            if not injection.site.lateral:
                sides: list[str | None] = [None]
            else:
                sides = [injection.side] if injection.side in ("left", "right") else ["left", "right"]
            rows = [exact_rows.setdefault((history.patient_id, injection.site.name, side), empty()) for side in sides]
            inside = injection.day <= on and (window is None or on < plus(injection.day, window))
            mg_ref = sum((ref.mg_ref(drug, mg) for drug, mg in steroids.items()), Fraction(0))
            periods = [("all_time_injections", "all_time_mg_ref", "all_time_by_drug")]
            if inside:
                periods.append(("steroid_injections", "mg_ref", "by_drug"))
            for target in [*rows, patient]:
                for count_key, mg_key, drug_key in periods:
                    target[count_key] += 1
                    target[mg_key] += mg_ref
                    for drug, mg in steroids.items():
                        target[drug_key][drug.name] = target[drug_key].get(drug.name, Fraction(0)) + mg

    def shown(exact: dict[str, Any]) -> dict[str, Any]:
        return {key: (round_half_up(value) if isinstance(value, Fraction)
                      else {n: round_half_up(v) for n, v in value.items()} if isinstance(value, dict) else value)
                for key, value in exact.items()}

    return ({key: shown(value) for key, value in exact_rows.items()},
            {key: shown(value) for key, value in exact_patients.items()})
