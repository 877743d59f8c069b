"""JSON output: the keys SPEC.md promises scripts (``schema_version`` 1), plus a few extra."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tpi_cli.errors import TpiError
from tpi_cli.quantity import MASS, PG_PER_MG
from tpi_cli.render.common import iso, mg
from tpi_cli.results import CheckResult, ForecastResult, TotalsResult, TotalsRow
from tpi_cli.rules import Rule, Rules


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def check_document(result: CheckResult) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "patient_id": result.patient_id,
        "site": result.site.name,
        "side": result.side,
        "on": iso(result.on),
        "category": result.category,
        "profiles": result.profiles,
        "reference_steroid": result.reference,
        "drugs": [
            {"name": line.drug.name,
             "dose_mg": mg(line.amount.value, PG_PER_MG) if line.amount.kind == MASS else None,
             "mg_ref": mg(line.mg_ref, result.ref_scale) if line.mg_ref is not None else None}
            for line in result.drugs
        ],
        "verdict": result.verdict,
        "earliest_date": iso(result.earliest),
        "rules": [
            {"id": outcome.rule.id, "kind": outcome.rule.kind, "severity": outcome.rule.severity,
             "profiles": sorted(outcome.rule.profiles), "status": outcome.status,
             "earliest_date": iso(outcome.earliest), "message": outcome.message,
             "counted": [iso(day) for day in outcome.counted], "source": outcome.rule.source}
            for outcome in result.rules
        ],
        "warnings": result.warnings,
    }


def check_json(result: CheckResult) -> str:
    return dumps(check_document(result))


def next_json(result: ForecastResult) -> str:
    return dumps({
        "schema_version": 1,
        "patient_id": result.patient_id,
        "on": iso(result.on),
        "profiles": result.profiles,
        "reference_steroid": result.reference,
        "sites": [
            {"site": row.site.name, "side": row.side,
             "dry": iso(row.earliest["dry"]), "anesthetic": iso(row.earliest["anesthetic"]),
             "steroid": iso(row.earliest["steroid"]),
             "steroid_mg_remaining": mg(row.mg_remaining, result.ref_scale) if row.mg_remaining is not None
             else None,
             "held_by": row.held_by}
            for row in result.rows
        ],
    })


def write_totals_json(result: TotalsResult, write: Callable[[str], object]) -> None:
    """The report, as ``dumps`` would give it, written a few hundred rows at a time: a clinic's
    whole history has a row per patient and site, and the document built whole took several
    times the memory of its rows (150,000 patients: 1.1 GB)."""
    window = result.window.text if result.window is not None else None
    head = dumps({"schema_version": 1, "on": iso(result.on), "window": window,
                  "reference_steroid": result.reference.name})
    write(head[:-3])  # without "\n}\n"
    for key, rows in (("rows", result.rows), ("patients", result.patients)):
        write(f',\n  "{key}": [')
        batch: list[str] = []
        for index, row in enumerate(rows):
            batch.append(("\n    " if index == 0 else ",\n    ") + totals_row_text(row, result.ref_scale))
            if len(batch) == 500:
                write("".join(batch))
                batch.clear()
        write("".join(batch) + ("\n  ]" if rows else "]"))
    write("\n}\n")


def totals_row_text(row: TotalsRow, scale: int) -> str:
    """``dumps``' text of a totals row (its keys as SPEC.md gives them) nested in the report's list,
    put together from its parts: the keys are fixed, so nothing is looked up per value (a clinic's file has
    hundreds of thousands of rows). ``json.dumps`` with an indent runs the pure-Python encoder,
    whose closures form a reference cycle per call: with the cycle collector off (``cli.main``),
    one call a row would keep them all."""
    site = "" if row.site is None else f'\n      "site": {_TEXT(row.site)},\n      "side": {_text_or_null(row.side)},'
    return (f'{{\n      "patient_id": {_text_or_null(row.patient_id)},{site}\n'
            f'      "steroid_injections": {row.injections},\n      "mg_ref": {mg(row.ref, scale)!r},\n'
            f'      "by_drug": {_drugs_text(row.by_drug)},\n      "all_time_injections": {row.all_time_injections},\n'
            f'      "all_time_mg_ref": {mg(row.all_time_ref, scale)!r},\n'
            f'      "all_time_by_drug": {_drugs_text(row.all_time_by_drug)}\n    }}')


def _drugs_text(amounts: dict[str, int]) -> str:
    """``dumps``' text of picograms per drug name as mg (2 decimals), by name, at a totals row's key."""
    if not amounts:
        return "{}"
    return "{\n" + ",\n".join(f"        {_TEXT(name)}: {mg(value, PG_PER_MG)!r}"
                                for name, value in sorted(amounts.items())) + "\n      }"


def _text_or_null(value: str | None) -> str:
    return "null" if value is None else _TEXT(value)


_TEXT: Callable[[str], str] = getattr(json.encoder, "encode_basestring")  # noqa: B009 - as json.dumps quotes a text


def sites_json(rules: Rules) -> str:
    return dumps({
        "schema_version": 1,
        "sites": [{"name": s.name, "region": s.region, "lateral": s.lateral, "aliases": list(s.aliases),
                   "snomed": s.snomed, "source": s.source} for s in rules.sites.values()],
    })


def rule_document(rule: Rule, profiles: frozenset[str]) -> dict[str, Any]:
    return {
        "id": rule.id, "kind": rule.kind, "applies_to": sorted(rule.applies_to), "counts": sorted(rule.counts),
        "scope": rule.scope, "unit": rule.unit if rule.kind == "max-count" else None,
        "interval": str(rule.interval) if rule.interval else None,
        "window": str(rule.window) if rule.window else None,
        "grace": str(rule.grace) if rule.grace else None,
        "max": rule.max, "max_mg": rule.max_mg.round2() if rule.max_mg is not None else None,
        "severity": rule.severity, "profiles": sorted(rule.profiles), "active": rule.active(profiles),
        "effective": iso(rule.effective), "until": iso(rule.until),
        "source": rule.source, "description": rule.description,
    }


def rules_json(rules: Rules, profiles: frozenset[str]) -> str:
    return dumps({
        "schema_version": 1,
        "path": rules.path,
        "reference_steroid": rules.reference_steroid.name,
        "profiles": sorted(profiles),
        "rules": [rule_document(rule, profiles) for rule in rules.rules],
    })


def rules_check_json(path: str, rules: Rules | None, errors: list[TpiError]) -> str:
    """``tpi rules check --format json``: a rules file's errors (``rules`` None), or its counts."""
    if rules is None:
        return dumps({"schema_version": 1, "path": path, "valid": False,
                      "errors": [{"line": error.line, "field": error.field, "message": error.message,
                                  "suggestions": error.suggestions} for error in errors]})
    return dumps({"schema_version": 1, "path": rules.path, "valid": True, "errors": [],
                  "rules": len(rules.rules), "always_active": sum(1 for rule in rules.rules if not rule.profiles),
                  "profiles": sorted(rules.profiles), "drugs": len(rules.drugs), "sites": len(rules.sites)})
