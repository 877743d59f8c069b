"""Click parameter types for tpi's domain words (a date, a drug=dose, a duration, a weight, a
number of points), and the exit-2 error of the command line. A bad value fails at its argument,
with exit 2 and one line."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from tpi_cli.dates import Duration
    from tpi_cli.quantity import Ratio


class BadInput(click.ClickException):
    """Bad usage or bad input: exit 2 with one line on stderr."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        from tpi_cli.errors import printable

        click.echo(f"tpi: error: {printable(self.format_message())}", err=True)


class IsoDate(click.ParamType):  # type: ignore[type-arg]
    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        from tpi_cli.dates import parse_date

        try:
            return parse_date(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class DrugDose(click.ParamType):  # type: ignore[type-arg]
    """``NAME=DOSE``: the name is looked up once the rules are loaded."""

    name = "NAME=DOSE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        name, sep, dose = str(value).partition("=")
        if not sep or not name.strip() or not dose.strip():
            self.fail(f"{value!r} is not NAME=DOSE (e.g. triamcinolone=20mg, lidocaine='3 mL @ 1%')", param, ctx)
        return name.strip(), dose.strip()


class DurationType(click.ParamType):  # type: ignore[type-arg]
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Duration:
        from tpi_cli.dates import Duration

        if isinstance(value, Duration):
            return value
        try:
            duration = Duration.parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if duration.is_zero():
            self.fail("the window must be longer than 0 days", param, ctx)
        return duration


class Weight(click.ParamType):  # type: ignore[type-arg]
    name = "KG"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Ratio:
        from tpi_cli.history_rows import parse_weight

        try:
            return parse_weight(str(value), ValueError)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Points(click.ParamType):  # type: ignore[type-arg]
    """A whole number 1..1000 in ASCII digits (as in a history's points column)."""

    name = "1..1000"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from tpi_cli.errors import quote

        text = str(value).strip()
        # the length first: int() refuses over 4,300 digits with a ValueError of its own
        if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > 4 or not 1 <= int(text) <= 1000:
            self.fail(f"{quote(value)} is not a whole number of trigger points from 1 to 1000", param, ctx)
        return int(text)
