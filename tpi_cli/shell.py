"""What the command line does around every command: core errors to exit 2 with one line (never a
traceback), and a report on stdout that is written whole or not at all (a closed pipe, a full
disk, an encoding that cannot hold a character)."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tpi_cli.params import BadInput

if TYPE_CHECKING:
    from tpi_cli.errors import TpiError

F = TypeVar("F", bound=Callable[..., Any])


def handles_errors(command: F) -> F:
    """Turn core errors into exit 2 with one line; never show a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from tpi_cli.errors import TpiError

        try:
            result = command(*args, **kwargs)
            if sys.stdout is not None:
                sys.stdout.flush()  # a report that cannot be written whole is an error (below)
            return result
        except TpiError as exc:
            name_the_environment(exc)
            raise BadInput(str(exc)) from None
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except MemoryError:
            raise BadInput("out of memory: the input is too large for this machine") from None
        except RecursionError:
            raise BadInput("the input is nested too deeply") from None
        except OSError as exc:
            if not _is_output_error(exc):
                raise BadInput(f"cannot read or write: {exc.strerror or exc}") from None
            output_failed(exc)
        except KeyboardInterrupt:  # Ctrl-C: the shell's code for an interrupt, never a verdict's
            click.echo("tpi: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if os.environ.get("TPI_DEBUG"):
                raise
            raise BadInput(f"internal error ({type(exc).__name__}: {exc}); please report it, with the input "
                           "that caused it (set TPI_DEBUG=1 for the traceback)") from None

    return wrapper  # type: ignore[return-value]


_FROM_ENVIRONMENT = {"--rules": ("rules_path", "$TPI_RULES"), "--profile": ("profiles", "$TPI_PROFILE")}


def name_the_environment(exc: TpiError) -> None:
    """An error about --rules or --profile whose value came from the environment names the
    variable the user set, not the option they did not give."""
    found = _FROM_ENVIRONMENT.get(exc.field or "")
    context = click.get_current_context(silent=True)
    if found is None or context is None:
        return
    from click.core import ParameterSource

    name, variable = found
    params = context.params
    if name == "rules_path" and params.get("path") is not None:  # rules check / rules show PATH
        exc.field = None  # the message names the file already
    elif context.get_parameter_source(name) == ParameterSource.ENVIRONMENT or (
            name == "rules_path" and "path" in params and params["path"] is None and params.get("rules_path") is None
            and os.environ.get("TPI_RULES")):  # rules check / rules show read $TPI_RULES themselves
        exc.field = variable


def _is_output_error(exc: OSError) -> bool:
    """A failure to write the report (stdout, or the spool behind it), not to read an input (the
    readers turn those into their own messages)."""
    import errno

    # EBADF: stdout open for reading only (`1</dev/null`); the readers name their own files' errors.
    return isinstance(exc, BrokenPipeError) or exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO,
                                                             errno.EBADF)


def _write_error(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    return f"cannot write the report{where}: {exc.strerror or exc}; what was written is incomplete"


def emit(text: str) -> None:
    """Write a rendered report to stdout, now."""
    sys.stdout.write(text)
    sys.stdout.flush()


def buffer_stdout() -> None:
    """Under ``python -u`` or PYTHONUNBUFFERED, stdout writes straight to the file descriptor, and a
    short write (a pipe's reader gone mid-write) is silently dropped by the text layer. A buffer
    under it writes every byte or raises, so a cut report is always noticed."""
    raw = getattr(sys.stdout, "buffer", None)
    if not isinstance(raw, io.RawIOBase):
        return
    try:
        descriptor = sys.stdout.fileno()
    except (OSError, ValueError):
        return
    # Still written line by line, as asked (each line's bytes all written, or an error).
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(descriptor, "w", closefd=False)),
                                  encoding=sys.stdout.encoding, errors=sys.stdout.errors, line_buffering=True,
                                  write_through=True)


def escape_what_stdout_cannot_encode() -> None:
    """A stdout that is not UTF-8 (``PYTHONIOENCODING=ascii``, a Latin-1 locale) gets ``\\u2026``
    for a character it cannot encode, instead of an internal error half-way through the report.
    The escape is JSON's own (UTF-16 pairs beyond U+FFFF), so JSON output stays valid JSON: every
    such character is inside a JSON string."""
    import codecs

    encoding = getattr(sys.stdout, "encoding", None)
    try:
        if not encoding or codecs.lookup(encoding).name == "utf-8":
            return
    except LookupError:
        return
    if isinstance(sys.stdout, io.TextIOWrapper):
        codecs.register_error("tpi-json-escape", _json_escape)
        sys.stdout.reconfigure(errors="tpi-json-escape")


def _json_escape(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    units = error.object[error.start:error.end].encode("utf-16-be", "surrogatepass")
    escaped = "".join(f"\\u{int.from_bytes(units[k:k + 2], 'big'):04x}" for k in range(0, len(units), 2))
    return escaped, error.end


OUTPUT_FAILED: list[OSError] = []  # said once: the last buffered text would only fail again at exit


def output_failed(exc: OSError) -> None:
    """Exit 2 with one line: the report could not be written whole (never a verdict's exit code)."""
    OUTPUT_FAILED.append(exc)
    try:  # what is still buffered goes nowhere (a second attempt would fail again, at exit)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout closed, or without a file descriptor (tests)
        pass
    if isinstance(exc, BrokenPipeError):  # e.g. `tpi validate big.csv | head`
        message = "the output was closed before the report was complete (broken pipe)"
    else:
        message = _write_error(exc)
    with contextlib.suppress(OSError, ValueError):  # stderr is gone too: the exit code alone says it
        click.echo(f"tpi: error: {message}", err=True)
    sys.exit(2)
