"""Build: the modules on `validate`'s hot path are compiled with mypyc (part of mypy, the type checker
the project already runs with --strict), which turns their type annotations into C. The same
modules run as plain Python when built with TPI_PURE_PYTHON=1; the two behave alike (mypyc also
checks the annotated types at run time). Everything else is in pyproject.toml."""

import os

from setuptools import setup

# The read-merge-screen-measure-write path of `validate` (see README, "Speed and scale"). Not the
# command line, rules loading or table output: they run once per command, and tests patch them.
COMPILED = [
    "tpi_cli/dates.py",
    "tpi_cli/engine.py",
    "tpi_cli/history.py",
    "tpi_cli/model.py",
    "tpi_cli/quantity.py",
    "tpi_cli/results.py",
    "tpi_cli/validate.py",
    "tpi_cli/render/stream.py",
]


def extensions() -> list:  # type: ignore[type-arg]
    if os.environ.get("TPI_PURE_PYTHON"):
        return []
    from mypyc.build import mypycify

    return mypycify(COMPILED, opt_level="3")


setup(ext_modules=extensions())
