"""Doses and exact numbers (SPEC.md `check` DOSE forms, "Words": exact arithmetic; README 12 and 20)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import Result

from tests.conftest import SPEC_RULES
from tpi_cli.quantity import MASS, UNITS, VOLUME, Amount, Ratio, parse_decimal, parse_dose

PG_PER_MG = 10**9


def mg(value: Amount) -> Ratio:
    assert value.kind == MASS
    found = value.mg
    assert found is not None
    return found


# --- parse_dose: the forms SPEC.md lists ------------------------------------------------------

@pytest.mark.parametrize(("text", "expected_mg"), [
    ("20mg", Ratio(20)),
    ("20 mg", Ratio(20)),
    ("20 MG", Ratio(20)),
    ("500 mcg", Ratio(1, 2)),
    ("500mcg", Ratio(1, 2)),
    ("500 ug", Ratio(1, 2)),
    ("500 µg", Ratio(1, 2)),
    ("1 g", Ratio(1000)),
    ("0.75 mg", Ratio(3, 4)),
    (".5 mg", Ratio(1, 2)),
    ("3mL@1%", Ratio(30)),               # a percent is g/100 mL: 1% = 10 mg/mL
    ("3 mL @ 1%", Ratio(30)),
    ("3 ml @ 1 %", Ratio(30)),
    ("3 mL @ 10 mg/mL", Ratio(30)),
    ("3mL@10mg/mL", Ratio(30)),
    ("4 mL @ 0.25%", Ratio(10)),
    ("10 mL @ 0.5%", Ratio(50)),
    ("2 mL @ 40 mg/mL", Ratio(80)),
    ("1 mL @ 100%", Ratio(1000)),
    ("0.3 mL @ 2%", Ratio(6)),
])
def test_parse_dose_mass_forms(text: str, expected_mg: Ratio) -> None:
    for mass_only in (True, False):
        assert mg(parse_dose(text, mass_only=mass_only)) == expected_mg


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("5 mL", VOLUME, 5000),            # microlitres
    ("0.5 mL", VOLUME, 500),
    ("100 units", UNITS, 100_000),     # thousandths of a unit
    ("1 unit", UNITS, 1000),
])
def test_other_drugs_may_be_given_as_volume_or_units(text: str, kind: str, value: int) -> None:
    amount = parse_dose(text, mass_only=False)
    assert (amount.kind, amount.value) == (kind, value)
    assert amount.mg is None


@pytest.mark.parametrize(("text", "reason"), [
    ("20", "no unit"),                               # unitless: a known cause of medication errors
    ("0.5", "no unit"),
    ("-20 mg", "negative"),
    ("-3 mL @ 1%", "negative"),
    ("0 mg", "more than 0"),
    ("0.0 mg", "more than 0"),
    ("0 mL @ 1%", "more than 0"),
    ("3 mL @ 0%", "more than 0"),
    ("NaN mg", "finite"),
    ("nan", "finite"),
    ("inf", "finite"),
    ("inf mg", "finite"),
    ("Infinity mg", "finite"),
    ("1e309 mg", "exponent"),
    ("1e3 mg", "exponent"),
    ("3 mL", "needs a strength"),                    # volume without strength for a drug that needs a mass
    ("3 mL @ 101%", "above 100%"),
    ("3 mL @ 150 %", "above 100%"),
    ("3 mL @ 100.000000000000001%", "above 100%"),  # exact: a float would read it as 100
    ("", "missing dose"),
    ("   ", "missing dose"),
    ("20 kg", "not a dose"),
    ("20 mgs", "not a dose"),
    ("20,5 mg", "not a dose"),
    ("+20 mg", "not a dose"),
    ("20 mg/mL", "not a dose"),
    ("100 units", "not a dose"),                     # units are not a mass
    ("0.0000000001 mg", "more precise"),             # below a picogram: refused, not rounded
    ("12345678901234567890 mg", "digits"),
])
def test_parse_dose_refusals_give_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_dose(text, mass_only=True)


@pytest.mark.parametrize("text", ["20", "-5 mL", "0 units", "NaN mL", "5 mL @ 101%"])
def test_other_drug_doses_are_still_refused_when_bad(text: str) -> None:
    with pytest.raises(ValueError, match=r"no unit|negative|more than 0|finite|above 100%"):
        parse_dose(text, mass_only=False)


def test_a_picogram_is_the_finest_dose() -> None:
    assert parse_dose("0.000000001 mg", mass_only=True).value == 1
    assert parse_dose("0.000001 mcg", mass_only=True).value == 1


# --- exactness -------------------------------------------------------------------------------

def test_sums_are_exact_where_floats_are_not() -> None:
    total = parse_dose("0.1 mg", mass_only=True).plus(parse_dose("0.2 mg", mass_only=True))
    assert total == parse_dose("0.3 mg", mass_only=True)
    assert mg(total) == Ratio(3, 10)
    assert 0.1 + 0.2 != 0.3  # what the exact arithmetic avoids


def test_solution_strength_is_exact() -> None:
    # 0.1 mL @ 0.3% = 0.3 mg; as floats 0.1 * 0.3 * 10 = 0.30000000000000004
    assert mg(parse_dose("0.1 mL @ 0.3%", mass_only=True)) == Ratio(3, 10)


def test_adding_a_mass_to_a_volume_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot add"):
        parse_dose("5 mL", mass_only=False).plus(parse_dose("5 mg", mass_only=False))


# --- Ratio and parse_decimal -----------------------------------------------------------------

def test_ratio_is_reduced_and_compares_exactly() -> None:
    assert Ratio(2, 4) == Ratio(1, 2)
    assert hash(Ratio(2, 4)) == hash(Ratio(1, 2))
    assert (Ratio(2, 4).num, Ratio(2, 4).den) == (1, 2)
    assert Ratio(1, 3) + Ratio(1, 6) == Ratio(1, 2)
    assert Ratio(1, 10) + Ratio(2, 10) == Ratio(3, 10)
    assert Ratio(2, 3) * Ratio(3, 4) == Ratio(1, 2)
    assert Ratio(4) / Ratio(3, 4) == Ratio(16, 3)
    assert Ratio(1, 3) < Ratio(34, 100)
    assert Ratio(1, 3) <= Ratio(1, 3)
    assert not Ratio(1, 3) < Ratio(1, 3)
    assert not Ratio(1, 2) <= Ratio(49, 100)
    assert Ratio(6, 3).is_int()
    assert not Ratio(1, 3).is_int()
    assert float(Ratio(3, 4)) == 0.75


def test_ratio_refuses_bad_denominators() -> None:
    with pytest.raises(ValueError, match="denominator"):
        Ratio(1, 0)
    with pytest.raises(ValueError, match="denominator"):
        Ratio(1, -2)
    with pytest.raises(ZeroDivisionError):
        Ratio(1) / Ratio(0)


@pytest.mark.parametrize(("ratio", "expected"), [
    (Ratio(5, 1000), 0.01),          # 0.005: half up
    (Ratio(15, 1000), 0.02),
    (Ratio(1, 8), 0.13),             # 0.125
    (Ratio(2675, 1000), 2.68),       # round(2.675, 2) == 2.67 in binary floats
    (Ratio(1005, 1000), 1.01),       # round(1.005, 2) == 1.0 in binary floats
    (Ratio(2, 3), 0.67),
    (Ratio(1, 3), 0.33),
    (Ratio(16, 3), 5.33),            # 1 mg dexamethasone in triamcinolone mg (4 / 0.75)
    (Ratio(4, 1000), 0.0),
    (Ratio(20), 20.0),
    (Ratio(0), 0.0),
])
def test_round2_is_half_up(ratio: Ratio, expected: float) -> None:
    assert ratio.round2() == expected


@pytest.mark.parametrize(("ratio", "places", "expected"), [
    (Ratio(25, 2), 2, "12.5"),
    (Ratio(16, 3), 2, "5.33"),
    (Ratio(20), 2, "20"),
    (Ratio(2675, 1000), 2, "2.68"),
    (Ratio(1, 2000), 3, "0.001"),
])
def test_decimal_text(ratio: Ratio, places: int, expected: str) -> None:
    assert ratio.decimal_text(places) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("20", Ratio(20)), ("0.75", Ratio(3, 4)), (".5", Ratio(1, 2)), ("20.", Ratio(20)), ("007", Ratio(7)),
])
def test_parse_decimal_accepts_plain_decimals(text: str, expected: Ratio) -> None:
    assert parse_decimal(text) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("-1", "negative"), ("nan", "finite"), ("inf", "finite"), ("-inf", "finite"), ("Infinity", "finite"),
    ("1e3", "plain decimal"), ("1,5", "plain decimal"), ("0x10", "plain decimal"), ("", "plain decimal"),
    ("+1", "plain decimal"), ("1234567890123456789012", "digits"),
])
def test_parse_decimal_refusals(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_decimal(text)


# --- through the CLI -------------------------------------------------------------------------

EMPTY = "patient_id,date,site,side,drug,dose\n"


@pytest.mark.parametrize(("drug", "name", "dose_mg", "mg_ref"), [
    ("triamcinolone=20mg", "triamcinolone", 20.0, 20.0),
    ("kenalog=20 mg", "triamcinolone", 20.0, 20.0),
    ("triamcinolone=500 mcg", "triamcinolone", 0.5, 0.5),
    ("dexamethasone=1mg", "dexamethasone", 1.0, 5.33),       # 1 * 4 / 0.75, shown half up
    ("dexamethasone=0.75 mg", "dexamethasone", 0.75, 4.0),
    ("lidocaine=3mL@1%", "lidocaine", 30.0, None),
    ("lidocaine=3 mL @ 10 mg/mL", "lidocaine", 30.0, None),
    ("bupivacaine=4 mL @ 0.25%", "bupivacaine", 10.0, None),
])
def test_check_reports_the_parsed_dose(tpi: Callable[..., Result], write: Callable[[str, str], str],
                                       spec_rules: str, drug: str, name: str, dose_mg: float,
                                       mg_ref: float | None) -> None:
    history = write("h.csv", EMPTY)
    result = tpi("check", history, "--rules", spec_rules, "--site", "left trapezius", "--drug", drug,
                 "--on", "2026-01-01", "--weight-kg", "70", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    drugs = json.loads(result.stdout)["drugs"]
    assert drugs == [{"name": name, "dose_mg": dose_mg, "mg_ref": mg_ref}]


@pytest.mark.parametrize(("drug", "reason"), [
    ("triamcinolone=20", "no unit"),
    ("triamcinolone=-20 mg", "negative"),
    ("triamcinolone=0 mg", "more than 0"),
    ("triamcinolone=NaN mg", "finite"),
    ("triamcinolone=inf", "finite"),
    ("triamcinolone=1e309 mg", "exponent"),
    ("lidocaine=3 mL", "strength"),
    ("lidocaine=3 mL @ 101%", "100%"),
])
def test_check_refuses_bad_doses_with_exit_2(tpi: Callable[..., Result], write: Callable[[str, str], str],
                                             spec_rules: str, drug: str, reason: str) -> None:
    history = write("h.csv", EMPTY)
    result = tpi("check", history, "--rules", spec_rules, "--site", "left trapezius", "--drug", drug,
                 "--on", "2026-01-01", "--format", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert reason in result.stderr
    assert "--drug" in result.stderr
    assert "Traceback" not in result.stderr


def _dose_rules(max_mg: str) -> str:
    head = SPEC_RULES.split("rules:\n")[0]
    return head + f"rules:\n  - {{id: dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, max_mg: {max_mg}}}\n"


@pytest.mark.parametrize(("max_mg", "doses", "violations"), [
    ("0.3", [("triamcinolone", "0.1 mg"), ("triamcinolone", "0.2 mg")], 0),   # 0.1 + 0.2 lands on 0.3
    ("0.3", [("triamcinolone", "0.1 mg"), ("triamcinolone", "0.2 mg"), ("triamcinolone", "1 mcg")], 1),
    ("4", [("dexamethasone", "0.25 mg")] * 3, 0),                           # 3 * 4/3 mg_ref = 4 exactly
    ("4", [("dexamethasone", "0.25 mg")] * 4, 1),
    ("0.3", [("triamcinolone", "0.1 mL @ 0.1%"), ("triamcinolone", "0.2 mL @ 1 mg/mL")], 0),
])
def test_a_total_landing_exactly_on_a_limit_is_within_it(tpi: Callable[..., Result],
                                                         write: Callable[[str, str], str], max_mg: str,
                                                         doses: list[tuple[str, str]], violations: int) -> None:
    rules = write("rules.yaml", _dose_rules(max_mg))
    rows = "".join(f"P1,2026-0{month + 1}-01,trapezius,left,{drug},{dose}\n"
                   for month, (drug, dose) in enumerate(doses))
    history = write("h.csv", EMPTY + rows)
    result = tpi("validate", history, "--rules", rules, "--format", "json")
    assert result.exit_code == (1 if violations else 0), result.stderr
    document = json.loads(result.stdout)
    assert len(document["violations"]) == violations
    if violations:
        assert document["violations"][0]["date"] == f"2026-0{len(doses)}-01"


@pytest.mark.parametrize("text", ["٣٠٠٠ mg", "２0 mg", "5 mL @ １%", "0.٥ mg"])
def test_doses_take_ascii_digits_only(text: str) -> None:
    # Digits of other scripts (which int() and Decimal read) are refused in a dose, as in points.
    with pytest.raises(ValueError, match=r"not a dose|not a plain decimal"):
        parse_dose(text, mass_only=False)


@pytest.mark.parametrize("text", ["٧٠", "７0"])
def test_decimals_take_ascii_digits_only(text: str) -> None:
    with pytest.raises(ValueError, match="not a plain decimal"):
        parse_decimal(text)
