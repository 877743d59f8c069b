"""The rules file loader and `tpi rules check` (SPEC.md "Rules file", `tpi rules check`).

Line numbers below refer to tests.conftest.SPEC_RULES: 1 version, 2 reference_steroid, 4 defaults.steroid,
7 triamcinolone, 8 methylprednisolone, 9 dexamethasone, 10 lidocaine, 11 bupivacaine, 12 saline,
14 trapezius, 15 levator-scapulae, 16 infraspinatus, 17 interspinous-lumbar, 19-25 steroid-interval
(block style: 20 kind, 23 scope, 24 interval, 25 source), 26 steroid-count, 27 steroid-site-dose,
28 sessions, 29 anesthetic-dose, 30 points, 31 one-region.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import REPO, SPEC_RULES
from tpi_cli.errors import TpiError
from tpi_cli.quantity import Ratio
from tpi_cli.rules import DEFAULT_RULES_PATH, Rules
from tpi_cli.rules_file import load_rules, parse_rules

PATH = "my-rules.yaml"

# SPEC.md's example rules file, verbatim (comments included).
SPEC_EXAMPLE = """\
# yaml-language-server: $schema=rules.schema.json
version: 1
reference_steroid: triamcinolone
defaults:                                  # proposals that `tpi next` evaluates
  steroid: {drug: triamcinolone, dose: 20 mg}
  anesthetic: {drug: lidocaine, dose: 3 mL @ 1%}
drugs:
  triamcinolone: {class: corticosteroid, equivalent_mg: 4, aliases: [kenalog]}
  dexamethasone: {class: corticosteroid, equivalent_mg: 0.75}
  lidocaine: {class: anesthetic, max_mg_per_kg: 4.5, max_mg: 300, aliases: [lignocaine, xylocaine]}
  saline: {class: other}
sites:
  trapezius: {region: cervical, aliases: [trap, upper trapezius], snomed: "31764008"}
  interspinous-lumbar: {region: lumbar, lateral: false}
rules:
  - id: steroid-interval                   # unique slug, shown in every report
    kind: min-interval                     # min-interval | max-count | max-steroid-dose |
                                           # anesthetic-dose | max-points | max-regions
    applies_to: [steroid]                  # categories of the injection evaluated, or `any`
    counts: [steroid]                      # categories of other injections that count, or `any` (default: applies_to)
    scope: site                            # site | region | patient | session
    interval: 6 weeks
    grace: 0 days                          # optional: inside it the rule warns instead of failing
    severity: block                        # block (default) | warn
    profiles: [medicare]                   # optional: active only when that profile is chosen
    effective: 2024-04-01                  # optional: in force for injections on or after
    until: 2030-12-31                      # optional: ... and on or before
    source: "citation shown to the user"
  - {id: steroid-count, kind: max-count, applies_to: [steroid], scope: site, window: 12 months, max: 3}
  - {id: steroid-site-dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, max_mg: 120}
  - {id: sessions, kind: max-count, applies_to: [steroid, anesthetic, other], scope: patient, unit: session, window: 12 months, max: 3}
  - {id: anesthetic-dose, kind: anesthetic-dose, applies_to: any, scope: session}
  - {id: points, kind: max-points, applies_to: any, scope: session, max: 8, severity: warn}
  - {id: one-region, kind: max-regions, applies_to: any, scope: session, max: 1, profiles: [medicare]}
