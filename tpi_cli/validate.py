"""``tpi validate``: every injection of every patient against the injections before it.

The rule semantics live in :func:`tpi_cli.engine.measure` alone. Most injections break no rule,
so before measuring, each rule *screens* the patient with a conservative bound that can only say
"cannot fail": a count or dose summed over a span of days at least as long as the window, an
interval compared in days with its longest possible length, a session's totals. Only the
injections a screen cannot clear are measured exactly. A screen may let through an injection that
passes (it is then measured and passes); it never clears one that fails.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence

from tpi_cli.engine import FAIL, PASS, PatientIndex, anesthetic_limit, describe, measure
from tpi_cli.model import Injection, PatientHistory
from tpi_cli.quantity import PG_PER_MG, Ratio
from tpi_cli.results import Violation
from tpi_cli.rules import (
    ANESTHETIC_DOSE,
    BLOCK,
    MAX_COUNT,
    MAX_POINTS,
    MAX_REGIONS,
    MAX_STEROID_DOSE,
    MIN_INTERVAL,
    REGION,
    SESSION,
    SITE,
    WARN,
    Drug,
    Rule,
    Rules,
)

Screen = Callable[[Rule, list[Injection], PatientHistory], Sequence[int]]


def _group_key(scope: str, injection: Injection) -> object:
    """A key that puts every injection of the rule's scope together (sides are ignored: a superset)."""
    if scope == SITE:
        return injection.site
    if scope == REGION:
        return injection.site.region
    if scope == SESSION:
        return injection.day
    return None


def _screen_interval(rule: Rule, injections: list[Injection], history: PatientHistory) -> list[int]:
    """Injections with a counted injection of their scope fewer days before than the interval
    can ever be long."""
    assert rule.interval is not None
    span = rule.interval.max_days()
    applies, counted, scope = rule.applies_to, rule.counts, rule.scope
    last: dict[object, int] = {}
    found = []
    for position, injection in enumerate(injections):
        key = _group_key(scope, injection)
        if injection.category in applies:
            day = last.get(key)
            if day is not None and injection.day - day < span:
                found.append(position)
        if injection.category in counted:
            last[key] = injection.day
    return found


def _screen_window(rule: Rule, injections: list[Injection], history: PatientHistory) -> list[int]:
    """Injections whose count or dose, summed over every counted injection of their scope fewer
    days before than the window can ever be long, is over the limit."""
    applies, counted, scope = rule.applies_to, rule.counts, rule.scope
    dose = rule.kind == MAX_STEROID_DOSE
    limit = rule.max_ref if dose else rule.max
    assert limit is not None
    total = 0
    for injection in injections:
        if injection.category in counted or injection.category in applies:
            total += injection.ref if dose else 1
    if total <= limit:
        return []
    span = rule.window.max_days() if rule.window is not None and scope != SESSION else None
    seen: dict[object, list[Injection]] = {}
    found = []
    for position, injection in enumerate(injections):
        key = _group_key(scope, injection)
        group = seen.get(key)
        if injection.category in applies:
            amount = injection.ref if dose else 1
            for earlier in reversed(group or ()):
                if span is not None and injection.day - earlier.day >= span:
                    break
                amount += earlier.ref if dose else 1
            if amount > limit:
                found.append(position)
        if injection.category in counted:
            if group is None:
                group = seen[key] = []
            group.append(injection)
    return found


def _sessions(injections: list[Injection]) -> list[tuple[int, int]]:
    """[start, end) position ranges of each day (injections are in date order)."""
    ranges = []
    start = 0
    for position in range(1, len(injections) + 1):
        if position == len(injections) or injections[position].day != injections[start].day:
            ranges.append((start, position))
            start = position
    return ranges


def _screen_session(rule: Rule, injections: list[Injection], history: PatientHistory) -> list[int]:
    """Every injection of a session whose totals (over all its injections the rule counts or
    applies to) are over the limit."""
    applies, involved = rule.applies_to, rule.applies_to | rule.counts
    kind = rule.kind
    found: list[int] = []
    limits: dict[tuple[Drug, Ratio | None], Ratio | None] = {}
    for start, end in _sessions(injections):
        members = [injections[p] for p in range(start, end) if injections[p].category in involved]
        if kind == MAX_POINTS:
            assert rule.max is not None
            over = sum(i.points or 1 for i in members) > rule.max
        elif kind == MAX_REGIONS:
            assert rule.max is not None
            over = len({i.site.region for i in members}) > rule.max
        elif kind == MAX_COUNT:
            assert rule.max is not None
            over = len(members) > rule.max
        else:
            over = _anesthetic_over(members, _weight_at(history, injections[start].day), limits)
        if over:
            found.extend(p for p in range(start, end) if injections[p].category in applies)
    return found


def _weight_at(history: PatientHistory, day: int) -> Ratio | None:
    weights = history.weights
    if not weights:
        return None
    index = bisect_right(weights, (day, len(history.injections) + 1)) if len(weights) > 1 else (
        1 if weights[0][0] <= day else 0)
    return weights[index - 1][2] if index else None


def _anesthetic_over(members: list[Injection], weight: Ratio | None,
                     limits: dict[tuple[Drug, Ratio | None], Ratio | None]) -> bool:
    """Whether the session's local anesthetics may exceed their limits (floats, with a margin
    that sends anything close to 100% to the exact measure)."""
    share = 0.0
    for injection in members:
        for drug, amount in injection.drugs.items():
            if not drug.is_anesthetic:
                continue
            key = (drug, weight)
            if key not in limits:
                limits[key] = anesthetic_limit(drug, weight)
            limit = limits[key]
            if limit is None:
                return True
            share += amount.value / (float(limit) * PG_PER_MG)
    return share > 1 - 1e-9


_SCREENS: dict[str, Screen] = {MIN_INTERVAL: _screen_interval, MAX_COUNT: _screen_window,
                               MAX_STEROID_DOSE: _screen_window, ANESTHETIC_DOSE: _screen_session,
                               MAX_POINTS: _screen_session, MAX_REGIONS: _screen_session}


def _screen_for(rule: Rule) -> Screen:
    if rule.scope == SESSION and rule.kind == MAX_COUNT:
        return _screen_session
    return _SCREENS[rule.kind]


class Validator:
    """Validates patient after patient against the active rules."""

    def __init__(self, rules: Rules, active: list[Rule]) -> None:
        self.rules = rules
        self.active = active
        self._plan = [(order, rule, _screen_for(rule)) for order, rule in enumerate(active)]

    def patient(self, history: PatientHistory) -> list[Violation]:
        """Each violation once, on the injection that breaks the rule, in evaluation order."""
        injections = history.injections
        if not injections:
            return []
        categories = {injection.category for injection in injections}
        suspects: list[tuple[int, int]] = []
        for order, rule, screen in self._plan:
            if categories.isdisjoint(rule.applies_to):
                continue
            suspects.extend((position, order) for position in screen(rule, injections, history))
        if not suspects:
            return []
        suspects.sort()
        index = PatientIndex(self.rules, self.active, history)
        found: list[Violation] = []
        for position, order in suspects:
            rule = self.active[order]
            injection = injections[position]
            result = measure(index, rule, injection, position)
            if result[0] <= PASS:
                continue
            _, message = describe(index, rule, injection, position, result)
            found.append(Violation(history.patient_id, injection.day, injection.site.name, injection.side, rule.id,
                                   BLOCK if result[0] == FAIL else WARN, message, injection.override))
        return found


def validate_patient(rules: Rules, active: list[Rule], history: PatientHistory) -> list[Violation]:
    return Validator(rules, active).patient(history)
