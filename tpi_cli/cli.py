"""The command line: parses arguments, calls the core and hands its result to a renderer. The
parameter types are in ``params``; errors become exit codes, and stdout is guarded, in ``shell``.

Exit codes: 0 allowed / no blocking violation; 1 not allowed / a blocking violation; 2 bad usage
or bad input (one line on stderr, nothing on stdout). The core and the renderers are imported
inside each command, so ``tpi --help`` and ``tpi --version`` load neither rich nor yaml, and the
JSON output never loads rich.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tpi_cli import __version__, shell
from tpi_cli.params import BadInput, DrugDose, DurationType, IsoDate, Points, Weight
from tpi_cli.shell import (
    buffer_stdout,
    emit,
    escape_what_stdout_cannot_encode,
    handles_errors,
    name_the_environment,
    output_failed,
)

if TYPE_CHECKING:
    from tpi_cli.dates import Duration
    from tpi_cli.model import PatientHistory
    from tpi_cli.quantity import Ratio
    from tpi_cli.rules import Rules, Site

F = TypeVar("F", bound=Callable[..., Any])


def rules_options(command: F) -> F:
    command = click.option("--profile", "profiles", multiple=True, envvar="TPI_PROFILE", metavar="NAME",
                           help="Activate the payer rules of a profile (repeatable; else $TPI_PROFILE).")(command)
    # A directory is refused by the rules reader, which names $TPI_RULES when the value came from it.
    return click.option("--rules", "rules_path", type=click.Path(), envvar="TPI_RULES",
                           metavar="PATH", help="Rules file (else $TPI_RULES, else the packaged default).")(command)


def _profiles(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(part.strip() for value in values for part in value.replace(",", " ").split() if part.strip())


def _load(rules_path: str | None, profile_values: tuple[str, ...]) -> tuple[Rules, frozenset[str]]:
    from tpi_cli.rules_file import load_rules

    rules = load_rules(rules_path)
    profiles = _profiles(profile_values)
    rules.check_profiles(profiles)
    return rules, profiles


def _day_of(on: date | None) -> int:
    """``--on`` (default: today) as an ordinal, within the dates tpi accepts."""
    from tpi_cli.dates import check_date_range

    day = on if on is not None else date.today()
    try:
        return check_date_range(day).toordinal()
    except ValueError as exc:
        raise BadInput(f"--on: {exc}") from None


def _one_patient(path: str, rules: Rules, patient: str | None) -> PatientHistory:
    """The history of one patient (``--patient``, or the only one in the file)."""
    from tpi_cli.errors import TpiError, input_name, printable
    from tpi_cli.history import choose_patients
    from tpi_cli.model import PatientHistory

    found = choose_patients(path, rules, patient)
    if len(found) > 1:  # no --patient
        ids = [printable(str(history.patient_id)) for history in found]
        sample = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
        raise TpiError(f"the history holds {len(found)} patients ({sample}): choose one with --patient",
                       file=input_name(path))
    return found[0] if found else PatientHistory(None, [], [])


def _find_site(rules: Rules, text: str) -> tuple[Site, str | None]:
    """``--site``'s site and side word; an error names the option, not a history's column."""
    from tpi_cli.errors import TpiError

    try:
        return rules.find_site(text)
    except TpiError as exc:
        exc.field = "--site"
        raise




FORMAT_HELP = "Output format."


class _OnceCommand(click.Command):
    """A command whose single-valued options are given at most once. click keeps the last of
    ``--side left --side right`` and drops the first without a word; tpi refuses the repeat, since
    either value could be the one meant."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not ctx.resilient_parsing:
            _, _, order = self.make_parser(ctx).parse_args(args=list(args))  # only to see what is repeated
            seen: set[str | None] = set()
            helps = set(ctx.help_option_names)  # by name: older clicks make a new help Option on each call
            asked = any(isinstance(param, click.Option) and helps.intersection(param.opts) for param in order)
            for param in order if not asked else ():  # asked for help: the help comes first
                if isinstance(param, click.Option) and not (param.multiple or param.count or param.is_flag):
                    if param.name in seen:
                        name = max(param.opts, key=len)
                        raise click.UsageError(f"{name} is given more than once: give it once", ctx)
                    seen.add(param.name)
        return super().parse_args(ctx, args)