"""

HEAD = SPEC_RULES.split("rules:\n")[0]  # lines 1-17: everything before `rules:`


def edit(old: str, new: str, text: str = SPEC_RULES) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def with_rule(rule: str) -> str:
    """HEAD plus `rules:` (line 18) and one flow-style rule on line 19."""
    return HEAD + "rules:\n  - " + rule + "\n"


def errors_of(text: str) -> list[str]:
    with pytest.raises(TpiError) as caught:
        parse_rules(text, PATH)
    return [str(error) for error in getattr(caught.value, "errors", [caught.value])]


# --- good files ------------------------------------------------------------------------------

def test_spec_example_file_loads() -> None:
    rules = parse_rules(SPEC_EXAMPLE, PATH)
    assert rules.reference_steroid.name == "triamcinolone"
    assert set(rules.drugs) == {"triamcinolone", "dexamethasone", "lidocaine", "saline"}
    assert set(rules.sites) == {"trapezius", "interspinous-lumbar"}
    assert [(r.id, r.kind) for r in rules.rules] == [
        ("steroid-interval", "min-interval"), ("steroid-count", "max-count"),
        ("steroid-site-dose", "max-steroid-dose"), ("sessions", "max-count"),
        ("anesthetic-dose", "anesthetic-dose"), ("points", "max-points"), ("one-region", "max-regions")]
    assert rules.profiles == frozenset({"medicare"})


def test_spec_example_values_are_typed() -> None:
    rules = parse_rules(SPEC_EXAMPLE, PATH)
    by_id = {rule.id: rule for rule in rules.rules}
    interval = by_id["steroid-interval"]
    assert interval.interval is not None
    assert (interval.interval.days, interval.severity) == (42, "block")
    assert interval.profiles == frozenset({"medicare"})
    assert interval.source == "citation shown to the user"
    assert interval.counts == frozenset({"steroid"})
    assert by_id["steroid-count"].max == 3
    assert by_id["steroid-site-dose"].max_mg == Ratio(120)
    assert by_id["sessions"].unit == "session"
    assert by_id["points"].severity == "warn"
    assert by_id["anesthetic-dose"].applies_to == frozenset({"steroid", "anesthetic", "other", "dry"})
    assert rules.drugs["dexamethasone"].equivalent_mg == Ratio(3, 4)    # exact, not 0.75 as a float
    assert rules.drugs["lidocaine"].max_mg_per_kg == Ratio(9, 2)
    assert rules.drugs["lidocaine"].aliases == ("lignocaine", "xylocaine")
    assert rules.sites["interspinous-lumbar"].lateral is False
    assert rules.sites["trapezius"].lateral is True                    # lateral defaults to true
    assert rules.sites["trapezius"].snomed == "31764008"


def test_conftest_rules_load(spec_rules: str) -> None:
    rules = load_rules(spec_rules)
    assert len(rules.rules) == 7


def test_counts_defaults_to_applies_to() -> None:
    rules = parse_rules(with_rule("{id: a, kind: max-count, applies_to: [steroid, other], scope: site, max: 3}"), PATH)
    assert rules.rules[0].counts == frozenset({"steroid", "other"})


def test_empty_rule_list_is_allowed() -> None:
    assert parse_rules(HEAD + "rules: []\n", PATH).rules == []


@pytest.mark.parametrize(("old", "new"), [
    ("lateral: false", "lateral: no"),             # YAML 1.1 `no` is a boolean: right type here
    ('snomed: "31764008"', "snomed: 31764008"),
    ("interval: 6 weeks", "interval: P6W"),
    ("interval: 6 weeks", "interval: 6 weeks\n    effective: 2024-04-01\n    until: '2030-12-31'"),
    ("interval: 6 weeks", "interval: 6 weeks\n    grace: 1 week"),
    ("max_mg: 120", "max_mg: 120.5"),
])
def test_valid_variants_load(old: str, new: str) -> None:
    parse_rules(edit(old, new), PATH)


# --- every error class: PATH:LINE: message ---------------------------------------------------

ERRORS = [
    # duplicate rule ids
    ("duplicate id", SPEC_RULES + "  - {id: points, kind: max-points, applies_to: any, scope: session, max: 8}\n",
     32, "duplicate id (first on line 30)"),
    ("duplicate id apart from case", SPEC_RULES + "  - {id: Points, kind: max-points, applies_to: any, scope: session, max: 8}\n",
     32, "rule 'Points': duplicate id (first on line 30, as 'points' apart from case)"),
    # unknown keys, with did-you-mean
    ("unknown rule key", edit("    interval: 6 weeks\n", "    interval: 6 weeks\n    intervl: 3 weeks\n"),
     25, "unknown key 'intervl' (did you mean 'interval'?)"),
    ("unknown top key", edit("version: 1", "verson: 1"), 1, "unknown key 'verson' (did you mean 'version'?)"),
    ("unknown drug key", edit("equivalent_mg: 0.75", "equivalent: 0.75"), 9,
     "unknown key 'equivalent' (did you mean 'equivalent_mg'?)"),
    ("unknown site key", edit("region: scapular", "regoin: scapular"), 16, "unknown key 'regoin'"),
    ("key of another kind", with_rule("{id: a, kind: min-interval, applies_to: [steroid], scope: site, "
                                      "interval: 6 weeks, max: 3}"), 19,
     "rule 'a': 'max' does not apply to kind min-interval, which takes interval"),
    ("no key of any kind", with_rule("{id: a, kind: anesthetic-dose, applies_to: any, scope: session, window: 1 day}"),
     19, "'window' does not apply to kind anesthetic-dose, whose limits are the drugs' own (max_mg, max_mg_per_kg "
         "under drugs)"),
    ("boolean number", with_rule("{id: a, kind: max-points, applies_to: any, scope: session, max: yes}"), 19,
     "rule 'a': max must be a whole number, got a boolean (true)"),  # no "quote it": quoted, it is no number
    ("boolean text", edit("trapezius: {region: cervical", "trapezius: {region: no"), 14,
     "region must be a text, got a boolean (false; quote it if you meant text)"),
    ("unknown category text", with_rule("{id: a, kind: max-points, applies_to: [steroids], scope: session, max: 3}"), 19,
     "rule 'a': applies_to: unknown category 'steroids' (did you mean 'steroid'?)"),
    ("drugs missing", edit("drugs:\n", "drugz:\n"), 1, "rules file: missing 'drugs'"),
    ("sites missing", edit("sites:\n", "sitez:\n"), 1, "rules file: missing 'sites'"),
    ("version 1.0", edit("version: 1", "version: 1.0"), 1,
     "rules file: version must be the whole number 1 (write 'version: 1'), got a number (1.0)"),
    ("version true", edit("version: 1", "version: true"), 1,
     "rules file: version must be the whole number 1 (write 'version: 1'), got a boolean (true)"),
    # unknown kind, with did-you-mean
    ("unknown kind", edit("kind: max-points", "kind: max-pionts"), 30, "did you mean 'max-points'"),
    # bad durations
    ("unitless interval", edit("interval: 6 weeks", "interval: 6"), 24, "needs a unit"),
    ("unitless window", edit("window: 12 months, max_mg", "window: 12, max_mg"), 27, "needs a unit"),
    ("negative interval", edit("interval: 6 weeks", "interval: -6 weeks"), 24, "interval"),
    ("zero interval", edit("interval: 6 weeks", "interval: 0 days"), 24, "longer than 0 days"),
    ("zero window", edit("window: 12 months, max_mg", "window: 0 days, max_mg"), 27, "longer than 0 days"),
    ("negative window", edit("window: 12 months, max_mg", "window: -12 months, max_mg"), 27, "window"),
    ("unknown unit", edit("interval: 6 weeks", "interval: 6 fortnights"), 24, "unknown unit 'fortnights'"),
    ("repeated unit", edit("interval: 6 weeks", "interval: 1 week 5 weeks"), 24, "twice"),
    ("bare P", edit("interval: 6 weeks", "interval: P"), 24, "not a duration"),
    # missing required fields
    ("missing id", edit("{id: points, ", "{"), 30, "missing 'id'"),
    ("missing kind", edit("kind: max-points, ", ""), 30, "missing 'kind'"),
    ("missing applies_to", edit("{id: points, kind: max-points, applies_to: any, ", "{id: points, kind: max-points, "),
     30, "missing 'applies_to'"),
    ("missing scope", edit("{id: steroid-count, kind: max-count, applies_to: [steroid], scope: site,",
                           "{id: steroid-count, kind: max-count, applies_to: [steroid],"), 26, "missing 'scope'"),
    ("missing interval", edit("    interval: 6 weeks\n", ""), 19, "needs 'interval'"),
    ("missing max", edit("scope: session, max: 8, severity", "scope: session, severity"), 30, "needs 'max'"),
    ("missing max_mg", edit(", max_mg: 120}", "}"), 27, "needs 'max_mg'"),
    ("missing region", edit("{region: scapular}", "{}"), 16, "missing 'region'"),
    ("missing class", edit("saline: {class: other}", "saline: {}"), 12, "missing 'class'"),
    ("missing version", edit("version: 1\n", ""), 1, "missing 'version'"),
    ("missing reference_steroid", edit("reference_steroid: triamcinolone\n", ""), 1, "missing 'reference_steroid'"),
    ("missing rules", HEAD, 1, "missing 'rules'"),
    # wrong types after YAML 1.1 loading
    ("max: yes", edit("max: 8,", "max: yes,"), 30, "max must be a whole number, got a boolean"),
    ("aliases: [no]", edit("aliases: [kenalog]", "aliases: [no]"), 7, "aliases items must be texts, got a boolean"),
    ("region date", edit("region: scapular", "region: 2024-01-05"), 16, "region must be a text, got a date"),
    ("max_mg text", edit("max_mg: 120", 'max_mg: "lots"'), 27, "max_mg must be a number, got a text"),
    ("severity: no", edit("max: 8, severity: warn", "max: 8, severity: no"), 30, "severity must be one of"),
    ("profiles: [no]", edit("profiles: [medicare]", "profiles: [no]"), 31, "profiles items must be texts"),
    ("profile not a word", edit("profiles: [medicare]", "profiles: ['-x']"), 31,
     "profile '-x' must be one word of at most 80 characters (letters, digits, '-', '.', '_'; a letter or digit "
     "first)"),
    ("snomed too short", edit('snomed: "31764008"', 'snomed: "123"'), 14,
     "snomed must be a SNOMED CT code of 6 to 18 digits, got a text ('123')"),
    ("lateral text", edit("lateral: false", "lateral: 'no'"), 17, "lateral must be true or false"),
    ("equivalent_mg: no", edit("equivalent_mg: 0.75", "equivalent_mg: no"), 9, "equivalent_mg must be a number"),
    ("version text", edit("version: 1", 'version: "1"'), 1, "rules file: version must be the whole number 1 (write 'version: 1'), got a text ('1')"),
    ("version 2", edit("version: 1", "version: 2"), 1, "rules file: unsupported version 2 (this tpi reads version 1)"),
    ("max fraction", edit("max: 8,", "max: 2.5,"), 30, "max must be a whole number"),
    ("max negative", edit("max: 8,", "max: -1,"), 30, "must not be negative"),
    ("max_mg negative", edit("max_mg: 120", "max_mg: -5"), 27, "negative"),
    ("max_mg nan", edit("max_mg: 120", "max_mg: .nan"), 27, "max_mg"),
    ("max_mg inf", edit("max_mg: 120", "max_mg: .inf"), 27, "max_mg"),
    ("max_mg_per_kg zero", edit("max_mg_per_kg: 2.5", "max_mg_per_kg: 0"), 11, "more than 0"),
    ("id number", edit("{id: points,", "{id: 5,"), 30, "id must be a text"),
    ("id not a slug", edit("{id: points,", "{id: 'two words',"), 30, "slug"),
    ("bad effective", edit("interval: 6 weeks", "interval: 6 weeks\n    effective: 2024-13-01"), 25, "effective"),
    ("until before effective",
     edit("interval: 6 weeks", "interval: 6 weeks\n    effective: 2024-04-01\n    until: 2023-01-01"), 26,
     "until is before effective"),
    ("defaults dose unitless", edit("dose: 20 mg}", "dose: 20}"), 4, "dose"),
    # `next` would forecast a drugless injection as the steroid one
    ("defaults empty list", edit("{drug: triamcinolone, dose: 20 mg}", "[]"), 4, "defaults.steroid: an empty list"),
    # An explicit tag on text YAML would not read as that type: refused, never coerced or dropped.
    ("!!int on a float", edit("max: 8,", 'max: !!int "1e3",'), 30, "rule 'points': max: '1e3' is not a YAML int"),
    ("!!int on text", edit("max: 8,", 'max: !!int "abc",'), 30, "'abc' is not a YAML int"),
    ("!!int on nothing", edit("max: 8,", 'max: !!int "",'), 30, "'' is not a YAML int"),
    ("!!int on other digits", edit("max: 8,", 'max: !!int "\u0663",'), 30, "is not a YAML int"),
    ("!!null on a date", edit("interval: 6 weeks", "interval: 6 weeks\n    until: !!null 2026-06-01"), 25,
     "rule 'steroid-interval': until: '2026-06-01' is not a YAML null"),
    ("!!bool on text", edit("  interspinous-lumbar: {region: lumbar, lateral: false}",
                            '  interspinous-lumbar: {region: lumbar, lateral: !!bool "maybe"}'), 17,
     "site 'interspinous-lumbar': lateral: 'maybe' is not a YAML bool"),
    ("!!timestamp on text", edit("interval: 6 weeks", 'interval: 6 weeks\n    effective: !!timestamp "2026-06-01 x"'),
     25, "'2026-06-01 x' is not a YAML timestamp"),
    ("defaults unknown drug", edit("{drug: triamcinolone, dose: 20 mg}", "{drug: triamcinolon, dose: 20 mg}"), 4,
     "did you mean 'triamcinolone'"),
    ("unknown category", edit("applies_to: [steroid], scope: site, window: 12 months, max: 3",
                              "applies_to: [sterod], scope: site, window: 12 months, max: 3"), 26,
     "did you mean 'steroid'"),
    ("unknown scope", edit("applies_to: [steroid], scope: site, window: 12 months, max: 3",
                           "applies_to: [steroid], scope: sight, window: 12 months, max: 3"), 26, "did you mean 'site'"),
    ("session kind with site scope", edit("kind: anesthetic-dose, applies_to: any, scope: session",
                                          "kind: anesthetic-dose, applies_to: any, scope: site"), 29, "scope: session"),
    ("unknown drug class", edit("saline: {class: other}", "saline: {class: othr}"), 12, "did you mean 'other'"),
    # drug-specific requirements
    ("corticosteroid without equivalent_mg",
     edit("methylprednisolone: {class: corticosteroid, equivalent_mg: 4}", "methylprednisolone: {class: corticosteroid}"),
     8, "a corticosteroid needs equivalent_mg"),
    ("anesthetic without max", edit("bupivacaine: {class: anesthetic, max_mg_per_kg: 2.5, max_mg: 175}",
                                    "bupivacaine: {class: anesthetic}"), 11, "needs max_mg or max_mg_per_kg"),
    ("equivalent_mg on other", edit("saline: {class: other}", "saline: {class: other, equivalent_mg: 4}"), 12,
     "only for corticosteroids"),
    ("max_mg on steroid", edit("equivalent_mg: 0.75}", "equivalent_mg: 0.75, max_mg: 10}"), 9,
     "only for local anesthetics"),
    ("unknown reference_steroid", edit("reference_steroid: triamcinolone", "reference_steroid: triamcinolon"), 2,
     "unknown drug 'triamcinolon' (did you mean 'triamcinolone'?)"),
    ("reference not a steroid", edit("reference_steroid: triamcinolone", "reference_steroid: lidocaine"), 2,
     "not a corticosteroid"),
    # alias clashes
    ("drug alias clash", edit("dexamethasone: {class: corticosteroid, equivalent_mg: 0.75}",
                              "dexamethasone: {class: corticosteroid, equivalent_mg: 0.75, aliases: [Kenalog]}"), 9,
     "already used by 'triamcinolone'"),
    ("drug alias is another drug's name", edit("saline: {class: other}", "saline: {class: other, aliases: [lidocaine]}"),
     12, "already used by 'lidocaine'"),
    ("site alias clash", edit("levator-scapulae: {region: cervical}",
                              "levator-scapulae: {region: cervical, aliases: [Upper-Trapezius]}"), 15,
     "already used by 'trapezius'"),
    ("site alias with a side word", edit("levator-scapulae: {region: cervical}",
                                         "levator-scapulae: {region: cervical, aliases: [left levator]}"), 15,
     "side word"),
    # YAML-level refusals
    ("duplicate mapping key", edit("version: 1\n", "version: 1\nversion: 1\n"), 2, "duplicate key 'version'"),
    ("duplicate key in a flow mapping", edit("max: 8, severity", "max: 8, max: 9, severity"), 30,
     "rule 'points': duplicate key 'max'"),
    ("duplicate site", edit("  interspinous-lumbar:", "  infraspinatus: {region: scapular}\n  interspinous-lumbar:"),
     17, ": sites: duplicate key 'infraspinatus'"),
    ("empty file", "", 1, "empty"),
    ("comments only", "# nothing here\n\n", 1, "empty"),
    ("invalid YAML", "version: 1\nrules: [\n  - a\n", 3, "not valid YAML"),
    ("unclosed flow", "version: 1\nfoo: [1, 2\n", 3, "not valid YAML"),
    ("bad indentation", "version: 1\n  bad: x\nrules: []\n", 2, "not valid YAML"),
    ("top-level list", "- a\n- b\n", 1, "expected a mapping"),
    ("custom tag", edit("version: 1", "version: !custom 1"), 1, ": version: unsupported YAML tag"),
    # A number too long to be one: the rule and key are named, as for any other bad value.
    ("number too long", edit("max: 8,", "max: 99999999999999999999999999999,"), 30,
     "rule 'points': max: number '99999999999999999999'... is too long"),
    ("tag on a drug alias", edit("saline: {class: other}", "saline: {class: other, aliases: [!!binary aGk=]}"), 12,
     "drug 'saline': aliases: unsupported YAML tag"),
    ("tag in defaults", edit("dose: 20 mg}", "dose: !!binary aGk=}"), 4, ": defaults.steroid.dose: unsupported YAML tag"),
]


@pytest.mark.parametrize(("text", "line", "message"), [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS])
def test_rules_error_names_path_line_and_problem(text: str, line: int, message: str) -> None:
    errors = errors_of(text)
    assert any(error.startswith(f"{PATH}:{line}: ") and message in error for error in errors), errors


def test_every_error_is_reported_in_line_order() -> None:
    text = edit("max: 8,", "max: yes,", edit("aliases: [kenalog]", "aliases: [no]",
                                               edit("interval: 6 weeks", "interval: 6")))
    errors = errors_of(text)
    assert [error.split(":")[1] for error in errors] == ["7", "24", "30"]


def test_rules_error_message_points_to_rules_check() -> None:
    with pytest.raises(TpiError) as caught:
        parse_rules(edit("max: 8,", "max: yes,", edit("interval: 6 weeks", "interval: 6")), PATH)
    assert "tpi rules check" in str(caught.value)


# --- safe YAML -------------------------------------------------------------------------------

@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/apply:subprocess.check_call [['touch', '{marker}']]",
    "!!python/object/new:subprocess.check_call [['touch', '{marker}']]",
    "!!python/name:os.system",
    "!!python/object:collections.OrderedDict {{}}",
])
def test_python_tags_are_refused_and_never_constructed(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "constructed"
    text = edit("version: 1", "version: " + tag.format(marker=marker))
    errors = errors_of(text)
    assert len(errors) == 1
    assert errors[0].startswith(f"{PATH}:1: version: unsupported YAML tag")
    assert "python/" in errors[0]
    assert not marker.exists()


def test_explicit_core_tags_that_agree_with_their_text_are_read() -> None:
    rules = parse_rules(edit("max: 8,", "max: !!int 9,", edit("max_mg: 120", "max_mg: !!float 120")), PATH)
    by_id = {rule.id: rule for rule in rules.rules}
    assert by_id["points"].max == 9
    assert by_id["steroid-site-dose"].limit_text() == parse_rules(SPEC_RULES, PATH).rules[2].limit_text()


def test_reference_steroid_suggestions_are_corticosteroids_only() -> None:
    # A local anesthetic spelt alike is no reference steroid: not suggested (an audit saw
    # 'ropivacaine' offered for a misspelt steroid).
    (error,) = errors_of(edit("reference_steroid: triamcinolone", "reference_steroid: lidocain"))
    assert error == f"{PATH}:2: reference_steroid: unknown drug 'lidocain'"
    (error,) = errors_of(edit("reference_steroid: triamcinolone", "reference_steroid: dexamethasne"))
    assert error.endswith("(did you mean 'dexamethasone'?)")


def test_refused_values_of_two_fields_on_one_line_are_both_named() -> None:
    # Two nodes refused with the same words on one line are two errors, each with its field.
    errors = errors_of(edit("  saline: {class: other}", "  saline: {class: !c x}\n  water: {class: !c x}"))
    assert [error.split(": unsupported")[0] for error in errors if "unsupported" in error] == [
        f"{PATH}:12: drug 'saline': class", f"{PATH}:13: drug 'water': class"]
    errors = errors_of("version: 1\nreference_steroid: a\ndrugs: {a: {class: !c x}, b: {class: !c x}}\n"
                       "sites: {}\nrules: []\n")
    assert [error for error in errors if "unsupported" in error] == [
        f"{PATH}:3: drug 'a': class: unsupported YAML tag '!c'", f"{PATH}:3: drug 'b': class: unsupported YAML tag '!c'"]


def test_refused_value_field_names_a_rule_as_the_validator_does() -> None:
    errors = errors_of(edit("{id: points,", "{id: '  points  ',", edit("max: 8,", "max: !c 8,")))
    assert f"{PATH}:30: rule 'points': max: unsupported YAML tag '!c'" in errors
    # a document that is a list is no rules file: no field path is made up for what is in it
    errors = errors_of("- rules: [{id: x, max: !c 1}]\n")
    assert errors[0] == f"{PATH}:1: unsupported YAML tag '!c'"


def test_python_tag_deep_in_the_file_is_refused_with_its_line() -> None:
    errors = errors_of(edit("  saline: {class: other}", "  saline: !!python/object:collections.OrderedDict {class: other}"))
    assert errors[0].startswith(f"{PATH}:12: drug 'saline': unsupported YAML tag")


def test_a_refused_tag_or_duplicate_key_does_not_hide_the_other_errors() -> None:
    # SPEC.md: `rules check` gives every error. A tag or a duplicate key is refused where it is, and
    # the rest of the file is still checked (nothing is said about what stood in for the refused value)
    text = edit("interval: 6 weeks", "interval: 6",
                edit("  saline: {class: other}", "  saline: !!python/object:collections.OrderedDict {class: other}",
                     edit("max: 8,", "max: !custom 8,", edit("version: 1", "version: 1\nversion: 1"))))
    errors = errors_of(text)
    assert [error.split(": ", 1)[0].rsplit(":", 1)[1] for error in errors] == ["2", "13", "25", "31"]
    assert "duplicate key 'version'" in errors[0]
    assert "unsupported YAML tag" in errors[1]
    assert "python/object" in errors[1]
    assert "interval" in errors[2]
    assert "unsupported YAML tag '!custom'" in errors[3]


@pytest.mark.parametrize(("text", "lines"), [
    ("# my rules\n\n!custom\n", [3]),  # the whole document refused: no "expected a mapping" on line 1
    (edit("interval: 6 weeks", "interval:\n      !weeks 6"), [25]),  # the value on the line after its key
    (edit("max: 8, severity: warn", "max: !custom 8, severity: wran"), [30, 30]),  # another error on its line
    (edit("version: 1", "version: 1\nbase: &a !custom 3").replace("max: 8,", "max: *a,").replace("max: 3}", "max: *a}"),
     [2, 2]),  # refused once, where it is (an alias does not repeat it); the unknown key is still named
])
def test_what_stands_for_a_refused_node_draws_no_complaint(text: str, lines: list[int]) -> None:
    errors = errors_of(text)
    assert [int(error.split(": ", 1)[0].rsplit(":", 1)[1]) for error in errors] == lines, errors
    assert not any("REFUSED" in error or "\x00" in error for error in errors)


@pytest.mark.parametrize("value", ["!!binary aGVsbG8=", "!custom 4", "!!set {a}"])
def test_a_refused_value_still_makes_the_file_invalid(value: str) -> None:
    # Nothing is said about the stand-in, but nothing is built from it either (it once reached the
    # Rules constructor: an internal error)
    errors = errors_of(edit("triamcinolone: {class: corticosteroid, equivalent_mg: 4,",
                            f"triamcinolone: {{class: corticosteroid, equivalent_mg: {value},"))
    assert len(errors) == 1
    assert "unsupported YAML tag" in errors[0]


def test_many_refused_nodes_are_capped_like_other_errors() -> None:
    text = edit("version: 1", "version: 2", HEAD) + "rules:\n" + "".join(
        f"  - {{id: r{k}, kind: !custom max-count}}\n" for k in range(300))
    errors = errors_of(text)
    assert len(errors) == 101
    assert errors[0].startswith(f"{PATH}:1: rules file: unsupported version")  # in line order, the first kept
    assert errors[-1].endswith("more than 100 errors: the first 100 are listed")  # all checked, the list cut


def test_a_hundred_errors_found_before_the_key_check_end_the_report_there() -> None:
    # The 100th error is the last rule's (a bad id, found before its keys are looked at): nothing is
    # left unchecked, so no "stopped" line (asking for the keys once said so).
    text = SPEC_RULES + "".join(f"  - {{id: 'r {k}', kind: max-count, applies_to: [steroid], scope: site, max: 3}}\n"
                                for k in range(100))
    errors = errors_of(text)
    assert len(errors) == 100
    assert all("must be a slug" in error for error in errors)


def test_more_than_a_hundred_errors_all_checked_say_the_list_is_cut() -> None:
    # 60 duplicate keys (refused by the YAML layer) and 60 bad values: all checked, 100 listed.
    text = SPEC_RULES + "".join(f"  - {{id: r{k}, kind: max-count, applies_to: [steroid], scope: site, max: x, "
                                f"max: 3}}\n" for k in range(60))
    errors = errors_of(text)
    assert len(errors) == 101
    assert errors[-1].endswith(": more than 100 errors: the first 100 are listed")


def test_a_long_rule_id_is_quoted_shortened_in_every_message() -> None:
    long = "r" * 500
    errors = errors_of(with_rule(f"{{id: {long}, kind: max-count, applies_to: [steroid], scope: site, max: x, "
                                 "unit: s}"))
    assert len(errors) >= 3
    assert all(len(error) < 300 for error in errors), errors


@pytest.mark.parametrize("bad", [100, 101, 5000])
def test_a_check_stopped_at_100_errors_says_so(tpi: Callable[..., Result], write: Callable[[str, str], str],
                                               bad: int) -> None:
    # 100 errors found and more rules to check: the 101st line says the rest is not checked (it
    # once ended at 100 lines, as if the file held no more); exactly 100 bad rules and nothing
    # after them need no such line.
    text = SPEC_RULES + "".join(f"  - {{id: r{k}, kind: max-count, applies_to: [steroid], scope: site, max: x}}\n"
                                for k in range(bad))
    result = tpi("rules", "check", write("many.yaml", text))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    if bad == 100:
        assert len(lines) == 100
        assert all("max must be a whole number" in line for line in lines)
    else:
        assert len(lines) == 101
        assert lines[-1].endswith(": stopped after 100 errors: the rest of the file is not checked")
    report = json.loads(tpi("rules", "check", write("many.yaml", text), "--format", "json").stdout)
    assert len(report["errors"]) == len(lines)


def test_a_key_that_is_not_a_text_is_refused_with_the_rest(tmp_path: Path) -> None:
    errors = errors_of(edit("  saline: {class: other}", "  saline: {class: other, [1]: 2}",
                            edit("max: 8,", "max: yes,")))
    assert [error.split(": ", 1)[0].rsplit(":", 1)[1] for error in errors] == ["12", "30"]
    assert "a key must be a text" in errors[0]


def test_a_rule_id_too_long_says_so() -> None:
    (error,) = errors_of(with_rule("{id: " + "a" * 81 + ", kind: max-count, applies_to: [steroid], scope: site, "
                                   "max: 3}"))
    assert "must be a slug of at most 80 characters" in error
    assert "a" * 41 not in error  # the id is cut in the message
    assert parse_rules(with_rule("{id: " + "a" * 80 + ", kind: max-count, applies_to: [steroid], scope: site, "
                                 "max: 3}"), PATH).rules[0].id == "a" * 80


def test_anchors_and_aliases_work() -> None:
    text = with_rule("{id: a, kind: max-count, applies_to: &cats [steroid, anesthetic], scope: site, max: 3}\n"
                     "  - {id: b, kind: max-count, applies_to: *cats, scope: patient, max: 3}")
    rules = parse_rules(text, PATH)
    assert [rule.applies_to for rule in rules.rules] == [frozenset({"steroid", "anesthetic"})] * 2


def test_merge_keys_work() -> None:
    text = edit("triamcinolone: {class: corticosteroid, equivalent_mg: 4, aliases: [kenalog]}\n"
                "  methylprednisolone: {class: corticosteroid, equivalent_mg: 4}",
                "triamcinolone: &steroid {class: corticosteroid, equivalent_mg: 4}\n"
                "  methylprednisolone: {<<: *steroid, source: merged}")
    rules = parse_rules(text, PATH)
    drug = rules.drugs["methylprednisolone"]
    assert (drug.drug_class, drug.equivalent_mg, drug.source) == ("corticosteroid", Ratio(4), "merged")


def test_merge_key_values_can_be_overridden() -> None:
    text = with_rule("&base {id: a, kind: max-count, applies_to: [steroid], scope: site, window: 12 months, max: 3}\n"
                     "  - {<<: *base, id: b, max: 2}")
    rules = parse_rules(text, PATH)
    assert [(rule.id, rule.max, rule.scope) for rule in rules.rules] == [("a", 3, "site"), ("b", 2, "site")]


def test_many_aliases_of_one_node_stay_cheap() -> None:
    """A 'billion laughs' style file is refused or loaded quickly, never expanded in memory."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    with pytest.raises(TpiError, match=PATH):
        parse_rules("\n".join(lines) + "\n", PATH)


