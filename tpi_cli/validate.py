"""``tpi validate``: every injection of every patient against the injections before it."""

from __future__ import annotations

from tpi_cli.engine import FAIL, PASS, PatientIndex, describe, measure
from tpi_cli.model import PatientHistory
from tpi_cli.results import Violation
from tpi_cli.rules import BLOCK, WARN, Rule, Rules


def validate_patient(rules: Rules, active: list[Rule], history: PatientHistory) -> list[Violation]:
    """Each violation once, on the injection that breaks the rule, in evaluation order."""
    index = PatientIndex(rules, active, history)
    found: list[Violation] = []
    for position, injection in enumerate(history.injections):
        for rule in active:
            result = measure(index, rule, injection, position)
            if result[0] <= PASS:
                continue
            _, message = describe(index, rule, injection, position, result)
            found.append(Violation(history.patient_id, injection.day, injection.site.name, injection.side, rule.id,
                                   BLOCK if result[0] == FAIL else WARN, message, injection.override))
    return found