class _Tpi(click.Group):
    """click's group, with a usage error (a bad option value, an unknown option or command) said
    on one line like every other error, instead of click's usage, hint and error lines. Its
    commands, and those of its subgroup (``tpi rules``), refuse a repeated single-valued option."""

    command_class = _OnceCommand
    group_class = type  # `tpi rules` is a _Tpi too, so its commands are _OnceCommands

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `tpi` or `tpi rules` alone: the help
                exc.show()
                sys.exit(exc.exit_code)
            where = ""
            if exc.ctx is not None:
                command = " ".join(["tpi", *exc.ctx.command_path.split()[1:]])
                where = f" (see '{command} --help')"
            BadInput(exc.format_message() + where).show()
            sys.exit(2)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:  # Ctrl-C while the arguments were read: never a verdict's 0 or 1
            click.echo("tpi: interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)  # --help and --version: 0; each command exits itself


@click.group(cls=_Tpi, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="tpi")
def cli() -> None:
    """Is another trigger point injection appropriate at this site, and if not now, from when?

    tpi reads a patient's injection history (CSV or JSON) and a rules file, and checks proposed
    and recorded injections against sourced clinical-safety rules and, with --profile, payer rules.
    tpi supports, and does not replace, a clinician's judgement.

    \b
    Examples:
      tpi check examples/history.csv --site "left trapezius" --drug triamcinolone=20mg --on 2026-11-28
      tpi validate examples/history.csv --format json
    """


@cli.command()
@click.argument("history", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--site", "site_text", required=True, help="Site name or alias, a side word allowed: 'left trapezius'.")
@click.option("--side", type=click.Choice(["left", "right", "bilateral", "L", "R", "B"], case_sensitive=False),
              help="Side, if the site text does not say it.")
@click.option("--on", "on", type=IsoDate(), help="Date of the proposed injection (default: today).")
@click.option("--drug", "drugs", type=DrugDose(), multiple=True,
              help="A drug and its dose, e.g. triamcinolone=20mg or lidocaine='3 mL @ 1%' (repeatable).")
@click.option("--dry", is_flag=True, help="Dry needling: no drug.")
@click.option("--points", type=Points(), help="Trigger points to inject (default 1).")
@click.option("--weight-kg", "weight", type=Weight(), help="Body weight for mg/kg limits.")
@click.option("--patient", help="Patient ID (needed when the history holds several patients).")
@rules_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "cds-hooks"]), default="table",
              show_default=True, help=FORMAT_HELP)
@handles_errors
def check(history: str, site_text: str, side: str | None, on: date | None, drugs: tuple[tuple[str, str], ...],
          dry: bool, points: int | None, weight: Ratio | None, patient: str | None, rules_path: str | None,
          profiles: tuple[str, ...], fmt: str) -> None:
    """Is this proposed injection appropriate on DATE? If not, from which date.

    Prints the verdict (allowed, not-yet with the earliest date, or blocked) and every rule's
    status, what it counted and its source. Exit 0 when allowed, 1 when not.

    \b
    Example:
      tpi check history.csv --site "left trapezius" --drug triamcinolone=20mg \\
          --drug lidocaine='3 mL @ 1%' --on 2026-11-28 --profile medicare
    """
    from tpi_cli.check import check as run_check
    from tpi_cli.check import make_proposal
    from tpi_cli.errors import TpiError
    from tpi_cli.names import parse_side
    from tpi_cli.quantity import parse_dose
    from tpi_cli.rules import OTHER

    if dry and drugs:
        raise BadInput("--dry and --drug exclude each other")
    if not dry and not drugs:
        raise BadInput("say what is proposed: --drug NAME=DOSE (repeatable) or --dry")
    rules, active_profiles = _load(rules_path, profiles)
    site, side_word = _find_site(rules, site_text)
    chosen = parse_side(side) if side else None
    if side_word is not None and chosen is not None and side_word != chosen:
        raise BadInput(f"--side {chosen} contradicts --site {site_text!r}")
    chosen = chosen or side_word
    if site.lateral and chosen is None:
        raise BadInput(f"{site.name} has sides: say which (--side left|right|bilateral, or 'left {site.name}')")
    if not site.lateral and chosen is not None:
        raise BadInput(f"{site.name} has no sides (lateral: false): leave out the side")
    proposal_drugs = []
    for name, dose in drugs:
        try:
            drug = rules.find_drug(name)
        except TpiError as exc:
            exc.field = "--drug"
            raise
        try:
            amount = parse_dose(dose, mass_only=drug.drug_class != OTHER)
        except ValueError as exc:
            raise BadInput(f"--drug {name}: {exc}") from None
        proposal_drugs.append((drug, amount))
    day = _day_of(on)
    patient_history = _one_patient(history, rules, patient)
    proposal = make_proposal(patient_history.patient_id if patient is None else patient, day, site, chosen,
                             proposal_drugs, points)
    result = run_check(rules, active_profiles, patient_history, proposal, day, weight)
    if fmt == "json":
        from tpi_cli.render.json_out import check_json

        emit(check_json(result))
    elif fmt == "cds-hooks":
        from tpi_cli.render.cds import check_cds

        emit(check_cds(result))
    else:
        from tpi_cli.render.table import print_check

        print_check(result)
    sys.exit(0 if result.verdict == "allowed" else 1)


