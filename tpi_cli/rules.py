"""The rules (``rules.yaml``) as tpi uses them: drugs, sites, rules and the defaults that ``tpi next``
proposes, with name lookups (a site or drug as people type it, with "did you mean").

:func:`tpi_cli.rules_file.load_rules` reads and validates a file and returns a :class:`Rules`.
"""

from __future__ import annotations

import os
from math import gcd
from typing import Any

from tpi_cli import names
from tpi_cli.dates import Duration
from tpi_cli.errors import TpiError, did_you_mean, printable, quote, shorten
from tpi_cli.quantity import PG_PER_MG, Amount, Ratio, to_units

STEROID, ANESTHETIC, OTHER, DRY = "steroid", "anesthetic", "other", "dry"
CATEGORIES = (STEROID, ANESTHETIC, OTHER, DRY)
CORTICOSTEROID = "corticosteroid"
DRUG_CLASSES = (CORTICOSTEROID, ANESTHETIC, OTHER)

MIN_INTERVAL, MAX_COUNT, MAX_STEROID_DOSE = "min-interval", "max-count", "max-steroid-dose"
ANESTHETIC_DOSE, MAX_POINTS, MAX_REGIONS = "anesthetic-dose", "max-points", "max-regions"
KINDS = (MIN_INTERVAL, MAX_COUNT, MAX_STEROID_DOSE, ANESTHETIC_DOSE, MAX_POINTS, MAX_REGIONS)
SESSION_KINDS = (ANESTHETIC_DOSE, MAX_POINTS, MAX_REGIONS)
SITE, REGION, PATIENT, SESSION = "site", "region", "patient", "session"
SCOPES = (SITE, REGION, PATIENT, SESSION)
INJECTION = "injection"
BLOCK, WARN = "block", "warn"

DEFAULT_RULES_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "rules.yaml")
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "rules.schema.json")
# The packaged default rules, parsed once at release time: used only while its CRC-32 matches the
# packaged rules.yaml, and validated like any rules file. `python -m tpi_cli.rules_file` rewrites it.
SNAPSHOT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "rules.snapshot.json")



class Drug:
    __slots__ = ("aliases", "drug_class", "equivalent_mg", "is_anesthetic", "is_steroid", "line", "max_mg",
                 "max_mg_per_kg", "name", "ref_factor", "source")

    def __init__(self, name: str, drug_class: str, aliases: tuple[str, ...], equivalent_mg: Ratio | None,
                 max_mg: Ratio | None, max_mg_per_kg: Ratio | None, source: str | None, line: int) -> None:
        self.name = name
        self.drug_class = drug_class
        self.aliases = aliases
        self.equivalent_mg = equivalent_mg
        self.max_mg = max_mg
        self.max_mg_per_kg = max_mg_per_kg
        self.source = source
        self.line = line
        self.is_steroid = drug_class == CORTICOSTEROID
        self.is_anesthetic = drug_class == ANESTHETIC
        # mg_ref of 1 pg of this drug, in the Rules' reference units (see Rules.ref_scale)
        self.ref_factor = 0

    def __repr__(self) -> str:
        return f"Drug({self.name!r})"


class Site:
    __slots__ = ("aliases", "lateral", "line", "name", "region", "snomed", "source")

    def __init__(self, name: str, region: str, lateral: bool, aliases: tuple[str, ...], snomed: str | None,
                 source: str | None, line: int) -> None:
        self.name = name
        self.region = region
        self.lateral = lateral
        self.aliases = aliases
        self.snomed = snomed
        self.source = source
        self.line = line

    def __repr__(self) -> str:
        return f"Site({self.name!r})"


