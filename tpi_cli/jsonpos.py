"""Where a value of a JSON history is: its line, found from its path, only for an error message.

The text is walked along the path: the values before the one on the path are skipped by the C
scanner one at a time (each built and dropped), so finding the line of the last drug of a 50 MB
history costs about what reading it cost, and little memory; nothing of the document is kept. A
file on one line (``json.dumps``' default) is line 1 without a walk."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

_SPACE = re.compile(r"[ \t\n\r]*")
# Skips a value without converting its numbers (a huge integer is refused by the reader, not here).
_SKIP = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=str)


class Locator:
    """Finds the line of a JSON value from its path in a text that parsed as JSON."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._one_line = "\n" not in text.rstrip()

    def line(self, path: tuple[int | str, ...], field: str | None = None) -> int:
        """The line of the value at ``path``; with ``field``, of that field's value in the object at
        ``path`` or, failing that, in an object holding it (a nested injection's date, its patient's
        weight), the key matched as a column name (case and spaces ignored; a drug's ``name`` is
        its ``drug``). As far along ``path`` as the document goes: the line of the last object or
        list reached."""
        if self._one_line:
            return 1
        text = self.text
        try:
            position = _space(text, 0)
            nodes = [position]  # where each value reached along the path starts
            reached = position if text[position:position + 1] in ("{", "[") else 0
            for step in path:
                found = _step(text, nodes[-1], step)
                if found is None:
                    break
                nodes.append(found)
                if text[found] in "{[":
                    reached = found
        except (ValueError, IndexError, RecursionError):  # not the JSON the reader read: the furthest place found
            return text.count("\n", 0, reached) + 1
        position = reached
        if field is not None:
            value: int | None = None
            if field == "drug" and len(path) >= 2 and path[-2] == "drugs" and len(nodes) == len(path) + 1:
                value = _field(text, nodes[-1], "name")  # a nested drug's name is its row's drug
            if value is None:
                for holder in reversed(nodes):  # the object at path first, then those holding it
                    value = _field(text, holder, field)
                    if value is not None:
                        break
            if value is not None:
                position = value
        return text.count("\n", 0, position) + 1


def _space(text: str, index: int) -> int:
    match = _SPACE.match(text, index)
    return match.end() if match is not None else index


def _step(text: str, start: int, step: int | str) -> int | None:
    """Where the value at ``step`` of the object or list starting at ``start`` starts (None: no
    such value)."""
    opening = text[start]
    if isinstance(step, int) and opening == "[":
        index = _space(text, start + 1)
        if text[index] == "]":
            return None
        if step < 0:  # from the end, as Python indexes (the reader's paths never do)
            starts = [index]
            while True:
                index = _space(text, _SKIP.raw_decode(text, index)[1])
                if text[index] != ",":
                    break
                starts.append(index := _space(text, index + 1))
            return starts[step] if -step <= len(starts) else None
        for _ in range(step):
            index = _space(text, _SKIP.raw_decode(text, index)[1])
            if text[index] != ",":
                return None  # fewer items
            index = _space(text, index + 1)
        return index
    if isinstance(step, str) and opening == "{":
        for key, value in _pairs(text, start):
            if key == step:
                return value
    return None


def _field(text: str, start: int, field: str) -> int | None:
    """Where the value of the first key of the object at ``start`` that reads as ``field`` starts."""
    if text[start] != "{":
        return None
    for key, value in _pairs(text, start):
        if key == field or key.strip().lower() == field:
            return value
    return None


def _pairs(text: str, start: int) -> Iterator[tuple[str, int]]:
    """The keys of the object at ``start``, each with where its value starts, in order (a value
    is skipped only when the next key is asked for)."""
    index = _space(text, start + 1)
    if text[index] == "}":
        return
    while True:
        key, index = _SKIP.raw_decode(text, index)
        if not isinstance(key, str):
            raise ValueError("expected a key")
        index = _space(text, index)
        if text[index] != ":":
            raise ValueError("expected ':'")
        index = _space(text, index + 1)
        yield key, index
        index = _space(text, _SKIP.raw_decode(text, index)[1])
        if text[index] != ",":
            return
        index = _space(text, index + 1)
