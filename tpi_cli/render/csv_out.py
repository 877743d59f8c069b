"""CSV output: a header row, RFC 4180 quoting, and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterable, Sequence

from tpi_cli.quantity import PG_PER_MG
from tpi_cli.render.common import iso, mg
from tpi_cli.results import ForecastResult, TotalsResult, TotalsRow, Violation
from tpi_cli.rules import Rules

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MAX_CACHED = 100_000


def safe(value: object) -> str:
    """A cell as text; one that starts like a formula gets a leading apostrophe."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _write_table(header: list[str], rows: Iterable[Sequence[object]], write: Callable[[str], object],
                 made_safe: bool = False) -> None:
    """The header and the rows, written 500 rows at a time (a clinic's totals have a row per patient
    and site); ``made_safe``: every cell that could start like a formula has been through ``safe``."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")
    out.writerow(header)
    for count, row in enumerate(rows, 1):
        out.writerow(row if made_safe else [safe(cell) for cell in row])
        if count % 500 == 0:
            write(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
    write(buffer.getvalue())


def _table(header: list[str], rows: Iterable[Sequence[object]]) -> str:
    parts: list[str] = []
    _write_table(header, rows, parts.append)
    return "".join(parts)


VIOLATION_HEADER = ["patient_id", "date", "site", "side", "rule", "severity", "message", "overridden"]


def violation_row(violation: Violation) -> list[str]:
    return [safe(violation.patient_id), iso(violation.day) or "", safe(violation.site), safe(violation.side),
            safe(violation.rule), violation.severity, safe(violation.message), safe(violation.overridden)]


def next_csv(result: ForecastResult) -> str:
    header = ["patient_id", "on", "site", "side", "dry", "anesthetic", "steroid", "steroid_mg_remaining", "held_by"]
    rows = []
    for row in result.rows:
        held = "; ".join(f"{category}: {', '.join(ids)}" for category, ids in row.held_by.items() if ids)
        remaining = mg(row.mg_remaining, result.ref_scale) if row.mg_remaining is not None else None
        rows.append([result.patient_id, iso(result.on), row.site.name, row.side, iso(row.earliest["dry"]),
                     iso(row.earliest["anesthetic"]), iso(row.earliest["steroid"]), remaining, held])
    return _table(header, rows)


def write_totals_csv(result: TotalsResult, write: Callable[[str], object]) -> None:
    """JSON's rows, then its patients (``level``: site / patient), written as they are formatted."""
    header = ["patient_id", "site", "side", "steroid_injections", "mg_ref", "by_drug", "all_time_injections",
              "all_time_mg_ref", "window", "on", "reference_steroid", "all_time_by_drug", "level"]
    window = safe(result.window.text if result.window is not None else "all time")
    on, reference, scale = safe(iso(result.on)), safe(result.reference.name), result.ref_scale

    pieces: dict[tuple[str, int], str] = {}  # a drug's "name=mg", for its amounts met so far (doses repeat)

    def drugs(amounts: dict[str, int]) -> str:
        if not amounts:
            return ""
        parts = []
        for name, value in sorted(amounts.items()):
            piece = pieces.get((name, value))
            if piece is None:
                if len(pieces) > _MAX_CACHED:
                    pieces.clear()
                piece = pieces[(name, value)] = f"{name}={mg(value, PG_PER_MG)}"
            parts.append(piece)
        return safe("; ".join(parts))

    def cells(row: TotalsRow) -> list[object]:
        # Text through safe; counts and mg are numbers that are never negative.
        return [safe(row.patient_id), safe(row.site) if row.site is not None else "(all sites)", safe(row.side),
                row.injections, mg(row.ref, scale), drugs(row.by_drug), row.all_time_injections,
                mg(row.all_time_ref, scale), window, on, reference, drugs(row.all_time_by_drug),
                "site" if row.site is not None else "patient"]

    _write_table(header, map(cells, itertools.chain(result.rows, result.patients)), write, made_safe=True)


def sites_csv(rules: Rules) -> str:
    header = ["name", "region", "lateral", "aliases", "snomed", "source"]
    return _table(header, ([s.name, s.region, str(s.lateral).lower(), "; ".join(s.aliases), s.snomed, s.source]
                           for s in rules.sites.values()))


def rules_csv(rules: Rules, profiles: frozenset[str]) -> str:
    from tpi_cli.render.json_out import rule_document

    header = ["id", "kind", "applies_to", "counts", "scope", "unit", "interval", "window", "grace", "max", "max_mg",
              "severity", "profiles", "active", "effective", "until", "description", "source"]
    rows = []
    for rule in rules.rules:
        doc = rule_document(rule, profiles)
        rows.append([("; ".join(doc[k]) if isinstance(doc[k], list) else
                      str(doc[k]).lower() if isinstance(doc[k], bool) else doc[k]) for k in header])
    return _table(header, rows)
