"""``tpi validate``: every injection of every patient against the injections before it.

The rule semantics live in :func:`tpi_cli.engine.measure` alone. Most injections break no rule,
so before measuring, each rule *screens* the patient with a conservative bound that can only say
"cannot fail":

* a whole patient: the count or corticosteroid load of every injection the rule involves, all
  time, is within the limit;
* an interval rule: the injection's last counted injection in the same scope (sides ignored) is
  at least as many days before as the interval can ever be long;
* a window rule: the count or load of the counted injections of the same scope (sides ignored)
  fewer days before than the window can ever be long is within the limit;
* a session rule: the session's totals over everything the rule involves are within the limit
  (local anesthetics in floating point, with a margin that sends anything near 100% on).

Only the injections a screen cannot clear are measured exactly. A screen may let through an
injection that passes (it is then measured and passes); it never clears one that fails.
"""

from __future__ import annotations

from tpi_cli.engine import FAIL, PASS, PatientIndex, anesthetic_limit, describe, measure
from tpi_cli.model import Injection, PatientHistory
from tpi_cli.quantity import PG_PER_MG, Ratio
from tpi_cli.results import Violation
from tpi_cli.rules import (
    BLOCK,
    CATEGORIES,
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
    Site,
)

_MARGIN = 1e-9
_FAR = 10**9


class _Plan:
    """What screening one rule needs, computed once."""

    __slots__ = ("applies", "counted", "dose", "everything", "involved", "kind", "limit", "order", "rule", "scope",
                 "session", "span")

    def __init__(self, order: int, rule: Rule) -> None:
        self.order = order
        self.rule = rule
        self.applies = rule.applies_to
        self.counted = rule.counts
        self.involved = tuple(c for c in CATEGORIES if c in rule.applies_to or c in rule.counts)
        self.everything = len(self.involved) == len(CATEGORIES)
        self.kind = rule.kind
        self.scope = rule.scope
        self.dose = rule.kind == MAX_STEROID_DOSE
        self.session = rule.scope == SESSION and rule.kind != MIN_INTERVAL
        limit = rule.max_ref if self.dose else rule.max
        self.limit: int = limit if limit is not None else 0
        duration = rule.interval if rule.kind == MIN_INTERVAL else rule.window
        self.span: int | None = duration.max_days() if duration is not None else None


