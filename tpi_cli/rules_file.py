"""Reading and validating a rules file (``rules.yaml``).

:func:`load_rules` reads a file, validates every field's type and value after loading (YAML 1.1
reads ``no`` as false and ``2024-01-05`` as a date) and returns a :class:`~tpi_cli.rules.Rules`, or
raises :class:`~tpi_cli.errors.RulesError` listing every problem as ``PATH:LINE: message``. The
packaged default is read from a snapshot of its parsed document while that matches the YAML.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from tpi_cli import names
from tpi_cli.dates import Duration, UnknownUnit, check_date_range, parse_date
from tpi_cli.errors import RulesError, TpiError, did_you_mean, quote
from tpi_cli.quantity import Amount, Ratio, parse_decimal, parse_dose
from tpi_cli.rules import (
    ANESTHETIC,
    ANESTHETIC_DOSE,
    BLOCK,
    CATEGORIES,
    CORTICOSTEROID,
    DEFAULT_RULES_PATH,
    DRUG_CLASSES,
    INJECTION,
    KINDS,
    MAX_COUNT,
    MAX_POINTS,
    MAX_REGIONS,
    MAX_STEROID_DOSE,
    MIN_INTERVAL,
    OTHER,
    SCOPES,
    SESSION,
    SESSION_KINDS,
    SNAPSHOT_PATH,
    STEROID,
    WARN,
    Drug,
    LineError,
    Rule,
    Rules,
    Site,
)
from tpi_cli.yamlnodes import REFUSED, YList, YMap, YNumber

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}\Z")
_SNOMED = re.compile(r"[0-9]{6,18}\Z")
MAX_RULES = 10_000

_TOP_KEYS = {"version", "reference_steroid", "defaults", "drugs", "sites", "rules", "description", "source"}
_DRUG_KEYS = {"class", "aliases", "equivalent_mg", "max_mg", "max_mg_per_kg", "source", "description"}
_SITE_KEYS = {"region", "lateral", "aliases", "snomed", "source", "description"}
_COMMON_RULE_KEYS = {"id", "kind", "applies_to", "counts", "scope", "grace", "severity", "profiles", "effective",
                     "until", "source", "description"}
_KIND_KEYS = {
    MIN_INTERVAL: {"interval"},
    MAX_COUNT: {"window", "max", "unit"},
    MAX_STEROID_DOSE: {"window", "max_mg"},
    ANESTHETIC_DOSE: set(),
    MAX_POINTS: {"max"},
    MAX_REGIONS: {"max"},
}
_ALL_KIND_KEYS = {key for keys in _KIND_KEYS.values() for key in keys}
_KIND_REQUIRED = {MIN_INTERVAL: ("interval",), MAX_COUNT: ("max",), MAX_STEROID_DOSE: ("max_mg",),
                  ANESTHETIC_DOSE: (), MAX_POINTS: ("max",), MAX_REGIONS: ("max",)}
_DEFAULT_CATEGORIES = (STEROID, ANESTHETIC)


_REFUSED_MARK = "\x00refused"  # what a message about a REFUSED value holds: it is not given (see _Validator.error)


def _type_name(value: object, text: bool = False) -> str:
    """What a value is, for a message; ``text``: the field takes text, so a YAML 1.1 boolean (``no``)
    gets the hint to quote it."""
    if value is REFUSED:
        return _REFUSED_MARK
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()}; quote it if you meant text)" if text else \
            f"a boolean ({str(value).lower()})"
    if isinstance(value, dt.date):
        return f"a date ({value.isoformat()})"
    if isinstance(value, YNumber | int):
        return f"a number ({value})"
    if value is None:
        return "empty"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a text ({str(value)[:40]!r})"


# A date and a time as YAML 1.1 writes a timestamp (`T`, or spaces and tabs, between them).
_DATE_AND_TIME = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]")
MAX_ERRORS = 100
STOPPED = f"stopped after {MAX_ERRORS} errors: the rest of the file is not checked"
CUT = f"more than {MAX_ERRORS} errors: the first {MAX_ERRORS} are listed"


class _Validator:
    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[TpiError] = []
        self.silent = 0  # errors not given: about what stands in for a refused YAML node
        self.stopped = False  # the check stopped at MAX_ERRORS with part of the file not looked at

    @property
    def problems(self) -> int:
        """Every error found, given or not."""
        return len(self.errors) + self.silent

    @property
    def full(self) -> bool:
        """Whether to stop: MAX_ERRORS found. Asked before each further part of the file, so a True
        answer also notes that part of the file goes unchecked (the report then says so)."""
        if len(self.errors) >= MAX_ERRORS:
            self.stopped = True
        return self.stopped

    def error(self, line: int, message: str, suggestions: list[str] | None = None) -> None:
        if _REFUSED_MARK in message:
            self.silent += 1  # the value is wrong all the same: nothing may be built from it
            return  # a complaint about what stands in for a refused YAML node: that node's error says it
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(TpiError(message, file=self.path, line=line, suggestions=suggestions or ()))
        elif len(self.errors) == MAX_ERRORS:
            self.errors.append(TpiError(STOPPED, file=self.path, line=line))

    @staticmethod
    def line_of(mapping: YMap, key: str) -> int:
        return mapping.key_lines.get(key, mapping.line)

    def item_lines(self, mapping: YMap, key: str, value: YList) -> list[int]:
        """The lines of a list's items under ``key``. A list reached through an alias (``applies_to:
        *cats``) is the anchor's, whose lines come before the key's (an anchor always comes before
        its aliases): its items are then placed on the key's line, the line of the rule that uses it."""
        line = self.line_of(mapping, key)
        return [item_line if item_line >= line else line for item_line in value.item_lines]

    def keys(self, mapping: YMap, allowed: set[str], where: str, said: set[str] | None = None) -> None:
        """An error for each key not allowed, unless it is one of ``said`` (told otherwise)."""
        for key in mapping:
            if key not in allowed and (said is None or key not in said):
                if self.full:
                    return  # (asked only for a key that would be refused: else nothing is skipped)
                self.error(self.line_of(mapping, key), f"{where}: unknown key {quote(key)}",
                           # keys the mapping does not have yet first ("windw": window, not also kind)
                           did_you_mean(key, allowed - set(mapping)) or did_you_mean(key, allowed)[:1])

    def mapping(self, value: Any, line: int, where: str) -> YMap | None:
        if isinstance(value, YMap):
            return value
        self.error(line, f"{where}: expected a mapping, got {_type_name(value)}")
        return None

    def text(self, mapping: YMap, key: str, where: str, required: bool = False) -> str | None:
        if key not in mapping or mapping[key] is None:
            if required:
                self.error(mapping.line, f"{where}: missing {key!r}")
            return None
        value = mapping[key]
        if isinstance(value, bool) or not isinstance(value, str) or isinstance(value, YNumber):
            self.error(self.line_of(mapping, key), f"{where}: {key} must be a text, got {_type_name(value, text=True)}")
            return None
        if not value.strip():
            self.error(self.line_of(mapping, key), f"{where}: {key} is empty")
            return None
        return value.strip()

    def notes(self, mapping: YMap, where: str) -> None:
        """``source`` and ``description``, where given, must be texts."""
        self.text(mapping, "source", where)
        self.text(mapping, "description", where)

    def texts(self, mapping: YMap, key: str, where: str) -> tuple[str, ...]:
        value = mapping.get(key)
        if value is None:
            return ()
        if not isinstance(value, YList):
            self.error(self.line_of(mapping, key), f"{where}: {key} must be a list, got {_type_name(value)}")
            return ()
        result = []
        for item, line in zip(value, self.item_lines(mapping, key, value), strict=True):
            if isinstance(item, bool) or not isinstance(item, str) or isinstance(item, YNumber) or not item.strip():
                got = "an empty text" if isinstance(item, str) and not isinstance(item, YNumber) and not item.strip() \
                    else _type_name(item, text=True)
                self.error(line, f"{where}: {key} items must be texts, got {got}")
            else:
                result.append(item.strip())
        return tuple(result)

    def number(self, mapping: YMap, key: str, where: str, positive: bool = True) -> Ratio | None:
        if key not in mapping or mapping[key] is None:
            return None
        value = mapping[key]
        line = self.line_of(mapping, key)
        if isinstance(value, bool) or not isinstance(value, int | YNumber):
            self.error(line, f"{where}: {key} must be a number, got {_type_name(value)}")
            return None
        text = str(value).strip()
        if _leading_zero(text):
            self.error(line, f"{where}: {key}: {_leading_zero_message(text)}")
            return None
        try:
            number = parse_decimal(text)
        except ValueError as exc:
            self.error(line, f"{where}: {key}: {exc}")
            return None
        if positive and number.num == 0:
            self.error(line, f"{where}: {key} must be more than 0")
            return None
        return number

    def integer(self, mapping: YMap, key: str, where: str) -> int | None:
        if key not in mapping or mapping[key] is None:
            return None
        value = mapping[key]
        text = str(value).strip() if isinstance(value, YNumber) else ""  # a YNumber is its YAML text
        if _leading_zero(text):
            self.error(self.line_of(mapping, key), f"{where}: {key}: {_leading_zero_message(text)}")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or isinstance(value, YNumber):
            self.error(self.line_of(mapping, key), f"{where}: {key} must be a whole number, got {_type_name(value)}")
            return None
        if value < 0:
            self.error(self.line_of(mapping, key), f"{where}: {key} must not be negative")
            return None
        return value

    def duration(self, mapping: YMap, key: str, where: str, positive: bool) -> Duration | None:
        if key not in mapping or mapping[key] is None:
            return None
        value = mapping[key]
        line = self.line_of(mapping, key)
        if isinstance(value, int | YNumber) and not isinstance(value, bool):
            self.error(line, f"{where}: {key} needs a unit, e.g. '{value} days' or '{value} weeks'")
            return None
        if not isinstance(value, str) or isinstance(value, bool):
            self.error(line, f"{where}: {key} must be a duration such as '6 weeks', got {_type_name(value)}")
            return None
        try:
            duration = Duration.parse(value)
        except UnknownUnit as exc:  # the unit meant is a suggestion, as for names
            self.error(line, f"{where}: {key}: {exc.plain}", exc.suggestions)
            return None
        except ValueError as exc:
            self.error(line, f"{where}: {key}: {exc}")
            return None
        if positive and duration.is_zero():
            self.error(line, f"{where}: {key} must be longer than 0 days")
            return None
        return duration

    def day(self, mapping: YMap, key: str, where: str) -> int | None:
        if key not in mapping or mapping[key] is None:
            return None
        value = mapping[key]
        line = self.line_of(mapping, key)
        try:
            if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                return check_date_range(value).toordinal()
            if isinstance(value, str) and not isinstance(value, YNumber):
                if _DATE_AND_TIME.match(value.strip()):
                    self.error(line, f"{where}: {key} must be a date (YYYY-MM-DD), not a date and time "
                                     f"({quote(value.strip())}): a rule is in force for whole days")
                    return None
                return parse_date(value).toordinal()
        except ValueError as exc:
            self.error(line, f"{where}: {key}: {exc}")
            return None
        self.error(line, f"{where}: {key} must be a date (YYYY-MM-DD), got {_type_name(value)}")
        return None

    def categories(self, mapping: YMap, key: str, where: str) -> frozenset[str] | None:
        value = mapping.get(key)
        line = self.line_of(mapping, key)
        if value is None:
            return None
        if isinstance(value, str) and not isinstance(value, YNumber):
            value = YList([value])
            value.item_lines = [line]
        if not isinstance(value, YList) or not value:
            self.error(line, f"{where}: {key} must be 'any' or a list of {', '.join(CATEGORIES)}")
            return None
        result: set[str] = set()
        for item, item_line in zip(value, self.item_lines(mapping, key, value), strict=True):
            if item == "any":
                result.update(CATEGORIES)
            elif item in CATEGORIES:
                result.add(item)
            else:
                what = quote(item) if isinstance(item, str) and not isinstance(item, YNumber) else _type_name(item)
                self.error(item_line, f"{where}: {key}: unknown category {what}",
                           did_you_mean(item, (*CATEGORIES, "any")) if isinstance(item, str) else [])
        return frozenset(result)

    def choice(self, mapping: YMap, key: str, where: str, options: tuple[str, ...]) -> str | None:
        value = mapping.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or isinstance(value, YNumber) or value not in options:
            self.error(self.line_of(mapping, key),
                       f"{where}: {key} must be one of {', '.join(options)}, got {_type_name(value)}",
                       did_you_mean(value, options) if isinstance(value, str) else [])
            return None
        return value


