"""`validate --jobs N` gives the report of one process, whatever the file's order or quoting."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which parallel rounds ran (_work_range, _work_gather, _work_hash)."""
    used: list[str] = []
    pool = parallel._pool

    def spy(work: Callable[[int], parallel.ShardReport], count: int) -> list[parallel.ShardReport]:
        used.append(work.__name__)
        return pool(work, count)

    monkeypatch.setattr(parallel, "_pool", spy)
    return used


def _same_report(tpi: Run, path: str, rules: str, jobs: str = "2") -> Result:
    one = tpi("validate", path, "--rules", rules, "--format", "json", "--jobs", "1")
    many = tpi("validate", path, "--rules", rules, "--format", "json", "--jobs", jobs)
    assert many.stderr == one.stderr
    assert (many.exit_code, many.stdout) == (one.exit_code, one.stdout)
    return many


@pytest.mark.parametrize("jobs", ["2", "3"])
def test_scattered_rows_are_validated_once_each_by_id(tpi: Run, write: Write, spec_rules: str,
                                                      monkeypatch: pytest.MonkeyPatch, jobs: str) -> None:
    used = _spy(monkeypatch)
    path = write("h.csv", history(300, seed=11, order="interleaved"))
    many = _same_report(tpi, path, spec_rules, jobs)
    assert used == ["_work_range", "_work_gather"]
    assert json.loads(many.stdout)["patients"] == 300