@cli.command(name="next")
@click.argument("history", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--site", "site_text", help="Only this site (a side word narrows it to that side).")
@click.option("--on", "on", type=IsoDate(), help="From this date (default: today).")
@click.option("--patient", help="Patient ID (needed when the history holds several patients).")
@click.option("--weight-kg", "weight", type=Weight(), help="Body weight for mg/kg limits.")
@rules_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help=FORMAT_HELP)
@handles_errors
def next_(history: str, site_text: str | None, on: date | None, patient: str | None, weight: Ratio | None,
          rules_path: str | None, profiles: tuple[str, ...], fmt: str) -> None:
    """The forecast: per site and side, the earliest date for dry needling, an anesthetic-only and a
    corticosteroid injection (the rules' defaults), and the corticosteroid budget left.

    \b
    Example:
      tpi next history.csv --on 2026-11-28
      tpi next history.csv --site trapezius --format json
    """
    from tpi_cli.check import forecast

    rules, active_profiles = _load(rules_path, profiles)
    only = _find_site(rules, site_text) if site_text else None
    if only is not None and not only[0].lateral and only[1] is not None:  # as check refuses it
        raise BadInput(f"{only[0].name} has no sides (lateral: false): leave out the side")
    day = _day_of(on)
    patient_history = _one_patient(history, rules, patient)
    result = forecast(rules, active_profiles, patient_history, day, only, weight)
    if fmt == "json":
        from tpi_cli.render.json_out import next_json

        emit(next_json(result))
    elif fmt == "csv":
        from tpi_cli.render.csv_out import next_csv

        emit(next_csv(result))
    else:
        from tpi_cli.render.table import print_next

        print_next(result, today=date.today().toordinal())


@cli.command()
@click.argument("history", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--patient", help="Only this patient.")
@click.option("--jobs", type=click.IntRange(1, 64), help="Processes for a large CSV file "
              "(default: the CPUs, at most 4; 1: one process). The report is the same.")
@rules_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help=FORMAT_HELP)
@handles_errors
def validate(history: str, patient: str | None, jobs: int | None, rules_path: str | None, profiles: tuple[str, ...],
             fmt: str) -> None:
    """Every violation in a whole schedule: each injection of each patient against the ones
    before it. Streams millions of rows. Exit 1 if any blocking violation is not overridden.

    \b
    Example:
      tpi validate clinic.csv --format json --profile medicare
      tpi validate clinic.csv --format csv > violations.csv
    """
    from functools import partial

    from tpi_cli.batch import validate_history
    from tpi_cli.render.stream import write_report, writer

    rules, active_profiles = _load(rules_path, profiles)
    if jobs is None:
        from tpi_cli.parallel import default_jobs

        jobs = default_jobs()
    with validate_history(rules, active_profiles, history, patient, partial(writer, fmt), jobs) as report:
        write_report(fmt, report.parts, sys.stdout, report.counts)
    sys.exit(1 if report.counts.block else 0)


