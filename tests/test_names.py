"""Site, drug and side names as people type them (SPEC.md `check` SITE, "History input" side)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import Result

from tests.conftest import SPEC_RULES
from tpi_cli.errors import TpiError
from tpi_cli.names import BILATERAL, LEFT, RIGHT, normalize, parse_side, split_site_side
from tpi_cli.rules import Rules
from tpi_cli.rules_file import parse_rules


@pytest.mark.parametrize(("text", "expected"), [
    ("trapezius", "trapezius"),
    ("Trapezius", "trapezius"),
    ("  trap  ", "trap"),
    ("Upper  Trapezius", "upper trapezius"),
    ("upper\ttrapezius", "upper trapezius"),
    ("levator-scapulae", "levator scapulae"),
    ("LEVATOR_SCAPULAE", "levator scapulae"),
    ("levator scapulae", "levator scapulae"),
    ("", ""),
])
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_normalize_makes_spellings_of_one_name_equal() -> None:
    assert normalize("Levator-Scapulae") == normalize("levator_scapulae") == normalize(" levator  scapulae ")


@pytest.mark.parametrize(("text", "expected"), [
    ("left", LEFT), ("right", RIGHT), ("bilateral", BILATERAL),
    ("L", LEFT), ("R", RIGHT), ("B", BILATERAL),
    ("l", LEFT), ("r", RIGHT), ("b", BILATERAL),
    ("Left", LEFT), ("RIGHT", RIGHT), ("Bilateral", BILATERAL),
    (" left ", LEFT),
    ("", None), ("   ", None),
])
def test_parse_side(text: str, expected: str | None) -> None:
    assert parse_side(text) == expected


@pytest.mark.parametrize("text", ["x", "up", "leftt", "middle", "LR", "left right", "centre", "0", "-"])
def test_parse_side_refuses_unknown_words(text: str) -> None:
    with pytest.raises(ValueError, match="unknown side"):
        parse_side(text)


@pytest.mark.parametrize(("text", "key", "side"), [
    ("left trapezius", "trapezius", LEFT),
    ("L trap", "trap", LEFT),
    ("trapezius (R)", "trapezius", RIGHT),
    ("trapezius", "trapezius", None),
    ("Right Upper Trapezius", "upper trapezius", RIGHT),
    ("upper trapezius, left", "upper trapezius", LEFT),
    ("B trap", "trap", BILATERAL),
    ("bilateral levator-scapulae", "levator scapulae", BILATERAL),
    ("trap-R", "trap", RIGHT),
    ("left trapezius (L)", "trapezius", LEFT),     # the same side twice is fine
    ("lefttrapezius", "lefttrapezius", None),      # a side word must be a word of its own
])
def test_split_site_side(text: str, key: str, side: str | None) -> None:
    assert split_site_side(text) == (key, side)


@pytest.mark.parametrize("text", ["left right trapezius", "L trap (R)", "bilateral trapezius left"])
def test_split_site_side_refuses_two_different_sides(text: str) -> None:
    with pytest.raises(ValueError, match="two sides"):
        split_site_side(text)


# --- lookups in a rules file -----------------------------------------------------------------

@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(SPEC_RULES, "rules.yaml")


@pytest.mark.parametrize(("text", "site", "side"), [
    ("trapezius", "trapezius", None),
    ("TRAPEZIUS", "trapezius", None),
    ("Upper Trapezius", "trapezius", None),
    ("upper-trapezius", "trapezius", None),
    ("left upper trapezius", "trapezius", LEFT),
    ("Trap (L)", "trapezius", LEFT),
    ("levator scapulae", "levator-scapulae", None),
    ("right Levator_Scapulae", "levator-scapulae", RIGHT),
    ("interspinous lumbar", "interspinous-lumbar", None),
])
def test_find_site_by_name_or_alias_case_insensitively(rules: Rules, text: str, site: str,
                                                       side: str | None) -> None:
    found, found_side = rules.find_site(text)
    assert (found.name, found_side) == (site, side)


@pytest.mark.parametrize(("text", "drug"), [
    ("triamcinolone", "triamcinolone"), ("Kenalog", "triamcinolone"), ("KENALOG", "triamcinolone"),
    ("lignocaine", "lidocaine"), ("Xylocaine", "lidocaine"), (" lidocaine ", "lidocaine"),
])
def test_find_drug_by_name_or_alias_case_insensitively(rules: Rules, text: str, drug: str) -> None:
    assert rules.find_drug(text).name == drug


def test_unknown_site_and_drug_suggest_a_name(rules: Rules) -> None:
    with pytest.raises(TpiError) as site_error:
        rules.find_site("left trapezus")
    assert site_error.value.field == "site"
    assert site_error.value.suggestions == ["left trapezius"]  # the side the text gives, kept
    with pytest.raises(TpiError) as site_error:
        rules.find_site("trapezus")
    assert site_error.value.suggestions == ["trapezius"]
    with pytest.raises(TpiError) as drug_error:
        rules.find_drug("triamcinolon")
    assert drug_error.value.field == "drug"
    assert "triamcinolone" in drug_error.value.suggestions
    assert "did you mean" in str(drug_error.value)


# --- `tpi check --site` ----------------------------------------------------------------------

EMPTY = "patient_id,date,site,side,drug,dose\n"


@pytest.mark.parametrize(("args", "site", "side"), [
    (["--site", "left trapezius"], "trapezius", "left"),
    (["--site", "L trap"], "trapezius", "left"),
    (["--site", "trapezius (R)"], "trapezius", "right"),
    (["--site", "trapezius", "--side", "right"], "trapezius", "right"),
    (["--site", "trapezius", "--side", "B"], "trapezius", "bilateral"),
    (["--site", "Upper Trapezius", "--side", "L"], "trapezius", "left"),
    (["--site", "right trap", "--side", "right"], "trapezius", "right"),
    (["--site", "interspinous-lumbar"], "interspinous-lumbar", None),
])
def test_check_site_with_side_word(tpi: Callable[..., Result], write: Callable[[str, str], str], spec_rules: str,
                                   args: list[str], site: str, side: str | None) -> None:
    history = write("h.csv", EMPTY)
    result = tpi("check", history, "--rules", spec_rules, *args, "--dry", "--on", "2026-01-01", "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["site"], document["side"]) == (site, side)


@pytest.mark.parametrize(("args", "expected"), [
    (["--site", "left right trapezius"], "two sides"),
    (["--site", "trapezius"], "side"),                              # a lateral site needs a side
    (["--site", "left trapezius", "--side", "right"], "contradicts"),
    (["--site", "left interspinous-lumbar"], "no sides"),           # README 9
    (["--site", "interspinous-lumbar", "--side", "left"], "no sides"),
    (["--site", "left trapezus"], "did you mean 'left trapezius'"),  # the suggestion keeps the side
    (["--site", "trapezus (R)"], "did you mean 'right trapezius'"),
    (["--site", "trapezus", "--side", "right"], "did you mean 'trapezius'?"),
    (["--site", "L interspinous-lumbr"], "did you mean 'interspinous-lumbar'"),  # no sides: the bare site
    (["--site", "left"], "site"),
])
def test_check_refuses_bad_site_text(tpi: Callable[..., Result], write: Callable[[str, str], str], spec_rules: str,
                                     args: list[str], expected: str) -> None:
    history = write("h.csv", EMPTY)
    result = tpi("check", history, "--rules", spec_rules, *args, "--dry", "--on", "2026-01-01", "--format", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["paraspinal", "paraspinals", "gluteal", "quadratus", "scalene", "splenius",
                                  "pectoralis", "interspinous"])
def test_the_default_rules_have_no_alias_that_could_name_another_muscle(name: str) -> None:
    # A cervical paraspinal read as the lumbar erector spinae would count against the wrong region.
    from tpi_cli.rules_file import load_rules

    with pytest.raises(TpiError) as refused:
        load_rules(None).find_site(f"left {name}")
    assert "unknown site" in str(refused.value)


def test_the_default_rules_do_not_read_mpa_as_methylprednisolone() -> None:
    from tpi_cli.rules_file import load_rules

    rules = load_rules(None)
    assert rules.find_drug("depo-medrol").name == "methylprednisolone"
    with pytest.raises(TpiError):
        rules.find_drug("MPA")  # also medroxyprogesterone acetate