def test_scattered_keeps_padded_and_unicode_ids_together(tpi: Run, write: Write, spec_rules: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # The reader strips each ID as text: " P00001", "P00001\u00a0" and "P00001\x1c" are one patient,
    # wherever their rows are; so are the rows of "Pé", however padded.
    used = _spy(monkeypatch)
    lines = history(120, seed=4, order="interleaved").splitlines(keepends=True)
    padded = [HEADER]
    for number, line in enumerate(lines[1:]):
        pid, rest = line.split(",", 1)
        if pid == "P00001":
            pid = [" P00001", "P00001\u00a0", "P00001\x1c", "P00001"][number % 4]
        elif pid == "P00002":
            pid = ["Pé", "\u2003Pé"][number % 2]
        padded.append(f"{pid},{rest}")
    path = write("h.csv", "".join(padded))
    many = _same_report(tpi, path, spec_rules)
    assert used == ["_work_range", "_work_gather"]
    assert json.loads(many.stdout)["patients"] == 120


def test_blank_rows_inside_a_patient_do_not_cut_it(tpi: Run, write: Write, spec_rules: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # A cut at a blank row inside a patient's rows would split the patient between two ranges and
    # send the whole file down the slower scattered path; the cut looks past blank rows.
    used = _spy(monkeypatch)
    lines = history(200, seed=5).splitlines()
    with_blanks = [lines[0]] + [part for number, line in enumerate(lines[1:])
                                for part in (line, ",,,,,,,," if number % 2 else "\u00a0,,")]  # no-break space
    path = write("h.csv", "\n".join(with_blanks) + "\n")
    many = _same_report(tpi, path, spec_rules)
    assert used == ["_work_range"]
    assert json.loads(many.stdout)["patients"] == 200


def test_scattered_crlf_and_blank_lines_keep_their_line_numbers(tpi: Run, write: Write, spec_rules: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    used = _spy(monkeypatch)
    lines = history(150, seed=6, order="interleaved").splitlines()
    # Blank lines, and rows of empty fields as a spreadsheet writes them (skipped like blank lines).
    blanks = ["", ",,,,,,,,", ",,"]
    with_blanks = [lines[0]] + [line for number, line in enumerate(lines[1:]) for line in
                                ((line, blanks[number % 3]) if number % 17 == 0 else (line,))]
    path = write("h.csv", "\r\n".join(with_blanks) + "\r\n")
    many = _same_report(tpi, path, spec_rules)
    assert used == ["_work_range", "_work_gather"]
    assert many.exit_code != 2
    assert json.loads(many.stdout)["patients"] == 150
    # A bad row anywhere: exit 2 naming its line in the file, the same as one process.
    bad = len(with_blanks) * 2 // 3
    with_blanks[bad] = with_blanks[bad].replace(",70,", ",70 kilos,")
    path = write("h.csv", "\r\n".join(with_blanks) + "\r\n")
    many = _same_report(tpi, path, spec_rules)
    assert many.exit_code == 2
    assert f"h.csv:{bad + 1}: weight_kg:" in many.stderr


@pytest.mark.parametrize("change", ["lone carriage return", "quote", "anonymous row"])
def test_files_that_do_not_scatter_give_the_same_report(tpi: Run, write: Write, spec_rules: str,
                                                        monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    used = _spy(monkeypatch)
    lines = history(150, seed=8, order="interleaved").splitlines(keepends=True)
    middle = len(lines) // 2
    if change == "lone carriage return":
        lines[middle] = lines[middle].rstrip("\n") + "\r"
    elif change == "quote":
        lines[middle] = lines[middle].rstrip("\n") + '"why, not"\n'  # a quoted override
    else:
        lines[middle] = "," + lines[middle].split(",", 1)[1]
    path = write("h.csv", "".join(lines))
    _same_report(tpi, path, spec_rules)
    assert used[-2:] == ["_work_gather", "_work_hash"]  # the gathering round gave up, by hash instead


def _interrupt_handler(index: int) -> object:
    import signal

    return signal.getsignal(signal.SIGINT)


def test_workers_leave_ctrl_c_to_the_parent() -> None:
    # Ctrl-C goes to the whole process group: a worker that took it would print its own traceback.
    import signal

    assert parallel._pool(_interrupt_handler, 2) == [signal.SIG_IGN, signal.SIG_IGN]  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["date", "weight_kg", "override"])
def test_by_hash_every_row_is_checked_by_the_worker_of_its_patient(tpi: Run, write: Write, spec_rules: str,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   field: str) -> None:
    # Each worker reads the other patients' rows only as far as their ID and site, side, drug and
    # dose: a bad date, weight or override in any row must still be found (by its patient's worker).
    used = _spy(monkeypatch)
    lines = history(150, seed=9, order="interleaved").splitlines(keepends=True)
    lines[1] = lines[1].rstrip("\n") + '"a, quoted override"\n'  # a quote: neither ranges nor gathering
    for bad in (len(lines) // 3, len(lines) - 1):
        one = list(lines)
        parts = one[bad].rstrip("\n").split(",")
        if field == "date":
            parts[1] = "2024-02-30"
        elif field == "weight_kg":
            parts[-2] = "heavy"
        else:
            parts[-1] = "bad\x00nul"
        one[bad] = ",".join(parts) + "\n"
        many = _same_report(tpi, write("h.csv", "".join(one)), spec_rules)
        assert many.exit_code == 2
        assert f"h.csv:{bad + 1}: {field}" in many.stderr
    assert "_work_hash" in used


def _die(index: int) -> parallel.ShardReport:
    os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
    raise AssertionError("not reached")


def _fail(index: int) -> parallel.ShardReport:
    raise KeyError("a bug in a worker")


@pytest.mark.parametrize("round_", ["_work_range", "_work_gather", "_work_hash"])
@pytest.mark.parametrize("how", [_die, _fail])
def test_a_worker_that_dies_or_fails_leaves_it_to_one_process(tpi: Run, write: Write, spec_rules: str,
                                                              monkeypatch: pytest.MonkeyPatch, round_: str,
                                                              how: Callable[[int], parallel.ShardReport]) -> None:
    # The parent must not wait for ever for a killed worker, nor print a worker's traceback.
    order = {"_work_range": "by-patient", "_work_gather": "interleaved", "_work_hash": "interleaved"}[round_]
    lines = history(120, seed=5, order=order).splitlines(keepends=True)
    if round_ == "_work_hash":
        lines[1] = lines[1].rstrip("\n") + '"a, quoted override"\n'
    path = write("h.csv", "".join(lines))
    monkeypatch.setattr(parallel, round_, how)
    used = _spy(monkeypatch)
    many = _same_report(tpi, path, spec_rules)
    assert many.exit_code == 1
    assert how.__name__ in used  # the round ran (and ended early)


@pytest.mark.parametrize("end", ["\n", "\r\n"])
@pytest.mark.parametrize("what", ["row", "blank line"])
def test_a_line_too_long_only_with_its_line_end_is_refused_as_on_one_process(tpi: Run, write: Write,
                                                                             spec_rules: str, end: str,
                                                                             what: str) -> None:
    # The gathering round splits the lines off their "\n"; the reader counts it, and it reads blank
    # lines too (the gathering round skips them).
    from tpi_cli.history import MAX_LINE

    lines = history(60, seed=4, order="interleaved").splitlines()
    lines[0] = lines[0] + ",notes"
    lines[1:] = [line + ",x" for line in lines[1:]]
    bad = len(lines) // 2
    if what == "row":
        lines[bad] += "x" * (MAX_LINE - len(lines[bad]) - len(end))
    else:
        lines.insert(bad, " " * (MAX_LINE - len(end)))
    body = end.join(lines) + end
    assert max(len(line) for line in body.splitlines(keepends=True)) == MAX_LINE
    many = _same_report(tpi, write("h.csv", body), spec_rules)
    assert many.exit_code == 2
    assert f"h.csv:{bad + 1}: line longer than 1 MiB" in many.stderr


PADS = ["", " ", "\t", "\u3000", "\x1c", "\x85", "\u2028", "\xa0"]
BLANKS = ["", " ", "\t", "\u3000", "\x1c", "\x0b", "\x0c", ",,,,,,,,"]


@st.composite
def messy_files(draw: st.DrawFn) -> bytes:
    """A small history with what a worker could get wrong: line ends, a BOM, padded IDs, blank
    lines, anonymous and bad rows, quotes, no final line end, non-ASCII IDs."""
    patients = draw(st.integers(1, 12))
    ids = [draw(st.sampled_from(["P1", "P2", "Pé", "P\u00e9x", "Q7", "P1 2", "r", "P10", "p1", "P3"])) + str(k)
           for k in range(patients)]
    quotes = draw(st.integers(0, 4)) == 0  # a quoted field sends the run by hash, not gathering
    rows = []
    for _ in range(draw(st.integers(1, 40))):
        who = draw(st.integers(0, patients - 1))
        pad = draw(st.sampled_from(PADS)), draw(st.sampled_from(PADS))
        pid = pad[0] + ids[who] + pad[1]
        site = draw(st.sampled_from(SITES))
        side = "" if site == "interspinous-lumbar" else draw(st.sampled_from(["left", "right", "bilateral", ""]))
        drug, dose = draw(st.sampled_from(DRUGS))
        date = f"2026-{draw(st.integers(1, 3)):02d}-{draw(st.integers(1, 28)):02d}"
        points = str(len(site + side) % 6 + 1)
        override = draw(st.sampled_from(["", "", "", "ok", '"a, quoted"' if quotes else "ok"]))
        rows.append(f"{pid},{date},{site},{side},{drug},{dose},{points},70,{override}")
    change = draw(st.sampled_from(["none", "none", "none", "bad date", "bad weight", "fields", "anonymous",
                                   "lone cr"]))
    if change != "none":
        at = draw(st.integers(0, len(rows) - 1))
        parts = rows[at].split(",")
        if change == "bad date":
            parts[1] = "2026-02-30"
        elif change == "bad weight":
            parts[7] = "heavy"
        elif change == "fields":
            parts.append("extra")
        elif change == "anonymous":
            parts[0] = ""
        else:
            parts[8] = "a\rb"
        rows[at] = ",".join(parts)
    for _ in range(draw(st.integers(0, 3))):
        rows.insert(draw(st.integers(0, len(rows))), draw(st.sampled_from(BLANKS)))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    text = end.join([HEADER.rstrip("\n"), *rows]) + (end if draw(st.booleans()) else "")
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode("utf-8")


@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=messy_files(), jobs=st.sampled_from(["2", "3"]))
def test_any_file_gives_the_report_of_one_process(tpi: Run, tmp_path: Path, spec_rules: str, data: bytes,
                                                  jobs: str) -> None:
    path = tmp_path / "messy.csv"
    path.write_bytes(data)
    _same_report(tpi, str(path), spec_rules, jobs)