@cli.command()
@click.argument("history", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--on", "on", type=IsoDate(), help="Totals up to this date (default: today).")
@click.option("--window", type=DurationType(), help="Window ending on DATE (default: the longest window of the "
              "active corticosteroid rules).")
@click.option("--patient", help="Only this patient.")
@rules_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help=FORMAT_HELP)
@handles_errors
def totals(history: str, on: date | None, window: Duration | None, patient: str | None, rules_path: str | None,
           profiles: tuple[str, ...], fmt: str) -> None:
    """Cumulative corticosteroid counts for pharmacists: per patient, site and side, in the window
    and all time, in reference-equivalent mg and mg per drug.

    \b
    Example:
      tpi totals history.csv --on 2026-11-28 --window '12 months'
    """
    from tpi_cli.totals import default_window, totals_of_file

    rules, active_profiles = _load(rules_path, profiles)
    day = _day_of(on)
    chosen = window if window is not None else default_window(rules, active_profiles, day)
    result = totals_of_file(rules, history, patient, day, chosen)
    if fmt == "json":
        from tpi_cli.render.json_out import write_totals_json

        write_totals_json(result, sys.stdout.write)
        sys.stdout.flush()
    elif fmt == "csv":
        from tpi_cli.render.csv_out import write_totals_csv

        write_totals_csv(result, sys.stdout.write)
        sys.stdout.flush()
    else:
        from tpi_cli.render.table import print_totals

        print_totals(result)


@cli.group()
def rules() -> None:
    """Check, show and document rules files.

    \b
    Examples:
      tpi rules check my-rules.yaml
      tpi rules show --profile medicare
      tpi rules schema > rules.schema.json
    """


def _rules_file(path: str | None, option: str | None) -> str | None:
    """The rules file of `rules check` / `rules show`: PATH, or --rules, else $TPI_RULES. Both given
    must name one file (spelled alike, or the same file spelled two ways: `rules.yaml`, `./rules.yaml`)."""
    if path is not None and option is not None and path != option and not _same_file(path, option):
        raise BadInput(f"two rules files given ({path} and --rules {option}): give one")
    return path or option or os.environ.get("TPI_RULES")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one cannot be found: not known to be the same
        return False


# `rules check` and `rules show` name their file as PATH; --rules, as every command takes, is the same.
rules_file_option = click.option("--rules", "rules_path", type=click.Path(), metavar="PATH",
                                 help="The rules file, as PATH (else $TPI_RULES, else the packaged default).")


@rules.command(name="check")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@rules_file_option
@click.option("--profile", "profiles", multiple=True, envvar="TPI_PROFILE", metavar="NAME",
              help="Also check that these profiles exist in the file (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table: a summary, or every error as PATH:LINE: message on stderr; json: the same as a report "
                   "on stdout (the errors still on stderr too).")
@handles_errors
def rules_check(path: str | None, rules_path: str | None, profiles: tuple[str, ...], fmt: str) -> None:
    """Validate a rules file: every error as PATH:LINE: message (exit 2), else a summary (exit 0).

    \b
    Example:
      tpi rules check my-rules.yaml
      tpi rules check my-rules.yaml --format json
    """
    from tpi_cli.errors import RulesError, TpiError, printable
    from tpi_cli.render.json_out import rules_check_json
    from tpi_cli.rules_file import load_rules

    chosen = _rules_file(path, rules_path)
    shown = chosen if chosen is not None else "rules.yaml (packaged default)"
    try:
        loaded = load_rules(chosen)
        loaded.check_profiles(_profiles(profiles))
    except TpiError as exc:  # every error of the schema, or a file not read at all (missing, not UTF-8, not YAML)
        errors = exc.errors if isinstance(exc, RulesError) else [exc]
        # A lint report for a file read but not valid (its schema, or not UTF-8, not YAML, empty, too
        # large); bad usage (no such file, one that cannot be read, an unknown --profile) writes nothing.
        usage = not isinstance(exc, RulesError) and (exc.field or "").startswith("--")  # --rules, --profile
        for error in errors:  # SPEC.md's lint format: PATH:LINE: message, one line each
            name_the_environment(error)
            click.echo(printable(str(error)), err=True)
        if fmt == "json" and not usage:
            emit(rules_check_json(shown, None, errors))
        sys.exit(2)
    if fmt == "json":
        emit(rules_check_json(shown, loaded, []))
        return
    always = sum(1 for rule in loaded.rules if not rule.profiles)
    known = ", ".join(sorted(loaded.profiles)) or "none"
    click.echo(f"{loaded.path}: OK: {len(loaded.rules)} rules ({always} clinical, always active; payer profiles: "
               f"{known}), {len(loaded.drugs)} drugs, {len(loaded.sites)} sites")


