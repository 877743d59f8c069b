"""`validate --jobs N` gives the report of one process, whatever the file's order or quoting."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable

import pytest
from click.testing import Result

from tests.conftest import HEADER
from tpi_cli import parallel

Run = Callable[..., Result]
Write = Callable[[str, str], str]

SITES = ["trapezius", "levator-scapulae", "infraspinatus", "interspinous-lumbar"]
DRUGS = [("triamcinolone", "40 mg"), ("dexamethasone", "8 mg"), ("lidocaine", "10 mL @ 1%"), ("", "")]


def history(patients: int, seed: int, order: str = "sorted", quote: bool = False) -> str:
    rng = random.Random(seed)
    blocks = []
    for number in range(patients):
        rows = []
        for _ in range(rng.randint(1, 8)):
            site = rng.choice(SITES)
            side = "" if site == "interspinous-lumbar" else rng.choice(["left", "right", "bilateral", ""])
            drug, dose = rng.choice(DRUGS)
            date = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            points = str(len(site + side) % 6 + 1)  # rows of one injection must agree
            override = '"reason, with a comma"' if quote and number % 7 == 0 else ""
            rows.append(f"P{number:05d},{date},{site},{side},{drug},{dose},{points},70,{override}\n")
        blocks.append(rows)
    if order == "shuffled-patients":
        rng.shuffle(blocks)
    lines = [row for block in blocks for row in block]
    if order == "interleaved":
        rng.shuffle(lines)
    return HEADER + "".join(lines)


@pytest.fixture(autouse=True)
def small_files_go_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)


@pytest.mark.parametrize("order", ["sorted", "shuffled-patients", "interleaved"])
@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_jobs_give_the_same_report(tpi: Run, write: Write, spec_rules: str, order: str, fmt: str) -> None:
    path = write("h.csv", history(300, seed=5, order=order))
    one = tpi("validate", path, "--rules", spec_rules, "--format", fmt, "--jobs", "1")
    many = tpi("validate", path, "--rules", spec_rules, "--format", fmt, "--jobs", "3")
    assert one.exit_code == many.exit_code == 1
    assert many.stdout == one.stdout
    if fmt == "json":
        assert json.loads(many.stdout)["patients"] == 300


def test_quoted_fields_fall_back_to_one_process(tpi: Run, write: Write, spec_rules: str) -> None:
    path = write("h.csv", history(200, seed=9, quote=True))
    one = tpi("validate", path, "--rules", spec_rules, "--format", "json", "--jobs", "1")
    many = tpi("validate", path, "--rules", spec_rules, "--format", "json", "--jobs", "3")
    assert many.stdout == one.stdout
    assert "reason, with a comma" in many.stdout


def test_bad_row_is_reported_once_with_its_line(tpi: Run, write: Write, spec_rules: str) -> None:
    text = history(200, seed=3)
    lines = text.splitlines(keepends=True)
    lines[len(lines) * 3 // 4] = lines[len(lines) * 3 // 4].replace(",70,", ",70 kilos,")
    path = write("h.csv", "".join(lines))
    result = tpi("validate", path, "--rules", spec_rules, "--format", "json", "--jobs", "3")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"h.csv:{len(lines) * 3 // 4 + 1}: weight_kg:" in result.stderr


def test_plan_cuts_only_at_patient_boundaries(write: Write) -> None:
    path = write("h.csv", history(100, seed=2))
    planned = parallel.plan(path, 4)
    assert planned is not None
    header, ranges = planned
    with open(path, "rb") as handle:
        data = handle.read()
    assert header == data[: data.index(b"\n") + 1]
    assert ranges[0][0] == len(header)
    assert ranges[-1][1] == len(data)
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end == start
        before = data[:start].rstrip(b"\n").rsplit(b"\n", 1)[-1].split(b",")[0]
        after = data[start:].split(b",", 1)[0]
        assert before != after
