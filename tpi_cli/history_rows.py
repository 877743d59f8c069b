"""One history row: the header's columns and each field of a row, read and checked.

:class:`RowParser` turns a row's field texts into values (patient ID, day, site and side, drug and
dose, technique, points, weight, override), caching what repeats; the first bad field raises
``FILE:LINE: field: message``. :func:`header_columns` finds tpi's columns in a CSV header and refuses
a header that names one of them in other words (``MRN``, ``weight (lb)``, ``drug2``), which would
otherwise be ignored and lose what it holds. The CSV reader (:mod:`tpi_cli.history`) and the JSON
reader (:mod:`tpi_cli.history_json`) share both.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Container, Iterable

from tpi_cli.dates import parse_date
from tpi_cli.errors import TpiError, did_you_mean, quote
from tpi_cli.model import drug_category
from tpi_cli.names import parse_side
from tpi_cli.quantity import UNITS, Amount, Ratio, parse_decimal, parse_dose
from tpi_cli.rules import DRY, OTHER, Drug, Rules, Site

COLUMNS = ("patient_id", "date", "site", "side", "drug", "dose", "technique", "points", "weight_kg", "override")
REQUIRED_COLUMNS = ("date", "site", "drug")
(PID, DATE, SITE, SIDE, DRUG, DOSE, TECHNIQUE, POINTS, WEIGHT, OVERRIDE) = range(len(COLUMNS))
MAX_POINTS_PER_INJECTION = 1000
MAX_WEIGHT_KG = 700
MAX_FIELD = 1000
_MAX_CACHED_OVERRIDES = 4096
# Override values that say there is none, or only that there is one (lower case, letters and
# digits only: "N/A" is "na"); and any number of zeros.
_NOT_A_REASON = frozenset({"no", "not", "none", "n", "na", "nil", "null", "false", "off", "nan", "nat", "blank",
                           "empty", "unknown", "undefined", "nothing", "never", "zero"})
# Words that say nothing of their own beside those ("not needed", "no override", "none required").
_FILLER_WORDS = frozenset({"needed", "required", "necessary", "applicable", "given", "indicated", "override",
                           "overrides", "overridden", "reason", "reasons", "recorded", "any"})
_A_FLAG = frozenset({"yes", "y", "x", "true", "on", "ok", "okay"})
_WORD = re.compile(r"[^\W_]+")
# Characters that show as nothing though Unicode does not file them as format characters: the
# combining grapheme joiner, Hangul fillers, the blank Braille pattern (and, by range, variation
# selectors).
_BLANK_LETTERS = frozenset("\u034f\u115f\u1160\u3164\uffa0\u2800\u180e")
# The explicit directional embeddings, overrides and isolates (not the marks, which right-to-left
# text needs): they change the order in which the text after them is shown.
_DIRECTION_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Direction marks and controls, stripped from the ends of an ID like spaces.
BIDI_MARKS = "\u200e\u200f\u061c" + _DIRECTION_CONTROLS


class Row:
    """One parsed history row (the fields that decide how rows merge come first)."""

    __slots__ = ("amount", "day", "drug", "entry_weight", "line", "override", "patient_id", "points", "side", "site",
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
        # The weight_kg of the JSON patient entry the row is an injection of (see
        # tpi_cli.history.settle_weights): a record of its own, beside the row's weight.
        self.entry_weight: Ratio | None = None


class RowParser:
    """Turns raw field texts into parsed values, caching what repeats: dates, the shape of a row
    (site, side, drug, dose, technique, points) and weights. A cached text was valid."""

    def __init__(self, rules: Rules, file: str) -> None:
        self.rules = rules
        self.file = file
        self.dates: dict[str, int] = {}
        self.shapes: dict[tuple[str, str, str, str, str, str], Shape] = {}
        self.weights: dict[str, Ratio | None] = {"": None}
        self._sites: dict[str, tuple[Site, str | None]] = {}
        self._drugs: dict[str, Drug] = {}
        self._doses: dict[tuple[Drug, str], Amount] = {}
        self._overrides: dict[str, str] = {}  # valid override texts as read (a reason often repeats)

    def error(self, line: int, field: str, message: str, suggestions: list[str] | None = None) -> TpiError:
        return TpiError(message, file=self.file, line=line, field=field, suggestions=suggestions or ())

    def _plain(self, raw: str, line: int, field: str) -> None:
        if len(raw) > MAX_FIELD:
            raise self.error(line, field, f"longer than {MAX_FIELD} characters")
        if "\x00" in raw:
            raise self.error(line, field, "contains a NUL byte")
        if not raw.isascii():
            try:
                raw.encode("utf-8")
            except UnicodeEncodeError as exc:  # a JSON escape such as \ud800 (UTF-8 input cannot hold one)
                raise self.error(line, field, f"contains a lone surrogate ({exc.object[exc.start]!a}), not text") \
                    from None

    def text(self, raw: str, line: int, field: str) -> str | None:
        """A free-text field: stripped, None when empty."""
        self._plain(raw, line, field)
        return raw.strip() or None

    def patient(self, raw: str, line: int) -> str | None:
        """A patient_id: stripped (of spaces and direction marks), None when empty. Refused: a
        character that does not show on its own (a control or format character, a space other than
        the ASCII one, a variation selector, a blank letter; a joiner between two non-ASCII letters
        is kept) and text not in Unicode NFC, as the same ID with and without it would read as two
        patients."""
        text = self.text(raw, line, "patient_id")
        if text is None or (text.isascii() and text.isprintable()):
            return text
        text = text.strip(BIDI_MARKS).strip() or None  # right-to-left exports wrap fields in direction marks
        if text is None:
            return None
        for index, char in enumerate(text):
            if char.isprintable() and char not in _BLANK_LETTERS and not 0xFE00 <= ord(char) <= 0xFE0F and \
                    not 0xE0100 <= ord(char) <= 0xE01EF:
                continue
            if char in "\u200c\u200d" and 0 < index < len(text) - 1 and not text[index - 1].isascii() and \
                    not text[index + 1].isascii() and text[index - 1].isprintable() and text[index + 1].isprintable():
                continue  # a joiner inside a word of a script that needs it (Persian, Indic) or an emoji
            name = unicodedata.name(char, "a control character")
            raise self.error(line, "patient_id", f"contains U+{ord(char):04X} ({name}), which does not show on its "
                                                 "own: the same ID without it would be another patient (remove it)")
        if not unicodedata.is_normalized("NFC", text):
            normal = unicodedata.normalize("NFC", text)
            at = next((k for k, (a, b) in enumerate(zip(text, normal, strict=False)) if a != b),
                      min(len(text), len(normal)))
            shown = text[at] if at < len(text) else text[-1]
            raise self.error(line, "patient_id", f"not in Unicode normal form NFC (from U+{ord(shown):04X} "
                                                 f"{unicodedata.name(shown, '')!s} on): the same ID saved in NFC, as "
                                                 "most programs save text, would be another patient (save the IDs in "
                                                 "NFC)")
        return text

    def override(self, raw: str, line: int) -> str | None:
        """An override reason: stripped (of spaces and, at its ends, direction marks), None when
        empty. Refused: a value that says there is no override (``no``, ``none``, ``N/A``, ``0``,
        ...) or has no letter or digit (``-``, an invisible character), which would otherwise mark
        the injection's violations overridden; a control character other than a tab or a line
        break, a directional embedding, override or isolate inside it, and U+2028/U+2029."""
        known = self._overrides.get(raw)
        if known is not None:
            return known
        text = self.text(raw, line, "override")
        if text is not None and not text.isprintable():
            text = text.strip(BIDI_MARKS).strip() or None  # right-to-left exports wrap fields in direction marks
            for char in text or "":  # an escape sequence would reach a terminal through `validate --format csv`
                if char not in "\t\n\r" and unicodedata.category(char) == "Cc":
                    raise self.error(line, "override", f"contains a control character (U+{ord(char):04X}): a reason is "
                                                       "text (remove it)")
                if char in _DIRECTION_CONTROLS:  # the report would show the reason's text in another order
                    raise self.error(line, "override", f"contains U+{ord(char):04X} ({unicodedata.name(char)}), which "
                                                       "reorders the text after it where the report is shown (remove "
                                                       "it; the direction marks U+200E and U+200F are allowed)")
                if char in "\u2028\u2029":  # not a line break to CSV writers, one to text viewers
                    raise self.error(line, "override", f"contains U+{ord(char):04X} ({unicodedata.name(char)}): use a "
                                                       "line break")
        if text is not None:
            # Its words, compared without case or width ("ＮＯ" is "no"); "N/A" is "na", "#N/A" too.
            folded = unicodedata.normalize("NFKC", text).lower().replace("n/a", "na").replace("n.a.", "na")
            words = [word for word in _WORD.findall(folded) if word not in _FILLER_WORDS]
            if not _WORD.search(folded):
                raise self.error(line, "override", f"{quote(text)} is not a reason (no letter or digit): leave it "
                                                   "empty when no rule was overridden")
            if words and (all(word in _NOT_A_REASON or not word.strip("0") for word in words)  # "none required"
                          or "".join(words) in _NOT_A_REASON):  # "N / A"
                raise self.error(line, "override", f"{quote(text)} reads as no override, not a reason: leave it "
                                                   "empty when no rule was overridden (any text marks the "
                                                   "injection's violations overridden, not blocking)")
            if not words or (len(words) == 1 and (words[0] in _A_FLAG or words[0].isdigit())):  # "Y", "2", "override"
                raise self.error(line, "override", f"{quote(text)} is a flag or a code, not a reason: give the reason "
                                                   "the clinician recorded for going beyond the rule")
            if len(self._overrides) >= _MAX_CACHED_OVERRIDES:
                self._overrides.clear()
            self._overrides[raw] = text
        return text

    def day(self, raw: str, line: int) -> int:
        day = self.dates.get(raw)
        if day is None:
            self._plain(raw, line, "date")
            try:
                day = parse_date(raw).toordinal()
            except ValueError as exc:
                raise self.error(line, "date", str(exc) if raw.strip() else "missing date") from None
            self.dates[raw] = day
        return day

    def weight(self, raw: str, line: int) -> Ratio | None:
        if raw in self.weights:
            return self.weights[raw]
        self._plain(raw, line, "weight_kg")
        text = raw.strip()
        weight = parse_weight(text, lambda message: self.error(line, "weight_kg", message)) if text else None
        self.weights[raw] = weight
        return weight

    def shape(self, site_raw: str, side_raw: str, drug_raw: str, dose_raw: str, technique_raw: str,
              points_raw: str, *, line: int) -> Shape:
        key = (site_raw, side_raw, drug_raw, dose_raw, technique_raw, points_raw)
        found = self.shapes.get(key)
        if found is None:
            found = self._shape(site_raw, side_raw, drug_raw, dose_raw, technique_raw, points_raw, line)
            self.shapes[key] = found
        return found

    def _shape(self, site_raw: str, side_raw: str, drug_raw: str, dose_raw: str, technique_raw: str,
               points_raw: str, line: int) -> Shape:
        for raw, field in ((site_raw, "site"), (side_raw, "side"), (drug_raw, "drug"), (dose_raw, "dose"),
                           (technique_raw, "technique"), (points_raw, "points")):
            self._plain(raw, line, field)
        found = self._sites.get(site_raw)
        if found is None:
            if not site_raw.strip():
                raise self.error(line, "site", "missing site")
            try:
                found = self.rules.find_site(site_raw)
            except TpiError as exc:
                raise exc.located(self.file, line) from None
            self._sites[site_raw] = found
        site, site_side = found
        try:
            side = parse_side(side_raw)
        except ValueError as exc:
            raise self.error(line, "side", str(exc)) from None
        if site_side is not None:
            if side is not None and side != site_side:
                raise self.error(line, "side", f"{side} contradicts the site text {quote(site_raw.strip())}")
            side = site_side
        if not site.lateral and side is not None:
            raise self.error(line, "side", f"{site.name} has no sides (lateral: false); leave side empty")

        drug: Drug | None = None
        amount: Amount | None = None
        if drug_raw.strip():
            drug = self._drugs.get(drug_raw)
            if drug is None:
                try:
                    drug = self.rules.find_drug(drug_raw)
                except TpiError as exc:
                    raise exc.located(self.file, line) from None
                self._drugs[drug_raw] = drug
            if dose_raw.strip() or drug.drug_class != OTHER:
                amount = self._doses.get((drug, dose_raw))
                if amount is None:
                    try:
                        amount = parse_dose(dose_raw, mass_only=drug.drug_class != OTHER)
                    except ValueError as exc:
                        raise self.error(line, "dose", str(exc)) from None
                    self._doses[(drug, dose_raw)] = amount
            else:
                amount = Amount(0, UNITS)  # an `other` drug given without a dose
        elif dose_raw.strip():
            raise self.error(line, "dose", f"a dose {quote(dose_raw.strip())} without a drug")

        technique = technique_raw.strip().lower() or None
        if technique not in (None, "wet", "dry"):
            raise self.error(line, "technique", f"{quote(technique_raw.strip())} is not wet or dry")
        if technique == "dry" and drug is not None:
            raise self.error(line, "technique", "dry, but the row has a drug (dry needling has none): remove the drug "
                                                "or the technique")

        points: int | None = None
        raw = points_raw.strip()
        if raw:
            if not raw.isdigit() or not raw.isascii() or len(raw) > 6:
                raise self.error(line, "points", f"{quote(raw)} is not a whole number of trigger points from 1 to "
                                                 f"{MAX_POINTS_PER_INJECTION}")
            points = int(raw)
            if not 1 <= points <= MAX_POINTS_PER_INJECTION:
                raise self.error(line, "points", f"{quote(raw)} is not a whole number of trigger points from 1 to "
                                                 f"{MAX_POINTS_PER_INJECTION}")
        category = drug_category(drug) if amount is not None else DRY
        value = amount.value if amount is not None else 0
        ref = value * drug.ref_factor if drug is not None and drug.is_steroid else 0
        la = value if drug is not None and drug.is_anesthetic else 0
        return (site, side, drug, amount, technique, points, category, ref, la)

    def parse(self, fields: list[str], line: int) -> Row:
        """A whole row (the JSON reader's way in; the CSV reader inlines the same steps)."""
        patient_id = self.patient(fields[PID], line)
        day = self.day(fields[DATE], line)
        site, side, drug, amount, technique, points, _, _, _ = self.shape(
            fields[SITE], fields[SIDE], fields[DRUG], fields[DOSE], fields[TECHNIQUE], fields[POINTS], line=line)
        weight = self.weight(fields[WEIGHT], line)
        override = self.override(fields[OVERRIDE], line)
        return Row(patient_id, day, site, side, drug, amount, technique, points, weight, override, line)


# site, side, drug, dose, technique, points; and what one such row gives its injection: category,
# corticosteroid load (reference units), local anesthetic mass (pg).
Shape = tuple[Site, "str | None", "Drug | None", "Amount | None", "str | None", "int | None", str, int, int]
SHAPE_COLUMNS = (SITE, SIDE, DRUG, DOSE, TECHNIQUE, POINTS)


def parse_weight(raw: str, fail: Callable[[str], Exception]) -> Ratio:
    try:
        weight = parse_decimal(raw)
    except ValueError as exc:
        raise fail(f"{exc} (weight in kg)") from None
    if weight.num == 0 or weight.num > MAX_WEIGHT_KG * weight.den:  # exact: 700.000000000000001 is over
        raise fail(f"{raw} kg is not a body weight")
    return weight


def _is_date(text: str) -> bool:
    try:
        parse_date(text)
    except ValueError:
        return False
    return True


def _squashed(name: str) -> str:
    """What a column is called when it is not spelled as tpi reads it: its letters and digits, lower case."""
    return re.sub(r"[\W_]+", "", name.lower())


def _named(column: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, column)


# Other names of tpi's columns, squashed: when the column itself is missing, a column under one of
# them is refused ("did you mean"), as ignored it would lose what it holds. Exact names only: a
# clinic's file has columns such as "Ideal Body Weight", "Tender Points" or "Override By" that
# hold something else.
_LOOKALIKES = {
    **{_squashed(column): column for column in COLUMNS},
    **_named("patient_id", "patient", "patientno", "patientnumber", "patientnum", "patientidentifier", "patientcode",
             "patientref", "ptid", "ptno", "ptnum", "patid", "pid", "mrn", "mrno", "mrnumber",
             "medicalrecordnumber", "medicalrecordno", "medicalrecord", "recordnumber", "chartnumber", "chartno",
             "chartid", "subject", "subjectid", "subjectno", "subjectnumber", "personid", "memberid", "memberno",
             "clientid", "hospitalnumber", "hospitalno", "nhsnumber", "nhsno", "urno", "urnumber", "id", "recordid",
             "record", "patientmrn", "pt", "ptnumber", "chart", "patientname", "name", "participant",
             "participantid", "studyid", "caseid"),
    **_named("weight_kg", "weight", "weightkgs", "weightinkg", "weightlb", "weightlbs", "weightinlb", "weightinlbs",
             "bodyweight", "bodyweightkg", "bodyweightlb", "bodyweightlbs", "patientweight", "patientweightkg", "wt",
             "wtkg", "wtlb", "wtlbs", "kg", "bodymass", "bodymasskg", "ptweight", "ptwt", "patientwt", "bodywt",
             "weightinkilograms", "weightkilograms", "weightinpounds", "weightpounds"),
    **_named("points", "tp", "tps", "tpcount", "numtps", "numberoftps", "nooftps", "npoints", "numpoints",
             "numberofpoints", "noofpoints", "pointcount", "pointsinjected", "injectedpoints", "triggerpoints",
             "triggerpointcount", "triggerpointsinjected", "numtriggerpoints", "numberoftriggerpoints", "tpsinjected",
             "oftps", "oftriggerpoints", "ofpoints", "notps", "ntps"),
    **_named("side", "sides", "laterality", "bodyside", "injectionside", "sidelr", "lr", "leftright", "sidelrb", "lrb",
             "lateralitylr", "lateralitylrb"),
    **_named("override", "overrides", "overridereason", "reasonforoverride", "overridenote", "overridenotes",
             "overridejustification", "overriddenreason"),
    **_named("technique", "techniques", "injectiontechnique", "wetordry", "wetdry", "drywet"),
}
# Names that hold a second drug of the row, or a list of drugs (squashed): tpi reads one drug a row.
_MORE_DRUGS = re.compile(r"(drug|dose|dosage|med|medication)s?\d+(name|dose|dosage|mg|amount)?"
                         r"|\d+(st|nd|rd|th)?(drug|dose|dosage|med|medication)(name|dose|dosage|mg|amount)?"
                         r"|(second|secondary|third|fourth|additional|another|other)(drug|dose|dosage|med|medication)s?"
                         r"(name|dose|dosage|mg|amount)?|drugs|doses|meds?|medications?"
                         r"|(cortico)?steroids?(name|drug|dose|dosage|mg|amount)?"
                         r"|ana?esthetics?(name|drug|dose|dosage|mg|amount)?")
_WHAT_IS_LOST = {
    "patient_id": "every row would be read as one patient's",
    "weight_kg": "the patient's weight would be unknown; convert it first if it is not in kg",
    "side": "every side would read as unspecified",
    "technique": "the technique would go unchecked",
    "points": "every injection would count as 1 trigger point",
    "override": "overridden violations would read as not overridden",
}


def lookalike_column(names: Iterable[str], present: Container[str], more_drugs: bool = True
                     ) -> tuple[str, str] | None:
    """A column (or JSON key) that tpi does not read but that names one of its columns spelled
    otherwise (``Patient ID``, ``weight (kg)``, ``MRN``), when that column is missing: ``(name as
    written, column)``; or, with ``more_drugs``, a second drug's (``drug2``, ``drugs``): ``(name,
    "")``. Ignored like any extra column, it would lose what it holds."""
    for name in names:
        squashed = _squashed(name)
        if more_drugs and _MORE_DRUGS.fullmatch(squashed):
            return name, ""
        column = _LOOKALIKES.get(squashed)
        if column is not None and column not in present and name.strip().lower() != column:
            return name, column
    return None


def lookalike_error(name: str, column: str, what: str = "column") -> str:
    if not column:  # a second drug, or a list of drugs
        return (f"{what} {quote(name.strip())} is not one tpi reads: give each drug its own row (drug, dose; rows of "
                f"one patient, date, site and side are one injection); a {what} tpi does not know is ignored, and "
                f"the drugs it holds would be lost")
    lost = _WHAT_IS_LOST.get(column, f"its {column} would go unread")
    return (f"{what} {quote(name.strip())} is not one tpi reads: did you mean {column!r}? Rename it "
            f"(a {what} tpi does not know is ignored, and {lost})")


def header_columns(header: list[str], file: str, line: int = 1) -> list[int]:
    """Where each of COLUMNS is in the header (``line``: the header's line), -1 if it is not."""
    names = [name.strip().lower() for name in header]
    found: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in COLUMNS:
            if name in found:
                raise TpiError(f"column {name!r} appears twice in the header", file=file, line=line)
            found[name] = index
    lookalike = lookalike_column(header, found, more_drugs="drug" in found)  # (else: "missing column drug")
    if lookalike is not None and found:  # a header (it names some column), not a patient's row
        raise TpiError(lookalike_error(*lookalike), file=file, line=line, field=lookalike[1] or "drug")
    for required in REQUIRED_COLUMNS:
        if required not in found:
            # The header is not quoted back: when it is missing, the first line is a patient's row.
            if any(_is_date(cell.strip()) for cell in header):
                raise TpiError("missing column: the first line holds a date, so it is a row, not the header "
                               "(the header row is missing)", file=file, line=line, field=required)
            extra = [n for n in names if n not in COLUMNS]
            which = f"the header's only column is not named {required!r}" if len(names) == 1 else \
                f"none of the header's {len(names)} columns is named {required!r}"
            # Another file format, or a comment: say which, without quoting the line.
            separator = next((c for c in (";", "\t", "|") if c in header[0]), None) if len(names) == 1 else None
            if header[0].lstrip().startswith("#"):
                which = "the first line is a '#' comment: a CSV history starts with its header"
            elif separator is not None:
                which = f"the header is one column holding {separator!r}: tpi reads comma-separated CSV, or JSON"
            # Suggestions only from a line that names some column: else it may be a patient's row.
            suggestions = did_you_mean(required, extra) if found else []
            raise TpiError(f"missing column ({which})", file=file, line=line, field=required, suggestions=suggestions)
    if "dose" not in found:
        raise TpiError("missing column (a drug needs a dose)", file=file, line=line, field="dose")
    return [found.get(name, -1) for name in COLUMNS]
