"""The rule engine: how one injection fares against the injections ordered before it.

Every command goes through :func:`measure` (the numbers and the status of one rule for one
injection) and :func:`describe` (what it counted and the message). A patient's history is indexed
once (:class:`PatientIndex`): for each rule's scope, the positions and dates of the injections the
rule counts, in evaluation order, with prefix sums of their corticosteroid load. A query then costs
a binary search, so a patient of n injections validates in O(n log n).

Semantics (SPEC.md, "Words" and "Rules file"):

* an injection at position k sees the injections at positions < k (date, then first appearance);
* an injection on day ``p`` counts in a window at day ``d`` iff ``p <= d < p + window``; an
  interval rule passes iff ``d >= p + interval`` for the latest counted ``p``; both use calendar
  durations computed from ``p`` (``Duration.add`` / ``Duration.first_start_after``);
* a grace period turns a failure that is within ``grace`` of passing into a warning;
* scope ``site`` counts injections at the same site whose sides overlap (equal, or either bilateral,
  or either unspecified); ``region`` the same region, any side; ``patient`` all; ``session`` the
  same day.

``extra`` is an injection that is not in the index but is ordered before the target: ``check``
uses it to ask whether a proposal would make a later (planned) injection newly invalid.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

from tpi_cli.dates import Duration, iso
from tpi_cli.model import Injection, PatientHistory
from tpi_cli.names import BILATERAL, LEFT, RIGHT
from tpi_cli.quantity import PG_PER_MG, Ratio, decimal_text, rounded
from tpi_cli.rules import (
    ANESTHETIC_DOSE,
    CATEGORIES,
    MAX_COUNT,
    MAX_POINTS,
    MAX_REGIONS,
    MAX_STEROID_DOSE,
    MIN_INTERVAL,
    PATIENT,
    REGION,
    SESSION,
    SITE,
    WARN,
    Drug,
    Rule,
    Rules,
    Site,
)

SKIP, PASS, WARNED, FAIL = -1, 0, 1, 2
STATUS_NAMES = {SKIP: "skip", PASS: "pass", WARNED: "warn", FAIL: "fail"}
_EXTRA = -2  # the position of ``extra`` in a measure
_NO_DAY = -(10**9)

CATEGORY_WORDS = {"steroid": "corticosteroid", "anesthetic": "local anesthetic", "other": "other-drug",
                  "dry": "dry needling"}


def sides_overlap(a: str | None, b: str | None) -> bool:
    """Equal sides, or either bilateral, or either unspecified (the safe reading)."""
    return a in (b, BILATERAL) or a is None or b is None or b == BILATERAL


def in_scope(scope: str, a: Injection, b: Injection) -> bool:
    """Whether injection ``b`` is in ``a``'s scope (the relation is symmetric)."""
    if scope == SITE:
        return a.site is b.site and (not a.site.lateral or sides_overlap(a.side, b.side))
    if scope == REGION:
        return a.site.region == b.site.region
    if scope == SESSION:
        return a.day == b.day
    return True


def counts(rule: Rule, target: Injection, other: Injection) -> bool:
    """Whether ``rule``, evaluating ``target``, counts ``other``."""
    return other.category in rule.counts and in_scope(rule.scope, target, other)


class ScopeList:
    """The injections one rule counts in one scope: their positions (ascending) and days
    (non-decreasing); prefix sums of corticosteroid load and of first-of-their-day flags are made
    on first use."""

    __slots__ = ("_firsts", "_refs", "days", "injections", "pos")

    def __init__(self, injections: list[Injection], positions: list[int]) -> None:
        self.injections = injections
        self.pos = positions
        self.days = [injections[p].day for p in positions]
        self._refs: list[int] | None = None
        self._firsts: list[int] | None = None

    @property
    def refs(self) -> list[int]:
        if self._refs is None:
            total = 0
            self._refs = [0]
            for position in self.pos:
                total += self.injections[position].ref
                self._refs.append(total)
        return self._refs

    @property
    def firsts(self) -> list[int]:
        if self._firsts is None:
            count = 0
            previous = None
            self._firsts = [0]
            for day in self.days:
                count += day != previous
                previous = day
                self._firsts.append(count)
        return self._firsts


