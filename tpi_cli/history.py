"""Reading an injection history: CSV or JSON, from a path or ``-`` (stdin).

Every row is checked (its fields by :mod:`tpi_cli.history_rows`); the first bad one stops the read
with ``FILE:LINE: field: message``. Rows of one patient, date, site and side are merged into one
:class:`~tpi_cli.model.Injection`.

:func:`read_patients` yields one :class:`~tpi_cli.model.PatientHistory` at a time. When each
patient's rows are contiguous in a file it streams (memory bounded by the largest patient). When a
patient's rows turn out not to be contiguous, it reads the file again grouping every patient in
memory; from stdin, which cannot be read twice, it groups in memory from the start. JSON is read
whole by :mod:`tpi_cli.history_json`, whose rows the same row parser and this module's grouping take.
"""

from __future__ import annotations

import binascii
import csv
import io
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from operator import attrgetter, itemgetter
from typing import IO, Any, TextIO

from tpi_cli.errors import EARLIER_LINE, TpiError, input_name, no_patient
from tpi_cli.history_rows import (
    BIDI_MARKS,
    DATE,
    OVERRIDE,
    PID,
    SHAPE_COLUMNS,
    WEIGHT,
    Row,
    RowParser,
    Shape,
    header_columns,
)
from tpi_cli.model import CATEGORY_RANK, Injection, PatientHistory
from tpi_cli.quantity import Amount, Ratio
from tpi_cli.rules import DRY, Drug, Rules, Site

MAX_LINE = (1 << 20) + 2  # a CSV field may hold 1 MiB (the csv module's limit), a line not much more
MAX_JSON_BYTES = 256 << 20
_UNSEEN: Any = object()
_NO_TEXT = frozenset({"", "\n", "\r\n", "\r"})  # an empty last field, with its line end
csv.field_size_limit(1 << 20)


SORTED, CONTIGUOUS, GROUPED = "sorted", "contiguous", "grouped"


class Restart(Exception):
    """Streaming must start over in a more general mode: the patient IDs stopped increasing
    (``CONTIGUOUS`` next: remember every finished patient) or a patient's rows came back after
    another patient's (``GROUPED``: keep every patient in memory)."""

    def __init__(self, mode: str) -> None:
        super().__init__(mode)
        self.mode = mode


def merge(injection: Injection, drug: Drug | None, amount: Amount | None, technique: str | None,
          points: int | None, weight: Ratio | None, override: str | None, line: int, file: str) -> None:
    """Add one row to its injection: drugs summed per drug; points, weight_kg, override and
    technique given once or repeated, never contradicted. (The CSV reader inlines the common case.)"""
    if drug is not None and amount is not None:
        if injection.technique == "dry":
            raise TpiError("a drug, but an earlier row of the same injection (one patient, date, site and side) "
                           "gives technique dry", file=file, line=line, field="drug")
        drugs = injection.drugs
        known = drugs.get(drug)
        if known is None or not known.value:
            drugs[drug] = amount
        elif amount.value:
            try:
                drugs[drug] = known.plus(amount)
            except ValueError as exc:
                raise TpiError(str(exc), file=file, line=line, field="dose") from None
    if points is not None and injection.points != points:
        if injection.points is not None:
            raise _conflict(injection, "points", line, file)
        injection.points = points
    if weight is not None and injection.weight != weight:
        if injection.weight is not None:
            raise _conflict(injection, "weight_kg", line, file)
        injection.weight = weight
    if override is not None and injection.override != override:
        if injection.override is not None:
            raise _conflict(injection, "override", line, file)
        injection.override = override
    if technique is not None and injection.technique != technique:
        if injection.technique is not None:
            raise _conflict(injection, "technique", line, file)
        if technique == "dry" and injection.drugs:
            raise TpiError("dry, but an earlier row of the same injection (one patient, date, site and "
                           "side) gives a drug", file=file, line=line, field="technique")
        injection.technique = technique


def _conflict(injection: Injection, field: str, line: int, file: str) -> TpiError:
    first = f", which starts at line {injection.line}" if injection.line > 0 else EARLIER_LINE
    error = TpiError(f"differs from an earlier row of the same injection{first} (one patient, date, site and side): "
                     "rows must repeat it or leave it empty", file=file, line=line, field=field)
    if injection.line < 0:
        error.earlier = injection.line
    return error


