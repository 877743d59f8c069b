"""The compiled build (setup.py: mypyc) is the one these tests exercise, and it is current.

An editable install (`pip install -e .`) leaves each compiled module beside its source, and Python
loads the compiled one first: an edit to the source is not run until the package is built again.
These tests fail loudly instead of letting the suite pass on stale code.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _compiled_list() -> list[str]:
    """The modules setup.py compiles, read from its COMPILED list (one source of truth)."""
    text = (ROOT / "setup.py").read_text(encoding="utf-8")
    block = text.split("COMPILED = [", 1)[1].split("]", 1)[0]
    return [line.strip().strip('",') for line in block.splitlines() if line.strip().startswith('"')]


def _module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def test_setup_lists_real_modules() -> None:
    paths = _compiled_list()
    assert "tpi_cli/history.py" in paths
    assert "tpi_cli/validate.py" in paths
    for path in paths:
        assert (ROOT / path).is_file(), path


@pytest.mark.skipif(bool(os.environ.get("TPI_PURE_PYTHON")), reason="built as plain Python (TPI_PURE_PYTHON)")
def test_hot_modules_are_compiled() -> None:
    """Without TPI_PURE_PYTHON, `pip install` compiles them: the suite (and CI) then tests the
    compiled code, which also enforces every annotated type at run time."""
    for path in _compiled_list():
        module = importlib.import_module(_module(path))
        assert module.__file__ is not None
        assert not module.__file__.endswith(".py"), f"{path} is not compiled: run pip install -e . again"


@pytest.mark.skipif(not os.environ.get("TPI_PURE_PYTHON"), reason="a compiled build (TPI_PURE_PYTHON not set)")
def test_a_plain_build_runs_the_sources() -> None:
    """TPI_PURE_PYTHON=1 pip install -e . removes what an earlier compiled build left beside the
    sources, which Python would otherwise load first."""
    for path in _compiled_list():
        module = importlib.import_module(_module(path))
        assert module.__file__ is not None
        assert module.__file__.endswith(".py"), f"{path} runs compiled code: run TPI_PURE_PYTHON=1 pip install -e ."


def test_compiled_modules_are_not_stale() -> None:
    """Compiled code older than its source would run the old code. The code of every compiled module
    is in one shared library (``<hash>__mypyc``); each module's own file is a small loader that a
    rebuild may leave untouched, so the library's time is the one to compare."""
    library = next((module for name, module in sys.modules.items() if name.endswith("__mypyc")), None)
    if library is None or library.__file__ is None:
        return  # plain Python (or not loaded: nothing compiled was imported)
    built = Path(library.__file__)
    if built.parent != ROOT:
        return  # a regular (non-editable) install: its source copy is what was compiled
    for path in _compiled_list():
        importlib.import_module(_module(path))
        assert built.stat().st_mtime >= (ROOT / path).stat().st_mtime, (
            f"{path} changed after it was compiled: run pip install -e . again (or TPI_PURE_PYTHON=1 pip install "
            "-e . for a plain-Python install while editing)")