def _query_key(scope: str, injection: Injection) -> object:
    """The scope list a target reads: for a site, its sides' list (``L``, ``R``, or ``A``, all
    sides, for a bilateral or unspecified side or a site without sides)."""
    if scope == SITE:
        site = injection.site
        side = injection.side
        return (site, "L" if side == LEFT and site.lateral else "R" if side == RIGHT and site.lateral else "A")
    if scope == REGION:
        return injection.site.region
    return None


def scope_key(scope: str, target: Injection) -> object:
    """Which of :meth:`PatientIndex.near`'s lists ``target`` reads for a rule of this scope."""
    return _query_key(PATIENT if scope == SESSION else scope, target)


_SMALL = 64  # up to this many injections, a scope list is picked out directly, not all filed at once


def _in_list(scope: str, key: object, injection: Injection) -> bool:
    """Whether an injection is in the scope list ``key``."""
    return key in _file_keys(scope, injection)


def _file_keys(scope: str, injection: Injection) -> tuple[object, ...]:
    """The scope lists an injection is in: a left injection in its site's left and all-sides
    lists, a bilateral or unspecified one in all three."""
    if scope == SITE:
        site = injection.site
        if not site.lateral:
            return ((site, "A"),)
        if injection.side == LEFT:
            return ((site, "L"), (site, "A"))
        if injection.side == RIGHT:
            return ((site, "R"), (site, "A"))
        return ((site, "L"), (site, "R"), (site, "A"))
    if scope == REGION:
        return (injection.site.region,)
    return (None,)


def _file(injections: list[Injection], scope: str, categories: frozenset[str]) -> dict[object, list[int]]:
    """The positions of the injections of these categories, filed under each scope list they are
    in (:func:`_file_keys`), ascending."""
    filed: dict[object, list[int]] = {}
    for position, injection in enumerate(injections):
        if injection.category in categories:
            for where in _file_keys(scope, injection):
                positions = filed.get(where)
                if positions is None:
                    filed[where] = [position]
                else:
                    positions.append(position)
    return filed


_ALL_CATEGORIES = frozenset(CATEGORIES)
_NOTHING = ScopeList([], [])


