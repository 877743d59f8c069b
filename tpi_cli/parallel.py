"""``tpi validate`` on several processes: a large CSV file cut into ranges of whole patients.

The engine is a pure function of one patient's history, so a file whose patients are contiguous
can be cut at patient boundaries and each range validated on its own. The parent finds the cuts
(a few reads around each one), forks one worker per range, and each worker streams its range
through the same reader and validator as the sequential path, writing its report into an unnamed
temporary file made before the fork (nothing is left behind; memory stays flat). The parent then
writes the header, the ranges' reports in order, and the summary.

Anything that could make a range wrong sends the caller back to the sequential path, which gives
the same answer on one process: a quote anywhere near a cut or inside a range (a quoted field may
hold a newline), patient IDs that do not increase within a range or across a cut, or a bad row
(the sequential path then reports the first one in the file, with its line).
"""

from __future__ import annotations

import io
import itertools
import os
import tempfile
from collections.abc import Callable
from typing import IO, Any

from tpi_cli.errors import TpiError
from tpi_cli.history import SORTED, Prefixed, Restart, _csv_patients
from tpi_cli.results import ValidationCounts
from tpi_cli.rules import Rules
from tpi_cli.validate import Validator

MIN_BYTES = 8 * 1024 * 1024  # smaller files are not worth the processes


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


def plan(path: str, jobs: int) -> tuple[bytes, list[tuple[int, int]]] | None:
    """The header line and the byte ranges of whole patients, or None if the file does not suit."""
    if jobs < 2 or path == "-":
        return None
    try:
        size = os.path.getsize(path)
        if size < MIN_BYTES:
            return None
        with open(path, "rb") as handle:
            header = handle.readline()
            if not header or b'"' in header or header.lstrip(b"\xef\xbb\xbf").lstrip()[:1] in (b"[", b"{"):
                return None
            names = [name.strip().lower() for name in header.decode("utf-8-sig").rstrip("\r\n").split(",")]
            if "patient_id" not in names:
                return None
            column = names.index("patient_id")
            start = handle.tell()
            cuts = [start]
            for k in range(1, jobs):
                cut = _cut(handle, start + (size - start) * k // jobs, column, size)
                if cut is None:
                    return None
                if cuts[-1] < cut < size:
                    cuts.append(cut)
            cuts.append(size)
    except (OSError, UnicodeDecodeError):
        return None
    ranges = [(a, b) for a, b in itertools.pairwise(cuts) if b > a]
    return (header, ranges) if len(ranges) > 1 else None


def _cut(handle: IO[bytes], target: int, column: int, size: int) -> int | None:
    """The offset of the first line, at or after ``target``, that starts a new patient."""
    handle.seek(target - 1)
    handle.readline()  # to the start of the next line
    first = handle.readline()
    if not first:
        return size
    if b'"' in first:
        return None
    patient = _field(first, column)
    while True:
        offset = handle.tell()
        line = handle.readline()
        if not line:
            return size
        if b'"' in line:
            return None
        if _field(line, column) != patient:
            return offset


def _field(line: bytes, column: int) -> bytes:
    parts = line.rstrip(b"\r\n").split(b",")
    return parts[column].strip() if column < len(parts) else b""


class ShardReport:
    """What a worker hands back (small: the report itself is in the shared temporary file)."""

    def __init__(self) -> None:
        self.counts = ValidationCounts()
        self.first: str | None = None
        self.last: str | None = None
        self.fallback: str | None = None  # why the sequential path must decide


_JOB: dict[str, Any] = {}


def _work(index: int) -> ShardReport:
    """One worker: validate one range into its temporary file."""
    job = _JOB
    report = ShardReport()
    start, end = job["ranges"][index]
    out: IO[str] = job["outputs"][index]
    write = job["make_writer"](job["fmt"], out)
    validator: Validator = job["validator"]
    try:
        with open(job["path"], "rb") as handle:
            handle.seek(start)
            stream = io.BufferedReader(Prefixed(job["header"], handle, end - start), buffer_size=1 << 16)
            counts = report.counts
            for history in _csv_patients(stream, job["name"], job["rules"], None, SORTED):
                if report.first is None:
                    report.first = history.patient_id
                report.last = history.patient_id
                counts.patients += 1
                counts.injections += len(history.injections)
                for violation in validator.patient(history):
                    counts.tally(violation)
                    write(violation)
        out.flush()
    except Restart:
        report.fallback = "patient IDs do not increase"
    except TpiError:
        report.fallback = "bad input"
    except (MemoryError, RecursionError, ValueError, OSError) as exc:  # pragma: no cover - defensive
        report.fallback = type(exc).__name__
    return report


def run(rules: Rules, validator: Validator, path: str, name: str, fmt: str, jobs: int,
        make_writer: Callable[[str, IO[str]], Callable[[Any], None]]) -> tuple[list[ShardReport], list[IO[str]]] | None:
    """Validate ``path`` on ``jobs`` processes; None when the sequential path must do it."""
    import multiprocessing

    planned = plan(path, jobs)
    if planned is None or "fork" not in multiprocessing.get_all_start_methods():
        return None
    header, ranges = planned
    outputs: list[IO[str]] = [tempfile.TemporaryFile("w+", encoding="utf-8", newline="")  # noqa: SIM115
                              for _ in ranges]  # closed by the caller (or below on fallback)
    _JOB.update(path=path, name=name, rules=rules, validator=validator, fmt=fmt, header=header, ranges=ranges,
                outputs=outputs, make_writer=make_writer)
    try:
        with multiprocessing.get_context("fork").Pool(len(ranges)) as pool:
            reports = pool.map(_work, range(len(ranges)))
    finally:
        _JOB.clear()
    usable = all(report.fallback is None for report in reports)
    previous: str | None = None
    for report in reports:
        if report.first is None:
            continue
        if previous is not None and not previous < report.first:
            usable = False  # a patient could straddle a cut, or IDs are not in order
        previous = report.last
    if not usable:
        for output in outputs:
            output.close()
        return None
    for output in outputs:
        output.seek(0)
    return reports, outputs
