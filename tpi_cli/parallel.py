"""``tpi validate`` on several processes, each a share of the patients.

The engine is a pure function of one patient's history, so patients can be validated apart.

* By ranges: a file whose patients are contiguous, with increasing IDs, is cut at patient
  boundaries (a few reads around each cut) and each worker streams its byte range through the same
  reader and validator as the sequential path (memory stays flat).
* Scattered: otherwise (IDs out of order, a patient's rows scattered), when the file has no quote,
  no lone carriage return and the patient ID first: each worker reads the whole file, cuts it into
  lines and keeps the rows of the patients whose ID hashes to it, grouped by patient in order of
  first appearance (each patient's rows in file order), with their line numbers, and streams them
  through the same reader. Each row is parsed once, by one worker.
* By hash: otherwise (quoted fields, lone carriage returns, the ID in another column, a row
  without an ID), each worker reads the whole file and keeps the patients whose ID hashes to it,
  grouped in memory; it reads another worker's rows only as far as their ID, site, side, drug
  and dose, and the worker they hash to checks the rest.

In the last two, the parent puts the patients' reports back in order of first appearance.

Workers are forked and write their reports into unnamed temporary files made before the fork
(nothing is left behind). A bad row anywhere sends the caller back to the sequential path, which
reports the first one in the file with its line; the report is the same as on one process. So
does a worker that dies (killed, out of memory): the parent never waits for it for ever.
"""

from __future__ import annotations

import io
import itertools
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from tpi_cli.batch import Batched, ValidationReport
from tpi_cli.errors import TpiError
from tpi_cli.history import (
    CONTIGUOUS,
    GROUPED,
    MAX_LINE,
    SORTED,
    Prefixed,
    Restart,
    _csv_patients,
    blank_row,
    gather_lines,
    is_json_name,
    text_lines,
)
from tpi_cli.model import PatientHistory
from tpi_cli.results import ValidationCounts, Violation
from tpi_cli.rules import Rules
from tpi_cli.validate import Validator

MIN_BYTES = 8 * 1024 * 1024  # smaller files are not worth the processes


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