class PatientIndex:
    """One patient's injections, in evaluation order, with the scope lists rules read."""

    def __init__(self, rules: Rules, history: PatientHistory, weight: Ratio | None = None) -> None:
        self.rules = rules
        self.history = history
        self.injections = history.injections
        self.days = [injection.day for injection in self.injections]
        self.weight_override = weight
        # Per day with a recorded weight, its lowest (two weights on one day: the safer, lower
        # limits); days ascending.
        self._weight_days: list[int] = []
        self._weight_lows: list[Ratio] = []
        for day, _, recorded in history.weights:
            if self._weight_days and self._weight_days[-1] == day:
                self._weight_lows[-1] = min(self._weight_lows[-1], recorded)
            else:
                self._weight_days.append(day)
                self._weight_lows.append(recorded)
        self._positions: dict[tuple[frozenset[str], str], dict[object, list[int]]] = {}
        self._lists: dict[tuple[frozenset[str], str, object], ScopeList | None] = {}
        self._quick: dict[tuple[int, Site, str | None], ScopeList | None] = {}
        self._near: dict[str, dict[object, ScopeList]] = {}
        self._days_after: tuple[int, list[int]] | None = None
        # Candidate days (see tpi_cli.check.Planner.candidates), shared by the planners of one
        # forecast: (floor, days after it) per (rule, proposal's scope key, proposal counted).
        self.candidate_days: dict[tuple[int, object, bool], tuple[int, list[int]]] = {}
        # A later injection's measure without the proposal (Planner._exposed), per (rule, position).
        self.base_measures: dict[tuple[int, int], tuple[int, ...]] = {}

    def scope_list(self, rule: Rule, target: Injection) -> ScopeList | None:
        """What ``rule`` counts in ``target``'s scope, all positions (made on first use; one pass
        over the patient files every injection under each list it belongs to)."""
        quick = (id(rule), target.site, target.side)
        try:
            return self._quick[quick]
        except KeyError:
            pass
        found = self._scope_list(rule, target)
        self._quick[quick] = found
        return found

    def _scope_list(self, rule: Rule, target: Injection) -> ScopeList | None:
        scope = PATIENT if rule.scope == SESSION else rule.scope
        key = _query_key(scope, target)
        signature = (rule.counts, scope, key)
        try:
            return self._lists[signature]
        except KeyError:
            pass
        counted = rule.counts
        injections = self.injections
        if len(injections) <= _SMALL:  # a few injections: pick this list's out directly
            positions: list[int] | None = [position for position, injection in enumerate(injections)
                                           if injection.category in counted and _in_list(scope, key, injection)]
            made = ScopeList(injections, positions) if positions else None
            self._lists[signature] = made
            return made
        filed = self._positions.get((rule.counts, scope))
        if filed is None:
            filed = self._positions[(rule.counts, scope)] = _file(injections, scope, counted)
        positions = filed.get(key)
        made = ScopeList(self.injections, positions) if positions else None
        self._lists[signature] = made
        return made

    def near(self, scope: str, target: Injection) -> ScopeList:
        """Every injection in ``target``'s scope, whatever its category and day (a session's
        scope is then the whole patient), in position order: one pass files them all."""
        scope = PATIENT if scope == SESSION else scope
        lists = self._near.get(scope)
        if lists is None:
            filed = _file(self.injections, scope, _ALL_CATEGORIES)
            lists = self._near[scope] = {where: ScopeList(self.injections, positions)
                                         for where, positions in filed.items()}
        found = lists.get(_query_key(scope, target))
        return found if found is not None else _NOTHING

    def days_after(self, floor: int) -> list[int]:
        """The injections' days and the days after them that are after ``floor``, each once (the
        last list asked for is kept)."""
        known = self._days_after
        if known is None or known[0] != floor:
            start = bisect_left(self.days, floor)
            found = set(self.days[start:])
            found.update(day + 1 for day in self.days[start:])
            found.discard(floor)
            known = self._days_after = (floor, sorted(found))
        return known[1]

    def position_after(self, day: int) -> int:
        """The position of an injection inserted after every injection of ``day``."""
        return bisect_left(self.days, day + 1)

    def weight_at(self, day: int) -> Ratio | None:
        """``--weight-kg``, else the weight recorded on the latest day on or before ``day`` that has
        one (the lowest, when that day has several)."""
        if self.weight_override is not None:
            return self.weight_override
        index = bisect_left(self._weight_days, day + 1)
        return self._weight_lows[index - 1] if index else None


# --- measures --------------------------------------------------------------------------------
# Each returns a tuple whose first item is the status; the rest is what ``describe`` needs.
# ``k``: the target sees the indexed injections at positions < k, and ``extra`` if given.

Measure = tuple[int, ...]
# The window kinds (max-count, max-steroid-dose) give (status, start, cut, total, first day): the
# scope list's positions inside the window, the total held against the limit (a count, or mg in
# reference units) and the window's first day.
WINDOW_START: Final = 1
WINDOW_CUT: Final = 2
WINDOW_TOTAL: Final = 3
WINDOW_FIRST_DAY: Final = 4


def measure(index: PatientIndex, rule: Rule, target: Injection, k: int, extra: Injection | None = None) -> Measure:
    """The status of ``rule`` for ``target`` (SKIP when the rule does not apply to it)."""
    if target.category not in rule.applies_to or not rule.in_force(target.day):
        return (SKIP,)
    if extra is not None and (extra.day > target.day or not counts(rule, target, extra)):
        extra = None
    result = _MEASURES[rule.kind](index, rule, target, k, extra)
    if result[0] == FAIL and rule.severity == WARN:
        return (WARNED, *result[1:])
    return result


def _interval(index: PatientIndex, rule: Rule, target: Injection, k: int, extra: Injection | None) -> Measure:
    latest, day = -1, _NO_DAY
    found = index.scope_list(rule, target)
    if found is not None:
        cut = bisect_left(found.pos, k)
        if cut:
            latest, day = found.pos[cut - 1], found.days[cut - 1]
    if extra is not None and extra.day > day:
        latest, day = _EXTRA, extra.day
    if latest == -1 or (rule.scope == SESSION and day != target.day):
        return (PASS, -1, 0)
    assert rule.interval is not None
    if target.day >= rule.interval.add(day):
        return (PASS, latest, day)
    if rule.strict is not None and target.day >= rule.strict.add(day):
        return (WARNED, latest, day)
    return (FAIL, latest, day)


