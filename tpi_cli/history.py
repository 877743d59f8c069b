"""Reading an injection history: CSV or JSON, from a path or ``-`` (stdin).

Every row is checked; the first bad one stops the read with ``FILE:LINE: field: message``. Rows
of one patient, date, site and side are merged into one :class:`~tpi_cli.model.Injection`.

:func:`read_patients` yields one :class:`~tpi_cli.model.PatientHistory` at a time. When each
patient's rows are contiguous in a file it streams (memory bounded by the largest patient). When a
patient's rows turn out not to be contiguous, it reads the file again grouping every patient in
memory; from stdin, which cannot be read twice, it groups in memory from the start.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

from tpi_cli.dates import parse_date
from tpi_cli.errors import TpiError, did_you_mean, quote
from tpi_cli.model import Injection, PatientHistory
from tpi_cli.names import parse_side
from tpi_cli.quantity import UNITS, Amount, Ratio, parse_decimal, parse_dose
from tpi_cli.rules import OTHER, Drug, Rules, Site

COLUMNS = ("patient_id", "date", "site", "side", "drug", "dose", "technique", "points", "weight_kg", "override")
REQUIRED_COLUMNS = ("date", "site", "drug")
(PID, DATE, SITE, SIDE, DRUG, DOSE, TECHNIQUE, POINTS, WEIGHT, OVERRIDE) = range(len(COLUMNS))
MAX_POINTS_PER_INJECTION = 1000
MAX_WEIGHT_KG = 700
MAX_FIELD = 1000
csv.field_size_limit(1 << 20)


class NotContiguous(Exception):
    """A patient's rows came back after another patient's: streaming must start over."""


class _Row:
    """One parsed history row (the fields that decide how rows merge come first)."""

    __slots__ = ("amount", "day", "drug", "line", "override", "patient_id", "points", "side", "site",
                 "technique", "weight")

    def __init__(self, patient_id: str | None, day: int, site: Site, side: str | None, drug: Drug | None,
                 amount: Amount | None, technique: str | None, points: int | None, weight: Ratio | None,
                 override: str | None, line: int) -> None:
        self.patient_id = patient_id
        self.day = day
        self.site = site
        self.side = side
        self.drug = drug
        self.amount = amount
        self.technique = technique
        self.points = points
        self.weight = weight
        self.override = override
        self.line = line


class RowParser:
    """Turns raw field texts into a :class:`_Row`, caching what repeats (dates, sites, doses)."""

    def __init__(self, rules: Rules, file: str) -> None:
        self.rules = rules
        self.file = file
        self._dates: dict[str, int] = {}
        self._sites: dict[str, tuple[Site, str | None]] = {}
        self._sides: dict[str, str | None] = {}
        self._drugs: dict[str, Drug] = {}
        self._doses: dict[tuple[Drug, str], Amount] = {}
        self._points: dict[str, int] = {}
        self._weights: dict[str, Ratio] = {}

    def error(self, line: int, field: str, message: str, suggestions: list[str] | None = None) -> TpiError:
        return TpiError(message, file=self.file, line=line, field=field, suggestions=suggestions or ())

    def parse(self, fields: list[str], line: int) -> _Row:
        for index, text in enumerate(fields):
            if len(text) > MAX_FIELD:
                raise self.error(line, COLUMNS[index], f"longer than {MAX_FIELD} characters")
            if "\x00" in text:
                raise self.error(line, COLUMNS[index], "contains a NUL byte")
        patient_id = fields[PID].strip() or None

        raw = fields[DATE]
        day = self._dates.get(raw)
        if day is None:
            try:
                day = parse_date(raw).toordinal()
            except ValueError as exc:
                raise self.error(line, "date", str(exc) if raw.strip() else "missing date") from None
            self._dates[raw] = day

        raw = fields[SITE]
        found = self._sites.get(raw)
        if found is None:
            if not raw.strip():
                raise self.error(line, "site", "missing site")
            try:
                found = self.rules.find_site(raw)
            except TpiError as exc:
                raise exc.located(self.file, line) from None
            self._sites[raw] = found
        site, site_side = found

        raw = fields[SIDE]
        if raw in self._sides:
            side = self._sides[raw]
        else:
            try:
                side = parse_side(raw)
            except ValueError as exc:
                raise self.error(line, "side", str(exc)) from None
            self._sides[raw] = side
        if site_side is not None:
            if side is not None and side != site_side:
                raise self.error(line, "side", f"{side} contradicts the site text {quote(fields[SITE].strip())}")
            side = site_side
        if not site.lateral and side is not None:
            raise self.error(line, "side", f"{site.name} has no sides (lateral: false); leave side empty")

        drug: Drug | None = None
        amount: Amount | None = None
        raw = fields[DRUG]
        dose_text = fields[DOSE]
        if raw.strip():
            drug = self._drugs.get(raw)
            if drug is None:
                try:
                    drug = self.rules.find_drug(raw)
                except TpiError as exc:
                    raise exc.located(self.file, line) from None
                self._drugs[raw] = drug
            key = (drug, dose_text)
            amount = self._doses.get(key)
            if amount is None:
                if not dose_text.strip() and drug.drug_class == OTHER:
                    amount = None
                else:
                    try:
                        amount = parse_dose(dose_text, mass_only=drug.drug_class != OTHER)
                    except ValueError as exc:
                        raise self.error(line, "dose", str(exc)) from None
                    self._doses[key] = amount
        elif dose_text.strip():
            raise self.error(line, "dose", f"a dose {quote(dose_text.strip())} without a drug")

        technique = fields[TECHNIQUE].strip().lower() or None
        if technique not in (None, "wet", "dry"):
            raise self.error(line, "technique", f"{quote(fields[TECHNIQUE].strip())} is not wet or dry")

        points: int | None = None
        raw = fields[POINTS].strip()
        if raw:
            points = self._points.get(raw)
            if points is None:
                if not raw.isdigit() or not raw.isascii() or len(raw) > 6:
                    raise self.error(line, "points", f"{quote(raw)} is not a whole number of trigger points")
                points = int(raw)
                if not 1 <= points <= MAX_POINTS_PER_INJECTION:
                    raise self.error(line, "points", f"{points} is not between 1 and {MAX_POINTS_PER_INJECTION}")
                self._points[raw] = points

        weight: Ratio | None = None
        raw = fields[WEIGHT].strip()
        if raw:
            weight = self._weights.get(raw)
            if weight is None:
                weight = parse_weight(raw, lambda message: self.error(line, "weight_kg", message))
                self._weights[raw] = weight

        override = fields[OVERRIDE].strip() or None
        return _Row(patient_id, day, site, side, drug, amount, technique, points, weight, override, line)


def parse_weight(raw: str, fail: Callable[[str], Exception]) -> Ratio:
    try:
        weight = parse_decimal(raw)
    except ValueError as exc:
        raise fail(f"{exc} (weight in kg)") from None
    if weight.num == 0 or float(weight) > MAX_WEIGHT_KG:
        raise fail(f"{raw} kg is not a body weight")
    return weight


class _Builder:
    """An injection being assembled from its rows."""

    __slots__ = ("drugs", "first", "override", "points", "site", "technique", "weight")

    def __init__(self, row: _Row) -> None:
        self.first = row
        self.site = row.site
        self.drugs: dict[Drug, Amount] = {}
        self.points = row.points
        self.weight = row.weight
        self.override = row.override
        self.technique = row.technique

    def add(self, row: _Row, file: str) -> None:
        if row.drug is not None and row.amount is not None:
            known = self.drugs.get(row.drug)
            try:
                self.drugs[row.drug] = row.amount if known is None else known.plus(row.amount)
            except ValueError as exc:
                raise TpiError(str(exc), file=file, line=row.line, field="dose") from None
        elif row.drug is not None:
            self.drugs.setdefault(row.drug, Amount(0, UNITS))  # an `other` drug given without a dose
        for name in ("points", "weight", "override", "technique"):
            value = getattr(row, name)
            if value is None:
                continue
            mine = getattr(self, name)
            if mine is None:
                setattr(self, name, value)
            elif mine != value:
                field = {"weight": "weight_kg"}.get(name, name)
                raise TpiError(f"differs from line {self.first.line} of the same injection "
                               f"(one patient, date, site and side): rows must repeat it or leave it empty",
                               file=file, line=row.line, field=field)

    def build(self, seq: int, file: str) -> Injection:
        row = self.first
        if self.technique == "dry" and self.drugs:
            raise TpiError("technique is dry but the injection has a drug", file=file, line=row.line,
                           field="technique")
        if self.technique == "wet" and not self.drugs:
            raise TpiError("technique is wet but the injection has no drug", file=file, line=row.line,
                           field="technique")
        return Injection(row.patient_id, row.day, self.site, row.side, self.drugs, self.points, self.weight,
                         self.override, row.line, seq)


class _PatientRows:
    """The rows of one patient, merged into injections as they come."""

    __slots__ = ("builders", "order", "patient_id", "weights")

    def __init__(self, patient_id: str | None) -> None:
        self.patient_id = patient_id
        self.builders: dict[tuple[int, str, str | None], _Builder] = {}
        self.weights: list[tuple[int, int, Ratio]] = []
        self.order = 0

    def add(self, row: _Row, file: str) -> None:
        key = (row.day, row.site.name, row.side)
        builder = self.builders.get(key)
        if builder is None:
            builder = _Builder(row)
            self.builders[key] = builder
        builder.add(row, file)
        if row.weight is not None:
            self.weights.append((row.day, self.order, row.weight))
        self.order += 1

    def finish(self, file: str) -> PatientHistory:
        injections = [builder.build(seq, file) for seq, builder in enumerate(self.builders.values())]
        injections.sort(key=lambda injection: injection.day)  # stable: ties keep first appearance
        self.weights.sort(key=lambda weight: weight[:2])
        return PatientHistory(self.patient_id, injections, self.weights)


# --- sources ---------------------------------------------------------------------------------

class Source:
    """A history file or stdin, read as bytes; knows whether it can be read a second time."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else path
        self._data: bytes | None = None

    @property
    def rereadable(self) -> bool:
        return self.path != "-"

    def open(self) -> IO[bytes]:
        if self.path == "-":
            return sys.stdin.buffer
        try:
            return open(self.path, "rb")
        except FileNotFoundError:
            raise TpiError("no such history file", file=self.name) from None
        except IsADirectoryError:
            raise TpiError("is a directory, not a history file", file=self.name) from None
        except OSError as exc:
            raise TpiError(f"cannot read: {exc.strerror}", file=self.name) from None