def test_an_error_in_a_list_reached_through_an_alias_names_the_line_that_uses_it() -> None:
    # The list is the anchor's (its items' lines are line 19's); the second rule, on line 20, uses it:
    # its error is on line 20, not on the anchor's line under the second rule's name.
    text = with_rule("{id: a, kind: max-count, applies_to: &cats [steriod], scope: site, max: 3}\n"
                     "  - {id: b, kind: max-count, applies_to: *cats, scope: site, max: 3,\n"
                     "     profiles: &who [medicare, '']}\n"
                     "  - {id: c, kind: max-count, applies_to: [steroid], scope: site, max: 3, profiles: *who}")
    assert errors_of(text) == [
        f"{PATH}:19: rule 'a': applies_to: unknown category 'steriod' (did you mean 'steroid'?)",
        f"{PATH}:20: rule 'b': applies_to: unknown category 'steriod' (did you mean 'steroid'?)",
        f"{PATH}:21: rule 'b': profiles items must be texts, got an empty text",
        f"{PATH}:22: rule 'c': profiles items must be texts, got an empty text",
    ]


def test_messages_quote_a_long_value_shortened() -> None:
    # Each error line quotes at most 60 characters of a value (a 1 MiB category once filled stderr
    # with itself, once per use; keys and kinds too).
    long = "q" * 500  # (YAML allows a key of at most 1,024 characters)
    errors = errors_of(with_rule(f"{{id: a, kind: {long}, applies_to: [{long}], scope: site, max: 3, {long}: 1}}"))
    assert errors
    assert all(len(error) < 300 for error in errors), errors
    assert f"'{'q' * 59}…'" in errors[0]


