"""The README's first command works on the bundled example with the packaged rules."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import Result

from tests.conftest import EXAMPLES, as_json


def test_readme_check_on_example_is_not_yet(tpi: Callable[..., Result]) -> None:
    result = tpi("check", str(EXAMPLES / "history.csv"), "--site", "left trapezius", "--drug", "triamcinolone=20mg",
                 "--on", "2026-11-28", "--format", "json")
    assert result.exit_code == 1, result.stderr
    document = as_json(result)
    assert document["verdict"] == "not-yet"
    assert document["earliest_date"] == "2027-01-15"


def test_readme_first_command_is_allowed_and_exits_0(tpi: Callable[..., Result]) -> None:
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    first = readme.split("```sh\n", 1)[1].splitlines()[0]
    assert "tpi check examples/history.csv" in first
    result = tpi("check", str(EXAMPLES / "history.csv"), "--site", "right trapezius", "--drug", "triamcinolone=20mg",
                 "--drug", "lidocaine=3 mL @ 1%", "--on", "2026-11-28")
    assert '--site "right trapezius" --drug triamcinolone=20mg --drug lidocaine=\'3 mL @ 1%\' --on 2026-11-28' in first
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("ALLOWED on 2026-11-28")
