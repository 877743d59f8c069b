"""Shared fixtures: a CLI runner, file writers and the rules of SPEC.md's example."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tpi_cli.cli import cli

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

# The rules file of SPEC.md "Rules file", with sources added and the one-region rule kept under the
# medicare profile. Tests that need other numbers write their own.
SPEC_RULES = """\
version: 1
reference_steroid: triamcinolone
defaults:
  steroid: {drug: triamcinolone, dose: 20 mg}
  anesthetic: {drug: lidocaine, dose: 3 mL @ 1%}
drugs:
  triamcinolone: {class: corticosteroid, equivalent_mg: 4, aliases: [kenalog]}
  methylprednisolone: {class: corticosteroid, equivalent_mg: 4}
  dexamethasone: {class: corticosteroid, equivalent_mg: 0.75}
  lidocaine: {class: anesthetic, max_mg_per_kg: 4.5, max_mg: 300, aliases: [lignocaine, xylocaine]}
  bupivacaine: {class: anesthetic, max_mg_per_kg: 2.5, max_mg: 175}
  saline: {class: other}
sites:
  trapezius: {region: cervical, aliases: [trap, upper trapezius], snomed: "31764008"}
  levator-scapulae: {region: cervical}
  infraspinatus: {region: scapular}
  interspinous-lumbar: {region: lumbar, lateral: false}
rules:
  - id: steroid-interval
    kind: min-interval
    applies_to: [steroid]
    counts: [steroid]
    scope: site
    interval: 6 weeks
    source: "test source"
  - {id: steroid-count, kind: max-count, applies_to: [steroid], scope: site, window: 12 months, max: 3}
  - {id: steroid-site-dose, kind: max-steroid-dose, applies_to: [steroid], scope: site, window: 12 months, max_mg: 120}
  - {id: sessions, kind: max-count, applies_to: [steroid, anesthetic, other], scope: patient, unit: session, window: 12 months, max: 3}
  - {id: anesthetic-dose, kind: anesthetic-dose, applies_to: any, scope: session}
  - {id: points, kind: max-points, applies_to: any, scope: session, max: 8, severity: warn}
  - {id: one-region, kind: max-regions, applies_to: any, scope: session, max: 1, profiles: [medicare]}
"""

# One lateral site, triamcinolone and lidocaine, and the defaults `tpi next` needs: the rules follow.
ONE_SITE_RULES_HEAD = """\
version: 1
reference_steroid: triamcinolone
defaults:
  steroid: {drug: triamcinolone, dose: 20 mg}
  anesthetic: {drug: lidocaine, dose: 3 mL @ 1%}
drugs:
  triamcinolone: {class: corticosteroid, equivalent_mg: 4}
  lidocaine: {class: anesthetic, max_mg: 300}
sites:
  trapezius: {region: cervical}
rules:
"""

HEADER = "patient_id,date,site,side,drug,dose,points,weight_kg,override\n"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], str]:
    """Write a file under tmp_path and return its path as a string."""

    def _write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    return _write


@pytest.fixture
def spec_rules(write: Callable[[str, str], str]) -> str:
    return write("rules.yaml", SPEC_RULES)


@pytest.fixture
def tpi(runner: CliRunner) -> Callable[..., Result]:
    """Run ``tpi ARGS``; stdin via ``input=``; environment cleared of TPI_* variables."""

    def _run(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Result:
        environment = {"TPI_RULES": None, "TPI_PROFILE": None, **(env or {})}
        return runner.invoke(cli, list(args), input=input, env=environment, catch_exceptions=False)  # type: ignore[arg-type]

    return _run


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)
