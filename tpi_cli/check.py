"""``tpi check`` and ``tpi next``: a proposed injection, inserted into the history.

The proposal on day ``d`` comes after every history injection of ``d``. It must be valid against
the injections before it, and it must not make any later (planned) injection newly invalid: a
later injection's status for a rule is compared with and without the proposal.

The earliest date: a rule's status can only change on a day where some injection enters or
leaves what it counts, so the search visits those *candidate days* in order instead of every
calendar day: each history date and the day after it; each ``p + duration`` of the injections the
proposal would count; for each later injection that would count the proposal, the first day from
which it no longer would; the rule's ``effective`` and ``until + 1``; recorded weights. Between
two candidates every status is constant, and past the last one it never changes again.
"""

from __future__ import annotations

from bisect import bisect_left

from tpi_cli.engine import (
    FAIL,
    PASS,
    SKIP,
    STATUS_NAMES,
    WARNED,
    WINDOW_FIRST_DAY,
    WINDOW_TOTAL,
    PatientIndex,
    counted_days,
    counted_injections,
    counts,
    describe,
    dose_within_grace,
    durations_of,
    measure,
    scope_key,
)
from tpi_cli.errors import TpiError
from tpi_cli.model import Injection, PatientHistory, sides_of
from tpi_cli.quantity import Amount, Ratio
from tpi_cli.results import (
    ALLOWED,
    BLOCKED,
    NOT_YET,
    CheckResult,
    DrugLine,
    ForecastResult,
    ForecastRow,
    RuleOutcome,
)
from tpi_cli.rules import (
    ANESTHETIC,
    ANESTHETIC_DOSE,
    BLOCK,
    DRY,
    MAX_COUNT,
    MAX_REGIONS,
    MAX_STEROID_DOSE,
    MIN_INTERVAL,
    REGION,
    SESSION,
    SITE,
    STEROID,
    WARN,
    Drug,
    Rule,
    Rules,
    Site,
)