@rules.command(name="show")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@rules_file_option
@click.option("--profile", "profiles", multiple=True, envvar="TPI_PROFILE", metavar="NAME",
              help="Mark the rules this profile activates (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help=FORMAT_HELP)
@handles_errors
def rules_show(path: str | None, rules_path: str | None, profiles: tuple[str, ...], fmt: str) -> None:
    """Print the rules with kind, scope, limits, profiles, dates in force and source.

    \b
    Example:
      tpi rules show --profile medicare
    """
    loaded, active_profiles = _load(_rules_file(path, rules_path), profiles)
    if fmt == "json":
        from tpi_cli.render.json_out import rules_json

        emit(rules_json(loaded, active_profiles))
    elif fmt == "csv":
        from tpi_cli.render.csv_out import rules_csv

        emit(rules_csv(loaded, active_profiles))
    else:
        from tpi_cli.render.table import print_rules

        print_rules(loaded, active_profiles)


@rules.command(name="schema")
@click.option("--format", "fmt", type=click.Choice(["json"]), default="json", show_default=True,
              help="The schema is JSON (JSON Schema draft 2020-12).")
@rules_options
@handles_errors
def rules_schema(fmt: str, rules_path: str | None, profiles: tuple[str, ...]) -> None:
    """Print the JSON Schema of the rules file (the same whatever --rules and --profile say:
    they are taken, like every command's, and change nothing here).

    \b
    Example:
      tpi rules schema > rules.schema.json
    """
    from tpi_cli.rules import SCHEMA_PATH

    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        emit(handle.read())


@cli.command()
@rules_options  # --profile too, as every command takes it (sites do not depend on it; it is checked)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help=FORMAT_HELP)
@handles_errors
def sites(rules_path: str | None, profiles: tuple[str, ...], fmt: str) -> None:
    """List the known sites: name, region, sides, aliases, SNOMED CT code.

    \b
    Example:
      tpi sites --format csv
    """
    loaded, _ = _load(rules_path, profiles)
    if fmt == "json":
        from tpi_cli.render.json_out import sites_json

        emit(sites_json(loaded))
    elif fmt == "csv":
        from tpi_cli.render.csv_out import sites_csv

        emit(sites_csv(loaded))
    else:
        from tpi_cli.render.table import print_sites

        print_sites(loaded)


def main() -> None:
    # tpi's data holds no reference cycles: reference counting frees it all. The cycle collector
    # would only rescan every live object again and again (seconds, for a history held in memory).
    import gc

    gc.disable()
    if sys.stdout is None:  # started with stdout closed (`>&-`): nothing could be written
        output_failed(OSError(9, "standard output is closed"))
    buffer_stdout()
    escape_what_stdout_cannot_encode()
    try:
        cli(prog_name="tpi")
    except OSError as exc:  # writing click's own output (help, usage) failed
        output_failed(exc)
    except SystemExit as stop:
        if shell.OUTPUT_FAILED:
            raise
        if stop.code == 1 and type(sys.stdout).__name__.endswith("PacifyFlushWrapper"):
            # click's own output (help, usage) met a closed pipe and click chose exit 1
            output_failed(BrokenPipeError(32, "Broken pipe"))
        try:
            sys.stdout.flush()  # here, not at exit: a failed last write is reported like any other
        except OSError as exc:
            output_failed(exc)
        raise
