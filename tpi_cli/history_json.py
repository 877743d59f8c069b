"""Reading a JSON history: a list of rows, a patient ``{"patient_id", "weight_kg", "injections"}``,
or a list of those (SPEC.md "History input").

The text is read whole (tpi refuses one over 256 MiB); a list is parsed an item at a time
(:func:`_json_items`), with exact numbers (``Decimal``), no duplicate keys, no ``NaN``/``Infinity``
and no huge integers. Each row becomes the texts of a CSV
row and is parsed by the CSV reader's :class:`~tpi_cli.history_rows.RowParser`, so both formats accept
and refuse the same values; a JSON number is written out as its text first, except a ``patient_id``
with a decimal point or an exponent, which is refused (``12.0`` is not the patient ``12``). Errors
name the line of the field at fault (found by re-parsing the text only when an error needs it:
:mod:`tpi_cli.jsonpos`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from tpi_cli.errors import EARLIER_LINE, TpiError, quote
from tpi_cli.history import PatientOnly
from tpi_cli.history_rows import COLUMNS, Row, RowParser, lookalike_column, lookalike_error
from tpi_cli.jsonpos import Locator
from tpi_cli.rules import Rules

Fail = Callable[[tuple[int | str, ...], "str | None", str], TpiError]


class JsonRows:
    """The rows of a JSON history. A row's ``line`` is a negative id until an error needs the
    real line (finding it re-parses the text, slowly, once)."""

    def __init__(self, data: bytes, file: str, rules: Rules) -> None:
        try:
            self.text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise TpiError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})", file=file, line=line) from None
        self.file = file
        self.rules = rules
        self.paths: list[tuple[int | str, ...]] = []
        self.locate = Locator(self.text)

    def relocate(self, exc: TpiError) -> TpiError:
        if exc.line is not None and exc.line < 0:
            exc.line = self.locate.line(self.paths[-exc.line - 1], exc.field)
        if EARLIER_LINE in exc.message:
            earlier = "" if exc.earlier is None else \
                f", which starts at line {self.locate.line(self.paths[-exc.earlier - 1], None)}"
            exc.message = exc.message.replace(EARLIER_LINE, earlier)
        return exc

    def __iter__(self) -> Iterator[Row | PatientOnly]:
        parser = RowParser(self.rules, self.file)

        def fail(path: tuple[int | str, ...], field: str | None, message: str) -> TpiError:
            return TpiError(message, file=self.file, line=self.locate.line(path, field), field=field)

        def row(item: dict[str, Any], path: tuple[int | str, ...]) -> Row:
            self.paths.append(path)
            return _json_row(item, path, parser, fail, -len(self.paths))

        def empty(item: dict[str, Any], path: tuple[int | str, ...]) -> PatientOnly:
            self.paths.append(path)
            return _json_patient_only(item, path, parser, fail, -len(self.paths))

        items = _json_items(self.text, self.file)
        # Without a patient_id, two patient objects, or a patient object and rows, may be two people or
        # one in two parts: tpi cannot tell, and would merge them. (Rows alone are one patient, as in CSV.)
        unnamed_object = unnamed_row = False
        for path, item in items:
            if not isinstance(item, dict):
                raise fail(path, None, "expected an object (a history row or a patient with injections)")
            if "injections" in item:
                if _unnamed(item.get("patient_id")):
                    if unnamed_object or unnamed_row:
                        raise fail(path, "patient_id", _UNNAMED.format(
                            before="another patient object" if unnamed_object else "a row"))
                    unnamed_object = True
                yield from _json_patient(item, path, row, empty, fail)
            else:
                fields = _row_keys(item, path, fail)
                if _unnamed(fields.get("patient_id")):
                    if unnamed_object:
                        raise fail(path, "patient_id", _UNNAMED.format(before="a patient object"))
                    unnamed_row = True
                yield row(fields, path)


_UNNAMED = ("missing or empty, and {before} before this one has none either: give each its patient_id (the same one "
            "for one patient)")


def _unnamed(patient_id: Any) -> bool:
    return patient_id is None or (isinstance(patient_id, str) and not patient_id.strip())


_COLUMN_SET = frozenset(COLUMNS)


def _row_keys(item: dict[str, Any], path: tuple[int | str, ...], fail: Fail) -> dict[str, Any]:
    """A history row's keys matched as CSV column names are (case and surrounding spaces ignored;
    other keys ignored, like extra columns). Refused: two keys for one column, and a row without a
    ``drug`` key that has keys tpi does not know (unless it says ``technique: dry``): one of them
    may be the drug misnamed, and the row would otherwise read as dry needling (CSV refuses a
    header without a drug column)."""
    if "drug" in item and _COLUMN_SET.issuperset(item):
        return item
    fields: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in item.items():
        name = key.strip().lower()
        if name not in _COLUMN_SET:
            unknown.append(key)
        elif name in fields:
            raise fail(path, name, "given twice (keys are matched like CSV column names: case and spaces ignored)")
        else:
            fields[name] = value
    dry = str(fields.get("technique") or "").strip().lower() == "dry"
    lookalike = lookalike_column(unknown, fields, more_drugs="drug" in fields or dry)  # else: "drug: missing"
    if lookalike is not None:
        raise fail(path, lookalike[0], lookalike_error(*lookalike, what="key"))
    if "drug" not in fields and unknown and not dry:
        names = ", ".join(quote(key) for key in unknown[:3]) + (", ..." if len(unknown) > 3 else "")
        raise fail(path, "drug", f"missing, and the row has keys tpi does not know ({names}): a drug under another "
                                 'name would read as dry needling (give "drug": "" for none)')
    return fields


_PATIENT_KEYS = {"patient_id", "weight_kg", "injections"}
_INJECTION_KEYS = {"date", "site", "side", "technique", "points", "override", "drugs", "weight_kg"}


def _json_patient(item: dict[str, Any], path: tuple[int | str, ...],
                  row: Callable[[dict[str, Any], tuple[int | str, ...]], Row],
                  empty: Callable[[dict[str, Any], tuple[int | str, ...]], PatientOnly],
                  fail: Fail) -> Iterator[Row | PatientOnly]:
    for key in item:
        if key not in _PATIENT_KEYS:
            raise fail(path, key, f"unknown key (a patient has {', '.join(sorted(_PATIENT_KEYS))})")
    injections = item["injections"]
    if not isinstance(injections, list):
        raise fail(path, "injections", "expected a list of injections")
    shared = {"patient_id": item.get("patient_id"), "weight_kg": item.get("weight_kg")}
    entry = empty(shared, path)  # checked like a row's, and kept: a patient even with no injections
    yield entry

    def inheriting(made: Row) -> Row:
        made.entry_weight = entry.weight  # recorded on the injection's date, beside its own weight_kg
        return made

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
        fields = {"patient_id": shared["patient_id"], **{k: v for k, v in injection.items() if k != "drugs"}}
        if not drugs:
            yield inheriting(row(fields, here))
        for k, drug in enumerate(drugs):
            there = (*here, "drugs", k)
            if not isinstance(drug, dict):
                raise fail(there, None, "expected a drug object {name, dose}")
            for key in drug:
                if key not in ("name", "dose"):
                    raise fail(there, key, "unknown key (a drug has name and dose)")
            name = drug.get("name")
            if name is None or (isinstance(name, str) and not name.strip()):  # else it reads as dry needling
                raise fail(there, "name", "missing drug name (an injection without drugs is dry needling: "
                                          "leave the drug out)")
            yield inheriting(row({**fields, "drug": drug.get("name"), "dose": drug.get("dose")}, there))


def _json_patient_only(item: dict[str, Any], path: tuple[int | str, ...], parser: RowParser, fail: Fail,
                       ref: int) -> PatientOnly:
    fields = _json_fields(item, path, fail)
    try:
        patient_id = parser.patient(fields[0], ref)
        weight = parser.weight(fields[COLUMNS.index("weight_kg")], ref)
    except TpiError as exc:
        exc.line = fail(path, exc.field, "").line
        raise
    return PatientOnly(patient_id, ref, weight)


def _json_row(item: dict[str, Any], path: tuple[int | str, ...], parser: RowParser, fail: Fail, ref: int) -> Row:
    """One row from a JSON object (extra keys are ignored, like extra CSV columns)."""
    fields = _json_fields(item, path, fail)
    for name in ("date", "site"):
        if item.get(name) is None:
            raise fail(path, name, f"missing {name!r}")
    try:
        return parser.parse(fields, ref)
    except TpiError as exc:
        exc.line = fail(path, exc.field, "").line
        raise


def _json_fields(item: dict[str, Any], path: tuple[int | str, ...], fail: Fail) -> list[str]:
    """A JSON row's values as the texts of a CSV row, in COLUMNS order (numbers written out)."""
    from decimal import Decimal

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
                raise fail(path, name, f"{quote(str(value))} is not a number tpi accepts")  # str: 1E+999999999 short
            if name == "patient_id":  # 12.0 and 1.2e1 would be two patients, and neither the same as 12
                raise fail(path, name, "a number with a decimal point or an exponent (12.0, 1.2e1): give the "
                                       "patient's ID as a text, as the record writes it")
            fields.append(format(value, "f"))
        else:
            fields.append(str(value))
    return fields