class Planner:
    """Evaluates one proposal (its drugs, site and side) on any day, against one patient.

    ``shared``: rule statuses shared by the planners of proposals that differ only in their site
    and side (``tpi next``'s rows, one category). A rule whose scope is not the site reads the
    site only through its region (a region scope, ``max-regions``) or not at all, so its status
    on a day is the same for every site of a region."""

    def __init__(self, index: PatientIndex, proposal: Injection, active: list[Rule], on: int,
                 shared: dict[tuple[object, ...], int] | None = None) -> None:
        self.index = index
        self.proposal = proposal
        self.active = active
        self.on = on
        self.first_later = index.position_after(on)  # no day before ``on`` is ever asked
        self._moved: dict[int, Injection] = {}
        self._exposure: dict[int, tuple[list[int], dict[int, int], list[tuple[int, tuple[int, ...]]]]] = {}
        self._status: dict[tuple[int, int], int] = {}
        self._shared = shared

    def at(self, day: int) -> Injection:
        """The proposal moved to ``day``."""
        moved = self._moved.get(day)
        if moved is None:
            base = self.proposal
            moved = Injection(base.patient_id, day, base.site, base.side, base.drugs, base.points, base.weight,
                              base.override, 0, len(self.index.injections))
            self._moved[day] = moved
        return moved

    def _later(self, rule: Rule, day: int) -> range:
        """Positions of the later injections that the proposal on ``day`` could affect."""
        start = self.index.position_after(day)
        if rule.scope == SESSION or rule.kind not in (MIN_INTERVAL, MAX_COUNT, MAX_STEROID_DOSE):
            return range(start, start)  # a session rule only sees its own day
        spans = durations_of(rule)
        if rule.kind != MIN_INTERVAL and rule.window is None:
            return range(start, len(self.index.injections))  # all-time windows
        end = bisect_left(self.index.days, max(d.add(day) for d in spans)) if spans else start
        return range(start, end)

    def _exposed(self, rule: Rule) -> tuple[list[int], dict[int, int], list[tuple[int, tuple[int, ...]]]]:
        """The later injections the proposal could make worse, whatever its day, and their status
        without it: those the rule applies to, in force, counting the proposal, not already at the
        rule's worst status, and (for a count or dose without grace) with less headroom than the
        proposal adds. Positions ascending. Third: those of the same that already break the rule
        (warn or fail) without the proposal, with their measure (see :meth:`aggravated`)."""
        known = self._exposure.get(id(rule))
        if known is not None:
            return known
        proposal = self.proposal
        worst = WARNED if rule.severity == WARN else FAIL
        additive = rule.strict is None and (rule.kind == MAX_STEROID_DOSE or
                                            (rule.kind == MAX_COUNT and rule.unit != SESSION))
        adds = proposal.ref if rule.kind == MAX_STEROID_DOSE else 1
        limit = rule.max_ref if rule.kind == MAX_STEROID_DOSE else rule.max
        positions: list[int] = []
        bases: dict[int, int] = {}
        broken: list[tuple[int, tuple[int, ...]]] = []
        if proposal.category not in rule.counts:
            known = self._exposure[id(rule)] = (positions, bases, broken)  # no injection counts it
            return known
        index = self.index
        injections = index.injections
        near = index.near(rule.scope, proposal)  # the injections in the proposal's scope
        bases_known = index.base_measures
        for at in range(bisect_left(near.pos, self.first_later), len(near.pos)):
            position = near.pos[at]
            later = injections[position]
            if later.category not in rule.applies_to or not rule.in_force(later.day):
                continue
            key = (id(rule), position)
            base = bases_known.get(key)  # shared by the index's planners
            if base is None:
                base = bases_known[key] = measure(index, rule, later, position)
            if base[0] >= WARNED:
                broken.append((position, base))
            if base[0] >= worst:
                continue  # cannot get worse
            if additive and limit is not None and base[0] == PASS and base[WINDOW_TOTAL] + adds <= limit:
                continue  # the proposal cannot push it over
            positions.append(position)
            bases[position] = base[0]
        known = self._exposure[id(rule)] = (positions, bases, broken)
        return known

    def conflicts(self, rule: Rule, day: int) -> list[tuple[int, tuple[int, ...]]]:
        """Later injections the proposal on ``day`` makes newly worse: (position, their measure)."""
        span = self._later(rule, day)
        if not span:
            return []
        positions, bases, _ = self._exposed(rule)
        proposal = self.at(day)
        found = []
        for index in range(bisect_left(positions, span.start), bisect_left(positions, span.stop)):
            position = positions[index]
            later = self.index.injections[position]
            if not counts(rule, later, proposal):
                continue
            result = measure(self.index, rule, later, position, proposal)
            if result[0] > bases[position]:
                found.append((position, result))
        return found

    def aggravated(self, rule: Rule, day: int) -> list[tuple[int, tuple[int, ...]]]:
        """Later injections that already break the rule without the proposal on ``day`` (status
        warn or fail, a grace period's warning included), that would count it (their measure
        changes with it) and whose status it does not change: it does not make them invalid, so
        it is not held back, but the rule says what it adds to. (position, their measure); never
        one that :meth:`conflicts` gives (there the status changes)."""
        span = self._later(rule, day)
        if not span:
            return []
        broken = self._exposed(rule)[2]
        proposal = self.at(day)
        found = []
        for position, base in broken[bisect_left(broken, (span.start,)):bisect_left(broken, (span.stop,))]:
            later = self.index.injections[position]
            if not counts(rule, later, proposal):
                continue
            result = measure(self.index, rule, later, position, proposal)
            if result[0] == base[0] and result != base:
                found.append((position, result))
        return found

    def own(self, rule: Rule, day: int) -> tuple[int, ...]:
        return measure(self.index, rule, self.at(day), self.index.position_after(day))

    def status(self, rule: Rule, day: int) -> int:
        """The rule's status for the proposal on ``day``, later injections included."""
        key = (id(rule), day)
        known = self._status.get(key)
        if known is not None:
            return known
        shared = self._shared if rule.scope != SITE else None
        if shared is not None:
            common = (id(rule), self._place(rule), day)
            known = shared.get(common)
            if known is not None:
                self._status[key] = known
                return known
        status = self.own(rule, day)[0]
        if status != FAIL:
            for _, result in self.conflicts(rule, day):
                status = max(status, result[0])
        self._status[key] = status
        if shared is not None:
            shared[common] = status
        return status

    def candidates(self, rule: Rule, after: int) -> list[int]:
        """The days after ``after`` where the rule's status may change, in order: every
        injection's day and the day after it, the ends of the windows and intervals of the
        injections in the proposal's scope both ways, the rule's dates and (for an anesthetic
        limit) the weights' days. Shared with the other planners of the index whose proposal
        reads the same."""
        index = self.index
        proposal = self.proposal
        key = (id(rule), scope_key(rule.scope, proposal), proposal.category in rule.counts)
        known = index.candidate_days.get(key)
        if known is None or after < known[0]:
            floor = min(after, self.on)  # only days after it are kept; no day before ``on`` is asked
            near = index.near(rule.scope, proposal)
            injections = index.injections
            # Every injection's day and the day after it, in the proposal's scope or not: a later
            # injection's own scope can be wider (a bilateral one counts the other side), and a
            # proposal on the day of an injection there joins that session.
            days: set[int] = set(index.days_after(floor))
            spans = durations_of(rule)
            if spans:
                # The injections are in day order and each day found from one is non-decreasing
                # in its day: those that give a day after ``floor`` are the last ones.
                backward_too = proposal.category in rule.counts
                for at in range(len(near.pos) - 1, -1, -1):
                    injection = injections[near.pos[at]]
                    day = injection.day
                    if all(span.add(day) <= floor and span.first_start_after(day) <= floor for span in spans):
                        break  # and so for every injection before it
                    forward = injection.category in rule.counts
                    backward = backward_too and injection.category in rule.applies_to
                    for span in spans:
                        if forward:
                            days.add(span.add(day))
                        if backward:
                            days.add(span.first_start_after(day))
            if rule.effective is not None:
                days.add(rule.effective)
            if rule.until is not None:
                days.add(rule.until + 1)
            if rule.kind == ANESTHETIC_DOSE and index.weight_override is None:
                days.update(weight[0] for weight in index.history.weights)
            known = index.candidate_days[key] = (floor, sorted(day for day in days if day > floor))
        return known[1][bisect_left(known[1], after + 1):]

    def _place(self, rule: Rule) -> str | None:
        """What a rule whose scope is not the site reads of the proposal's place: its region or nothing."""
        return self.proposal.site.region if rule.scope == REGION or rule.kind == MAX_REGIONS else None

    def first_day(self, rule: Rule, on: int, accept: tuple[int, ...]) -> int | None:
        """The first day from ``on`` whose status is in ``accept`` (None: no such day)."""
        shared = self._shared if rule.scope != SITE else None
        if shared is not None:
            common = ("first", id(rule), self._place(rule), on, accept)
            known = shared.get(common)
            if known is not None:
                return known if known >= 0 else None
        found = self._first_day(rule, on, accept)
        if shared is not None:
            shared[common] = found if found is not None else -1
        return found

    def _first_day(self, rule: Rule, on: int, accept: tuple[int, ...]) -> int | None:
        if self.status(rule, on) in accept:
            return on
        for day in self.candidates(rule, on):
            if self.status(rule, day) in accept:
                return day
        return None

    def earliest(self, on: int) -> tuple[int | None, list[Rule]]:
        """The first day from ``on`` on which no rule fails (None: never), and the rules that
        fail on ``on``."""
        failing = [rule for rule in self.active if self.status(rule, on) == FAIL]
        if not failing:
            return on, []
        start = on
        for rule in failing:
            first = self.first_day(rule, on, (SKIP, PASS, WARNED))
            if first is None:
                return None, failing
            start = max(start, first)
        days = {start}
        for rule in self.active:
            days.update(self.candidates(rule, start))
        for day in sorted(days):
            if day < start:
                continue
            if all(self.status(rule, day) != FAIL for rule in self.active):
                return day, failing
        return None, failing