@pytest.mark.parametrize(("duration", "hint"), [("6 weks", "days, weeks, months, years) (did you mean 'weeks'?"),
                                                ("3 monts", "days, weeks, months, years) (did you mean 'months'?"),
                                                ("6 fortnights", "days, weeks, months, years"),
                                                ("30 minutes", "days, weeks, months, years")])  # not "months"
def test_a_misspelt_duration_unit_gets_a_suggestion(duration: str, hint: str) -> None:
    errors = errors_of(with_rule(f"{{id: a, kind: min-interval, applies_to: [steroid], scope: site, "
                                 f"interval: {duration}}}"))
    assert errors == [f"{PATH}:19: rule 'a': interval: '{duration}': unknown unit '{duration.split()[1]}' ({hint})"]


@pytest.mark.parametrize("when", ["2024-04-01 10:00:00", "2024-04-01T10:00:00Z", "'2024-04-01T10:00'",
                                  "2024-04-01\t10:00:00", "2024-04-01  10:00"])
def test_a_date_and_time_for_effective_is_refused_not_cut(when: str) -> None:
    # YAML reads an unquoted one as a timestamp: its time was dropped silently, while the JSON Schema
    # (format: date) refuses it. A rule is in force for whole days.
    shown = when.strip("'").replace("\t", "\\t")  # a tab shown escaped: the message stays one line
    errors = errors_of(with_rule(f"{{id: a, kind: min-interval, applies_to: [steroid], scope: site, interval: 6 weeks, "
                                 f"effective: {when}}}"))
    assert errors == [f"{PATH}:19: rule 'a': effective must be a date (YYYY-MM-DD), not a date and time ('{shown}'): "
                      "a rule is in force for whole days"]