def _sniff(handle: IO[bytes]) -> tuple[str, bytes]:
    """``json`` or ``csv`` from the first non-blank character; returns the bytes read so far."""
    head = b""
    while True:
        chunk = handle.read(4096)
        head += chunk
        stripped = head.lstrip(b"\xef\xbb\xbf").lstrip()
        if stripped or not chunk:
            break
    kind = "json" if stripped[:1] in (b"[", b"{") else "csv"
    return kind, head


class _Prefixed(io.RawIOBase):
    """A byte stream with some already-read bytes put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def read_patients(path: str, rules: Rules, *, patient: str | None = None,
                  on_restart: Callable[[], None] | None = None) -> Iterator[PatientHistory]:
    """Every patient of a history, one at a time (only ``patient`` if given).

    Raises TpiError on the first bad row: the caller must not act on what it was given before
    (``tpi`` writes nothing until the whole history has been read). If a file's patients turn out
    not to be contiguous, ``on_restart`` is called and every patient is given again from the start,
    this time grouped in memory."""
    source = Source(path)
    handle = source.open()
    try:
        kind, head = _sniff(handle)
        if kind == "json":
            data = head + handle.read()
            yield from _group(_json_rows(data, source.name, rules), source.name, patient)
            return
        rows = _csv_rows(io.BufferedReader(_Prefixed(head, handle), buffer_size=1 << 16), source.name, rules)
        if not source.rereadable:
            yield from _group(rows, source.name, patient)
            return
        try:
            yield from _stream(rows, source.name, patient)
            return
        except NotContiguous:
            pass
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()
    if on_restart is not None:
        on_restart()
    with source.open() as handle:
        rows = _csv_rows(handle, source.name, rules)
        yield from _group(rows, source.name, patient)


def _mixed_anonymous(row: _Row, file: str) -> TpiError:
    if row.patient_id is None:
        message = "empty, but other rows name patients: give every row a patient_id"
    else:
        message = "names a patient, but earlier rows leave patient_id empty: give every row a patient_id"
    return TpiError(message, file=file, line=row.line, field="patient_id")


def _stream(rows: Iterator[_Row], file: str, patient: str | None) -> Iterator[PatientHistory]:
    done: set[str | None] = set()
    current: _PatientRows | None = None
    for row in rows:
        if current is None or row.patient_id != current.patient_id:
            if row.patient_id in done:
                raise NotContiguous
            if current is not None:
                if (row.patient_id is None) != (current.patient_id is None):
                    raise _mixed_anonymous(row, file)
                done.add(current.patient_id)
                if patient is None or current.patient_id == patient:
                    yield current.finish(file)
            current = _PatientRows(row.patient_id)
        current.add(row, file)
    if current is not None and (patient is None or current.patient_id == patient):
        yield current.finish(file)


def _group(rows: Iterator[_Row], file: str, patient: str | None) -> Iterator[PatientHistory]:
    patients: dict[str | None, _PatientRows] = {}
    for row in rows:
        group = patients.get(row.patient_id)
        if group is None:
            if patients and (row.patient_id is None or None in patients):
                raise _mixed_anonymous(row, file)
            group = _PatientRows(row.patient_id)
            patients[row.patient_id] = group
        if patient is None or row.patient_id == patient:
            group.add(row, file)
    for patient_id, group in patients.items():
        if patient is None or patient_id == patient:
            yield group.finish(file)


def _csv_rows(binary: IO[bytes], file: str, rules: Rules) -> Iterator[_Row]:
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    reader = csv.reader(text, strict=True)
    line = 0
    try:
        header = next(reader, None)
        if header is None:
            raise TpiError("empty history: expected a header row (date,site,drug,dose,...)", file=file, line=1)
        columns = _columns(header, file)
        width = len(header)
        parser = RowParser(rules, file)
        parse = parser.parse
        line = reader.line_num
        for raw in reader:
            start = line + 1
            line = reader.line_num
            if len(raw) != width:
                if not raw or (len(raw) == 1 and not raw[0].strip()):
                    continue  # a blank line
                raise TpiError(f"{len(raw)} fields, but the header has {width}", file=file, line=start)
            yield parse([raw[i] if i >= 0 else "" for i in columns], start)
    except UnicodeDecodeError as exc:
        raise TpiError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x})", file=file,
                       line=reader.line_num + 1) from None
    except csv.Error as exc:
        raise TpiError(f"not valid CSV: {exc}", file=file, line=reader.line_num) from None


def _columns(header: list[str], file: str) -> list[int]:
    names = [name.strip().lower() for name in header]
    found: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in COLUMNS:
            if name in found:
                raise TpiError(f"column {name!r} appears twice in the header", file=file, line=1)
            found[name] = index
    for required in REQUIRED_COLUMNS:
        if required not in found:
            extra = [n for n in names if n not in COLUMNS]
            raise TpiError(f"missing column {required!r} (header: {', '.join(names)[:120]})", file=file, line=1,
                           suggestions=did_you_mean(required, extra))
    if "dose" not in found:
        raise TpiError("missing column 'dose' (a drug needs a dose)", file=file, line=1)
    return [found.get(name, -1) for name in COLUMNS]


# --- JSON ------------------------------------------------------------------------------------

Fail = Callable[[tuple[int | str, ...], "str | None", str], TpiError]


def _json_rows(data: bytes, file: str, rules: Rules) -> Iterator[_Row]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TpiError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})", file=file, line=line) from None
    document = _json_load(text, file)
    parser = RowParser(rules, file)
    locate = _Locator(text)

    def fail(path: tuple[int | str, ...], field: str | None, message: str) -> TpiError:
        return TpiError(message, file=file, line=locate.line(path), field=field)

    if isinstance(document, list):
        items: list[tuple[tuple[int | str, ...], Any]] = [((index,), item) for index, item in enumerate(document)]
    else:
        items = [((), document)]
    for path, item in items:
        if not isinstance(item, dict):
            raise fail(path, None, "expected an object (a history row or a patient with injections)")
        if "injections" in item:
            yield from _json_patient(item, path, parser, fail)
        else:
            yield _json_row(item, path, parser, fail)


_PATIENT_KEYS = {"patient_id", "weight_kg", "injections"}
_INJECTION_KEYS = {"date", "site", "side", "technique", "points", "override", "drugs", "weight_kg"}


def _json_patient(item: dict[str, Any], path: tuple[int | str, ...], parser: RowParser,
                  fail: Fail) -> Iterator[_Row]:
    for key in item:
        if key not in _PATIENT_KEYS:
            raise fail(path, key, f"unknown key (a patient has {', '.join(sorted(_PATIENT_KEYS))})")
    injections = item["injections"]
    if not isinstance(injections, list):
        raise fail(path, "injections", "expected a list of injections")
    shared = {"patient_id": item.get("patient_id"), "weight_kg": item.get("weight_kg")}
    for j, injection in enumerate(injections):
        here = (*path, "injections", j)
        if not isinstance(injection, dict):
            raise fail(here, None, "expected an injection object")
        for key in injection:
            if key not in _INJECTION_KEYS:
                raise fail(here, key, f"unknown key (an injection has {', '.join(sorted(_INJECTION_KEYS))})")
        drugs = injection.get("drugs")
        if drugs is None:
            drugs = []
        if not isinstance(drugs, list):
            raise fail(here, "drugs", "expected a list of {name, dose}")
        fields = {**shared, **{k: v for k, v in injection.items() if k != "drugs"}}
        if not drugs:
            yield _json_row(fields, here, parser, fail)
        for k, drug in enumerate(drugs):
            there = (*here, "drugs", k)
            if not isinstance(drug, dict):
                raise fail(there, None, "expected a drug object {name, dose}")
            for key in drug:
                if key not in ("name", "dose"):
                    raise fail(there, key, "unknown key (a drug has name and dose)")
            if drug.get("name") is None:
                raise fail(there, "name", "missing drug name")
            yield _json_row({**fields, "drug": drug.get("name"), "dose": drug.get("dose")}, there, parser, fail)


def _json_row(item: dict[str, Any], path: tuple[int | str, ...], parser: RowParser, fail: Fail) -> _Row:
    from decimal import Decimal

    for key in item:
        if key not in COLUMNS:
            continue  # extra keys are ignored, like extra CSV columns
    fields = []
    for name in COLUMNS:
        value = item.get(name)
        if value is None:
            fields.append("")
        elif isinstance(value, str):
            fields.append(value)
        elif isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise fail(path, name, f"expected a text or a number, got {type(value).__name__}")
        elif name == "dose":
            raise fail(path, name, f"{value} has no unit (e.g. '20 mg', '3 mL @ 1%'): unitless doses are a known "
                                   "cause of medication errors")
        elif isinstance(value, Decimal):
            if not value.is_finite() or abs(value.adjusted()) > 20:
                raise fail(path, name, f"{value} is not a number tpi accepts")
            fields.append(format(value, "f"))
        else:
            fields.append(str(value))
    for name in ("date", "site"):
        if item.get(name) is None:
            raise fail(path, name, f"missing {name!r}")
    try:
        return parser.parse(fields, 0)
    except TpiError as exc:
        exc.line = fail(path, None, "").line
        raise


def _json_load(text: str, file: str) -> Any:
    from decimal import Decimal

    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant,
                          object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise TpiError(f"not valid JSON: {exc.msg}", file=file, line=exc.lineno) from None
    except (ValueError, RecursionError) as exc:
        raise TpiError(f"not valid JSON: {exc}", file=file) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number tpi accepts")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


class _Locator:
    """Finds the line of a JSON value from its path (parsed again, slowly, only for an error)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._tree: Any = None
        self._parsed = False

    def line(self, path: tuple[int | str, ...]) -> int | None:
        if not self._parsed:
            self._tree = _parse_positions(self.text)
            self._parsed = True
        node = self._tree
        position = getattr(node, "position", 0)
        for step in path:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                break
            position = getattr(node, "position", position)
        return self.text.count("\n", 0, position) + 1