def _window(index: PatientIndex, rule: Rule, target: Injection, k: int) -> tuple[ScopeList | None, int, int, int]:
    """The slice [start, cut) of the target's scope list inside the window, and the window's
    first day (the earliest injection day still inside it)."""
    if rule.scope == SESSION:
        first_day = target.day  # a session is one day, whatever the window
    elif rule.window is not None:
        first_day = rule.window.first_start_after(target.day)
    else:
        first_day = _NO_DAY
    found = index.scope_list(rule, target)
    if found is None:
        return None, 0, 0, first_day
    cut = bisect_left(found.pos, k)
    return found, bisect_left(found.days, first_day, 0, cut), cut, first_day


def _strict_start(rule: Rule, found: ScopeList | None, start: int, cut: int, day: int) -> tuple[int, int]:
    """Like ``_window`` for the window shortened by the grace period."""
    assert rule.strict is not None
    first_day = max(rule.strict.first_start_after(day), day if rule.scope == SESSION else _NO_DAY)
    if found is None:
        return 0, first_day
    return bisect_left(found.days, first_day, start, cut), first_day


def _count_of(rule: Rule, found: ScopeList | None, start: int, cut: int, target: Injection,
              extra: Injection | None, first_day: int) -> int:
    if rule.unit == SESSION:
        days: set[int] = {target.day}
        total = 0
        if found is not None and cut > start:
            total = found.firsts[cut] - found.firsts[start]
            if found.days[cut - 1] == target.day:
                days = set()
        total += len(days)
        if extra is not None and extra.day >= first_day and extra.day != target.day and (
                found is None or not _has_day(found, start, cut, extra.day)):
            total += 1
        return total
    return (cut - start) + 1 + (extra is not None and extra.day >= first_day)


def _has_day(found: ScopeList, start: int, cut: int, day: int) -> bool:
    at = bisect_left(found.days, day, start, cut)
    return at < cut and found.days[at] == day


def _count(index: PatientIndex, rule: Rule, target: Injection, k: int, extra: Injection | None) -> Measure:
    found, start, cut, first_day = _window(index, rule, target, k)
    assert rule.max is not None
    total = _count_of(rule, found, start, cut, target, extra, first_day)
    if total <= rule.max:
        return (PASS, start, cut, total, first_day)
    if rule.strict is not None:
        strict_start, strict_day = _strict_start(rule, found, start, cut, target.day)
        if _count_of(rule, found, strict_start, cut, target, extra, strict_day) <= rule.max:
            return (WARNED, start, cut, total, first_day)
    return (FAIL, start, cut, total, first_day)


def _dose_of(found: ScopeList | None, start: int, cut: int, target: Injection, extra: Injection | None,
             first_day: int) -> int:
    total = target.ref
    if found is not None:
        total += found.refs[cut] - found.refs[start]
    if extra is not None and extra.day >= first_day:
        total += extra.ref
    return total


def _dose(index: PatientIndex, rule: Rule, target: Injection, k: int, extra: Injection | None) -> Measure:
    found, start, cut, first_day = _window(index, rule, target, k)
    total = _dose_of(found, start, cut, target, extra, first_day)
    if total <= rule.max_ref:
        return (PASS, start, cut, total, first_day)
    if rule.strict is not None:
        strict_start, strict_day = _strict_start(rule, found, start, cut, target.day)
        if _dose_of(found, strict_start, cut, target, extra, strict_day) <= rule.max_ref:
            return (WARNED, start, cut, total, first_day)
    return (FAIL, start, cut, total, first_day)


def dose_within_grace(index: PatientIndex, rule: Rule, target: Injection, k: int) -> tuple[int, int]:
    """A max-steroid-dose rule with a grace period: the target's load over its window shortened by
    the grace (the target included), and the first day of that shorter window. Over the limit,
    the target fails; else an excess over the whole window only warns."""
    found, start, cut, _ = _window(index, rule, target, k)
    strict_start, strict_day = _strict_start(rule, found, start, cut, target.day)
    return _dose_of(found, strict_start, cut, target, None, strict_day), strict_day


