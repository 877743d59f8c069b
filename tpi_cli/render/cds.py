"""``tpi check --format cds-hooks``: a CDS Hooks response (cards), for an EHR to show."""

from __future__ import annotations

import json

from tpi_cli.render.common import DISCLAIMER, iso, rule_group
from tpi_cli.results import ALLOWED, BLOCKED, CheckResult, RuleOutcome
from tpi_cli.rules import ANESTHETIC_DOSE

_SUMMARY_MAX = 139
# Escaped so that rules and user text cannot make emphasis, code, links, HTML or tables.
_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|"})


def _md(text: str) -> str:
    return text.translate(_MARKDOWN_SPECIAL)


def _units(text: str) -> int:
    """Length as a CDS Hooks client (JavaScript) counts it: UTF-16 code units, two for a
    character outside the Basic Multilingual Plane."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _summary(text: str, tail: str = "") -> str:
    """At most 139 characters (UTF-16 code units): ``text`` cut (with an ellipsis) so that
    ``tail``, the part that gives the dates, is always shown whole."""
    room = _SUMMARY_MAX - _units(tail)
    if _units(text) <= room:
        return text + tail
    cut = text[: room - 1]
    while _units(cut) > room - 1:
        cut = cut[:-1]
    return cut + "…" + tail


def _anesthetic_lines(result: CheckResult) -> list[str]:
    """For a proposal with a local anesthetic, each passing ``anesthetic-dose`` rule's message: its
    share of the maximum and the weight it rests on, or that none is known, so that only max_mg
    applies (SPEC.md: "the result says so"). A rule that fails or warns says it on its own card."""
    if not any(drug.is_anesthetic for drug in result.proposal.drugs):
        return []
    return [f"**{_md(o.rule.id)}**: {_md(o.message)}" for o in result.rules
            if o.rule.kind == ANESTHETIC_DOSE and o.status == "pass"]


def _card(result: CheckResult, outcome: RuleOutcome, also: list[str]) -> dict[str, object]:
    rule = outcome.rule
    failed = outcome.status == "fail"
    indicator = "critical" if failed else "warning"
    where = result.proposal.label
    if failed:
        # The verdict's date, not this rule's: another rule may pass later (the detail gives both).
        when = f"from {iso(result.earliest)}" if result.earliest is not None else "on no date"
        summary = _summary(f"{rule.id}: not on {iso(result.on)} at {where}", f"; allowed {when}")
    else:
        summary = _summary(f"{rule.id}: warning for {where}", f" on {iso(result.on)}")
    counted = ", ".join(iso(day) or "" for day in outcome.counted) or "none"
    detail = "\n".join([
        f"**{_md(rule.id)}** ({rule.kind}; {rule_group(rule.profiles)}; {rule.severity})",
        "",
        _md(outcome.message),
        "",
        f"- Dates counted: {counted}",
        f"- Earliest date this rule passes: {iso(outcome.earliest) or 'never'}",
        f"- Earliest date every rule allows: {iso(result.earliest) or 'none'}",
        f"- Source: {_md(rule.source or 'not given in the rules file')}",
        "",
        *(f"Also: {line}\n" for line in also),
        DISCLAIMER,
    ])
    return {"summary": summary, "indicator": indicator, "detail": detail,
            "source": {"label": _summary(rule.source or f"tpi rule {rule.id}")}}


def check_cds(result: CheckResult) -> str:
    # SPEC.md: "one card per failed or warned rule, or one info card when allowed": an allowed
    # proposal with warnings gets its warning cards (no critical card says it is allowed).
    # An allowed proposal's cards (its warnings, or the info card) also give the local anesthetics'
    # share and the weight it rests on: an EHR may show nothing but them.
    also = _anesthetic_lines(result) if result.verdict == ALLOWED else []
    cards: list[dict[str, object]] = [_card(result, outcome, also) for outcome in result.rules
                                      if outcome.status in ("fail", "warn")]
    if result.verdict == ALLOWED and not cards:
        noted = [f"**{_md(o.rule.id)}**: {_md(o.note)}" for o in result.rules if o.note]
        cards.append({
            "summary": _summary(f"Allowed on {iso(result.on)}: {result.category} injection at "
                                f"{result.proposal.label}"),
            "indicator": "info",
            # A rule that passes may still have something to say about planned injections (its note).
            "detail": "\n\n".join(["No active rule fails.", *noted, *also, DISCLAIMER]),
            "source": {"label": "tpi rules"},
        })
    if result.verdict == BLOCKED and not any(c["indicator"] == "critical" for c in cards):
        cards.append({"summary": "Blocked: valid on no date", "indicator": "critical",
                      "detail": f"No date makes this proposal valid.\n\n{DISCLAIMER}",
                      "source": {"label": "tpi rules"}})
    return json.dumps({"cards": cards}, indent=2, ensure_ascii=False) + "\n"
