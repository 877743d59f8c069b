"""``tpi totals``: corticosteroid counts for pharmacists, per patient, site and side (``left`` and
``right`` for a lateral site, a bilateral or unspecified injection counted in full in both)."""

from __future__ import annotations

from tpi_cli.dates import Duration
from tpi_cli.history import chosen_patients
from tpi_cli.model import PatientHistory, sides_of
from tpi_cli.results import TotalsResult, TotalsRow
from tpi_cli.rules import MAX_COUNT, MAX_STEROID_DOSE, SESSION, STEROID, Rules


def default_window(rules: Rules, profiles: frozenset[str], on: int) -> Duration | None:
    """The longest window on ``on`` of the active rules that count corticosteroid injections
    (``max-count`` / ``max-steroid-dose`` rules that apply to or count them, session rules aside:
    their window is the day). A rule without a window counts all time, the longest (None). Of
    windows whose length differs with the date (``1 month``, ``31 days``), the one reaching
    furthest back from ``on``; the first in the file on a tie."""
    chosen: Duration | None = None
    start = 0
    for rule in rules.rules:
        if not rule.active(profiles) or rule.kind not in (MAX_COUNT, MAX_STEROID_DOSE) or rule.scope == SESSION:
            continue
        if STEROID not in rule.applies_to | rule.counts:
            continue
        if rule.window is None:
            return None
        first = rule.window.first_start_after(on)
        if chosen is None or first < start:
            chosen, start = rule.window, first
    return chosen


def totals_of_file(rules: Rules, path: str, patient: str | None, on: int, window: Duration | None) -> TotalsResult:
    """Steroid injections, reference-equivalent mg and mg per drug: in the window ending on ``on``
    (``p <= on < p + window``) and all time up to ``on``, of every patient of the history at
    ``path`` (of ``patient`` only, if given). Read one patient at a time: only the figures are
    kept, not the patients' injections (a clinic's whole history fits in memory as figures). A
    ``patient`` not in a history that has rows is refused, with the closest IDs; in a history
    without rows, it is a new patient, with nothing to total."""
    result = _result(rules, on, window)
    first_day = window.first_start_after(on) if window is not None else None

    def restart() -> None:  # the reader starts over in another mode: so do the totals
        result.rows.clear()
        result.patients.clear()

    for history in chosen_patients(path, rules, patient, on_restart=restart):
        _add(result, history, on, first_day)
    return result


def _result(rules: Rules, on: int, window: Duration | None) -> TotalsResult:
    steroids = [drug for drug in rules.drugs.values() if drug.is_steroid]
    return TotalsResult(on, window, rules.reference_steroid, rules.ref_scale, steroids)


def _add(result: TotalsResult, history: PatientHistory, on: int, first_day: int | None) -> None:
    """One patient's rows (per site and side, sorted) and total; ``first_day``: the window's first
    day (None: all time)."""
    rows: dict[tuple[str, str | None], TotalsRow] = {}
    patient = TotalsRow(history.patient_id, None, None)
    for injection in history.injections:
        if injection.category != STEROID or injection.day > on:
            continue
        targets = [patient]
        for side in sides_of(injection.site, injection.side):
            row = rows.get((injection.site.name, side))
            if row is None:
                row = rows[(injection.site.name, side)] = TotalsRow(history.patient_id, injection.site.name, side)
            targets.append(row)
        inside = first_day is None or injection.day >= first_day
        for target in targets:
            target.all_time_injections += 1
            target.all_time_ref += injection.ref
            for drug, amount in injection.drugs.items():
                if drug.is_steroid:
                    total = target.all_time_by_drug
                    total[drug.name] = total.get(drug.name, 0) + amount.value
                    if inside:
                        target.by_drug[drug.name] = target.by_drug.get(drug.name, 0) + amount.value
            if inside:
                target.injections += 1
                target.ref += injection.ref
    result.rows.extend(rows[key] for key in sorted(rows, key=lambda k: (k[0], _side_order(k[1]))))
    result.patients.append(patient)


def _side_order(side: str | None) -> int:
    return {"left": 0, "right": 1}.get(side or "", 2)