def _conflict_text(planner: Planner, rule: Rule, day: int, position: int, result: tuple[int, ...]) -> str:
    later = planner.index.injections[position]
    _, message = describe(planner.index, rule, later, position, result, planner.at(day))
    verb = "fail" if result[0] == FAIL else "warn"
    return f"it would make the planned injection on {later.date.isoformat()} at {later.label} {verb}: {message}"


def _aggravated_text(planner: Planner, rule: Rule, day: int, found: list[tuple[int, tuple[int, ...]]]) -> str:
    """One sentence for the planned injections that already break the rule: the first one's
    measure with the proposal, and how many there are."""
    position, result = found[0]
    later = planner.index.injections[position]
    _, message = describe(planner.index, rule, later, position, result, planner.at(day))
    where = f"on {later.date.isoformat()} at {later.label}"
    if len(found) == 1:
        return f"the planned injection {where} already breaks it; with this proposal: {message}"
    last = planner.index.injections[found[-1][0]]
    return (f"{len(found)} planned injections ({later.date.isoformat()} to {last.date.isoformat()}) already break "
            f"it and would count this proposal; the first, {where}, with it: {message}")


def _counted_with_later(planner: Planner, rule: Rule, target: Injection, k: int, result: tuple[int, ...],
                        conflicts: list[tuple[int, tuple[int, ...]]]) -> list[int]:
    """The days of the injections the rule counted: for the proposal, and for each later
    injection the proposal makes worse, that injection and what the rule counted for it (the
    proposal aside)."""
    index = planner.index
    chosen = counted_injections(index, rule, target, k, result)
    for position, later in conflicts:
        injection = index.injections[position]
        chosen += [i for i in counted_injections(index, rule, injection, position, later, target) if i is not target]
        chosen.append(injection)
    return counted_days(rule, list({id(i): i for i in chosen}.values()))


