"""Build: the modules on `validate`'s hot path are compiled with mypyc (part of mypy, the type checker
the project already runs with --strict), which turns their type annotations into C. The same
modules run as plain Python when built with TPI_PURE_PYTHON=1, or when compiling fails (no C
compiler, no Python headers): the two behave alike (mypyc also checks the annotated types at run
time). Everything else is in pyproject.toml."""

import glob
import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The read-merge-screen-measure-write path of `validate` (see README, "Speed and scale"). Not the
# command line, rules loading or table output: they run once per command, and tests patch them.
COMPILED = [
    "tpi_cli/batch.py",
    "tpi_cli/dates.py",
    "tpi_cli/engine.py",
    "tpi_cli/history.py",
    "tpi_cli/history_rows.py",
    "tpi_cli/model.py",
    "tpi_cli/quantity.py",
    "tpi_cli/results.py",
    "tpi_cli/validate.py",
    "tpi_cli/render/stream.py",
]
HERE = os.path.dirname(os.path.abspath(__file__))


def _compiled_files() -> list[str]:
    """Compiled modules an earlier build left beside their sources (an editable install), which
    Python would load before the sources."""
    found = glob.glob(os.path.join(HERE, "*__mypyc*.so")) + glob.glob(os.path.join(HERE, "*__mypyc*.pyd"))
    for path in COMPILED:
        stem = os.path.join(HERE, path[:-3])
        found += glob.glob(stem + ".*.so") + glob.glob(stem + ".*.pyd")
    return found


def _plain(reason: str) -> list[Any]:
    if reason:
        print(f"tpi: {reason}; installing plain Python", file=sys.stderr)
    for path in _compiled_files():
        os.remove(path)
    return []


class _BuildExt(build_ext):
    """A failed compile (no compiler or headers) falls back to plain Python instead of failing."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any failure of the C toolchain
            _plain(f"compiling with mypyc failed ({exc})")
            self.extensions = []


def extensions() -> list[Any]:
    if os.environ.get("TPI_PURE_PYTHON"):
        return _plain("")
    try:
        from mypyc.build import mypycify

        return list(mypycify(COMPILED, opt_level="3"))
    except (Exception, SystemExit) as exc:  # mypyc missing, or it refused the code
        return _plain(f"mypyc could not compile ({exc!r})")


setup(ext_modules=extensions(), cmdclass={"build_ext": _BuildExt})
