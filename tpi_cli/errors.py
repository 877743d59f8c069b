"""Errors of the core. Each names where the bad input is: file, line and field.

The CLI turns a :class:`TpiError` into exit status 2 and one line on stderr; nothing is written to
stdout. Messages quote at most the field at fault, shortened, never the whole patient row.
"""

from __future__ import annotations

from collections.abc import Iterable

_MAX_QUOTE = 60


def shorten(text: str) -> str:
    """At most 60 characters of a user value, the last an ellipsis when cut."""
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 1] + "…"


def quote(value: object) -> str:
    """Quote a user value for a message: printable, shortened, never more than the field."""
    # repr() escapes control characters (NUL, newlines, escape sequences) so nothing reaches the
    # terminal raw.
    return repr(shorten(str(value)))


def printable(text: str) -> str:
    """Text on one line with control characters (escape sequences, newlines) shown escaped, so
    that nothing from a file reaches the terminal raw."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def did_you_mean(word: str, candidates: Iterable[str]) -> list[str]:
    """Up to three close matches for a misspelt name (difflib is imported only on this path). None
    for a word far longer than any name (difflib's time grows with its length)."""
    if len(word) > 200:
        return []
    import difflib

    pool: dict[str, str] = {}
    for candidate in sorted(set(candidates)):  # compared without case, given as written (patient IDs)
        pool.setdefault(candidate.lower(), candidate)
    return [pool[match] for match in difflib.get_close_matches(word.lower(), list(pool), n=3, cutoff=0.6)]


def input_name(path: str) -> str:
    """How messages name a history given as ``path`` (``-``: stdin)."""
    return "<stdin>" if path == "-" else path


def no_patient(patient: str, path: str, seen: Iterable[str | None]) -> TpiError:
    """``--patient`` names none of the patients of the history, with the IDs closest to it."""
    named = [found for found in seen if found is not None]
    if not named:
        return TpiError(f"no patient {quote(patient)} in the history: its rows name no patient (no patient_id), so "
                        "it is one unnamed patient: leave out --patient", file=input_name(path), field="--patient")
    suggestions = did_you_mean(patient, named)
    distinct = set(named) if not suggestions else ()
    listed = ""
    if distinct and len(distinct) <= LISTED_PATIENTS:  # a desk history: name its few patients
        listed = f" (its patient{'s' if len(distinct) > 1 else ''}: {', '.join(map(quote, sorted(distinct)))})"
    return TpiError(f"no patient {quote(patient)} in the history{listed}", file=input_name(path), field="--patient",
                    suggestions=suggestions)


LISTED_PATIENTS = 5  # an unknown --patient lists a history's patients when it has no more than this


EARLIER_LINE = "\x00earlier"  # where a JSON history's error names an earlier row's line, once it is known


class TpiError(Exception):
    """Bad usage or bad input: exit status 2, one clear line naming file, line and field."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        suggestions: Iterable[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        self.suggestions = list(suggestions)
        # A JSON history's row that the message calls earlier, by its negative reference (its line is
        # found only when the error is shown: JsonRows.relocate).
        self.earlier: int | None = None

    def located(self, file: str | None = None, line: int | None = None) -> TpiError:
        """Fill in the file and line where the raiser did not know them."""
        if self.file is None and file is not None:
            self.file = file
        if self.line is None and line is not None:
            self.line = line
        return self

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        field = f"{self.field}: " if self.field else ""
        hint = ""
        if self.suggestions:
            hint = " (did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?)"
        return f"{where}{field}{self.message.replace(EARLIER_LINE, '')}{hint}"


class RulesError(TpiError):
    """A rules file that breaks the schema; carries every error found, in file order."""

    def __init__(self, errors: list[TpiError]) -> None:
        first = errors[0]
        super().__init__(first.message, file=first.file, line=first.line, field=first.field,
                         suggestions=first.suggestions)
        self.errors = errors

    def __str__(self) -> str:
        text = str(self.errors[0])
        if len(self.errors) > 1:
            text += f" (and {len(self.errors) - 1} more: run `tpi rules check`)"
        return text
