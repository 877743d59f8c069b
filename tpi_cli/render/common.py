"""Small formatting helpers shared by the renderers."""

from __future__ import annotations

from datetime import date

from tpi_cli.quantity import Ratio

DISCLAIMER = "tpi supports, and does not replace, a clinician's judgement."


def iso(day: int | None) -> str | None:
    return None if day is None else date.fromordinal(day).isoformat()


def mg(units: int, scale: int) -> float:
    """An exact amount shown as mg rounded (half up) to 2 decimals."""
    return Ratio(units, scale).round2()


def mg_text(units: int, scale: int) -> str:
    return Ratio(units, scale).decimal_text(2)


def rule_group(profiles: frozenset[str], severity: str = "block") -> str:
    """``clinical`` for a rule always active, ``payer medicare`` for a profile rule; ``, warn``
    when the rule only warns."""
    group = "payer " + ", ".join(sorted(profiles)) if profiles else "clinical"
    return group + (", warn only" if severity == "warn" else "")