def check(rules: Rules, profiles: frozenset[str], history: PatientHistory, proposal: Injection, on: int,
          weight: Ratio | None = None) -> CheckResult:
    """Is ``proposal`` appropriate on ``on``? Every rule's status, earliest day and counts."""
    active = [rule for rule in rules.rules if rule.active(profiles)]
    index = PatientIndex(rules, history, weight)
    planner = Planner(index, proposal, active, on)
    earliest, _ = planner.earliest(on)
    target = planner.at(on)
    k = index.position_after(on)
    outcomes: list[RuleOutcome] = []
    warnings: list[str] = []
    for rule in rules.rules:
        if not rule.active(profiles):
            wanted = " or ".join(sorted(rule.profiles))  # any one of them makes it active
            outcomes.append(RuleOutcome(rule, "skip", on, [], f"payer rule: needs --profile {wanted}"))
            continue
        result = measure(index, rule, target, k)
        counted, message = describe(index, rule, target, k, result)
        status = result[0]
        conflicts = planner.conflicts(rule, on)
        if conflicts:
            counted = _counted_with_later(planner, rule, target, k, result, conflicts)
        for position, later in conflicts:
            # The proposal may be outside the rule itself (status skip) and still be counted by
            # it for a later injection, which it must not make newly invalid.
            status = max(status, later[0])
            message += ("; " if result[0] != SKIP else ", but ") + _conflict_text(planner, rule, on, position, later)
        aggravated = planner.aggravated(rule, on)
        note = None
        if aggravated:
            # Not held back (it does not *make* those injections invalid: SPEC.md), but said.
            note = _aggravated_text(planner, rule, on, aggravated)
            message += ("; " if result[0] != SKIP or conflicts else ", but ") + note
        first = planner.first_day(rule, on, (SKIP, PASS))
        outcomes.append(RuleOutcome(rule, STATUS_NAMES[status], first, counted, message, note))
        if status == WARNED:
            warnings.append(f"{rule.id}: {message}")
    verdict = ALLOWED if earliest == on else NOT_YET if earliest is not None else BLOCKED
    drugs = [DrugLine(drug, amount, amount.value * drug.ref_factor if drug.is_steroid else None)
             for drug, amount in proposal.drugs.items()]
    return CheckResult(proposal=target, on=on, profiles=sorted(profiles), drugs=drugs, verdict=verdict,
                       earliest=earliest, rules=outcomes, warnings=warnings,
                       reference=rules.reference_steroid.name, ref_scale=rules.ref_scale)


def make_proposal(patient_id: str | None, day: int, site: Site, side: str | None,
                  drugs: list[tuple[Drug, Amount]], points: int | None = None) -> Injection:
    merged: dict[Drug, Amount] = {}
    for drug, amount in drugs:
        try:
            merged[drug] = merged[drug].plus(amount) if drug in merged else amount
        except ValueError as exc:
            raise TpiError(f"{drug.name}: {exc}", field="--drug") from None
    return Injection(patient_id, day, site, side, merged, points, None, None, 0, 0)


# --- tpi next ----------------------------------------------------------------------------------

def forecast(rules: Rules, profiles: frozenset[str], history: PatientHistory, on: int,
             only: tuple[Site, str | None] | None = None, weight: Ratio | None = None) -> ForecastResult:
    """Per site and side: the earliest day for a dry, anesthetic and steroid proposal (the rules'
    ``defaults``) and the corticosteroid budget left on ``on``."""
    active = [rule for rule in rules.rules if rule.active(profiles)]
    index = PatientIndex(rules, history, weight)
    places: list[tuple[Site, str | None]] = []
    if only is not None:
        site, side = only
        places = [(site, s) for s in sides_of(site, side)]
    else:
        seen = sorted({injection.site.name for injection in history.injections})
        for name in seen:
            site = rules.sites[name]
            places.extend((site, s) for s in sides_of(site, None))
    rows = []
    shared: dict[str, dict[tuple[object, ...], int]] = {DRY: {}, ANESTHETIC: {}, STEROID: {}}
    for site, side in places:
        earliest: dict[str, int | None] = {}
        held: dict[str, list[str]] = {}
        remaining: int | None = None
        for category in (DRY, ANESTHETIC, STEROID):
            drugs = [] if category == DRY else rules.defaults.get(category)
            if drugs is None:
                raise TpiError(f"the rules file has no defaults.{category}: tpi next needs one", file=rules.path,
                               field="defaults")
            proposal = make_proposal(history.patient_id, on, site, side, drugs)
            planner = Planner(index, proposal, active, on, shared[category])
            first, failing = planner.earliest(on)
            earliest[category] = first
            held[category] = _holding(planner, failing, on, first)
            if category == STEROID:
                remaining = _steroid_budget(planner, on)
        rows.append(ForecastRow(site, side, earliest, held, remaining))
    return ForecastResult(history.patient_id, on, rows, sorted(profiles), rules.reference_steroid.name,
                          rules.ref_scale, rules.default_texts)