def plan(path: str, jobs: int) -> tuple[bytes, list[tuple[int, int]]] | None:
    """The header line and the byte ranges of whole patients, or None if the file does not suit."""
    if jobs < 2 or path == "-":
        return None
    found = _patient_column(path)
    if found is None or b'"' in found[0]:
        return None
    header, column = found
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            handle.seek(len(header))
            start = handle.tell()
            cuts = [start]
            for k in range(1, jobs):
                cut = _cut(handle, start + (size - start) * k // jobs, column, size)
                if cut is None:
                    return None
                if cuts[-1] < cut < size:
                    cuts.append(cut)
            cuts.append(size)
    except OSError:
        return None
    ranges = [(a, b) for a, b in itertools.pairwise(cuts) if b > a]
    return (header, ranges) if len(ranges) > 1 else None


def _cut(handle: IO[bytes], target: int, column: int, size: int) -> int | None:
    """The offset of the first line, at or after ``target``, that starts a new patient."""
    handle.seek(target - 1)
    handle.readline()  # to the start of the next line
    first = handle.readline()
    while first and _blank(first):
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
        if _field(line, column) != patient and not _blank(line):  # a blank row is no patient's
            return offset


def _blank(line: bytes) -> bool:
    """A blank line or a row of empty fields: the reader's own test (a no-break space is blank)."""
    return blank_row(line.decode("utf-8", "replace"))


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
        self.chunks: list[tuple[int, int, int]] = []  # scattered, by hash: (first line, offset, length) a patient


_JOB: dict[str, Any] = {}


def _tally(report: ShardReport, history: PatientHistory, violations: list[Violation],
           write: Callable[[Violation], None]) -> None:
    counts = report.counts
    if report.first is None:
        report.first = history.patient_id
    report.last = history.patient_id
    counts.patients += 1
    counts.injections += len(history.injections)
    for violation in violations:
        counts.tally(violation)
        write(violation)


def _guard(work: Callable[[ShardReport], None]) -> ShardReport:
    report = ShardReport()
    try:
        work(report)
    except Restart:
        report.fallback = RESTART
    except TpiError:
        report.fallback = BAD_INPUT
    return report  # any other exception: _child reports it


def _work_range(index: int) -> ShardReport:
    """One worker: validate one range of whole patients into its temporary file."""
    job = _JOB

    def work(report: ShardReport) -> None:
        start, end = job["ranges"][index]
        out: IO[str] = job["outputs"][index]
        batched = Batched(out, job["make_writer"])
        validator: Validator = job["validator"]
        with open(job["path"], "rb") as handle:
            handle.seek(start)
            stream = io.BufferedReader(Prefixed(job["header"], handle, end - start), buffer_size=1 << 16)
            for history in _csv_patients(text_lines(stream), job["name"], job["rules"], SORTED):
                _tally(report, history, validator.patient(history), batched.write)
        batched.flush()
        out.flush()

    return _guard(work)


def _work_hash(index: int) -> ShardReport:
    """One worker: read the whole file, keep the patients whose ID hashes to this worker, and
    write each patient's report apart, to be put back in order of first appearance."""
    job = _JOB

    def work(report: ShardReport) -> None:
        with open(job["path"], "rb") as handle:
            _validate_grouped(report, job["outputs"][index],
                              _csv_patients(text_lines(handle), job["name"], job["rules"], GROUPED,
                                            shard=(index, job["shards"])))

    return _guard(work)


def _validate_grouped(report: ShardReport, out: IO[bytes], histories: Iterator[PatientHistory]) -> None:
    """Validate patients given in any order, each patient's report written apart to ``out``."""
    job = _JOB
    validator: Validator = job["validator"]
    for history in histories:
        violations = validator.patient(history)
        if not violations:
            _tally(report, history, violations, _ignore)
            continue
        text = io.StringIO()
        _tally(report, history, violations, job["make_writer"](text))
        data = text.getvalue().encode("utf-8")
        report.chunks.append((history.first_line, out.tell(), len(data)))
        out.write(data)
    out.flush()


def _work_gather(index: int) -> ShardReport:
    """Scattered: read the whole file, keep the rows of the patients whose ID hashes to this
    worker (grouped by patient, in order of first appearance, each patient's rows in file order)
    and stream them through the reader one whole patient at a time, with their line numbers."""
    return _guard(lambda report: _gather(index, report))


def _gather(index: int, report: ShardReport) -> None:
    job = _JOB
    with open(job["path"], "rb") as handle:
        data = handle.read()
    # ``in`` first: counting the two-byte CR LF costs a tenth of a second a 60 MB file; most have no CR.
    if b'"' in data or (b"\r" in data and data.count(b"\r") != data.count(b"\r\n")):
        report.fallback = LAYOUT  # quoted fields, or lone carriage returns: not one row a line
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        report.fallback = BAD_INPUT
        return
    del data
    lines = text.split("\n")
    del text
    if max(map(len, lines)) + 1 >= MAX_LINE:  # with its line feed, as the reader counts
        report.fallback = BAD_INPUT  # the sequential path says which line is too long
        return
    lines.insert(0, "")  # so that lines[k] is the file's line k (the header is line 1)
    order = gather_lines(lines, 2, index, job["shards"])
    if order is None:
        report.fallback = LAYOUT  # a row without a patient ID or a comma: by hash instead
        return
    rows = itertools.chain((lines[1],), map(lines.__getitem__, order))
    _validate_grouped(report, job["outputs"][index],
                      _csv_patients(rows, job["name"], job["rules"], CONTIGUOUS, numbers=order))


def _ignore(violation: Violation) -> None:
    return None


BAD_INPUT = "bad input"  # one process names the first bad row
DIED = "a worker process died"
LAYOUT = "not one row a line, or a row without a patient ID"  # by hash instead
RESTART = "patient IDs do not increase"  # scattered instead


def _pool(work: Callable[[int], ShardReport], count: int) -> list[ShardReport]:
    """``work(0)`` to ``work(count - 1)``, each in a forked process; their reports in order.

    A process that dies before it reports (killed, out of memory) gives a report whose fallback
    is ``DIED`` instead of leaving the parent waiting for ever. Ctrl-C reaches the whole process
    group: the workers leave it to the parent, which stops them and says "interrupted" once (no
    traceback from each worker)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    processes = []
    readers = []
    try:
        for index in range(count):
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(target=_child, args=(work, index, writer), daemon=True)
            process.start()
            writer.close()  # the child's copy is the only one left: its death ends the pipe
            processes.append(process)
            readers.append(reader)
        reports = []
        for reader in readers:
            try:
                reports.append(reader.recv())
            except EOFError:
                died = ShardReport()
                died.fallback = DIED
                reports.append(died)
        return reports
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
        for reader in readers:
            reader.close()


def _child(work: Callable[[int], ShardReport], index: int, writer: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        report = work(index)
    except BaseException as exc:  # a bug: one process runs it all again and reports it
        report = ShardReport()
        report.fallback = f"internal error ({type(exc).__name__})"
    writer.send(report)
    writer.close()


def run(rules: Rules, validator: Validator, path: str, name: str, jobs: int,
        make_writer: Callable[[IO[str]], Callable[[Violation], None]]) -> ValidationReport | None:
    """Validate ``path`` on ``jobs`` processes; None when the sequential path must do it.

    First by ranges of whole patients (contiguous, increasing IDs: streamed, flat memory); if the
    IDs turn out not to be so, scattered by a hash of the ID, else by hash (each worker groups its
    share in memory)."""
    import multiprocessing

    if jobs < 2 or path == "-" or "fork" not in multiprocessing.get_all_start_methods():
        return None
    try:
        if os.path.getsize(path) < MIN_BYTES:
            return None
    except OSError:
        return None
    base = {"path": path, "name": name, "rules": rules, "validator": validator, "make_writer": make_writer}
    planned = plan(path, jobs)
    if planned is not None:
        header, ranges = planned
        outputs: list[IO[Any]] = [tempfile.TemporaryFile("w+", encoding="utf-8", newline="")  # noqa: SIM115
                                  for _ in ranges]  # closed by ValidationReport.close (or below)
        _JOB.update(base, header=header, ranges=ranges, outputs=outputs)
        try:
            reports = _pool(_work_range, len(ranges))
        finally:
            _JOB.clear()
        reason = next((report.fallback for report in reports if report.fallback), None)
        if reason is None and _in_order(reports):
            for output in outputs:
                output.seek(0)
            return ValidationReport(_total(reports), iter(outputs), outputs)
        for output in outputs:
            output.close()
        if reason is not None and reason != RESTART:
            return None  # one process names the first bad row (or does it all)
    found = _patient_column(path)
    if found is None:
        return None
    outputs = [tempfile.TemporaryFile("w+b") for _ in range(jobs)]  # noqa: SIM115 - closed by ValidationReport.close
    grouped: list[ShardReport] | None = None
    if found[1] == 0 and b'"' not in found[0] and found[0].endswith(b"\n"):
        _JOB.update(base, header=found[0], shards=jobs, outputs=outputs)
        try:
            grouped = _pool(_work_gather, jobs)
        finally:
            _JOB.clear()
        if {report.fallback for report in grouped if report.fallback} == {LAYOUT}:
            for output in outputs:  # start again, by hash
                output.seek(0)
                output.truncate()
            grouped = None
    if grouped is None:
        _JOB.update(base, shards=jobs, outputs=outputs)
        try:
            grouped = _pool(_work_hash, jobs)
        finally:
            _JOB.clear()
    if any(report.fallback for report in grouped):
        for output in outputs:
            output.close()
        return None
    chunks = sorted((first, shard, offset, length) for shard, report in enumerate(grouped)
                    for first, offset, length in report.chunks)
    return ValidationReport(_total(grouped), _read_chunks(chunks, outputs), outputs)


def _read_chunks(chunks: list[tuple[int, int, int, int]], outputs: list[IO[Any]]) -> Iterator[IO[str]]:
    for _, shard, offset, length in chunks:
        output = outputs[shard]
        output.seek(offset)
        yield io.StringIO(output.read(length).decode("utf-8"))


def _in_order(reports: list[ShardReport]) -> bool:
    """Whether the ranges' patient IDs increase across the cuts (no patient in two ranges)."""
    previous: str | None = None
    for report in reports:
        if report.first is None:
            continue
        if previous is not None and not previous < report.first:
            return False
        previous = report.last
    return True


def _total(reports: list[ShardReport]) -> ValidationCounts:
    counts = ValidationCounts()
    for report in reports:
        counts.add(report.counts)
    return counts


def _patient_column(path: str) -> tuple[bytes, int] | None:
    """A CSV file's header line and its patient_id column (None: JSON, or no such column)."""
    try:
        with open(path, "rb") as handle:
            header = handle.readline(1 << 16)
    except OSError:
        return None
    if not header or header.lstrip(b"\xef\xbb\xbf").lstrip()[:1] in (b"[", b"{") or is_json_name(path):
        return None
    names = [name.strip().lower() for name in header.decode("utf-8-sig", "replace").rstrip("\r\n").split(",")]
    return (header, names.index("patient_id")) if "patient_id" in names else None
