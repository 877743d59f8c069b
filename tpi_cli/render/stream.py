"""``tpi validate`` output: how each violation is written (JSON, CSV or text) as patients are
validated (:func:`writer`, handed to :func:`tpi_cli.batch.validate_history`), and the report put
together from the spooled parts once the whole history has been read (:func:`write_report`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring as _encode
from typing import IO, Any

from tpi_cli.dates import iso as day_text
from tpi_cli.errors import printable
from tpi_cli.render.common import DISCLAIMER, iso
from tpi_cli.render.csv_out import VIOLATION_HEADER, violation_row
from tpi_cli.results import ValidationCounts, Violation

_MAX_CACHED = 10_000
_UNSET = object()


def writer(fmt: str, spool: IO[str]) -> Callable[[Violation], None]:
    """How each violation is written in ``fmt`` (JSON, CSV or text) to ``spool``."""
    if fmt == "json":
        first = [True]
        text = _json_text
        # The same object json.dumps would write, put together from escaped parts (faster); the
        # parts a patient's violations share are escaped once.
        patient: list[Any] = [_UNSET, ""]
        middles: dict[tuple[str, str | None, str, str], str] = {}
        dates: dict[int, str] = {}

        def write_json(violation: Violation) -> None:
            if violation.patient_id is not patient[0]:
                patient[0], patient[1] = violation.patient_id, text(violation.patient_id)
            key = (violation.site, violation.side, violation.rule, violation.severity)
            middle = middles.get(key)
            if middle is None:
                if len(middles) > _MAX_CACHED:
                    middles.clear()
                middle = middles[key] = (f'"site": {text(violation.site)}, "side": {text(violation.side)}, '
                                         f'"rule": {text(violation.rule)}, "severity": "{violation.severity}"')
            day = dates.get(violation.day)
            if day is None:
                if len(dates) > _MAX_CACHED:
                    dates.clear()
                day = dates[violation.day] = day_text(violation.day)
            spool.write(f'{"" if first[0] else ","}\n    {{"patient_id": {patient[1]}, "date": "{day}", '
                        f'{middle}, "message": {text(violation.message)}, '
                        f'"overridden": {text(violation.overridden)}}}')
            first[0] = False

        return write_json
    if fmt == "csv":
        rows = csv.writer(spool, lineterminator="\r\n")

        def write_csv(violation: Violation) -> None:
            rows.writerow(violation_row(violation))

        return write_csv

    def write_text(violation: Violation) -> None:
        # Two lines a violation, readable at 80 columns: who, where, which rule; then why.
        where = violation.site if violation.side is None else f"{violation.side} {violation.site}"
        mark = violation.severity.upper() if violation.overridden is None else f"{violation.severity} (overridden)"
        override = f"\n    override: {printable(violation.overridden)}" if violation.overridden else ""
        spool.write(f"{iso(violation.day)}  {printable(violation.patient_id or '-')}  {printable(where)}  "
                    f"{printable(violation.rule)}  {mark}\n    {printable(violation.message)}{override}\n")

    return write_text


def _json_text(value: str | None) -> str:
    return "null" if value is None else _encode(value)


def write_report(fmt: str, parts: Iterable[IO[str]], out: IO[str], counts: ValidationCounts) -> None:
    """The report: a header, the violations of each part in order, a summary."""
    summary = {"block": counts.block, "warn": counts.warn, "overridden": counts.overridden}
    if fmt == "json":
        out.write(f'{{\n  "schema_version": 1,\n  "patients": {counts.patients},\n'
                  f'  "injections": {counts.injections},\n  "violations": [')
        _copy(parts, out, ",")
        out.write(f'\n  ],\n  "summary": {json.dumps(summary)}\n}}\n')
        return
    if fmt == "csv":
        csv.writer(out, lineterminator="\r\n").writerow(VIOLATION_HEADER)
        _copy(parts, out)
        return
    _copy(parts, out)
    total = counts.block + counts.warn + counts.overridden
    if not total:
        out.write("no violations\n")
    out.write(f"{counts.patients} patient(s), {counts.injections} injection(s): {counts.block} blocking, "
              f"{counts.warn} warning(s), {counts.overridden} overridden.\n")
    out.write(DISCLAIMER + "\n")


def _copy(parts: Iterable[IO[str]], out: IO[str], separator: str = "") -> None:
    """Each part in order; ``separator`` between two parts that are not empty."""
    written = False
    for part in parts:
        chunk = part.read(1 << 20)
        if not chunk:
            continue
        if written and separator:
            out.write(separator)
        written = True
        while chunk:
            out.write(chunk)
            chunk = part.read(1 << 20)