def session_before(index: PatientIndex, rule: Rule, target: Injection, k: int,
                   extra: Injection | None) -> list[Injection]:
    """The injections of the target's session that the rule counts, ordered before it."""
    found = index.scope_list(rule, target)
    result: list[Injection] = []
    if found is not None:
        cut = bisect_left(found.pos, k)
        start = bisect_left(found.days, target.day, 0, cut)
        result = [index.injections[found.pos[i]] for i in range(start, cut)]
    if extra is not None and extra.day == target.day:
        result.append(extra)
    return result


def _points(index: PatientIndex, rule: Rule, target: Injection, k: int, extra: Injection | None) -> Measure:
    session = session_before(index, rule, target, k, extra)
    total = sum(injection.points or 1 for injection in session) + (target.points or 1)
    assert rule.max is not None
    return (PASS if total <= rule.max else FAIL, total)


def _regions(index: PatientIndex, rule: Rule, target: Injection, k: int, extra: Injection | None) -> Measure:
    session = session_before(index, rule, target, k, extra)
    total = len({injection.site.region for injection in session} | {target.site.region})
    assert rule.max is not None
    return (PASS if total <= rule.max else FAIL, total)


def anesthetic_limit(drug: Drug, weight: Ratio | None) -> Ratio | None:
    """``min(max_mg, max_mg_per_kg * weight)`` in mg; ``max_mg`` alone without a weight."""
    limits = []
    if drug.max_mg is not None:
        limits.append(drug.max_mg)
    if drug.max_mg_per_kg is not None and weight is not None:
        limits.append(drug.max_mg_per_kg * weight)
    return min(limits) if limits else None  # exact (two limits a float cannot tell apart)


def anesthetic_totals(session: list[Injection], target: Injection) -> dict[Drug, int]:
    totals: dict[Drug, int] = {}
    for injection in (*session, target):
        for drug, amount in injection.drugs.items():
            if drug.is_anesthetic:
                totals[drug] = totals.get(drug, 0) + amount.value
    return totals


def anesthetic_fraction(totals: dict[Drug, int], weight: Ratio | None) -> Ratio | None:
    """The exact sum of each anesthetic's share of its limit (None: a limit is unknown)."""
    fraction = Ratio(0)
    for drug, picograms in totals.items():
        limit = anesthetic_limit(drug, weight)
        if limit is None:
            return None
        fraction = fraction + Ratio(picograms, PG_PER_MG) / limit
    return fraction