class _PatientRows:
    """The rows of one patient, merged into injections as they come (each sealed as it changes)."""

    __slots__ = ("by_key", "entry_weights", "first_line", "flat_weights", "last_day", "patient_id", "skip",
                 "standing_weight", "techniques", "unsorted")

    def __init__(self, patient_id: str | None, first_line: int = 0, skip: bool = False) -> None:
        self.patient_id = patient_id
        self.standing_weight: Ratio | None = None  # a JSON patient's weight_kg (see PatientHistory)
        self.first_line = first_line
        self.skip = skip  # rows read and checked, but the patient is not wanted (--patient, a shard)
        self.by_key: dict[tuple[int, Site, str | None], Injection] = {}
        self.techniques = False  # whether any row gave a technique (checked when done)
        self.last_day = -1
        self.unsorted = False  # whether an injection came before an earlier-dated one
        # Per injection of a JSON patient entry with a weight_kg: the entry's (the lowest, if it is
        # in two entries), for settle_weights; and each row's weight as SPEC.md's rows would give
        # it (its own, else its entry's), which the rows of one injection must agree on.
        self.entry_weights: dict[Injection, Ratio] | None = None
        self.flat_weights: dict[Injection, Ratio] | None = None

    def injection(self, day: int, site: Site, side: str | None, line: int) -> Injection:
        key = (day, site, side)
        found = self.by_key.get(key)
        if found is None:
            found = self.by_key[key] = Injection(self.patient_id, day, site, side, {}, line=line, seq=len(self.by_key))
            self.unsorted = self.unsorted or day < self.last_day
            self.last_day = day
        return found

    def add(self, row: Row, file: str) -> None:
        injection = self.injection(row.day, row.site, row.side, row.line)
        entry = row.entry_weight
        if entry is not None or self.flat_weights is not None:
            # The row's weight as SPEC.md's rows give it, its own or its entry's: the injection's rows
            # must agree on it (merge checks two rows' own weights; a CSV row has no entry).
            value = row.weight if row.weight is not None else entry
            if value is not None:
                flat = self.flat_weights
                if flat is None:
                    flat = self.flat_weights = {}
                known = flat.get(injection)
                if known is None:
                    known = injection.weight
                if known is not None and known != value:
                    raise _conflict(injection, "weight_kg", row.line, file)
                flat[injection] = value
        merge(injection, row.drug, row.amount, row.technique, row.points, row.weight, row.override, row.line, file)
        injection.seal()
        self.techniques = self.techniques or row.technique is not None
        if entry is not None:
            if self.entry_weights is None:
                self.entry_weights = {}
            known = self.entry_weights.get(injection)
            if known is None or entry < known:
                self.entry_weights[injection] = entry

    def finish(self, file: str) -> PatientHistory:
        injections = list(self.by_key.values())
        if self.techniques:  # (dry with a drug is refused as the rows come: RowParser._shape, merge)
            for injection in injections:
                if injection.technique == "wet" and not injection.drugs:
                    raise TpiError("technique is wet but the injection has no drug (on any row of the same "
                                   "patient, date, site and side)", file=file, line=injection.line,
                                   field="technique")
        if self.unsorted:
            injections.sort(key=_DAY)  # stable: ties keep first appearance
        if self.standing_weight is not None or self.entry_weights is not None:
            settle_weights(injections, self.entry_weights or {}, self.standing_weight)
        return PatientHistory(self.patient_id, injections, first_line=self.first_line,
                              standing_weight=self.standing_weight)


_DAY = attrgetter("day")