def test_a_date_and_time_is_text_where_text_is_due() -> None:
    rules = parse_rules(with_rule("{id: a, kind: min-interval, applies_to: [steroid], scope: site, interval: 6 weeks, "
                                  "source: 2024-04-01 10:00:00}"), PATH)
    assert rules.rules[0].source == "2024-04-01 10:00:00"  # a YAML timestamp, kept as written


def test_a_reference_steroid_given_by_an_alias_is_told_the_name() -> None:
    text = SPEC_RULES.replace("reference_steroid: triamcinolone", "reference_steroid: Kenalog", 1)
    assert text != SPEC_RULES
    assert errors_of(text) == [f"{PATH}:2: reference_steroid: unknown drug 'Kenalog' (an alias: give the name of the "
                               "drug) (did you mean 'triamcinolone'?)"]


def test_an_unknown_key_is_first_matched_with_keys_the_rule_lacks() -> None:
    (error,) = errors_of(with_rule("{id: a, kind: max-count, applies_to: [steroid], scope: site, max: 2, windw: 1 year}"))
    assert error.endswith("unknown key 'windw' (did you mean 'window'?)")  # not also 'kind', which it has
    (error,) = errors_of(with_rule("{id: a, kind: max-count, applies_to: [steroid], scope: site, max: 2, window: 1 year, "
                                   "windw: 1 year}"))
    assert error.endswith("unknown key 'windw' (did you mean 'window'?)")  # a misspelt repeat: still said


def test_a_directory_as_rules_file_names_where_it_came_from(tpi: Callable[..., Result], tmp_path: Path) -> None:
    folder = str(tmp_path)
    for command in (["sites"], ["rules", "check"], ["rules", "show"]):
        from_env = tpi(*command, env={"TPI_RULES": folder})
        assert from_env.exit_code == 2, command
        assert from_env.stdout == ""
        assert f"{folder}: $TPI_RULES: cannot read" in from_env.stderr, command  # not "--rules", never given
        given = tpi(*command, "--rules", folder)
        assert given.exit_code == 2, command
        assert f"{folder}: --rules: cannot read" in given.stderr, command


@pytest.mark.parametrize(("old", "new"), [("aliases: [trap, upper trapezius]", "aliases: [trap, 'trap; upper']"),
                                        ("aliases: [kenalog]", "aliases: [kenalog, 'tac=40']"),
                                        ("  dexamethasone:", "  dexa=methasone:")])
def test_a_name_holding_a_separator_is_refused(old: str, new: str) -> None:
    # `--drug NAME=DOSE` splits at '=', and `sites`/`totals` CSV join names with '; ': such a name
    # could not be given, or read back, unambiguously.
    text = SPEC_RULES.replace(old, new, 1)
    assert text != SPEC_RULES
    errors = errors_of(text)
    assert any("holds ';' or '=', which tpi uses to separate names" in error for error in errors), errors