class _PosDict(dict[str, Any]):
    position = 0


class _PosList(list[Any]):
    position = 0


def _parse_positions(text: str) -> Any:
    import json.decoder
    import json.scanner

    decoder = json.JSONDecoder()

    json_object: Any = getattr(json.decoder, "JSONObject")  # noqa: B009 - pure-Python parser, untyped
    json_array: Any = getattr(json.decoder, "JSONArray")  # noqa: B009

    def parse_object(s_and_end: tuple[str, int], *args: Any) -> tuple[Any, int]:
        value, end = json_object(s_and_end, *args)
        result = _PosDict(value)
        result.position = s_and_end[1] - 1
        return result, end

    def parse_array(s_and_end: tuple[str, int], scan_once: Any) -> tuple[Any, int]:
        value, end = json_array(s_and_end, scan_once)
        result = _PosList(value)
        result.position = s_and_end[1] - 1
        return result, end

    setattr(decoder, "parse_object", parse_object)  # noqa: B010 - the hooks the pure-Python scanner reads
    setattr(decoder, "parse_array", parse_array)  # noqa: B010
    make_scanner: Any = getattr(json.scanner, "py_make_scanner")  # noqa: B009 - untyped
    setattr(decoder, "scan_once", make_scanner(decoder))  # noqa: B010
    try:
        return decoder.decode(text)
    except (ValueError, RecursionError):
        return None