def settle_weights(injections: list[Injection], entry_weights: dict[Injection, Ratio],
                   standing: Ratio | None) -> None:
    """A JSON patient's weights, as two records: the injections' own ``weight_kg`` (a tpi addition:
    SPEC.md gives ``weight_kg`` to the patient) and the patient entries' ``weight_kg`` (the lowest
    entry's from the first date, ``standing``; then each entry's from the dates of its injections,
    whether or not they give one of their own). On a date, the lower of the two records' latest values counts:
    a weight measured at an injection does not lift the patient's recorded weight, nor the reverse
    (the lower weight gives the lower, safer mg/kg limits). Each injection that carries a weight is
    given that value, which every reader of the weights then sees (``PatientHistory.weights``,
    ``validate``'s sessions); with no weight of their own anywhere, nothing changes."""
    own: Ratio | None = None  # the latest day's lowest own weight
    given = standing  # the latest entry weight
    start, size = 0, len(injections)
    while start < size:
        day = injections[start].day
        end = start
        own_today: Ratio | None = None
        given_today: Ratio | None = None
        while end < size and injections[end].day == day:
            injection = injections[end]
            if injection.weight is not None and (own_today is None or injection.weight < own_today):
                own_today = injection.weight
            inherited = entry_weights.get(injection)
            if inherited is not None and (given_today is None or inherited < given_today):
                given_today = inherited
            end += 1
        if own_today is not None or given_today is not None:
            own = own_today if own_today is not None else own
            given = given_today if given_today is not None else given
            weight = own if given is None else given if own is None else min(own, given)
            for position in range(start, end):
                injection = injections[position]
                if injection.weight is not None or injection in entry_weights:
                    injection.weight = weight
        start = end


# --- sources ---------------------------------------------------------------------------------

