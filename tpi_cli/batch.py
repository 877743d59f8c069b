"""``tpi validate`` over a whole history: each patient read, validated and its violations written
as it goes, so that millions of rows stream through in bounded memory.

The caller chooses how a violation is written (``make_writer``: JSON, CSV or text, from
:mod:`tpi_cli.render.stream`). Violations go, 64 K characters at a time, to a spool (in memory up to
1 MiB, then an unnamed temporary file that the system removes when it is closed) and reach the caller's output only once
the whole history has been read: bad input anywhere means exit 2 and nothing written.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from tpi_cli.errors import no_patient
from tpi_cli.history import read_patients
from tpi_cli.results import ValidationCounts, Violation
from tpi_cli.rules import Rules
from tpi_cli.validate import Validator

SPOOL_IN_MEMORY = 1024 * 1024
BUFFERED = 64 * 1024  # characters of violations gathered in memory before each write to the spool

Writer = Callable[[Violation], None]


class ValidationReport:
    """A whole history's counts, and its violations' text in order: one part per spool (one, or
    one per patient or range from the worker processes). Close it (or use it as a context
    manager) to free the temporary files."""

    def __init__(self, counts: ValidationCounts, parts: Iterator[IO[str]], files: list[IO[Any]]) -> None:
        self.counts = counts
        self.parts = parts
        self._files = files

    def close(self) -> None:
        for file in self._files:
            file.close()

    def __enter__(self) -> ValidationReport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Batched:
    """Violations written by ``make_writer`` into memory, and moved to ``out`` about BUFFERED
    characters at a time (one large write costs less than many small ones through a spool's or a
    text file's layers). ``flush`` moves the rest."""

    def __init__(self, out: IO[str], make_writer: Callable[[IO[str]], Writer]) -> None:
        self._out = out
        self._buffer = io.StringIO()
        self._write = make_writer(self._buffer)

    def write(self, violation: Violation) -> None:
        self._write(violation)
        if self._buffer.tell() > BUFFERED:
            self.flush()

    def flush(self) -> None:
        self._out.write(self._buffer.getvalue())
        self._buffer.seek(0)
        self._buffer.truncate()


def validate_history(rules: Rules, profiles: frozenset[str], path: str, patient: str | None,
                     make_writer: Callable[[IO[str]], Writer], jobs: int = 1) -> ValidationReport:
    """Every violation of every patient (only ``patient``'s if given), written by ``make_writer``.

    With ``jobs`` above 1, a large CSV file is validated on that many processes, each a share of
    the patients (the same report; see :mod:`tpi_cli.parallel`). Raises TpiError on bad input."""
    validator = Validator(rules, [rule for rule in rules.rules if rule.active(profiles)])
    if patient is None and jobs > 1:
        from tpi_cli import parallel

        done = parallel.run(rules, validator, path, path, jobs, make_writer)
        if done is not None:
            return done
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, mode="w+", encoding="utf-8", newline="")  # noqa: SIM115 - the report closes it
    try:
        counts = _validate_into(spool, rules, validator, path, patient, make_writer)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return ValidationReport(counts, iter([spool]), [spool])


def _validate_into(spool: IO[str], rules: Rules, validator: Validator, path: str, patient: str | None,
                   make_writer: Callable[[IO[str]], Writer]) -> ValidationCounts:
    counts = ValidationCounts()
    seen: set[str] = set()
    out = Batched(spool, make_writer)

    def restart() -> None:  # the reader starts over in another mode: so does the report
        nonlocal counts, out
        spool.seek(0)
        spool.truncate()
        out = Batched(spool, make_writer)
        counts = ValidationCounts()
        seen.clear()

    others = False  # a patient other than --patient (none: an empty history, a new patient)
    for history in read_patients(path, rules, on_restart=restart):
        if patient is not None and history.patient_id != patient:
            others = True
            if history.patient_id is not None and len(seen) < 100_000:
                seen.add(history.patient_id)
            continue
        counts.patients += 1
        counts.injections += len(history.injections)
        for violation in validator.patient(history):
            counts.tally(violation)
            out.write(violation)
    out.flush()
    if patient is not None and counts.patients == 0 and others:
        raise no_patient(patient, path, seen)
    return counts
