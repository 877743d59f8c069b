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

from typing import Any

from tpi_cli.engine import FAIL, PASS, PatientIndex, anesthetic_limit, describe, measure
from tpi_cli.model import Injection, PatientHistory
from tpi_cli.quantity import PG_PER_MG, Ratio
from tpi_cli.results import Violation
from tpi_cli.rules import (
    ANESTHETIC_DOSE,
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
_NO_LIMIT = float("inf")
_UNSET = object()


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
            known = self._least.get(plan.kind)
            self._least[plan.kind] = plan.limit if known is None else min(known, plan.limit)
        self._least_points = self._least.get(MAX_POINTS, _FAR)
        self._least_count = min(self._least.get(MAX_COUNT, _FAR), self._least.get(MAX_REGIONS, _FAR))
        # Reference units are huge ints (no cap such as _FAR: it would be a small dose in them).
        self._least_load: float | int = self._least.get(MAX_STEROID_DOSE, _NO_LIMIT)
        self._anesthetics = [drug for drug in rules.drugs.values() if drug.is_anesthetic]

    def patient(self, history: PatientHistory) -> list[Violation]:
        """Each violation once, on the injection that breaks the rule, in evaluation order."""
        injections = history.injections
        if not injections:
            return []
        suspects: list[tuple[int, int]] = []
        number = dict.fromkeys(CATEGORIES, 0)
        load = dict.fromkeys(CATEGORIES, 0)
        # Per site: the shortest gap in days between two injections, the most injections and the
        # largest corticosteroid load (all categories, all sides, all time: upper bounds).
        last_day: dict[Site, int] = {}
        at_site: dict[Site, int] = {}
        load_at_site: dict[Site, int] = {}
        gap = _FAR
        # Per session (day), in the same pass: its totals against the tightest session limits
        # (when every session rule involves every category; else each rule on its own).
        sessions = bool(self._session_plans)
        quick = self._plain_sessions
        least_points, least_count, least_load = self._least_points, self._least_count, self._least_load
        first = 0
        session_day = injections[0].day
        points = steroid = mass = 0
        weight = history.standing_weight  # the weight on or before the session's day (as PatientIndex.weight_at)
        lowest: Ratio | None = None  # the lowest weight recorded on the session's day so far
        bound_weight: Any = _UNSET  # the weight `bound` was computed for
        bound = 0.0
        size = len(injections)
        for position, injection in enumerate(injections):
            day = injection.day
            if sessions and day != session_day:
                first, session_day, points, steroid, mass, lowest = position, day, 0, 0, 0, None
            category = injection.category
            ref = injection.ref
            number[category] += 1
            load[category] += ref
            if sessions:
                if injection.weight is not None and (lowest is None or injection.weight < lowest):
                    lowest = injection.weight
                points += injection.points or 1
                steroid += ref
                mass += injection.la
                if position + 1 == size or injections[position + 1].day != day:  # the session ends here
                    if lowest is not None:
                        weight = lowest  # for this day, and after it until another day has one
                    within = quick and points <= least_points and position + 1 - first <= least_count and \
                        steroid <= least_load
                    if within and mass:
                        if weight is not bound_weight:
                            bound_weight, bound = weight, self._smallest(weight)
                        within = mass * bound <= 1 - _MARGIN
                    if not within:
                        self._screen_session(injections, first, position + 1, weight, suspects)
            site = injection.site
            before = last_day.get(site)
            if before is None:
                at_site[site] = 1
                load_at_site[site] = ref
            else:
                gap = min(gap, day - before)
                at_site[site] += 1
                load_at_site[site] += ref
            last_day[site] = day
        most_at_site = max(at_site.values())
        most_load_at_site = max(load_at_site.values())
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
        if not suspects:
            return []
        suspects.sort()
        return self._measure(history, suspects)

    def _smallest(self, weight: Ratio | None) -> float:
        """1 / the smallest limit of any local anesthetic at this weight (a session's anesthetic
        all taken against it bounds its share of the maximum)."""
        key = (weight.num, weight.den) if weight is not None else None
        smallest = self._smallest_inverse.get(key)
        if smallest is None:
            smallest = self._smallest_inverse[key] = max(
                (self._inverse(drug, weight) for drug in self._anesthetics), default=0.0)
        return smallest

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
        # Per group: the counted days and amounts, the first still within the span, and the sum of
        # those from it on (a sliding window: each injection enters and leaves once).
        groups: dict[object, list[Any]] = {}
        found = []
        for position, injection in enumerate(injections):
            key: object = injection.site if scope == SITE else injection.site.region if scope == REGION else None
            group = groups.get(key)
            category = injection.category
            day = injection.day
            if category in applies:
                amount = injection.ref if dose else 1
                if group is not None:
                    days, amounts, head, total = group
                    if span is not None:
                        while head < len(days) and day - days[head] >= span:
                            total -= amounts[head]
                            head += 1
                        group[2], group[3] = head, total
                    amount += total
                if amount > limit:
                    found.append(position)
            if category in counted:
                value = injection.ref if dose else 1
                if group is None:
                    groups[key] = [[day], [value], 0, value]
                else:
                    group[0].append(day)
                    group[1].append(value)
                    group[3] += value
        return found

    def _screen_session(self, injections: list[Injection], start: int, end: int, weight: Ratio | None,
                        suspects: list[tuple[int, int]]) -> None:
        """A session the quick bound could not clear: for each session rule, the injections whose
        running total (the session's counted injections before them, and their own) is over."""
        for plan in self._session_plans:
            kind, applies, counted, limit = plan.rule.kind, plan.applies, plan.counted, plan.limit
            total: float | int = 0  # int: reference units (exact); float: shares of a limit
            regions: set[str] = set()
            for position in range(start, end):
                injection = injections[position]
                if kind == MAX_POINTS:
                    own: float | int = injection.points or 1
                elif kind == MAX_COUNT:
                    own = 1
                elif kind == MAX_STEROID_DOSE:
                    own = injection.ref
                elif kind == MAX_REGIONS:
                    own = 0 if injection.site.region in regions else 1
                else:
                    own = sum(amount.value * self._inverse(drug, weight)
                              for drug, amount in injection.drugs.items() if drug.is_anesthetic)
                if injection.category in applies:
                    over = total + own > (1 - _MARGIN if kind == ANESTHETIC_DOSE else limit)
                    if over:
                        suspects.append((position, plan.order))
                if injection.category in counted:
                    total += own
                    if kind == MAX_REGIONS:
                        regions.add(injection.site.region)

    def _inverse(self, drug: Drug, weight: Ratio | None) -> float:
        """1 / the drug's limit in picograms (infinite when its limit is unknown), cached."""
        key = (drug, weight.num, weight.den) if weight is not None else (drug, 0, 0)
        factor = self._inverse_limits.get(key)
        if factor is None:
            found = anesthetic_limit(drug, weight)
            factor = self._inverse_limits[key] = 1 / (float(found) * PG_PER_MG) if found is not None else float("inf")
        return factor

    def _measure(self, history: PatientHistory, suspects: list[tuple[int, int]]) -> list[Violation]:
        injections = history.injections
        index = PatientIndex(self.rules, history)
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