class Rule:
    __slots__ = ("applies_to", "counts", "description", "effective", "grace", "id", "interval", "kind", "line",
                 "max", "max_mg", "max_ref", "profiles", "scope", "severity", "source", "strict", "unit", "until",
                 "window")

    _FIELDS = frozenset({"id", "kind", "applies_to", "counts", "scope", "unit", "interval", "grace", "window", "max",
                         "max_mg", "severity", "profiles", "effective", "until", "source", "description", "line"})

    def __init__(self, **values: Any) -> None:
        unknown = values.keys() - self._FIELDS
        if unknown:  # a misspelt field would read as absent: a rule without its limit
            raise TypeError(f"Rule() got unknown fields: {', '.join(sorted(unknown))}")
        self.id: str = values["id"]
        self.kind: str = values["kind"]
        self.applies_to: frozenset[str] = values["applies_to"]
        self.counts: frozenset[str] = values["counts"]
        self.scope: str = values["scope"]
        self.unit: str = values.get("unit") or INJECTION
        self.interval: Duration | None = values.get("interval")
        self.grace: Duration | None = values.get("grace")
        self.window: Duration | None = values.get("window")
        self.max: int | None = values.get("max")
        self.max_mg: Ratio | None = values.get("max_mg")
        self.severity: str = values.get("severity") or BLOCK
        self.profiles: frozenset[str] = values.get("profiles") or frozenset()
        self.effective: int | None = values.get("effective")
        self.until: int | None = values.get("until")
        self.source: str | None = values.get("source")
        self.description: str | None = values.get("description")
        self.line: int = values.get("line", 0)
        self.max_ref = 0
        # The duration whose end starts the grace period (interval or window shortened by grace).
        self.strict: Duration | None = None
        base = self.interval if self.kind == MIN_INTERVAL else self.window
        if base is not None and self.grace is not None and not self.grace.is_zero():
            self.strict = base.minus(self.grace)

    def active(self, profiles: frozenset[str]) -> bool:
        return not self.profiles or not self.profiles.isdisjoint(profiles)

    def in_force(self, day: int) -> bool:
        return (self.effective is None or day >= self.effective) and (self.until is None or day <= self.until)

    def limit_text(self) -> str:
        if self.kind == MIN_INTERVAL:
            return f"interval {self.interval}"
        # A session rule's window is its day, whatever it says.
        within = " a session" if self.scope == SESSION else f" in {self.window}" if self.window is not None else \
            " all time"
        if self.kind == MAX_COUNT:
            unit = ("session" if self.unit == SESSION else "injection") + ("" if self.max == 1 else "s")
            return f"max {self.max} {unit}{within}"
        if self.kind == MAX_STEROID_DOSE:
            assert self.max_mg is not None
            return f"max {self.max_mg.decimal_text(3)} mg{within}"
        if self.kind == MAX_POINTS:
            return f"max {self.max} {'point' if self.max == 1 else 'points'} a session"
        if self.kind == MAX_REGIONS:
            return f"max {self.max} {'region' if self.max == 1 else 'regions'} a session"
        return "local anesthetic total <= 100% of maximum a session"

    def __repr__(self) -> str:
        return f"Rule({self.id!r})"