class Source:
    """A history file or stdin, read as bytes; knows whether it can be read a second time."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = input_name(path)
        self._data: bytes | None = None

    @property
    def rereadable(self) -> bool:
        """Stdin, a pipe (``<(...)``, a FIFO, ``/dev/stdin``) or a device gives its bytes once: only a
        regular file can be read again."""
        if self.path == "-":
            return False
        try:
            return stat.S_ISREG(os.stat(self.path).st_mode)
        except (OSError, ValueError):
            return True  # open() names the problem

    def open(self) -> IO[bytes]:
        if self.path == "-":
            stdin: TextIO | None = sys.stdin
            if stdin is None:  # started with stdin closed (`<&-`)
                raise TpiError("cannot read: stdin is closed", file=self.name)
            return stdin.buffer
        try:
            return open(self.path, "rb")
        except FileNotFoundError:
            raise TpiError("no such history file", file=self.name) from None
        except IsADirectoryError:
            raise TpiError("is a directory, not a history file", file=self.name) from None
        except OSError as exc:
            raise TpiError(f"cannot read: {exc.strerror}", file=self.name) from None


def _sniff(handle: IO[bytes], name: str) -> tuple[str, bytes]:
    """``json`` or ``csv`` from the first non-blank character (``json`` for a ``.json`` file, so
    that one holding something else is told so); returns the bytes read so far."""
    head = b""
    while True:
        chunk = handle.read(4096)
        head += chunk
        stripped = head.lstrip(b"\xef\xbb\xbf").lstrip()
        if stripped or not chunk or len(head) > MAX_LINE:
            break
    kind = "json" if stripped[:1] in (b"[", b"{") or is_json_name(name) else "csv"
    return kind, head


class Prefixed(io.RawIOBase):
    """A byte stream with some bytes put in front (already read, or a header), and optionally
    only the next ``limit`` bytes of the rest."""

    def __init__(self, head: bytes, rest: IO[bytes], limit: int | None = None) -> None:
        self._head = head
        self._rest = rest
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        wanted = len(buffer) if self._left is None else min(len(buffer), self._left)
        if wanted <= 0:
            return 0
        data = self._rest.read(wanted)
        if self._left is not None:
            self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def blank_row(line: str) -> bool:
    """A blank line, or a row of empty fields (as a spreadsheet saves its empty rows): skipped."""
    return not line.replace(",", "").strip()


def _blank_cells(cells: list[str]) -> bool:
    """:func:`blank_row` for a row already cut into fields (a quoted comma is not blank)."""
    return not any(cell.strip() for cell in cells)


def is_json_name(path: str) -> bool:
    """A ``.json`` file is read as JSON whatever it starts with (and so told what is wrong with it)."""
    return path.lower().endswith(".json")


def gather_lines(lines: list[str], start: int, shard: int, shards: int) -> list[int] | None:
    """The indices of the lines of the patients whose ID hashes to ``shard`` of ``shards``,
    grouped by patient in order of first appearance, each patient's lines in file order.

    ``lines[start:]`` are the rows of a quote-free CSV file whose first field is the patient ID,
    without their line feeds. The ID is the first field stripped, as the reader strips it, so the
    same ID however padded goes to the same shard. None when a row that is not blank has no
    patient ID or no comma (the sequential reader then says what is wrong with it). The hash is
    Python's: every shard must be computed in one process or in processes forked from one.

    It serves :mod:`tpi_cli.parallel` only, but lives here so that mypyc compiles it with the
    reader: it runs once per line of the file in every worker."""
    mine: dict[str, list[int]] = {}
    others: set[str] = set()
    skip: list[int] = []
    group = skip
    prefix = "\n"  # the previous row's ID and its comma (no line starts with a line feed)
    for index in range(start, len(lines)):
        line = lines[index]
        if line.startswith(prefix):  # the same patient as the row before (common)
            if group is not skip:
                group.append(index)
            continue
        cut = line.find(",")
        if cut < 0:
            if not blank_row(line):
                return None
            prefix = "\n"
            continue  # a blank line, or a row of empty fields (the reader skips it)
        prefix = line[:cut + 1]
        key = prefix[:cut].strip()
        if not key.isascii():  # as RowParser.patient reads it
            key = key.strip(BIDI_MARKS).strip()
        found = mine.get(key)
        if found is not None:
            group = found
            group.append(index)
        elif key in others:
            group = skip
        else:
            if not key:
                if blank_row(line):  # a row of empty fields (the reader skips it)
                    prefix, group = "\n", skip
                    continue
                return None
            if hash(key) % shards == shard:
                group = mine[key] = [index]
            else:
                others.add(key)
                group = skip
    order: list[int] = []
    for found in mine.values():
        order.extend(found)
    return order


def read_patients(path: str, rules: Rules, *, on_restart: Callable[[], None] | None = None
                  ) -> Iterator[PatientHistory]:
    """Every patient of a history, one at a time, in order of first appearance.

    Raises TpiError on the first bad row: the caller must not act on what it was given before
    (``tpi`` writes nothing until the whole history has been read).

    A CSV file is streamed: while the patient IDs increase nothing is kept of finished patients;
    when they stop increasing, the file is read again remembering every finished patient's ID;
    when a patient's rows come back after another's, it is read again keeping every patient in
    memory. Each time, ``on_restart`` is called first and every patient is given again from the
    start. Stdin, which cannot be read twice, and JSON are grouped in memory from the start."""
    source = Source(path)
    mode = SORTED if source.rereadable else GROUPED
    while True:
        handle = source.open()
        try:
            if mode == SORTED or not source.rereadable:
                kind, head = _sniff(handle, source.name)
                if kind == "json":
                    data = head + handle.read(MAX_JSON_BYTES + 1 - len(head))
                    if len(data) > MAX_JSON_BYTES:
                        raise TpiError(f"a JSON history is read whole: this one is larger than "
                                       f"{MAX_JSON_BYTES >> 20} MiB (give a CSV history, which streams)",
                                       file=source.name)
                    from tpi_cli.history_json import JsonRows

                    rows = JsonRows(data, source.name, rules)
                    data = head = b""  # the decoded text is kept, not the bytes too
                    try:
                        yield from _group(iter(rows), source.name)
                    except TpiError as exc:
                        raise rows.relocate(exc) from None
                    return
                binary: IO[bytes] = io.BufferedReader(Prefixed(head, handle), buffer_size=1 << 16)
            else:
                binary = handle
            yield from _csv_patients(text_lines(binary), source.name, rules, mode)
            return
        except Restart as restart:
            mode = restart.mode
        except OSError as exc:  # reading failed half-way (a device error, stdin not open for reading)
            raise TpiError(f"cannot read: {exc.strerror or exc}", file=source.name) from None
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()
        if on_restart is not None:
            on_restart()


def choose_patients(path: str, rules: Rules, patient: str | None) -> list[PatientHistory]:
    """The histories of ``patient`` (of every patient when None), in order of first appearance,
    held in memory (``check`` and ``next`` answer for one patient, or a few)."""
    chosen: list[PatientHistory] = []
    for history in chosen_patients(path, rules, patient, on_restart=chosen.clear):
        chosen.append(history)
    return chosen


def chosen_patients(path: str, rules: Rules, patient: str | None, *,
                    on_restart: Callable[[], None] | None = None) -> Iterator[PatientHistory]:
    """The histories of ``patient`` (of every patient when None), in order of first appearance,
    one at a time; ``on_restart`` as for :func:`read_patients`.

    A ``patient`` who is not in a history that has rows is refused, with the closest IDs; in a
    history without rows, it is a new patient, with no injections."""
    seen: list[str | None] = []
    found = False  # set in any reading of the file: the last one reads it whole again

    def restart() -> None:
        seen.clear()
        if on_restart is not None:
            on_restart()

    for history in read_patients(path, rules, on_restart=restart):
        if len(seen) < 100_000:
            seen.append(history.patient_id)
        if patient is None or history.patient_id == patient:
            found = True
            yield history
    if patient is not None and not found:
        if seen:
            raise no_patient(patient, path, seen)
        yield PatientHistory(patient, [])


def text_lines(binary: IO[bytes]) -> Iterator[str]:
    """A CSV file's lines, with their line ends, decoded as they are read (a line without an end
    is never read whole: the reader refuses one that long)."""
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    return iter(partial(text.readline, MAX_LINE), "")


def _csv_patients(lines: Iterator[str], file: str, rules: Rules, mode: str, shard: tuple[int, int] | None = None,
                  numbers: Sequence[int] | None = None) -> Iterator[PatientHistory]:
    """The CSV reader: rows parsed (through caches) and merged into patients as they are read.

    ``SORTED`` and ``CONTIGUOUS`` stream: a patient is given as soon as the next one starts;
    ``SORTED`` raises Restart(CONTIGUOUS) when an ID is not greater than the one before, and
    ``CONTIGUOUS`` raises Restart(GROUPED) when a finished patient comes back. ``GROUPED`` keeps
    every patient until the end. ``shard`` ``(k, n)`` keeps only the patients whose ID hashes to
    ``k`` of ``n``: the other patients' rows are read only as far as their patient ID, site,
    side, drug and dose (the worker their ID hashes to checks the rest). ``numbers``: the rows
    were gathered from a larger file, one line each; row ``i`` is that file's line ``numbers[i]``
    (errors and first appearance then refer to the file). ``lines``: the header first
    (``text_lines``, or lines already decoded)."""
    grouped = mode == GROUPED
    remember = mode == CONTIGUOUS
    early = shard is not None
    number = 0  # lines read so far
    try:
        header: list[str] | None = None
        for first in lines:
            number += 1
            if len(first) >= MAX_LINE:
                raise TpiError("line longer than 1 MiB", file=file, line=number)
            header, extra = _record(first, lines)
            number += extra
            if not _blank_cells(header):
                break  # blank lines (and rows of empty fields) before the header are skipped
            header = None
        if header is None:
            raise TpiError("empty history: expected a header row (date,site,drug,dose,...)", file=file, line=1)
        columns = header_columns(header, file, number - extra)
        width = len(header)
        pad = any(index < 0 for index in columns)
        fields = itemgetter(*[index if index >= 0 else width for index in columns])
        parser = RowParser(rules, file)
        dates, shapes, weights = parser.dates, parser.shapes, parser.weights
        # The usual layout, `patient_id,date,...,weight_kg,override`: a quote-free row is cut in
        # three C calls, and its middle part (site, side, drug, dose, ...) is looked up as one text.
        fast = (columns[PID], columns[DATE], columns[WEIGHT], columns[OVERRIDE]) == (0, 1, width - 2, width - 1)
        middle = itemgetter(*[columns[c] - 2 if columns[c] >= 0 else width - 4 for c in SHAPE_COLUMNS])
        middles: dict[str, Shape] = {}
        commas = width - 1
        header_lines = number
        groups: dict[str | None, _PatientRows] = {}
        by_raw: dict[str, _PatientRows] = {}  # grouped: each patient_id text seen, to its patient
        done: set[str | None] = set()
        current: _PatientRows | None = None  # typed loosely: checked at the first row
        current_raw: str | None = None
        rank = CATEGORY_RANK
        last_group: _PatientRows | None = None
        last_day, last_site, last_side = -1, None, None
        injection: Injection | None = None  # set with the first row
        for text_line in lines:
            start = number = number + 1
            if numbers is not None:
                start = numbers[number - header_lines - 1]
            if len(text_line) >= MAX_LINE:
                raise TpiError("line longer than 1 MiB", file=file, line=start)
            if fast and '"' not in text_line:
                # The line end stays on the last field (override); it is stripped there if need be.
                # A middle part already known has the right number of commas, so the row has too.
                try:
                    pid_raw, date_raw, rest = text_line.split(",", 2)
                    middle_raw, weight_raw, override_raw = rest.rsplit(",", 2)
                    shape = middles.get(middle_raw)
                except ValueError:  # fewer than four commas: the check below says what is wrong
                    shape = None
                if shape is None:
                    if blank_row(text_line):
                        continue  # a blank line, or a row of empty fields (a spreadsheet's blank row)
                    if text_line.count(",") != commas:
                        raise TpiError(f"{text_line.count(',') + 1} fields, but the header has {width}", file=file,
                                       line=start)
                    pid_raw, date_raw, rest = text_line.split(",", 2)
                    middle_raw, weight_raw, override_raw = rest.rsplit(",", 2)
                    parts = middle_raw.split(",")
                    parts.append("")
                    parser.day(date_raw, start)  # a bad date is reported before a bad site
                    shape = middles[middle_raw] = parser.shape(*middle(parts), line=start)
            else:
                if '"' in text_line:
                    raw, extra = _record(text_line, lines)
                    number += extra
                else:  # no quote: the fields are exactly the comma-separated parts (RFC 4180)
                    raw = text_line.rstrip("\r\n").split(",")
                if len(raw) != width:
                    if _blank_cells(raw):
                        continue  # a blank line, or a row of empty fields
                    raise TpiError(f"{len(raw)} fields, but the header has {width}", file=file, line=start)
                if pad:
                    raw.append("")
                pid_raw, date_raw, site_raw, side_raw, drug_raw, dose_raw, technique_raw, points_raw, weight_raw, \
                    override_raw = fields(raw)
                shape = shapes.get((site_raw, side_raw, drug_raw, dose_raw, technique_raw, points_raw))
                if shape is None:
                    if _blank_cells(raw):
                        continue  # a row of empty fields (a spreadsheet's blank row)
                    parser.day(date_raw, start)
                    shape = parser.shape(site_raw, side_raw, drug_raw, dose_raw, technique_raw, points_raw,
                                         line=start)
            if pid_raw != current_raw and grouped and pid_raw in by_raw:
                current = by_raw[pid_raw]  # grouped, rows in any order: a patient seen before
                current_raw = pid_raw
            elif pid_raw != current_raw:
                patient_id = parser.patient(pid_raw, start)
                if current is not None and (patient_id is None) != (current.patient_id is None):
                    raise _mixed_anonymous(patient_id, file, start)
                if current is None or patient_id != current.patient_id:
                    if grouped:
                        found = groups.get(patient_id)
                        if found is None:
                            found = groups[patient_id] = _PatientRows(patient_id, start,
                                                                      _unwanted(patient_id, shard))
                        current = by_raw[pid_raw] = found
                    else:
                        if current is not None:
                            if remember:
                                done.add(current.patient_id)
                            elif patient_id is None or current.patient_id is None or \
                                    patient_id <= current.patient_id:
                                raise Restart(CONTIGUOUS)
                        if patient_id in done:
                            raise Restart(GROUPED)
                        if current is not None and not current.skip:
                            yield current.finish(file)
                        current = _PatientRows(patient_id, start, _unwanted(patient_id, shard))
                current_raw = pid_raw
            if early and current is not None and current.skip:
                continue  # another shard's patient: the worker it hashes to checks the rest of the row
            day = dates.get(date_raw)
            if day is None:
                day = parser.day(date_raw, start)
            weight = weights.get(weight_raw, _UNSEEN)
            if weight is _UNSEEN:
                weight = parser.weight(weight_raw, start)
            override = None if override_raw in _NO_TEXT else parser.override(override_raw.rstrip("\r\n"), start)
            assert current is not None  # the first row always sets it
            if current.skip:
                continue
            site, side, drug, amount, technique, points, category, ref, la = shape
            # The common cases inline: the first row of an injection, or one more drug for the
            # injection of the previous row. `merge` handles the rest (and every conflict).
            if day != last_day or site is not last_site or side != last_side or current is not last_group:
                key = (day, site, side)
                by_key = current.by_key
                injection = by_key.get(key)
                last_day, last_site, last_side, last_group = day, site, side, current
                if injection is None:
                    if drug is not None and amount is not None:
                        injection = by_key[key] = Injection(current.patient_id, day, site, side, {drug: amount},
                                                            points, weight, override, start, 0, technique, category,
                                                            ref, la)
                    else:
                        injection = by_key[key] = Injection(current.patient_id, day, site, side, {}, points, weight,
                                                            override, start, 0, technique, DRY)
                    if day < current.last_day:
                        current.unsorted = True
                    current.last_day = day
                    if technique is not None:
                        current.techniques = True
                    continue
            assert injection is not None  # set by this row or an earlier one of the same injection
            if technique is None and drug is not None and amount is not None and drug not in injection.drugs and \
                    injection.technique is None:
                injection.drugs[drug] = amount
                if rank[category] > rank[injection.category]:
                    injection.category = category
                injection.ref += ref
                injection.la += la
                drug = None
            if drug is not None or technique is not None or (points is not None and injection.points != points) or \
                    (weight is not injection.weight and weight is not None) or \
                    (override is not None and injection.override != override):
                if technique is not None:
                    current.techniques = True
                merge(injection, drug, amount, technique, points, weight, override, start, file)
                injection.seal()
        if grouped:
            for group in groups.values():
                if not group.skip:
                    yield group.finish(file)
        elif current is not None and not current.skip:
            yield current.finish(file)
    except UnicodeDecodeError as exc:
        # A file is read again for the exact line; a pipe cannot be (opening a FIFO again would
        # wait for a writer for ever): its line is counted in the chunk the decoder refused, whose
        # start is the line after the last one read.
        line = _bad_utf8_line(file) if file != "<stdin>" and Source(file).rereadable else None
        if line is None:
            line = number + 1 + len(_LINE_END.findall(exc.object, 0, exc.start))
        raise TpiError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x})", file=file, line=line) from None
    except csv.Error as exc:
        raise TpiError(f"not valid CSV: {exc}", file=file, line=number) from None


def _unwanted(patient_id: str | None, shard: tuple[int, int] | None) -> bool:
    """Another worker's patient (``shard``: this worker's ``(k, n)``)."""
    if shard is not None:
        key = (patient_id or "").encode("utf-8", "surrogatepass")
        return binascii.crc32(key) % shard[1] != shard[0]
    return False


_LINE_END = re.compile(rb"\r\n|\r|\n")


def _bad_utf8_line(path: str) -> int | None:
    """The line of the first byte that is not UTF-8 (the decoder only says which chunk)."""
    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    return number
    except OSError:
        return None
    return None


def _record(first: str, lines: Iterator[str]) -> tuple[list[str], int]:
    """One CSV record that starts with ``first``, read by the csv module (quotes, and newlines
    inside quotes); returns the fields and how many more lines it took."""
    taken = 0

    def source() -> Iterator[str]:
        nonlocal taken
        yield first
        for more in lines:
            taken += 1
            if len(more) >= MAX_LINE:
                raise csv.Error("line longer than 1 MiB")
            yield more

    fields = next(csv.reader(source(), strict=True), [])
    return fields, taken


def _mixed_anonymous(patient_id: str | None, file: str, line: int) -> TpiError:
    if patient_id is None:
        message = "empty, but other rows name patients: give every row a patient_id"
    else:
        message = "names a patient, but earlier rows leave patient_id empty: give every row a patient_id"
    return TpiError(message, file=file, line=line, field="patient_id")


class PatientOnly:
    """A JSON patient (before its injections, if any): a patient even with no injection (a new one),
    and its ``weight_kg``, which holds on every date."""

    __slots__ = ("line", "patient_id", "weight")

    def __init__(self, patient_id: str | None, line: int, weight: Ratio | None = None) -> None:
        self.patient_id = patient_id
        self.line = line
        self.weight = weight


def _group(rows: Iterator[Row | PatientOnly], file: str) -> Iterator[PatientHistory]:
    patients: dict[str | None, _PatientRows] = {}
    for row in rows:
        group = patients.get(row.patient_id)
        if group is None:
            if patients and (row.patient_id is None or None in patients):
                raise _mixed_anonymous(row.patient_id, file, row.line)
            group = _PatientRows(row.patient_id)
            patients[row.patient_id] = group
        if isinstance(row, PatientOnly):
            # The lowest of its entries' weights (the safer, lower limits, whatever the entries' order);
            # each entry's own injections carry their entry's weight from their dates on.
            if row.weight is not None and (group.standing_weight is None or row.weight < group.standing_weight):
                group.standing_weight = row.weight
            continue
        group.add(row, file)
    for group in patients.values():
        yield group.finish(file)
