"""The line of a value of a JSON history, for error messages (:mod:`tpi_cli.jsonpos`).

The locator walks the text along the path. Its reference is tpi's former locator, kept here: the
whole text parsed again by the pure-Python parser, recording where every value starts (slow and
memory-hungry on a large file, which is why it was replaced, but obviously right)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tpi_cli.jsonpos import Locator

KEYS = st.sampled_from(["date", "site", "Side", " DATE ", "drugs", "name", "dose", "injections", "weight_kg",
                        "patient_id", "x", "drug"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.text(max_size=5),
                    st.floats(allow_nan=False, allow_infinity=False))
DOCUMENTS = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(KEYS, inner, max_size=4)), max_leaves=25)
LAYOUTS = st.sampled_from([{"indent": 2}, {"indent": 0}, {"indent": "\t"}, {"indent": 1, "separators": (",", ": ")},
                           {"separators": (" ,\n ", " :\r\n ")}])


def paths_in(document: Any, prefix: tuple[int | str, ...] = ()) -> list[tuple[int | str, ...]]:
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths_in(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths_in(value, (*prefix, index))
    return found


@settings(derandomize=True, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS, LAYOUTS, st.data())
def test_the_line_is_the_one_a_full_parse_with_positions_gives(document: Any, layout: dict[str, Any],
                                                              data: st.DataObject) -> None:
    text = "\n " + json.dumps(document, **layout) + " \n"
    paths = paths_in(document)
    path = data.draw(st.one_of(st.sampled_from(paths), st.lists(st.one_of(st.integers(-1, 5), KEYS), max_size=5).map(
        tuple)))
    field = data.draw(st.one_of(st.none(), KEYS.map(lambda key: key.strip().lower())))
    assert Locator(text).line(path, field) == ReferenceLocator(text).line(path, field)


def test_a_value_deep_in_a_large_pretty_printed_history_is_found_without_parsing_it_all() -> None:
    drugs = [{"name": "lidocaine", "dose": "0.01 mL @ 1%"}] * 20_000 + [{"name": "lidocaine", "dose": "5 mL"}]
    text = json.dumps({"patient_id": "P1", "injections": [{"date": "2026-01-15", "drugs": drugs}]}, indent=1)
    path: tuple[int | str, ...] = ("injections", 0, "drugs", 20_000)
    want = text.count("\n", 0, text.index('"5 mL"')) + 1
    assert Locator(text).line(path, "dose") == want == ReferenceLocator(text).line(path, "dose")
    assert Locator(text).line(path, "drug") == want - 1  # a drug's name is its row's drug
    assert Locator(text).line(("injections", 0), "date") == 5
    assert Locator(text).line(path, "weight_kg") == want - 2  # no such field: the line of the drug's '{'
    assert Locator(text).line((*path, "dose", 3), None) == want - 2  # past the end of the document: the same


def test_a_text_on_one_line_is_line_1() -> None:
    assert Locator(json.dumps([{"date": "2026-01-01"}] * 1000)).line((999,), "date") == 1


# --- the reference: tpi's former locator ---------------------------------------------------------


class ReferenceLocator:
    """tpi's former locator: the whole text parsed again by the pure-Python parser, with positions."""

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