_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's (json.decoder.WHITESPACE)


def _json_items(text: str, file: str) -> Iterator[tuple[tuple[int | str, ...], Any]]:
    """The document's items with their paths: a list's one at a time (each parsed as it is reached
    and let go once read: the document built whole took several times the text's memory), anything
    else as one item. Any error is the one ``json.loads`` of the whole text gives, found by reading
    it whole: the caller may have used the items before it, but acts on nothing until the end."""
    from decimal import Decimal

    decoder = json.JSONDecoder(parse_float=Decimal, parse_int=_json_int, parse_constant=_refuse_constant,
                               object_pairs_hook=_no_duplicates)
    skip = _WHITESPACE.match
    at = skip(text, 0).end()  # type: ignore[union-attr]  # (matches every text)
    if not text.startswith("[", at):
        yield (), _json_load(text, file)
        return
    at = skip(text, at + 1).end()  # type: ignore[union-attr]
    index = 0
    try:
        if not text.startswith("]", at):
            while True:
                item, at = decoder.raw_decode(text, at)
                yield (index,), item
                del item
                at = skip(text, at).end()  # type: ignore[union-attr]
                if text.startswith(",", at):
                    at = skip(text, at + 1).end()  # type: ignore[union-attr]
                    index += 1
                    continue
                if not text.startswith("]", at):
                    raise ValueError("not the end of the list")
                break
        if skip(text, at + 1).end() != len(text):  # type: ignore[union-attr]
            raise ValueError("text after the list")
    except (ValueError, RecursionError):  # JSONDecodeError, _LongNumber, a duplicate key, NaN
        _json_load(text, file)  # raises json.loads' own error, named as before
        raise TpiError("not valid JSON", file=file) from None  # (not reached: json.loads failed too)