def test_a_rule_given_again_through_an_alias_is_refused_as_such() -> None:
    text = with_rule("&r {id: a, kind: max-count, applies_to: [steroid], scope: site, max: 3}\n"
                     "  - {id: b, kind: max-count, applies_to: [steroid], scope: site, max: 2}\n  - *r")
    assert errors_of(text) == [
        f"{PATH}:19: rule 'a': given again through an alias, as rule 3 of the list (a rule is given once)"]


@pytest.mark.parametrize("uses", [40, 3000])
def test_a_long_text_repeated_through_an_alias_is_refused_at_its_line(tpi: Callable[..., Result],
                                                                     write: Callable[[str, str], str],
                                                                     uses: int) -> None:
    """Aliases are shared, not copied, but everything that reads the rules (the alias lookup, `tpi
    sites`) walks each use: 1 MiB of text used 3,000 times took 70 s in `rules check`. Refused once
    the uses add up to more than 32 MiB, naming the line of the uses (the next site's), not the
    anchor's."""
    text = SPEC_RULES.replace("region: cervical,", f"region: &long \"{'y' * (1 << 20)}\",", 1)
    assert text != SPEC_RULES
    text = text.replace("  levator-scapulae: {region: cervical}", "  levator-scapulae: {region: cervical, aliases: [" +
                        ", ".join(["*long"] * uses) + "]}", 1)
    assert text.index("&long") < text.index("levator-scapulae: {region: cervical, aliases")
    path = write("bomb.yaml", text)
    line = 1 + next(k for k, row in enumerate(text.splitlines()) if "*long" in row)
    result = tpi("rules", "check", path)
    assert result.exit_code == 2
    assert result.stderr == (f"{path}:{line}: too large once its aliases are expanded: more than 32 MiB, counting "
                             "32 characters a value (each use of an alias or merge key counts in full, as every "
                             "reader of the file would walk it): write the values out, or repeat less\n")
    for command in (["sites", "--format", "json"], ["rules", "show"]):
        result = tpi(*command, "--rules", path)
        assert result.exit_code == 2, command
        assert result.stdout == "", command


def test_a_merge_key_bomb_is_refused_at_a_line_that_uses_it(tpi: Callable[..., Result],
                                                              write: Callable[[str, str], str]) -> None:
    # A 1,000-key mapping merged into 20,000 mappings: a 290 KB file that would build 20 million
    # entries (merged into 5,000, 14 s and 342 MB). Each merged key counts in full: refused at one of
    # the merging lines.
    keys = ", ".join(f"k{i}: v" for i in range(1000))
    text = SPEC_RULES + f"base: &m {{{keys}}}\nmany:\n" + "  - {<<: *m}\n" * 20_000
    path = write("merge-bomb.yaml", text)
    first_use = SPEC_RULES.count("\n") + 3
    result = tpi("rules", "check", path)
    assert result.exit_code == 2
    line = int(result.stderr.split(":")[1])
    assert first_use <= line < first_use + 20_000, result.stderr
    assert "too large once its aliases are expanded" in result.stderr


def test_a_text_used_through_aliases_within_the_bound_still_loads() -> None:
    text = with_rule("{id: a, kind: max-count, applies_to: [steroid], scope: site, window: 12 months, max: 3, "
                     "source: &why " + "x" * 10_000 + "}\n" +
                     "".join(f"  - {{id: r{k}, kind: max-count, applies_to: [steroid], scope: site, "
                             "window: 12 months, max: 3, source: *why}\n" for k in range(100)))
    rules = parse_rules(text, PATH)
    assert len(rules.rules) > 100
    assert {rule.source for rule in rules.rules if rule.id.startswith("r")} == {"x" * 10_000}


# --- `tpi rules check` -----------------------------------------------------------------------

def test_rules_check_good_file_exits_0(tpi: Callable[..., Result], spec_rules: str) -> None:
    result = tpi("rules", "check", spec_rules)
    assert result.exit_code == 0, result.stderr
    assert "OK" in result.stdout
    assert spec_rules in result.stdout
    assert result.stderr == ""


def test_rules_check_spec_example_exits_0(tpi: Callable[..., Result], write: Callable[[str, str], str]) -> None:
    result = tpi("rules", "check", write("spec.yaml", SPEC_EXAMPLE))
    assert result.exit_code == 0, result.stderr


def test_rules_check_prints_every_error_and_exits_2(tpi: Callable[..., Result],
                                                   write: Callable[[str, str], str]) -> None:
    path = write("bad.yaml", edit("max: 8,", "max: yes,", edit("aliases: [kenalog]", "aliases: [no]",
                                                               edit("interval: 6 weeks", "interval: 6"))))
    result = tpi("rules", "check", path)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3
    for line, number in zip(lines, (7, 24, 30), strict=True):
        assert f"{path}:{number}: " in line
    assert "Traceback" not in result.stderr


def test_rules_check_names_the_line_of_each_refused_tag(tpi: Callable[..., Result],
                                                       write: Callable[[str, str], str]) -> None:
    path = write("bad.yaml", edit("max: 8,", "max: !custom 8,", edit("interval: 6 weeks", "interval: 6")))
    result = tpi("rules", "check", path)
    assert (result.exit_code, result.stdout) == (2, "")
    assert [line.split(": ", 1)[0] for line in result.stderr.splitlines()] == [f"{path}:24", f"{path}:30"]


@pytest.mark.parametrize(("env", "args", "expected"), [
    ({"TPI_RULES": "no-such-rules.yaml"}, [], "no-such-rules.yaml: $TPI_RULES: no such rules file"),
    ({}, ["--rules", "no-such-rules.yaml"], "no-such-rules.yaml: --rules: no such rules file"),
    ({"TPI_PROFILE": "medicar"}, [], "$TPI_PROFILE: unknown profile 'medicar'"),
    ({}, ["--profile", "medicar"], "--profile: unknown profile 'medicar'"),
    ({"TPI_PROFILE": "medicar"}, ["--profile", "medicare"], None),  # the option wins over the variable
])
def test_errors_name_the_environment_variable_the_value_came_from(tpi: Callable[..., Result], env: dict[str, str],
                                                                 args: list[str], expected: str | None) -> None:
    history = str(REPO / "examples" / "history.csv")
    result = tpi("check", history, "--site", "left trapezius", "--dry", "--on", "2026-11-28", *args, env=env)
    if expected is None:
        assert result.exit_code == 0, result.stderr
        return
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"tpi: error: {expected}")


@pytest.mark.parametrize("command", ["check", "show"])
def test_rules_check_and_show_name_tpi_rules(tpi: Callable[..., Result], command: str) -> None:
    result = tpi("rules", command, env={"TPI_RULES": "no-such-rules.yaml"})
    assert (result.exit_code, result.stdout) == (2, "")
    assert "no-such-rules.yaml: $TPI_RULES: no such rules file" in result.stderr
    result = tpi("rules", command, "no-such-rules.yaml", env={"TPI_RULES": "other.yaml"})
    assert result.stderr.endswith(" no-such-rules.yaml: no such rules file\n") or \
        result.stderr == "no-such-rules.yaml: no such rules file\n"  # given as PATH: not named --rules
    result = tpi("rules", command, "--rules", "no-such-rules.yaml")
    assert "no-such-rules.yaml: --rules: no such rules file\n" in result.stderr


@pytest.mark.parametrize(("text", "expected"), [
    ("", ":1: the file is empty"),
    ("version: 1\nrules: [\n", ":3: not valid YAML"),
    (SPEC_RULES.replace("version: 1", "version: !!python/object/apply:os.getcwd []"), ":1: version: unsupported YAML tag"),
])
def test_rules_check_yaml_errors_exit_2(tpi: Callable[..., Result], write: Callable[[str, str], str], text: str,
                                        expected: str) -> None:
    path = write("bad.yaml", text)
    result = tpi("rules", "check", path)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{path}{expected}" in result.stderr