class LineError(ValueError):
    """A value refused once the whole file is known, with the line of its rule."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class Rules:
    """A validated rules file, with name lookups ready."""

    def __init__(self, path: str, reference_steroid: Drug, drugs: dict[str, Drug], sites: dict[str, Site],
                 rules: list[Rule], defaults: dict[str, list[tuple[Drug, Amount]]],
                 default_texts: dict[str, str]) -> None:
        self.path = path
        self.reference_steroid = reference_steroid
        self.drugs = drugs
        self.sites = sites
        self.rules = rules
        self.defaults = defaults
        self.default_texts = default_texts
        self.drug_lookup: dict[str, Drug] = {}
        for drug in drugs.values():
            for name in (drug.name, *drug.aliases):
                self.drug_lookup[names.normalize(name)] = drug
        self.site_lookup: dict[str, Site] = {}
        for site in sites.values():
            for name in (site.name, *site.aliases):
                self.site_lookup[names.normalize(name)] = site
        # Exact mg_ref in integers: mg_ref(pg of drug) = pg * eq_ref / eq_drug. With L the lcm of
        # the reduced denominators of eq_ref / eq_drug, pg * (eq_ref / eq_drug) * L is an int:
        # ``ref_factor``. One mg of the reference steroid is then ``ref_scale`` units.
        ratios: dict[str, Ratio] = {}
        denominator = 1
        ref_eq: Ratio | None = reference_steroid.equivalent_mg
        assert ref_eq is not None
        for drug in drugs.values():
            if drug.is_steroid and drug.equivalent_mg is not None:
                ratio = ref_eq / drug.equivalent_mg
                ratios[drug.name] = ratio
                denominator = denominator * ratio.den // gcd(denominator, ratio.den)
        for drug in drugs.values():
            found = ratios.get(drug.name)
            drug.ref_factor = found.num * (denominator // found.den) if found is not None else 0
        self.ref_scale = PG_PER_MG * denominator
        for rule in rules:
            if rule.max_mg is not None:
                try:
                    rule.max_ref = to_units(rule.max_mg, self.ref_scale, f"max_mg of rule {rule.id}")
                except ValueError as exc:
                    raise LineError(str(exc), rule.line) from None
        self.profiles = frozenset(p for rule in rules for p in rule.profiles)

    def find_drug(self, text: str) -> Drug:
        drug = self.drug_lookup.get(names.normalize(text))
        if drug is None:
            suggestions = self._suggest(text, self.drug_lookup, [d.name for d in self.drugs.values()])
            raise TpiError(f"unknown drug {quote(text.strip())}{'' if suggestions else self._known_drugs()}",
                           field="drug", suggestions=suggestions)
        return drug

    def find_site(self, text: str) -> tuple[Site, str | None]:
        """The site a text names and the side word it carries (None if none)."""
        try:
            key, side = names.split_site_side(text)
        except ValueError as exc:
            raise TpiError(str(exc), field="site") from None
        site = self.site_lookup.get(key)
        if site is None:
            if not key:
                raise TpiError(f"no site named in {quote(text.strip())}", field="site")
            misspelt = self._misspelt_side(key) if side is None else None
            if misspelt is not None:  # "lefft trapezius": the site is known, the side word is not
                word, suggestion = misspelt
                raise TpiError(f"unknown site {quote(text.strip())}: {quote(word)} is not a side word", field="site",
                               suggestions=[suggestion])
            suggestions = self._suggest(key, self.site_lookup, list(self.sites))
            if side is not None:  # "left trapezus": keep the side the text gives, so that the suggestion reads as is
                suggestions = [f"{side} {name}" if self.sites[name].lateral else name for name in suggestions]
            raise TpiError(f"unknown site {quote(text.strip())}{'' if suggestions else self._known_sites()}",
                           field="site", suggestions=suggestions)
        return site, side

    def _known_drugs(self) -> str:
        """For an unknown drug with no close name: the rules' drugs, if few enough to read."""
        return _known(self.drugs, "drugs", _LISTED_DRUGS,
                      f"none of the rules file's {len(self.drugs)} drugs or their aliases is close")

    def _known_sites(self) -> str:
        """For an unknown site with no close name: the rules' sites if few, else where to see them."""
        return _known(self.sites, "sites", _LISTED_SITES,
                      f"'tpi sites' lists the {len(self.sites)} sites of these rules, with their aliases")

    def _misspelt_side(self, key: str) -> tuple[str, str] | None:
        """A word of ``key`` one slip from a side word (a letter added, dropped, changed, or two
        swapped; the first letter right) whose other words name a site: (the word, what to write
        instead: the site with that side, or the site alone if it has no sides). Words such as
        ``lateral``, ``light`` or ``tight`` are more than one slip away."""
        words = key.split()
        for index, word in enumerate(words):
            site = self.site_lookup.get(" ".join(words[:index] + words[index + 1:])) if len(words) > 1 else None
            if site is not None:
                for side in (names.LEFT, names.RIGHT, names.BILATERAL):
                    if word[:1] == side[:1] and _one_slip(word, side):
                        return word, f"{side} {site.name}" if site.lateral else site.name
        return None

    @staticmethod
    def _suggest(text: str, lookup: dict[str, Any], canonical: list[str]) -> list[str]:
        key = names.normalize(text)
        found = did_you_mean(key, lookup)
        result: list[str] = []
        for match in found:
            target = lookup[match]
            name = target.name
            if name not in result:
                result.append(name)
        if not result:
            result = did_you_mean(key.replace(" ", "-"), canonical)
        return result

    def check_profiles(self, profiles: frozenset[str]) -> None:
        for profile in sorted(profiles):
            if profile not in self.profiles:
                known = ", ".join(sorted(self.profiles)) or "none"
                raise TpiError(f"unknown profile {quote(profile)} (this rules file has: {known})", field="--profile",
                               suggestions=did_you_mean(profile, self.profiles))


# At most this many drugs or sites are named in a message about an unknown one (`tpi sites` lists sites).
_LISTED_DRUGS = 20
_LISTED_SITES = 12


def _known(things: dict[str, Any], noun: str, most: int, many: str) -> str:
    """What an unknown name's message adds: the names if at most ``most``, else ``many``."""
    if not things:
        return f" (the rules file has no {noun})"
    if len(things) > most:
        return f" ({many})"
    return f" (the rules file's {noun}: {_names(things)})"


def _names(named: dict[str, Any]) -> str:
    """Names for a message, sorted, each shortened and with control characters shown escaped."""
    return ", ".join(printable(shorten(name)) for name in sorted(named))


def _one_slip(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one letter added, dropped or changed, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [k for k in range(len(a)) if a[k] != b[k]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    k = 0
    while k < len(short) and short[k] == long[k]:
        k += 1
    return short[k:] == long[k + 1:]


if __name__ == "__main__":  # as before the loader moved: `python -m tpi_cli.rules` rewrites the snapshot too
    import runpy

    runpy.run_module("tpi_cli.rules_file", run_name="__main__")