class Validator:
    """Validates patient after patient against the active rules."""

    def __init__(self, rules: Rules, active: list[Rule]) -> None:
        self.rules = rules
        self.active = active
        plans = [_Plan(order, rule) for order, rule in enumerate(active)]
        self._session_plans = [plan for plan in plans if plan.session]
        self._other_plans = [plan for plan in plans if not plan.session]
        self._inverse_limits: dict[tuple[Drug, int, int], float] = {}
        self._smallest_inverse: dict[tuple[int, int] | None, float] = {}
        # The tightest limits of the session rules that involve every category: a session within
        # all of them needs no look at each rule.
        everything = [plan for plan in self._session_plans if plan.everything]
        self._plain_sessions = len(everything) == len(self._session_plans)
        self._least: dict[str, int] = {}
        for plan in everything:
            self._least[plan.kind] = min(self._least.get(plan.kind, _FAR), plan.limit)
        self._least_points = self._least.get(MAX_POINTS, _FAR)
        self._least_count = min(self._least.get(MAX_COUNT, _FAR), self._least.get(MAX_REGIONS, _FAR))
        self._least_load = self._least.get(MAX_STEROID_DOSE, _FAR)
        self._anesthetics = [drug for drug in rules.drugs.values() if drug.is_anesthetic]

    def patient(self, history: PatientHistory) -> list[Violation]:
        """Each violation once, on the injection that breaks the rule, in evaluation order."""
        injections = history.injections
        if not injections:
            return []
        number = dict.fromkeys(CATEGORIES, 0)
        load = dict.fromkeys(CATEGORIES, 0)
        # Per site: the shortest gap in days between two injections, the most injections and the
        # largest corticosteroid load (all categories, all sides, all time: upper bounds).
        last_day: dict[Site, int] = {}
        at_site: dict[Site, int] = {}
        load_at_site: dict[Site, int] = {}
        gap = _FAR
        for injection in injections:
            category = injection.category
            number[category] += 1
            load[category] += injection.ref
            site = injection.site
            day = last_day.get(site)
            if day is None:
                at_site[site] = 1
                load_at_site[site] = injection.ref
            else:
                gap = min(gap, injection.day - day)
                at_site[site] += 1
                load_at_site[site] += injection.ref
            last_day[site] = injection.day
        most_at_site = max(at_site.values())
        most_load_at_site = max(load_at_site.values())
        suspects: list[tuple[int, int]] = []
        for plan in self._other_plans:
            for category in plan.applies:
                if number[category]:
                    break
            else:
                continue  # no injection the rule applies to
            if plan.rule.kind == MIN_INTERVAL:
                if plan.scope == SITE and plan.span is not None and gap >= plan.span:
                    continue
                found = self._screen_interval(plan, injections)
            else:
                total = 0
                for category in plan.involved:
                    total += load[category] if plan.dose else number[category]
                if total <= plan.limit:
                    continue
                if plan.scope == SITE and (most_load_at_site if plan.dose else most_at_site) <= plan.limit:
                    continue
                found = self._screen_window(plan, injections)
            for position in found:
                suspects.append((position, plan.order))
        if self._session_plans:
            self._screen_sessions(injections, suspects)
        if not suspects:
            return []
        suspects.sort()
        return self._measure(history, suspects)

    @staticmethod
    def _screen_interval(plan: _Plan, injections: list[Injection]) -> list[int]:
        applies, counted, scope, span = plan.applies, plan.counted, plan.scope, plan.span
        assert span is not None
        last: dict[object, int] = {}
        found = []
        for position, injection in enumerate(injections):
            key: object = injection.site if scope == SITE else injection.site.region if scope == REGION else \
                injection.day if scope == SESSION else None
            category = injection.category
            if category in applies:
                day = last.get(key)
                if day is not None and injection.day - day < span:
                    found.append(position)
            if category in counted:
                last[key] = injection.day
        return found

    @staticmethod
    def _screen_window(plan: _Plan, injections: list[Injection]) -> list[int]:
        applies, counted, scope, span, dose, limit = (plan.applies, plan.counted, plan.scope, plan.span, plan.dose,
                                                      plan.limit)
        seen: dict[object, list[Injection]] = {}
        found = []
        for position, injection in enumerate(injections):
            key: object = injection.site if scope == SITE else injection.site.region if scope == REGION else None
            group = seen.get(key)
            category = injection.category
            if category in applies:
                amount = injection.ref if dose else 1
                if group:
                    day = injection.day
                    for earlier in reversed(group):
                        if span is not None and day - earlier.day >= span:
                            break
                        amount += earlier.ref if dose else 1
                        if amount > limit:
                            break
                if amount > limit:
                    found.append(position)
            if category in counted:
                if group is None:
                    group = seen[key] = []
                group.append(injection)
        return found

    def _screen_sessions(self, injections: list[Injection], suspects: list[tuple[int, int]]) -> None:
        """One pass over the sessions (days) for every session rule. A rule that involves every
        category reads the session's totals, computed once; others add up their own."""
        size = len(injections)
        start = 0
        weight: Ratio | None = None  # the latest weight on or before the session's day
        while start < size:
            day = injections[start].day
            end = start + 1
            while end < size and injections[end].day == day:
                end += 1
            if end - start == 1:
                injection = injections[start]
                if injection.weight is not None:
                    weight = injection.weight
                points, load, mass = injection.points or 1, injection.ref, injection.la
            else:
                points = load = mass = 0
                for position in range(start, end):
                    injection = injections[position]
                    if injection.weight is not None:
                        weight = injection.weight
                    points += injection.points or 1
                    load += injection.ref
                    mass += injection.la
            share = 0.0
            if mass:
                # All the session's anesthetic against the smallest limit of any anesthetic: when
                # even that is well within 100%, the exact shares are not needed.
                key = (weight.num, weight.den) if weight is not None else None
                smallest = self._smallest_inverse.get(key)
                if smallest is None:
                    smallest = self._smallest_inverse[key] = max(
                        (self._inverse(drug, weight) for drug in self._anesthetics), default=0.0)
                share = mass * smallest
                if share > 1 - _MARGIN:
                    share = 0.0
                    for position in range(start, end):
                        for drug, amount in injections[position].drugs.items():
                            if drug.is_anesthetic:
                                share += amount.value * self._inverse(drug, weight)
            if self._plain_sessions and points <= self._least_points and end - start <= self._least_count \
                    and load <= self._least_load and share <= 1 - _MARGIN:
                start = end
                continue  # within every session rule (a region count is at most the injection count)
            regions = 1 if end - start == 1 else -1  # counted only when needed
            for plan in self._session_plans:
                if plan.everything:
                    kind = plan.kind
                    if kind == MAX_POINTS:
                        over = points > plan.limit
                    elif kind == MAX_COUNT:
                        over = end - start > plan.limit
                    elif kind == MAX_REGIONS:
                        if regions < 0:
                            regions = len({injections[p].site.region for p in range(start, end)})
                        over = regions > plan.limit
                    elif kind == MAX_STEROID_DOSE:
                        over = load > plan.limit
                    else:
                        over = share > 1 - _MARGIN
                else:
                    over = self._session_over(plan, injections, start, end, weight)
                if over:
                    applies = plan.applies
                    for position in range(start, end):
                        if injections[position].category in applies:
                            suspects.append((position, plan.order))
            start = end

    def _inverse(self, drug: Drug, weight: Ratio | None) -> float:
        """1 / the drug's limit in picograms (infinite when its limit is unknown), cached."""
        key = (drug, weight.num, weight.den) if weight is not None else (drug, 0, 0)
        factor = self._inverse_limits.get(key)
        if factor is None:
            found = anesthetic_limit(drug, weight)
            factor = self._inverse_limits[key] = 1 / (float(found) * PG_PER_MG) if found is not None else float("inf")
        return factor

    def _session_over(self, plan: _Plan, injections: list[Injection], start: int, end: int,
                      weight: Ratio | None) -> bool:
        kind = plan.rule.kind
        involved = plan.involved
        limit = plan.limit
        if kind == MAX_POINTS:
            total = 0
            for position in range(start, end):
                injection = injections[position]
                if injection.category in involved:
                    total += injection.points or 1
            return total > limit
        if kind == MAX_COUNT:
            return end - start > limit and sum(1 for i in injections[start:end] if i.category in involved) > limit
        if kind == MAX_REGIONS:
            if end - start <= limit:
                return False
            return len({i.site.region for i in injections[start:end] if i.category in involved}) > limit
        if kind == MAX_STEROID_DOSE:
            return sum(i.ref for i in injections[start:end] if i.category in involved) > limit
        share = 0.0
        for position in range(start, end):
            injection = injections[position]
            if injection.category not in involved:
                continue
            for drug, amount in injection.drugs.items():
                if drug.is_anesthetic:
                    share += amount.value * self._inverse(drug, weight)
        return share > 1 - _MARGIN

    def _measure(self, history: PatientHistory, suspects: list[tuple[int, int]]) -> list[Violation]:
        injections = history.injections
        index = PatientIndex(self.rules, self.active, history)
        found: list[Violation] = []
        for position, order in suspects:
            rule = self.active[order]
            injection = injections[position]
            result = measure(index, rule, injection, position)
            if result[0] <= PASS:
                continue
            _, message = describe(index, rule, injection, position, result, counted=False)
            found.append(Violation(history.patient_id, injection.day, injection.site.name, injection.side, rule.id,
                                   BLOCK if result[0] == FAIL else WARN, message, injection.override))
        return found


def validate_patient(rules: Rules, active: list[Rule], history: PatientHistory) -> list[Violation]:
    return Validator(rules, active).patient(history)
