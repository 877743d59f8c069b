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

    def line(self, path: tuple[int | str, ...]) -> int | None:
        if not self._parsed:
            self._tree = _parse_positions(self.text)
            self._parsed = True
        node = self._tree
        position = getattr(node, "position", 0)
        for step in path:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                break
            position = getattr(node, "position", position)
        return self.text.count("\n", 0, position) + 1


class _PosDict(dict[str, Any]):
    position = 0


class _PosList(list[Any]):
    position = 0


def _parse_positions(text: str) -> Any:
    import json.decoder
    import json.scanner

    decoder = json.JSONDecoder()

    json_object: Any = getattr(json.decoder, "JSONObject")  # noqa: B009 - pure-Python parser, untyped
    json_array: Any = getattr(json.decoder, "JSONArray")  # noqa: B009

    def parse_object(s_and_end: tuple[str, int], *args: Any) -> tuple[Any, int]:
        value, end = json_object(s_and_end, *args)
        result = _PosDict(value)
        result.position = s_and_end[1] - 1
        return result, end

    def parse_array(s_and_end: tuple[str, int], scan_once: Any) -> tuple[Any, int]:
        value, end = json_array(s_and_end, scan_once)
        result = _PosList(value)
        result.position = s_and_end[1] - 1
        return result, end

    setattr(decoder, "parse_object", parse_object)  # noqa: B010 - the hooks the pure-Python scanner reads
    setattr(decoder, "parse_array", parse_array)  # noqa: B010
    make_scanner: Any = getattr(json.scanner, "py_make_scanner")  # noqa: B009 - untyped
    setattr(decoder, "scan_once", make_scanner(decoder))  # noqa: B010
    try:
        return decoder.decode(text)
    except (ValueError, RecursionError):
        return None