def test_rules_check_missing_file_exits_2(tpi: Callable[..., Result], tmp_path: Path) -> None:
    result = tpi("rules", "check", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "nope.yaml" in result.stderr
    assert result.stdout == ""


def test_rules_check_without_path_uses_tpi_rules(tpi: Callable[..., Result], write: Callable[[str, str], str]) -> None:
    path = write("bad.yaml", edit("max: 8,", "max: yes,"))
    result = tpi("rules", "check", env={"TPI_RULES": path})
    assert result.exit_code == 2
    assert f"{path}:30: " in result.stderr


def test_rules_check_without_path_checks_the_packaged_default(tpi: Callable[..., Result]) -> None:
    result = tpi("rules", "check")
    assert result.exit_code == 0, result.stderr
    assert "OK" in result.stdout


def test_bad_rules_file_given_to_a_command_exits_2_with_path_and_line(tpi: Callable[..., Result],
                                                                      write: Callable[[str, str], str]) -> None:
    rules = write("bad.yaml", edit("max: 8,", "max: yes,"))
    history = write("h.csv", "patient_id,date,site,side,drug,dose\n")
    result = tpi("validate", history, "--rules", rules, "--format", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{rules}:30: " in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- the packaged default rules --------------------------------------------------------------

DEFAULT_SITES = ["trapezius", "levator-scapulae", "rhomboid", "infraspinatus", "supraspinatus", "sternocleidomastoid",
                 "splenius-capitis", "erector-spinae", "quadratus-lumborum", "gluteus-medius", "piriformis",
                 "interspinous-lumbar"]
DEFAULT_DRUGS = ["triamcinolone", "methylprednisolone", "dexamethasone", "betamethasone", "lidocaine",
                 "lidocaine-epinephrine", "bupivacaine", "ropivacaine", "saline"]


@pytest.fixture(scope="module")
def default_rules() -> Rules:
    return load_rules()


@pytest.mark.parametrize("site", DEFAULT_SITES)
def test_default_rules_name_the_spec_sites(default_rules: Rules, site: str) -> None:
    assert site in default_rules.sites
    assert default_rules.sites[site].source


@pytest.mark.parametrize("drug", DEFAULT_DRUGS)
def test_default_rules_name_the_spec_drugs_with_sources(default_rules: Rules, drug: str) -> None:
    assert drug in default_rules.drugs
    assert default_rules.drugs[drug].source


def test_default_rules_classify_the_drugs(default_rules: Rules) -> None:
    classes = {name: default_rules.drugs[name].drug_class for name in DEFAULT_DRUGS}
    assert classes == {
        "triamcinolone": "corticosteroid", "methylprednisolone": "corticosteroid", "dexamethasone": "corticosteroid",
        "betamethasone": "corticosteroid", "lidocaine": "anesthetic", "lidocaine-epinephrine": "anesthetic",
        "bupivacaine": "anesthetic", "ropivacaine": "anesthetic", "saline": "other"}
    assert default_rules.sites["interspinous-lumbar"].lateral is False


def test_default_rules_give_every_rule_a_source(default_rules: Rules) -> None:
    assert default_rules.rules
    assert [rule.id for rule in default_rules.rules if not rule.source] == []


def test_packaged_rules_equal_the_repository_copy() -> None:
    assert Path(DEFAULT_RULES_PATH).read_bytes() == (REPO / "rules.yaml").read_bytes()


def test_sites_command_lists_default_sites(tpi: Callable[..., Result]) -> None:
    result = tpi("sites", "--format", "json")
    assert result.exit_code == 0, result.stderr
    text = json.dumps(json.loads(result.stdout))
    for site in DEFAULT_SITES:
        assert f'"{site}"' in text


@pytest.mark.parametrize(("character", "shown"), [("\x00", "\\x00"), ("\x07", "\\x07")])
def test_a_control_character_in_a_rules_file_is_named_with_its_line(character: str, shown: str) -> None:
    text = SPEC_RULES.replace("reference_steroid: ", f"reference_steroid: {character}", 1)
    line = text[:text.index(character)].count("\n") + 1
    with pytest.raises(TpiError) as refused:
        parse_rules(text, "rules.yaml")
    assert str(refused.value) == f"rules.yaml:{line}: not valid YAML: the character '{shown}' is not allowed"


@pytest.mark.parametrize(("old", "new", "message"), [
    ("dexamethasone: {class: corticosteroid, equivalent_mg: 0.75}", "dexamethasone: {class: corticosteroid, "
     "equivalent_mg: 0}", "drug 'dexamethasone': equivalent_mg must be more than 0"),
    ("bupivacaine: {class: anesthetic, max_mg_per_kg: 2.5, max_mg: 175}", "bupivacaine: {class: anesthetic, "
     "max_mg: 0}", "drug 'bupivacaine': max_mg must be more than 0"),
])
def test_a_zero_limit_is_one_error_not_also_a_missing_one(old: str, new: str, message: str) -> None:
    assert old in SPEC_RULES
    with pytest.raises(TpiError) as refused:
        parse_rules(SPEC_RULES.replace(old, new), "rules.yaml")
    errors = [line for line in str(refused.value).splitlines() if "drug '" in line]
    assert len(errors) == 1
    assert errors[0].endswith(message)


def test_rules_check_gives_bare_path_line_message_lines(tpi: Callable[..., Result], tmp_path: Path) -> None:
    # SPEC.md: "every error as PATH:LINE: message" (no prefix), for a file that is not even YAML too.
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nreference_steroid: [\n", encoding="utf-8")
    result = tpi("rules", "check", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{path}:3: not valid YAML")


def test_rules_check_and_show_take_rules_option_too(tpi: Callable[..., Result], tmp_path: Path) -> None:
    # SPEC.md: "All commands take --rules PATH ..., --profile NAME ..., --format ...".
    rules = tmp_path / "r.yaml"
    rules.write_text(SPEC_RULES, encoding="utf-8")
    checked = tpi("rules", "check", "--rules", str(rules))
    assert checked.exit_code == 0
    assert checked.stdout.startswith(f"{rules}: OK:")
    shown = tpi("rules", "show", "--rules", str(rules), "--format", "json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["path"] == str(rules)
    both = tpi("rules", "show", str(rules), "--rules", str(tmp_path / "other.yaml"))
    assert both.exit_code == 2
    assert "two rules files given" in both.stderr
    # The same file spelled two ways is one file (the path shown is PATH's); a missing one is not the same.
    (tmp_path / "sub").mkdir()
    spelled = tpi("rules", "show", str(rules), "--rules", str(tmp_path / "sub" / ".." / rules.name), "--format", "json")
    assert spelled.exit_code == 0, spelled.stderr
    assert json.loads(spelled.stdout)["path"] == str(rules)
    missing = tpi("rules", "check", str(rules), "--rules", str(tmp_path / "missing.yaml"))
    assert missing.exit_code == 2
    assert "two rules files given" in missing.stderr
    unknown = tpi("rules", "check", "--rules", str(rules), "--profile", "medicar")
    assert unknown.exit_code == 2
    assert "did you mean 'medicare'" in unknown.stderr


def test_sites_take_profile_and_schema_takes_format_json(tpi: Callable[..., Result]) -> None:
    assert tpi("sites", "--profile", "medicare", "--format", "csv").exit_code == 0
    assert tpi("sites", "--profile", "nope").exit_code == 2
    schema = tpi("rules", "schema", "--format", "json")
    assert schema.exit_code == 0
    assert json.loads(schema.stdout)["$schema"].startswith("https://json-schema.org/")


def test_a_duplicate_id_is_reported_even_when_the_rule_has_other_errors(tpi: Callable[..., Result],
                                                                        tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "version: 1\nreference_steroid: triamcinolone\n"
        "drugs:\n  triamcinolone: {class: corticosteroid, equivalent_mg: 4}\nsites:\n  trapezius: {region: neck}\n"
        "rules:\n"
        "  - {id: a, kind: max-count, applies_to: [steroid], scope: site, max: 3, window: 1 year}\n"
        "  - {id: a, kind: max-count, applies_to: [steroid], scope: site, max: 3, window: 1 year, severity: fatal}\n",
        encoding="utf-8")
    result = tpi("rules", "check", str(rules))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{rules}:9: rule 'a': duplicate id (first on line 8)",
        f"{rules}:9: rule 'a': severity must be one of block, warn, got a text ('fatal')",
    ]


def test_rules_show_of_many_rules_is_one_line_each(tpi: Callable[..., Result], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Above PLAIN_ROWS rules (a generated file of 10,000) the table is laid out without rich.
    from tpi_cli.render import table

    monkeypatch.setattr(table, "PLAIN_ROWS", 0)
    rules = tmp_path / "r.yaml"
    rules.write_text(SPEC_RULES, encoding="utf-8")
    result = tpi("rules", "show", str(rules))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    rule_line = next(i for i, line in enumerate(lines) if line.startswith("─"))
    assert lines[rule_line - 1].split() == ["active", "rule", "group", "applies,", "scope,", "limit", "source"]
    steroid_interval = next(line for line in lines if " steroid-interval " in line)
    assert steroid_interval.startswith("yes ")
    assert "min-interval: steroid; site; interval 6 weeks" in steroid_interval


@pytest.mark.parametrize(("base", "grace", "refused"), [
    ("interval: 1 month", "28 days", True),  # from 1 February (non-leap), a month is 28 days
    ("interval: 1 month", "27 days", False),
    ("interval: 1 month", "4 weeks", True),
    ("interval: 6 weeks", "6 weeks", True),
    ("interval: 6 weeks", "41 days", False),
    ("window: 12 months, max: 1", "365 days", True),  # 12 months without a 29 February: 365 days
    ("window: 12 months, max: 1", "364 days", False),
    ("window: 2 months, max: 1", "59 days", True),  # 31 December to 28 February
    ("interval: 31 days", "1 month", True),  # months back: 31 days less a 31-day month is 0
    ("interval: 32 days", "1 month", False),
    ("interval: 1 year", "11 months", False),
])
def test_a_grace_period_must_be_shorter_from_every_start_date(base: str, grace: str, refused: bool) -> None:
    kind = "min-interval" if base.startswith("interval") else "max-count"
    text = with_rule(f"{{id: a, kind: {kind}, applies_to: [steroid], scope: site, {base}, grace: {grace}}}")
    if not refused:
        assert parse_rules(text, PATH).rules[0].grace is not None
        return
    (message,) = errors_of(text)
    assert message.startswith(f"{PATH}:19: rule 'a': grace {grace} is not shorter than ")
    assert "from every start date" in message


@pytest.mark.parametrize(("value", "says"), [
    ("0100", "0100 has a leading zero, which YAML 1.1 reads as an octal number; write 100 if that is meant"),
    ("0300", "0300 has a leading zero, which YAML 1.1 reads as an octal number; write 300 if that is meant"),
    ("00.75", "00.75 has a leading zero; write 0.75"),  # a decimal: YAML reads 0.75, but say it plainly
])
def test_a_number_with_a_leading_zero_is_refused(value: str, says: str) -> None:
    # YAML 1.1 reads 0100 as octal 64; tpi read it as 100: neither is safe to guess.
    text = with_rule(f"{{id: a, kind: max-steroid-dose, applies_to: [steroid], scope: site, max_mg: {value}}}")
    (message,) = errors_of(text)
    assert message == f"{PATH}:19: rule 'a': max_mg: {says}"


@pytest.mark.parametrize("value", ["0", "0.5", "0.75", ".5"])
def test_a_number_below_one_is_no_leading_zero(value: str) -> None:
    text = with_rule(f"{{id: a, kind: max-steroid-dose, applies_to: [steroid], scope: site, max_mg: {value}}}")
    assert parse_rules(text, PATH).rules[0].max_mg is not None


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_a_rules_file_not_in_utf8_is_refused_with_its_line(tpi: Callable[..., Result], tmp_path: Path,
                                                            bom: bytes) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(bom + SPEC_EXAMPLE.encode().replace(b"# unique slug", b"# caf\xe9 slug", 1))
    result = tpi("rules", "check", str(path))
    assert result.exit_code == 2
    line = SPEC_EXAMPLE.split("# unique slug", maxsplit=1)[0].count("\n") + 1
    assert result.stderr == f"{path}:{line}: not UTF-8 text (byte 0xe9)\n"  # rules check: PATH:LINE: message


def test_rules_check_as_json(tpi: Callable[..., Result], write: Callable[[str, str], str], spec_rules: str) -> None:
    good = tpi("rules", "check", spec_rules, "--format", "json")
    assert good.exit_code == 0, good.stderr
    report = json.loads(good.stdout)
    assert (report["valid"], report["errors"], report["rules"], report["profiles"]) == (True, [], 7, ["medicare"])
    bad = tpi("rules", "check", write("bad.yaml", with_rule("{id: a, kind: max-count, applies_to: [steroid], "
                                                            "scope: site, max: 010}")), "--format", "json")
    assert bad.exit_code == 2
    report = json.loads(bad.stdout)
    assert report["valid"] is False
    assert [(e["line"], e["message"]) for e in report["errors"]] == [
        (19, "rule 'a': max: 010 has a leading zero, which YAML 1.1 reads as an octal number; write 10 if that is "
             "meant")]
    assert bad.stderr.count("\n") == 1  # the lint line, as in the table format
    for usage in (["/no/such/rules.yaml"], [spec_rules, "--profile", "medicar"]):  # bad usage: nothing on stdout
        refused = tpi("rules", "check", *usage, "--format", "json")
        assert (refused.exit_code, refused.stdout, refused.stderr.count("\n")) == (2, "", 1), usage
    refused = tpi("rules", "check", "--format", "json", env={"TPI_RULES": "/no/such/rules.yaml"})
    assert (refused.exit_code, refused.stdout) == (2, "")


@pytest.mark.parametrize(("text", "line", "message"), [
    ("", 1, "the file is empty"),
    ("# only a comment\n", 1, "the file is empty"),
    ("version: 1\n  bad: [\n", 2, "not valid YAML: mapping values are not allowed in this context"),
    ("version: 1\n---\nversion: 1\n", 2,
     "not valid YAML: expected a single document in the stream, but found another document"),
])
def test_rules_check_as_json_reports_a_file_it_cannot_parse(tpi: Callable[..., Result],
                                                            write: Callable[[str, str], str], text: str, line: int,
                                                            message: str) -> None:
    # A file read but not valid as a whole (empty, not YAML) is bad input like a schema error, not bad
    # usage: the JSON report says so on stdout (it once wrote nothing), as well as the stderr line.
    path = write("broken.yaml", text)
    result = tpi("rules", "check", path, "--format", "json")
    assert result.exit_code == 2
    assert result.stderr == f"{path}:{line}: {message}\n"
    assert json.loads(result.stdout) == {"schema_version": 1, "path": path, "valid": False, "errors": [
        {"line": line, "field": None, "message": message, "suggestions": []}]}


def test_rules_check_as_json_gives_a_misspelt_units_suggestion(tpi: Callable[..., Result],
                                                               write: Callable[[str, str], str]) -> None:
    # The message's "did you mean 'weeks'" is also in the report's suggestions, as for names.
    path = write("units.yaml", edit("interval: 6 weeks", "interval: 6 weaks"))
    (error,) = json.loads(tpi("rules", "check", path, "--format", "json").stdout)["errors"]
    assert error["message"].endswith("unknown unit 'weaks' (days, weeks, months, years)")
    assert error["suggestions"] == ["weeks"]  # and the stderr line ends "(did you mean 'weeks'?)", as for names


def test_rules_schema_takes_the_common_options(tpi: Callable[..., Result]) -> None:
    plain = tpi("rules", "schema")
    with_options = tpi("rules", "schema", "--rules", "any.yaml", "--profile", "medicare")
    assert with_options.exit_code == 0
    assert with_options.stdout == plain.stdout


def test_a_max_mg_more_precise_than_tpi_counts_is_refused_on_its_rules_line() -> None:
    text = with_rule("{id: a, kind: max-steroid-dose, applies_to: [steroid], scope: site, max_mg: 0.0000000001}")
    (message,) = errors_of(text)
    assert message == f"{PATH}:19: max_mg of rule a is more precise than tpi counts"
