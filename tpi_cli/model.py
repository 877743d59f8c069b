"""The injection: one patient, one date, one site, one side, with zero or more drugs."""

from __future__ import annotations

from datetime import date

from tpi_cli.names import site_label
from tpi_cli.quantity import Amount, Ratio
from tpi_cli.rules import ANESTHETIC, DRY, OTHER, STEROID, Drug, Site


class Injection:
    """History rows with the same patient, date, site and side, merged (drugs summed per drug).

    ``day`` is the date's ordinal; ``seq`` its order of first appearance (0 unless set); ``ref`` the
    corticosteroid load in the rules' exact reference units (see ``Rules.ref_scale``); ``la`` the
    local anesthetics' total mass in picograms (a quick bound for the session screen).
    """

    __slots__ = ("category", "day", "drugs", "la", "line", "override", "patient_id", "points", "ref", "seq",
                 "side", "site", "technique", "weight")

    def __init__(self, patient_id: str | None, day: int, site: Site, side: str | None,
                 drugs: dict[Drug, Amount], points: int | None = None, weight: Ratio | None = None,
                 override: str | None = None, line: int = 0, seq: int = 0, technique: str | None = None,
                 category: str | None = None, ref: int = 0, la: int = 0) -> None:
        self.patient_id = patient_id
        self.day = day
        self.site = site
        self.drugs = drugs
        self.points = points
        self.weight = weight
        self.override = override
        self.line = line
        self.seq = seq
        self.technique = technique
        if category is None:
            self.side = side if site.lateral else None
            self.category = DRY
            self.ref = 0
            self.la = 0
            if drugs:
                self.seal()
        else:  # the caller (the CSV reader) derived these from the drugs and checked the side
            self.side = side
            self.category = category
            self.ref = ref
            self.la = la

    def seal(self) -> None:
        """Derive the category, the corticosteroid load and the anesthetic mass from the drugs."""
        steroid = anesthetic = False
        ref = la = 0
        for drug, amount in self.drugs.items():
            if drug.is_steroid:
                steroid = True
                ref += amount.value * drug.ref_factor
            elif drug.is_anesthetic:
                anesthetic = True
                la += amount.value
        self.category = STEROID if steroid else ANESTHETIC if anesthetic else OTHER if self.drugs else DRY
        self.ref = ref
        self.la = la


    @property
    def date(self) -> date:
        return date.fromordinal(self.day)

    @property
    def label(self) -> str:
        return site_label(self.site.name, self.side, self.site.lateral)

    def __repr__(self) -> str:
        drugs = ", ".join(f"{d.name} {a.text()}" for d, a in self.drugs.items())
        return f"Injection({self.patient_id!r}, {self.date}, {self.label}, [{drugs}])"


# The category an injection takes when a drug of this one is added: the highest rank wins.
CATEGORY_RANK = {DRY: 0, OTHER: 1, ANESTHETIC: 2, STEROID: 3}


def drug_category(drug: Drug | None) -> str:
    if drug is None:
        return DRY
    return STEROID if drug.is_steroid else ANESTHETIC if drug.is_anesthetic else OTHER


def sides_of(site: Site, side: str | None) -> list[str | None]:
    """The sides an injection counts against: its own; both when bilateral (its doses count in full
    against each side) or unspecified (counted against both: the safe reading); None for a site
    without sides."""
    if not site.lateral:
        return [None]
    if side in ("left", "right"):
        return [side]
    return ["left", "right"]


class PatientHistory:
    """One patient's injections in evaluation order (date, then first appearance), and the
    weights recorded for them as ``(day, position, weight in kg)`` in the same order.

    ``standing_weight``: a weight given for the patient rather than for an injection (a JSON
    patient's ``weight_kg``), known on every date: it comes first, on day 1 (0001-01-01)."""

    __slots__ = ("_weights", "first_line", "injections", "patient_id", "standing_weight")

    def __init__(self, patient_id: str | None, injections: list[Injection],
                 weights: list[tuple[int, int, Ratio]] | None = None, first_line: int = 0,
                 standing_weight: Ratio | None = None) -> None:
        self.patient_id = patient_id
        self.injections = injections
        self._weights = weights
        self.first_line = first_line  # the line of the patient's first row (0: not from a CSV file)
        self.standing_weight = standing_weight

    @property
    def weights(self) -> list[tuple[int, int, Ratio]]:
        if self._weights is None:
            self._weights = [(i.day, position, i.weight) for position, i in enumerate(self.injections)
                             if i.weight is not None]
            if self.standing_weight is not None:
                self._weights.insert(0, (1, -1, self.standing_weight))
        return self._weights

    def __repr__(self) -> str:
        return f"PatientHistory({self.patient_id!r}, {len(self.injections)} injections)"