def _json_load(text: str, file: str) -> Any:
    from decimal import Decimal

    try:
        return json.loads(text, parse_float=Decimal, parse_int=_json_int, parse_constant=_refuse_constant,
                          object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise TpiError(f"not valid JSON: {exc.msg}", file=file, line=exc.lineno) from None
    except RecursionError:
        deep = _deep_line(text)
        raise TpiError(f"not valid JSON: nested too deeply for the parser (the nesting passes {MAX_JSON_DEPTH} levels "
                       "here)" if deep else "not valid JSON: nested too deeply", file=file, line=deep) from None
    except _LongNumber as exc:
        found = next((match for match in _LONG_NUMBER.finditer(text) if match.group(1)), None)
        raise TpiError(f"a number of {exc} digits (tpi reads at most {MAX_JSON_DIGITS})", file=file,
                       line=text.count("\n", 0, found.start(1)) + 1 if found else None) from None
    except ValueError as exc:
        raise TpiError(f"not valid JSON: {exc}", file=file, line=_json_error_line(text)) from None


MAX_JSON_DEPTH = 100  # a history nests 6 levels (a list of patients, injections, drugs); Python's parser ~1,000
_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')  # strings skipped


def _deep_line(text: str) -> int | None:
    """The line where the deepest nesting of the text passes MAX_JSON_DEPTH levels (only after the
    parser gave up: a value nested less deeply earlier in the file, which it read, is not named)."""
    depth = deepest = 0
    start = found = -1
    for match in _BRACKET.finditer(text):
        bracket = match.group()
        if bracket in "[{":
            depth += 1
            if depth == MAX_JSON_DEPTH + 1:
                start = match.start()
            if depth > deepest:
                deepest = depth
                if depth > MAX_JSON_DEPTH:
                    found = start
        elif bracket in "]}":
            depth -= 1
    return text.count("\n", 0, found) + 1 if found >= 0 else None


MAX_JSON_DIGITS = 40
_LONG_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|(-?[0-9]{' + str(MAX_JSON_DIGITS + 1) + ',})')  # strings skipped


class _LongNumber(ValueError):
    pass


def _json_int(text: str) -> int:
    """A JSON integer; one too long to be any value tpi reads is refused before Python converts it
    (its own limit, 4,300 digits, gives a message about sys.set_int_max_str_digits)."""
    digits = len(text) - text.startswith("-")
    if digits > MAX_JSON_DIGITS:
        raise _LongNumber(digits)
    return _MINUS_ZERO if text == "-0" else int(text)


class _MinusZero(int):
    """JSON's ``-0``, written out as CSV would read it: a patient_id ``-0`` is not the patient ``0``."""

    def __str__(self) -> str:
        return "-0"


_MINUS_ZERO = _MinusZero(0)


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')


def _json_error_line(text: str) -> int | None:
    """The line of a duplicate key or a NaN/Infinity, which json.loads reports without one."""
    for match in _JSON_TOKEN.finditer(text):
        if match.group(1) is not None:
            return text.count("\n", 0, match.start()) + 1
    position = _duplicate_position(text)
    return None if position is None else text.count("\n", 0, position) + 1


def _duplicate_position(text: str) -> int | None:
    import json.decoder
    import json.scanner

    decoder = json.JSONDecoder(object_pairs_hook=_no_duplicates)
    json_object: Any = getattr(json.decoder, "JSONObject")  # noqa: B009 - pure-Python parser, untyped
    found: list[int] = []

    def parse_object(s_and_end: tuple[str, int], *args: Any) -> tuple[Any, int]:
        try:
            return json_object(s_and_end, *args)  # type: ignore[no-any-return]
        except ValueError as exc:
            if not found and "duplicate key" in str(exc):
                key = str(exc).split("duplicate key ", 1)[1]
                quoted = json.dumps(key[1:-1] if key[:1] in "'\"" else key)
                first = s_and_end[0].find(quoted, s_and_end[1])
                second = s_and_end[0].find(quoted, first + 1) if first >= 0 else -1
                found.append(second if second >= 0 else s_and_end[1] - 1)
            raise

    setattr(decoder, "parse_object", parse_object)  # noqa: B010
    make_scanner: Any = getattr(json.scanner, "py_make_scanner")  # noqa: B009
    setattr(decoder, "scan_once", make_scanner(decoder))  # noqa: B010
    with contextlib.suppress(ValueError, RecursionError):
        decoder.decode(text)
    return found[0] if found else None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number tpi accepts")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result
