"""The JSON snapshot of the packaged default rules stays the packaged rules.yaml, parsed."""

from __future__ import annotations

import binascii
import json
import sys
from pathlib import Path

import pytest

from tpi_cli import rules_file as rules_module
from tpi_cli.rules import DEFAULT_RULES_PATH, SNAPSHOT_PATH
from tpi_cli.rules_file import load_rules, parse_rules
from tpi_cli.yamlnodes import load, to_plain


def test_snapshot_is_current() -> None:
    data = Path(DEFAULT_RULES_PATH).read_bytes()
    snapshot = json.loads(Path(SNAPSHOT_PATH).read_text(encoding="utf-8"))
    assert snapshot["rules_yaml_crc32"] == binascii.crc32(data), "run: python -m tpi_cli.rules_file"
    assert snapshot["document"] == to_plain(load(data.decode("utf-8-sig"), "rules.yaml"))


def test_default_rules_from_snapshot_equal_the_yaml() -> None:
    fast = load_rules(None)
    slow = parse_rules(Path(DEFAULT_RULES_PATH).read_text(encoding="utf-8"), "rules.yaml")
    assert [(r.id, r.kind, sorted(r.applies_to), r.scope, str(r.interval), str(r.window), r.max, r.max_ref,
             r.severity, sorted(r.profiles), r.effective, r.source) for r in fast.rules] == \
        [(r.id, r.kind, sorted(r.applies_to), r.scope, str(r.interval), str(r.window), r.max, r.max_ref,
          r.severity, sorted(r.profiles), r.effective, r.source) for r in slow.rules]
    assert {d: (x.ref_factor, x.max_mg, x.max_mg_per_kg, x.aliases) for d, x in fast.drugs.items()} == \
        {d: (x.ref_factor, x.max_mg, x.max_mg_per_kg, x.aliases) for d, x in slow.drugs.items()}
    assert {s: (x.region, x.lateral, x.aliases, x.snomed) for s, x in fast.sites.items()} == \
        {s: (x.region, x.lateral, x.aliases, x.snomed) for s, x in slow.sites.items()}


def test_stale_snapshot_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "rules.snapshot.json"
    document = json.loads(Path(SNAPSHOT_PATH).read_text(encoding="utf-8"))
    document["rules_yaml_crc32"] += 1
    document["document"]["rules"] = []  # a wrong snapshot must never be used
    stale.write_text(json.dumps(document), encoding="utf-8")
    monkeypatch.setattr(rules_module, "SNAPSHOT_PATH", str(stale))
    assert len(load_rules(None).rules) == len(parse_rules(
        Path(DEFAULT_RULES_PATH).read_text(encoding="utf-8"), "x").rules) > 0


def test_check_with_default_rules_does_not_import_yaml_or_rich(tmp_path: Path) -> None:
    import subprocess

    history = tmp_path / "h.csv"
    history.write_text("date,site,side,drug,dose\n2026-01-05,trapezius,left,triamcinolone,20 mg\n", encoding="utf-8")
    argv = ["tpi", "check", str(history), "--site", "left trapezius", "--drug", "triamcinolone=20mg", "--on",
            "2026-11-28", "--format", "json"]
    code = (f"import sys, runpy; sys.argv = {argv!r}\n"
            "try:\n    runpy.run_module('tpi_cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('yaml', 'rich')), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.stderr.strip().splitlines()[-1] == "[]"
    assert json.loads(result.stdout)["verdict"] == "allowed"


@pytest.mark.parametrize("module", ["tpi_cli.rules_file", "tpi_cli.rules"])
def test_the_snapshot_is_rewritten_by_either_module(module: str) -> None:
    import subprocess

    before = Path(SNAPSHOT_PATH).read_bytes()
    result = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == SNAPSHOT_PATH
    assert Path(SNAPSHOT_PATH).read_bytes() == before  # the packaged rules.yaml has not changed