def load_rules(path: str | None = None) -> Rules:
    """Read and validate a rules file (the packaged default when ``path`` is None)."""
    shown = path if path is not None else "rules.yaml (packaged default)"
    real = path if path is not None else DEFAULT_RULES_PATH
    if path is None:
        snapshot = _snapshot()
        if snapshot is not None:
            try:
                return build_rules(snapshot, shown)
            except TpiError:
                pass  # read the YAML itself: it says where the problem is
    from tpi_cli.yamlnodes import MAX_BYTES

    try:
        with open(real, encoding="utf-8-sig") as handle:
            text = handle.read(MAX_BYTES + 1)  # never more: the file may not end (/dev/zero)
    except FileNotFoundError:
        raise TpiError("no such rules file", file=shown, field="--rules") from None
    except UnicodeDecodeError:
        raise _not_utf8(real, shown) from None
    except OSError as exc:
        raise TpiError(f"cannot read: {exc.strerror}", file=shown, field="--rules") from None
    return parse_rules(text, shown)


def _not_utf8(path: str, shown: str) -> TpiError:
    """The line and byte of the first byte that is not UTF-8 (the text reader's own offset is
    within a chunk, not the file)."""
    from tpi_cli.yamlnodes import MAX_BYTES

    with open(path, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        before = data[:start]  # YAML's line breaks: \r\n, \n, or a lone \r
        return TpiError(f"not UTF-8 text (byte 0x{data[start]:02x})", file=shown,
                        line=before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1)
    return TpiError("not UTF-8 text", file=shown)


def parse_rules(text: str, path: str) -> Rules:
    from tpi_cli.yamlnodes import load_noting

    document, refused = load_noting(text, path)
    return build_rules(document, path, refused)


def build_rules(document: Any, path: str, refused: list[TpiError] | None = None) -> Rules:
    """Validate a loaded rules document (located data: see ``tpi_cli.yamlnodes``). ``refused``: what
    the YAML layer refused (a tag, a duplicate key), reported with the rest in line order; no
    complaint is made about the type of what stands in for a refused value (``REFUSED``)."""
    check = _Validator(path)
    rules = _build(document, check)
    if refused or check.errors or rules is None:
        found = sorted([*(refused or ()), *check.errors[:MAX_ERRORS]], key=lambda e: e.line or 0)
        if len(found) > MAX_ERRORS or len(check.errors) > MAX_ERRORS or check.stopped:  # said, not silently cut
            last = found[min(len(found), MAX_ERRORS) - 1].line
            found = [*found[:MAX_ERRORS], TpiError(STOPPED if check.stopped else CUT, file=path, line=last)]
        raise RulesError(found or [TpiError("not a rules file", file=path)])
    return rules


def _build(document: Any, check: _Validator) -> Rules | None:
    top = check.mapping(document, 1, "rules file")
    if top is None:
        return None
    check.keys(top, _TOP_KEYS, "rules file")
    check.notes(top, "rules file")
    version = top.get("version")
    if version is None:
        check.error(top.line, "rules file: missing 'version' (write 'version: 1')")
    elif version != 1 or isinstance(version, bool):
        check.error(check.line_of(top, "version"),
                    f"rules file: unsupported version {version} (this tpi reads version 1)"
                    if isinstance(version, int) and not isinstance(version, bool) else
                    f"rules file: version must be the whole number 1 (write 'version: 1'), got {_type_name(version)}")

    drugs = _build_drugs(top, check)
    sites = _build_sites(top, check)

    reference: Drug | None = None
    ref_name = check.text(top, "reference_steroid", "rules file", required=True)
    if ref_name is not None:
        reference = drugs.get(ref_name)
        if reference is None:
            by_alias = [drug.name for drug in drugs.values() if ref_name.lower() in (a.lower() for a in drug.aliases)]
            check.error(check.line_of(top, "reference_steroid"), f"reference_steroid: unknown drug {quote(ref_name)}"
                        f"{' (an alias: give the name of the drug)' if by_alias else ''}",
                        by_alias or did_you_mean(ref_name, [name for name, drug in drugs.items() if drug.is_steroid]))
        elif not reference.is_steroid:
            check.error(check.line_of(top, "reference_steroid"),
                        f"reference_steroid: {ref_name} is not a corticosteroid")
            reference = None

    lookup = {names.normalize(n): d for d in drugs.values() for n in (d.name, *d.aliases)}
    defaults, default_texts = _build_defaults(top, check, lookup)
    rule_list = _build_rule_list(top, check)
    if check.problems or reference is None:
        return None
    try:
        return Rules(check.path, reference, drugs, sites, rule_list, defaults, default_texts)
    except ValueError as exc:
        check.error(exc.line if isinstance(exc, LineError) else top.line, str(exc))
        return None


def _leading_zero(text: str) -> bool:
    return len(text) > 1 and text[0] == "0" and text[1].isdigit()


def _leading_zero_message(text: str) -> str:
    plain = text.lstrip("0") or "0"
    if plain.startswith("."):
        plain = "0" + plain
    if "." in text:
        return f"{text} has a leading zero; write {plain}"
    return f"{text} has a leading zero, which YAML 1.1 reads as an octal number; write {plain} if that is meant"


def _entries(top: YMap, key: str, what: str, check: _Validator) -> Iterator[tuple[str, int, str, YMap]]:
    """Each named entry of a section (``drugs``, ``sites``): name, line, where, mapping."""
    if key not in top:
        check.error(top.line, f"rules file: missing {key!r} (the {key} the rules may name)")
        return
    section = check.mapping(top.get(key), check.line_of(top, key), key)
    if section is None:
        return
    if not section:
        check.error(section.line, f"{key}: no {key} defined")
    for name, body in section.items():
        if check.full:
            break
        line = section.key_lines[name]
        where = f"{what} {quote(name)}"
        entry = check.mapping(body, line, where)
        if entry is not None:
            yield name, line, where, entry


def _build_drugs(top: YMap, check: _Validator) -> dict[str, Drug]:
    drugs: dict[str, Drug] = {}
    seen: dict[str, str] = {}
    for name, line, where, entry in _entries(top, "drugs", "drug", check):
        check.keys(entry, _DRUG_KEYS, where)
        drug_class = check.choice(entry, "class", where, DRUG_CLASSES)
        if entry.get("class") is None:
            check.error(line, f"{where}: missing 'class' ({', '.join(DRUG_CLASSES)})")
        aliases = check.texts(entry, "aliases", where)
        equivalent = check.number(entry, "equivalent_mg", where)
        max_mg = check.number(entry, "max_mg", where)
        per_kg = check.number(entry, "max_mg_per_kg", where)
        source = check.text(entry, "source", where)
        check.text(entry, "description", where)
        if drug_class == CORTICOSTEROID and entry.get("equivalent_mg") is None:  # (a bad value has its own error)
            check.error(line, f"{where}: a corticosteroid needs equivalent_mg (its potency-equivalent dose)")
        if drug_class != CORTICOSTEROID and "equivalent_mg" in entry:
            check.error(check.line_of(entry, "equivalent_mg"), f"{where}: equivalent_mg is only for corticosteroids")
        if drug_class == ANESTHETIC and entry.get("max_mg") is None and entry.get("max_mg_per_kg") is None:
            check.error(line, f"{where}: a local anesthetic needs max_mg or max_mg_per_kg")
        if drug_class != ANESTHETIC:
            for key in ("max_mg", "max_mg_per_kg"):
                if key in entry:
                    check.error(check.line_of(entry, key), f"{where}: {key} is only for local anesthetics")
        _claim_names(check, seen, name, aliases, line, "drug")
        if drug_class is not None:
            drugs[name] = Drug(name, drug_class, aliases, equivalent, max_mg, per_kg, source, line)
    return drugs


def _claim_names(check: _Validator, seen: dict[str, str], name: str, aliases: tuple[str, ...], line: int,
                 what: str) -> None:
    for label in (name, *aliases):
        key = names.normalize(label)
        if not key:
            check.error(line, f"{what} {quote(name)}: name {quote(label)} has no letters or digits")
            continue
        if ";" in label or "=" in label:  # `--drug NAME=DOSE` splits at '='; CSV lists join names with '; '
            check.error(line, f"{what} {quote(name)}: name {quote(label)} holds ';' or '=', which tpi uses to "
                              "separate names (--drug NAME=DOSE, lists in CSV output)")
            continue
        if any(word in names.SIDE_WORDS for word in key.split()):
            check.error(line, f"{what} {quote(name)}: name {quote(label)} contains a side word")
            continue
        owner = seen.get(key)
        if owner is not None and owner != name:
            check.error(line, f"{what} {quote(name)}: name {quote(label)} is already used by {quote(owner)}")
        seen[key] = name


def _build_sites(top: YMap, check: _Validator) -> dict[str, Site]:
    sites: dict[str, Site] = {}
    seen: dict[str, str] = {}
    for name, line, where, entry in _entries(top, "sites", "site", check):
        check.keys(entry, _SITE_KEYS, where)
        region = check.text(entry, "region", where, required=True)
        lateral = entry.get("lateral", True)
        if not isinstance(lateral, bool):
            check.error(check.line_of(entry, "lateral"),
                        f"{where}: lateral must be true or false, got {_type_name(lateral)}")
            lateral = True
        aliases = check.texts(entry, "aliases", where)
        snomed_value = entry.get("snomed")
        snomed: str | None = None
        if snomed_value is not None:
            snomed = str(snomed_value) if isinstance(snomed_value, str | int) and not isinstance(snomed_value, bool) \
                else ""
            if not _SNOMED.match(snomed):
                check.error(check.line_of(entry, "snomed"), f"{where}: snomed must be a SNOMED CT code of 6 to 18 "
                                                            f"digits, got {_type_name(snomed_value)}")
                snomed = None
        source = check.text(entry, "source", where)
        check.text(entry, "description", where)
        _claim_names(check, seen, name, aliases, line, "site")
        if region is not None:
            sites[name] = Site(name, region, lateral, aliases, snomed, source, line)
    return sites


def _build_defaults(top: YMap, check: _Validator, lookup: dict[str, Drug]
                    ) -> tuple[dict[str, list[tuple[Drug, Amount]]], dict[str, str]]:
    defaults: dict[str, list[tuple[Drug, Amount]]] = {}
    texts: dict[str, str] = {}
    if top.get("defaults") is None:
        return defaults, texts
    section = check.mapping(top["defaults"], check.line_of(top, "defaults"), "defaults")
    if section is None:
        return defaults, texts
    check.keys(section, {*_DEFAULT_CATEGORIES, "source", "description"}, "defaults")
    check.notes(section, "defaults")
    for category in _DEFAULT_CATEGORIES:
        if category not in section:
            continue
        line = section.key_lines[category]
        value = section[category]
        items = value if isinstance(value, YList) else [value]
        lines = check.item_lines(section, category, value) if isinstance(value, YList) else [line]
        if not items:  # `next` would forecast a drugless injection as the category's
            check.error(line, f"defaults.{category}: an empty list (give a drug and dose, or leave the key out)")
            continue
        proposal: list[tuple[Drug, Amount]] = []
        for item, item_line in zip(items, lines, strict=True):
            where = f"defaults.{category}"
            entry = check.mapping(item, item_line, where)
            if entry is None:
                continue
            check.keys(entry, {"drug", "dose", "source", "description"}, where)
            check.notes(entry, where)
            drug_name = check.text(entry, "drug", where, required=True)
            dose = check.text(entry, "dose", where, required=True)
            if drug_name is None or dose is None:
                continue
            drug = lookup.get(names.normalize(drug_name))
            if drug is None:
                check.error(entry.line, f"{where}: unknown drug {quote(drug_name)}", did_you_mean(drug_name, lookup))
                continue
            try:
                amount = parse_dose(dose, mass_only=drug.drug_class != OTHER)
            except ValueError as exc:
                check.error(check.line_of(entry, "dose"), f"{where}: dose: {exc}")
                continue
            proposal.append((drug, amount))
        classes = {drug.drug_class for drug, _ in proposal}
        if category == STEROID and proposal and CORTICOSTEROID not in classes:
            check.error(line, "defaults.steroid must include a corticosteroid")
        if category == ANESTHETIC and proposal and (CORTICOSTEROID in classes or ANESTHETIC not in classes):
            check.error(line, "defaults.anesthetic must include a local anesthetic and no corticosteroid")
        defaults[category] = proposal
        texts[category] = " + ".join(f"{drug.name} {amount.text()}" for drug, amount in proposal)
    return defaults, texts


def _build_rule_list(top: YMap, check: _Validator) -> list[Rule]:
    result: list[Rule] = []
    value = top.get("rules")
    if value is None:
        check.error(top.line, "rules file: missing 'rules' (a list; it may be empty: 'rules: []')")
        return result
    if not isinstance(value, YList):
        check.error(check.line_of(top, "rules"), f"rules: expected a list, got {_type_name(value)}")
        return result
    if len(value) > MAX_RULES:
        check.error(value.line, f"rules: more than {MAX_RULES} rules")
        return result
    # id, in lower case: (position, line, id as written) of its first rule. Ids that differ only in case are one
    # id: a reader of a report, or a script matching on it without case, could not tell the two rules apart.
    ids: dict[str, tuple[int, int, str]] = {}
    given: set[int] = set()  # the rule mappings seen: one seen again came through an alias (`- *r`)
    for position, (item, line) in enumerate(zip(value, value.item_lines, strict=True)):
        if check.full:
            break
        # The id is looked at first, so that a duplicate is reported even for a rule with other errors.
        raw_id = item.get("id") if isinstance(item, YMap) else None
        key = raw_id.strip() if isinstance(raw_id, str) and not isinstance(raw_id, YNumber) else None
        here = item.line if isinstance(item, YMap) else line
        again = id(item) in given
        given.add(id(item))
        if key and again:  # `- *anchor`: one rule, given again
            check.error(here, f"rule {quote(key)}: given again through an alias, as rule {position + 1} of the list "
                              "(a rule is given once)")
        elif key and key.lower() in ids:
            _, first_line, first = ids[key.lower()]
            case = "" if first == key else f", as {quote(first)} apart from case"
            check.error(here, f"rule {quote(key)}: duplicate id (first on line {first_line}{case})")
        elif key:
            ids[key.lower()] = (position, here, key)
        rule = _build_rule(item, line, check)
        if rule is not None and ids.get(rule.id.lower(), (-1, 0, ""))[0] == position:
            result.append(rule)
    return result


def _build_rule(item: Any, line: int, check: _Validator) -> Rule | None:
    entry = check.mapping(item, line, "rule")
    if entry is None:
        return None
    before = check.problems
    rule_id = check.text(entry, "id", "rule", required=True)
    if rule_id is not None and not _ID.match(rule_id):
        check.error(check.line_of(entry, "id"),
                    f"rule id {rule_id[:40]!r}{'...' if len(rule_id) > 40 else ''} must be a slug of at most 80 "
                    "characters (letters, digits, '-', '.', '_'; a letter or digit first)")
    where = f"rule {quote(rule_id)}" if rule_id else "rule"
    kind = entry.get("kind")
    if kind is None:
        check.error(entry.line, f"{where}: missing 'kind' ({', '.join(KINDS)})")
        return None
    if not isinstance(kind, str) or kind not in KINDS:
        check.error(check.line_of(entry, "kind"),
                    f"{where}: unknown kind {quote(kind)}" if isinstance(kind, str) else
                    f"{where}: kind must be one of {', '.join(KINDS)}, got {_type_name(kind)}",
                    did_you_mean(kind, KINDS) if isinstance(kind, str) else [])
        return None
    allowed = _COMMON_RULE_KEYS | _KIND_KEYS[kind]
    for key in entry:  # a key of another kind: say what this kind takes, not a did-you-mean of a lookalike
        if key not in allowed and key in _ALL_KIND_KEYS and not check.full:
            takes = (f"which takes {', '.join(sorted(_KIND_KEYS[kind]))}" if _KIND_KEYS[kind] else  # anesthetic-dose:
                     "whose limits are the drugs' own (max_mg, max_mg_per_kg under drugs)")
            check.error(check.line_of(entry, key), f"{where}: {key!r} does not apply to kind {kind}, {takes}")
    check.keys(entry, allowed, f"{where} ({kind})", said=_ALL_KIND_KEYS)
    for key in _KIND_REQUIRED[kind]:
        if entry.get(key) is None:
            check.error(entry.line, f"{where}: {'an' if kind[0] in 'aeiou' else 'a'} {kind} rule needs {key!r}")
    applies_to = check.categories(entry, "applies_to", where)
    if entry.get("applies_to") is None:
        check.error(entry.line, f"{where}: missing 'applies_to' (categories, or 'any')")
    counts = check.categories(entry, "counts", where)
    scope = check.choice(entry, "scope", where, SCOPES)
    if kind in SESSION_KINDS:
        if scope not in (None, SESSION) or (scope is None and "scope" in entry):
            check.error(check.line_of(entry, "scope"),
                        f"{where}: {kind} rules work per session (scope: session)")
        scope = SESSION
    elif entry.get("scope") is None:
        check.error(entry.line, f"{where}: missing 'scope' ({', '.join(SCOPES)})")
    unit = check.choice(entry, "unit", where, (INJECTION, SESSION))
    severity = check.choice(entry, "severity", where, (BLOCK, WARN))
    profiles = check.texts(entry, "profiles", where)
    for profile in profiles:
        if not _ID.match(profile):
            check.error(check.line_of(entry, "profiles"),
                        f"{where}: profile {quote(profile)} must be one word of at most 80 characters (letters, "
                        "digits, '-', '.', '_'; a letter or digit first)")
    if "profiles" in entry and isinstance(entry["profiles"], YList) and not entry["profiles"]:
        check.error(check.line_of(entry, "profiles"),
                    f"{where}: profiles is empty (leave it out to make the rule always active)")
    effective = check.day(entry, "effective", where)
    until = check.day(entry, "until", where)
    if effective is not None and until is not None and until < effective:
        check.error(check.line_of(entry, "until"), f"{where}: until is before effective")
    values: dict[str, Any] = {
        "id": rule_id, "kind": kind, "applies_to": applies_to,
        "counts": counts if counts is not None else applies_to,
        "scope": scope, "unit": unit, "severity": severity, "profiles": frozenset(profiles),
        "effective": effective, "until": until, "line": entry.line,
        "source": check.text(entry, "source", where), "description": check.text(entry, "description", where),
        "interval": check.duration(entry, "interval", where, positive=True),
        "window": check.duration(entry, "window", where, positive=True),
        "grace": check.duration(entry, "grace", where, positive=False),
        "max": check.integer(entry, "max", where),
        "max_mg": check.number(entry, "max_mg", where, positive=False),
    }
    grace, base = values["grace"], values["interval"] or values["window"]
    if grace is not None and not grace.is_zero():
        if base is None:
            check.error(check.line_of(entry, "grace"), f"{where}: grace needs an interval or a window to shorten")
        elif not base.minus(grace).always_positive():  # the rule's own arithmetic: p + (base - grace)
            check.error(check.line_of(entry, "grace"),
                        f"{where}: grace {grace} is not shorter than {'interval' if values['interval'] else 'window'} "
                        f"{base} from every start date: from some dates the rule would only ever warn")
    if check.problems > before or rule_id is None or applies_to is None or scope is None:
        return None
    return Rule(**values)


# --- the snapshot of the packaged default rules -------------------------------------------------

def _snapshot() -> Any:
    """The default rules document from the snapshot, or None if it is missing or stale."""
    import binascii
    import json

    from tpi_cli.yamlnodes import from_plain

    try:
        with open(DEFAULT_RULES_PATH, "rb") as handle:
            crc = binascii.crc32(handle.read())
        with open(SNAPSHOT_PATH, encoding="utf-8") as handle:
            snapshot = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    if not isinstance(snapshot, dict) or snapshot.get("rules_yaml_crc32") != crc:
        return None
    return from_plain(snapshot.get("document"))


def write_snapshot() -> str:
    """Rewrite the snapshot from the packaged rules.yaml (which must be valid)."""
    import binascii
    import json

    from tpi_cli.yamlnodes import load, to_plain

    with open(DEFAULT_RULES_PATH, "rb") as handle:
        data = handle.read()
    document = load(data.decode("utf-8-sig"), DEFAULT_RULES_PATH)
    build_rules(document, DEFAULT_RULES_PATH)
    snapshot = {"note": "generated from rules.yaml by `python -m tpi_cli.rules_file`; do not edit",
                "rules_yaml_crc32": binascii.crc32(data), "document": to_plain(document)}
    with open(SNAPSHOT_PATH, "w", encoding="utf-8") as handle:
        json.dump(snapshot, handle, ensure_ascii=False, indent=1)
        handle.write("\n")
    return SNAPSHOT_PATH


if __name__ == "__main__":
    print(write_snapshot())