def _anesthetic(index: PatientIndex, rule: Rule, target: Injection, k: int, extra: Injection | None) -> Measure:
    session = session_before(index, rule, target, k, extra)
    totals = anesthetic_totals(session, target)
    if not totals:
        return (PASS, 0)
    fraction = anesthetic_fraction(totals, index.weight_at(target.day))
    if fraction is None:
        return (FAIL, -1)
    per_mille = -(-fraction.num * 1000 // fraction.den)  # rounded up: the message never understates a dose
    return (PASS if fraction <= Ratio(1) else FAIL, per_mille)


_MEASURES = {
    MIN_INTERVAL: _interval, MAX_COUNT: _count, MAX_STEROID_DOSE: _dose, ANESTHETIC_DOSE: _anesthetic,
    MAX_POINTS: _points, MAX_REGIONS: _regions,
}


# --- what a measure means to a reader --------------------------------------------------------

def _injection_at(index: PatientIndex, position: int, extra: Injection | None) -> Injection:
    if position == _EXTRA:
        assert extra is not None
        return extra
    return index.injections[position]


def counted_injections(index: PatientIndex, rule: Rule, target: Injection, k: int, result: Measure,
                       extra: Injection | None = None) -> list[Injection]:
    """The injections the rule counted for ``target`` (``measure``'s result), the target not
    among them: the latest counted one of an interval, the window's, or the session's."""
    if result[0] == SKIP:
        return []
    if rule.kind == MIN_INTERVAL:
        return [] if result[1] == -1 else [_injection_at(index, result[1], extra)]
    if rule.kind in (MAX_COUNT, MAX_STEROID_DOSE):
        return _window_injections(index, rule, target, result, extra)
    return session_before(index, rule, target, k, extra)


def counted_days(rule: Rule, injections: list[Injection]) -> list[int]:
    """What ``counted`` lists for those injections: their dates in order, each date once for a
    ``max-count`` of sessions."""
    if rule.kind == MAX_COUNT and rule.unit == SESSION:
        return sorted({injection.day for injection in injections})
    return sorted(injection.day for injection in injections)


def _window_injections(index: PatientIndex, rule: Rule, target: Injection, result: Measure,
                       extra: Injection | None) -> list[Injection]:
    found = index.scope_list(rule, target)
    start, cut, first_day = result[WINDOW_START], result[WINDOW_CUT], result[WINDOW_FIRST_DAY]
    chosen = [index.injections[found.pos[i]] for i in range(start, cut)] if found is not None else []
    if extra is not None and counts(rule, target, extra) and first_day <= extra.day <= target.day:
        chosen.append(extra)
        chosen.sort(key=lambda injection: injection.day)
    return chosen


def _within(rule: Rule) -> str:
    if rule.scope == SESSION:
        return ""
    return f" in {rule.window}" if rule.window is not None else " over all time"


def _where(rule: Rule, target: Injection) -> str:
    if rule.scope == SITE:
        return f" at {target.label}"
    if rule.scope == REGION:
        return f" in the {target.site.region} region"
    if rule.scope == SESSION:
        return " this session"
    return ""


def _kind_words(rule: Rule) -> str:
    if len(rule.counts) == 1:
        return CATEGORY_WORDS[next(iter(rule.counts))] + " "
    if rule.counts == frozenset({"steroid", "anesthetic", "other"}):
        return "wet "
    return ""


def describe(index: PatientIndex, rule: Rule, target: Injection, k: int, result: Measure,
             extra: Injection | None = None, *, counted: bool = True) -> tuple[list[int], str]:
    """The days the rule counted (injections ordered before the target; left empty unless
    ``counted``, for a window rule) and a one-line message."""
    status = result[0]
    kind = rule.kind
    rules = index.rules
    if status == SKIP:
        return [], _skip_reason(rule, target)
    if kind == MIN_INTERVAL:
        if result[1] == -1:
            return [], f"no earlier {_kind_words(rule)}injection{_where(rule, target)}"
        latest = _injection_at(index, result[1], extra)
        what = f"{CATEGORY_WORDS[latest.category]} injection at {latest.label} on {iso(latest.day)}" + \
            (" (the proposal)" if result[1] == _EXTRA else "")
        if status == PASS:
            return [latest.day], f"last {what}, at least {rule.interval} before"
        grace = f" (inside the {rule.grace} grace period)" if status == WARNED and rule.strict is not None and \
            rule.severity != WARN else ""
        return [latest.day], f"{what}, less than {rule.interval} before{grace}"
    if kind in (MAX_COUNT, MAX_STEROID_DOSE):
        days = counted_days(rule, _window_injections(index, rule, target, result, extra)) if counted else []
        extra_counted = extra is not None and counts(rule, target, extra) and \
            result[WINDOW_FIRST_DAY] <= extra.day <= target.day
        over = status != PASS
        grace = " (inside the grace period)" if status == WARNED and rule.severity != WARN else ""
        if kind == MAX_COUNT:
            limit = f"{', more than ' if over else ', at most '}{rule.max}{grace}"
            if rule.unit != SESSION and target.category not in rule.counts:  # counted all the same (SPEC.md)
                total = result[WINDOW_TOTAL]
                others = total - 1
                text = (f"{total} injection{'' if total == 1 else 's'}{_where(rule, target)}"
                        f"{_within(rule)}: {others} {_kind_words(rule)}injection{'' if others == 1 else 's'}"
                        f"{' (the proposal among them)' if extra_counted else ''} "
                        f"and {'the planned' if extra_counted else 'this'} {CATEGORY_WORDS[target.category]} one"
                        f"{limit}")
                return days, text
            noun = ("session" if rule.unit == SESSION else f"{_kind_words(rule)}injection") + \
                ("" if result[WINDOW_TOTAL] == 1 else "s")
            # With ``extra`` counted, the target is a planned injection described for a proposal.
            included = "the planned one and the proposal included" if extra_counted else "this one included"
            return days, f"{result[WINDOW_TOTAL]} {noun}{_where(rule, target)}{_within(rule)}, {included}{limit}"
        scale = rules.ref_scale
        share = extra.ref if extra is not None and extra_counted else None  # the proposal's, for a later injection
        before = result[3] - target.ref - (share or 0)
        assert rule.max_mg is not None
        places = _places(result[3], rule.max_ref, scale, over)
        proposed = f"{decimal_text(share, scale, places)} proposed + " if share is not None else ""
        text = (f"{decimal_text(result[3], scale, places)} mg {rules.reference_steroid.name}-equivalent"
                f"{_where(rule, target)}{_within(rule)} ({decimal_text(before, scale, places)} before + {proposed}"
                f"{decimal_text(target.ref, scale, places)} {'planned' if share is not None else 'now'})"
                f"{', more than ' if over else ', at most '}"
                f"{rule.max_mg.decimal_text(3)} mg{grace}")
        return days, text
    session = session_before(index, rule, target, k, extra)
    days = [injection.day for injection in session]
    if kind == MAX_POINTS:
        verb = "more than" if status != PASS else "at most"
        noun = "trigger point" if result[1] == 1 else "trigger points"
        return days, f"{result[1]} {noun} this session, this injection included, {verb} {rule.max}"
    if kind == MAX_REGIONS:
        regions = sorted({i.site.region for i in session} | {target.site.region})
        verb = "more than" if status != PASS else "at most"
        noun = "region" if result[1] == 1 else "regions"
        return days, f"{result[1]} {noun} this session ({', '.join(regions)}), {verb} {rule.max}"
    return days, _anesthetic_text(index, session, target, result)


def _places(total: int, limit: int, scale: int, over: bool) -> int:
    """Decimal places that show a total on the right side of its limit: 2, or more when rounding
    to 2 would not (30.001 mg, not "30 mg, more than 30 mg"; 29.999 mg, not "30 mg, at most
    29.999 mg")."""
    places = 2
    while places < 18:
        if (rounded(total, scale, places) * scale > limit * 10**places) == over:  # as shown, against the limit
            break
        places += 1
    return places


def _pair_places(amount: Ratio, limit: Ratio) -> int:
    """Decimal places that show an amount and its limit the right way round: 2, or more when
    rounding both to 2 would not (300.004 mg of max 300 mg, not "300 mg of max 300 mg"). Unlike
    ``_places``, whose limit is written as the rules file gives it, this limit comes from a weight
    and is shown rounded to the same places, so the two rounded figures are compared."""
    over = limit < amount
    places = 2
    while places < 18:
        if (rounded(amount.num, amount.den, places) > rounded(limit.num, limit.den, places)) == over:
            break
        places += 1
    return places


def _anesthetic_text(index: PatientIndex, session: list[Injection], target: Injection, result: Measure) -> str:
    totals = anesthetic_totals(session, target)
    if not totals:
        return "no local anesthetic this session"
    weight = index.weight_at(target.day)
    parts = []
    for drug, picograms in totals.items():
        limit = anesthetic_limit(drug, weight)
        mg = Ratio(picograms, PG_PER_MG)
        if limit is None:
            parts.append(f"{drug.name} {mg.decimal_text(2)} mg: no maximum without the patient's weight (--weight-kg)")
            continue
        places = _pair_places(mg, limit)
        parts.append(f"{drug.name} {mg.decimal_text(places)} mg of max {limit.decimal_text(places)} mg")
    basis = (f"weight {weight.decimal_text(1)} kg" if weight is not None else
             "no weight known: only max_mg applies")
    if result[1] < 0:
        return f"local anesthetic limit unknown: {'; '.join(parts)}"
    verb = "more than" if result[0] != PASS else "within"
    return (f"local anesthetics at {result[1] / 10:g}% of the maximum this session, {verb} 100% "
            f"({'; '.join(parts)}; {basis})")


def _skip_reason(rule: Rule, target: Injection) -> str:
    if target.category not in rule.applies_to:
        return f"does not apply to {CATEGORY_WORDS[target.category]} injections"
    if rule.effective is not None and target.day < rule.effective:
        return f"in force from {iso(rule.effective)}"
    if rule.until is not None and target.day > rule.until:
        return f"in force until {iso(rule.until)}"
    return "does not apply"


def durations_of(rule: Rule) -> list[Duration]:
    """The durations whose ends can change the rule's status: its interval or window, and the
    same shortened by the grace period."""
    return [d for d in (rule.interval, rule.window, rule.strict) if d is not None]
