"""Where a value of a JSON history is: its line, found from its path by parsing the text again
(slowly, only for an error message). Kept out of the compiled modules: it subclasses ``dict`` and
``list``, which mypyc's native classes cannot."""

from __future__ import annotations

from typing import Any


class Locator:
    """Finds the line of a JSON value from its path (parsed again, slowly, only for an error)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._tree: Any = None
        self._parsed = False

    def line(self, path: tuple[int | str, ...], field: str | None = None) -> int | None:
        """The line of the value at ``path``; with ``field``, of that field's value in the object at
        ``path`` or, failing that, in an object holding it (a nested injection's date, its patient's
        weight), the key matched as a column name (case and spaces ignored; a drug's ``name`` is
        its ``drug``)."""
        if not self._parsed:
            self._tree = _parse_positions(self.text)
            self._parsed = True
        node = self._tree
        position = getattr(node, "position", 0)
        nodes = [node]
        for step in path:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                break
            nodes.append(node)
            position = getattr(node, "position", position)
        if field is not None:
            found = None
            if field == "drug" and len(path) >= 2 and path[-2] == "drugs" and len(nodes) == len(path) + 1:
                found = _field_position(nodes[-1], "name")  # a nested drug's name is its row's drug
            if found is None:
                for holder in reversed(nodes):  # the object at path first, then those holding it
                    found = _field_position(holder, field)
                    if found is not None:
                        break
            if found is not None:
                position = found
        return self.text.count("\n", 0, position) + 1


def _field_position(node: Any, field: str) -> int | None:
    keys: dict[str, int] = getattr(node, "keys_at", {})
    for key, position in keys.items():
        if key == field or key.strip().lower() == field:
            return position
    return None


class _PosDict(dict[str, Any]):
    position = 0
    keys_at: dict[str, int] = {}  # noqa: RUF012 - each object's own, set when parsed


class _PosList(list[Any]):
    position = 0


def _parse_positions(text: str) -> Any:
    import json.decoder
    import json.scanner

    decoder = json.JSONDecoder()

    json_object: Any = getattr(json.decoder, "JSONObject")  # noqa: B009 - pure-Python parser, untyped
    json_array: Any = getattr(json.decoder, "JSONArray")  # noqa: B009

    starts: list[list[int]] = []  # per object or array being parsed: where its values start

    def values(s: str, index: int) -> tuple[Any, int]:
        if starts:
            starts[-1].append(index)
        found: tuple[Any, int] = scan_once(s, index)
        return found

    def pairs(found: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        return found

    def parse_object(s_and_end: tuple[str, int], strict: bool, _scan: Any, hook: Any, _pairs: Any,
                     memo: Any) -> tuple[Any, int]:
        starts.append([])
        try:
            found, end = json_object(s_and_end, strict, values, hook, pairs, memo)
        finally:
            where = starts.pop()
        result = _PosDict(found)
        result.position = s_and_end[1] - 1
        result.keys_at = {key: at for (key, _), at in zip(found, where, strict=False)}
        return result, end

    def parse_array(s_and_end: tuple[str, int], _scan: Any) -> tuple[Any, int]:
        starts.append([])
        try:
            value, end = json_array(s_and_end, values)
        finally:
            starts.pop()
        result = _PosList(value)
        result.position = s_and_end[1] - 1
        return result, end

    setattr(decoder, "parse_object", parse_object)  # noqa: B010 - the hooks the pure-Python scanner reads
    setattr(decoder, "parse_array", parse_array)  # noqa: B010
    make_scanner: Any = getattr(json.scanner, "py_make_scanner")  # noqa: B009 - untyped
    scan_once = make_scanner(decoder)
    setattr(decoder, "scan_once", scan_once)  # noqa: B010
    try:
        return decoder.decode(text)
    except (ValueError, RecursionError):
        return None