def _holding(planner: Planner, failing: list[Rule], on: int, first: int | None) -> list[str]:
    """The rules that hold the proposal back, the one that holds it longest first. Up to the
    earliest date ``first``, a rule holds it back on the days it fails; its status changes only on
    its candidate days, so each rule's last failing stretch before ``first`` is known from them: a
    rule that passes on ``on`` can still hold the date (a later session that the proposal would
    take over a limit), and one that passes early can fail again later. Ties keep the file's order.
    With no earliest date (blocked), the rules failing on ``on``, those that never pass first."""
    if not failing:
        return []
    never = 10**9
    until: dict[int, int] = {}
    if first is None:
        blocking = {id(rule) for rule in failing}
        for place, rule in enumerate(planner.active):
            if id(rule) in blocking:
                passes = planner.first_day(rule, on, (SKIP, PASS, WARNED))
                until[place] = never if passes is None else passes
    else:
        for place, rule in enumerate(planner.active):
            days = [on, *(day for day in planner.candidates(rule, on) if day < first), first]
            for at in range(len(days) - 2, -1, -1):
                if planner.status(rule, days[at]) == FAIL:
                    until[place] = days[at + 1]  # fails from days[at] until the next change (or first)
                    break
    return [planner.active[place].id for place in sorted(until, key=lambda place: (-until[place], place))]


def _steroid_budget(planner: Planner, on: int) -> int | None:
    """The largest reference dose the active blocking max-steroid-dose rules still allow on ``on``:
    the smallest budget left in the proposal's own windows (rules in force on ``on`` that apply to
    it) and, so that no planned injection is pushed over its limit, in the windows of later
    injections that would count it (rules in force on their dates). Never below 0; None when no
    rule limits the dose."""
    proposal = planner.at(on)
    index = planner.index
    budget: int | None = None
    k = index.position_after(on)
    without = _without_own_dose(proposal)
    for rule in planner.active:
        if rule.kind != MAX_STEROID_DOSE or rule.severity != BLOCK:
            continue
        left: int | None = None
        if STEROID in rule.applies_to and rule.in_force(on):
            result = measure(index, rule, without, k)
            left = rule.max_ref - result[WINDOW_TOTAL]
        for position in planner._later(rule, on):
            later = index.injections[position]
            if later.category not in rule.applies_to or not rule.in_force(later.day):
                continue
            if not counts(rule, later, proposal):
                continue
            own = measure(index, rule, later, position)
            if own[0] == FAIL:
                continue  # already over without the proposal: it cannot make it newly invalid
            if own[0] == WARNED:
                # Over the limit inside its grace period: it already warns, and fails only when its
                # load over the window shortened by the grace goes over too.
                strict_total, strict_day = dose_within_grace(index, rule, later, position)
                if strict_day <= on:
                    room = rule.max_ref - strict_total
                    left = room if left is None else min(left, room)
                continue
            if own[WINDOW_FIRST_DAY] <= on:  # the proposal's day is inside this later injection's window
                room = rule.max_ref - own[WINDOW_TOTAL]
                left = room if left is None else min(left, room)
        if left is not None:
            budget = left if budget is None else min(budget, left)
    return None if budget is None else max(budget, 0)


def _without_own_dose(proposal: Injection) -> Injection:
    """The proposal with a zero corticosteroid dose (to read the budget the others leave)."""
    copy = Injection(proposal.patient_id, proposal.day, proposal.site, proposal.side, proposal.drugs,
                     proposal.points, proposal.weight, proposal.override, proposal.line, proposal.seq)
    copy.ref = 0
    return copy
