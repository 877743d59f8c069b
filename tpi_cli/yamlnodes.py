"""Safe YAML with line numbers.

The document is *composed* (parsed to nodes, with libyaml where installed), never constructed by
PyYAML: so no tag can build a Python object. Each node is turned into plain data here: mappings
become :class:`YMap` (a dict that knows the line of each key), sequences :class:`YList`, scalars
``str``, ``int``, ``bool``, ``None``, :class:`datetime.date` or :class:`YNumber` (a decimal kept as
its text, so ``0.75`` stays exact). YAML 1.1 surprises survive as what YAML made of them (``no`` is
``False``); the rules validator then refuses a wrong type with the line. Aliases are shared, not
copied, so a "billion laughs" document stays small in memory; but what reads it walks every
use, so a document that its aliases and merge keys would expand beyond ``MAX_EXPANDED`` (its
text plus ``NODE_COST`` a value and key: a long text repeated through an alias, nested lists of
aliases, a large mapping merged many times) is refused. A node with an unsupported tag, a duplicate
key or a key that is not a text is an error noted with its line, and the rest of the document is
still converted (``REFUSED`` stands for what was refused), so that ``tpi rules check`` can list
every error of the file, not only the first.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from tpi_cli.errors import TpiError, quote

if TYPE_CHECKING:
    import yaml

MAX_DEPTH = 40
MAX_REFUSED = 100  # refused nodes noted (like the rules validator's errors; one more says there are more)
MAX_BYTES = 16 * 1024 * 1024
# The document's size with every alias expanded: its text, plus NODE_COST for each value and key
# (what reading one costs, in characters: a million short values is as slow to walk as 32 MiB of
# text). Far above any real rules file (10,000 rules: about 5 MiB).
NODE_COST = 32
MAX_EXPANDED = 2 * MAX_BYTES

_TAG = "tag:yaml.org,2002:"
_CORE = frozenset(_TAG + name for name in ("null", "bool", "int", "float", "timestamp"))


class _Refused:
    """What stands in for a node tpi refused (its error is already noted, with its line)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "REFUSED"


REFUSED = _Refused()


class YNumber(str):
    """A YAML float scalar, kept as its text for exact arithmetic."""

    __slots__ = ()


class YMap(dict[str, Any]):
    line: int
    key_lines: dict[str, int]


class YList(list[Any]):
    line: int
    item_lines: list[int]


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


_PLAIN_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")  # a key of the schema's shape, shown as written


class _Converter:
    def __init__(self, path: str) -> None:
        import yaml

        self.yaml = yaml
        self.path = path
        self.memo: dict[int, Any] = {}
        self.sizes: dict[int, int] = {}  # a mapping's or sequence's size with its aliases expanded
        self.expanded = 0  # the size of what has been converted so far, every alias expanded
        self.within: yaml.Node | None = None  # the mapping or sequence being converted: where an alias is used
        self.errors: list[TpiError] = []  # the recoverable ones, in the order found
        self.noted: set[tuple[int, str]] = set()
        self.flattener = yaml.SafeLoader("")
        self.trail: list[tuple[str | int, yaml.Node]] = []  # the keys and indices down to the node converted

    def fail(self, node: yaml.Node, message: str) -> TpiError:
        return TpiError(message, file=self.path, line=_line(node))

    def refuse(self, node: yaml.Node, message: str) -> _Refused:
        """Note an error (once: an alias can reach a node again) and stand ``REFUSED`` in its place.
        The message names the field as the rules validator does (``rule 'x': max_mg: ...``)."""
        key = (id(node), message)  # an alias reaches the same node again; another node is another error
        if key not in self.noted and len(self.errors) <= MAX_REFUSED:
            self.noted.add(key)
            field = self.field()
            self.errors.append(self.fail(node, f"{field}: {message}" if field else message))
        return REFUSED

    def field(self) -> str:
        """The field being converted, in the rules validator's words: ``rule 'x': grace``,
        ``drug 'lidocaine': aliases``, ``defaults.steroid.dose``, ``version`` ('' at the top)."""
        names: list[str] = []
        head = ""
        if self.trail and isinstance(self.trail[0][0], int):
            return ""  # the document is a list, not a rules file's mapping (refused as such)
        for position, (step, node) in enumerate(self.trail):
            if position == 1 and names and names[0] in ("drugs", "sites") and isinstance(step, str):
                head = f"{names.pop()[:-1]} {quote(step)}"  # drug 'x', site 'y'
            elif position == 1 and names and names[0] == "rules" and isinstance(step, int):
                names.pop()
                rule_id = self._id_of(node)
                head = f"rule {quote(rule_id)}" if rule_id else "rule"
            elif isinstance(step, str):
                if not _PLAIN_KEY.fullmatch(step):
                    break  # not a key of the schema: the validator names it
                names.append(step)
        if head:
            return f"{head}: {'.'.join(names)}" if names else head
        return ".".join(names)

    def _id_of(self, node: yaml.Node) -> str | None:
        if isinstance(node, self.yaml.MappingNode):
            for key_node, value_node in node.value:
                if (isinstance(key_node, self.yaml.ScalarNode) and key_node.value == "id"
                        and isinstance(value_node, self.yaml.ScalarNode) and value_node.tag == _TAG + "str"):
                    return str(value_node.value).strip()  # as the validator reads it
        return None

    def grow(self, node: yaml.Node, size: int) -> None:
        """Count ``size`` more of the expanded document; refuse it past MAX_EXPANDED."""
        self.expanded += size
        if self.expanded > MAX_EXPANDED:  # named at the mapping or sequence that uses the alias, not the anchor's
            raise self.fail(self.within or node,
                            f"too large once its aliases are expanded: more than {MAX_EXPANDED >> 20} MiB, counting "
                            f"{NODE_COST} characters a value (each use of an alias or merge key counts in full, as "
                            "every reader of the file would walk it): write the values out, or repeat less")

    def convert(self, node: yaml.Node, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"nested more than {MAX_DEPTH} levels deep")
        known = self.memo.get(id(node))
        if known is not None:  # an alias of a mapping or sequence converted before
            self.grow(node, self.sizes.get(id(node), NODE_COST))
            return known
        if isinstance(node, (self.yaml.MappingNode, self.yaml.SequenceNode)):
            before, outer, self.within = self.expanded, self.within, node
            converted = self._mapping(node, depth) if isinstance(node, self.yaml.MappingNode) else \
                self._sequence(node, depth)
            self.within = outer
            self.sizes[id(node)] = self.expanded - before + NODE_COST  # what each later alias of it counts
            return converted
        self.grow(node, len(node.value) + NODE_COST)  # a scalar, or an alias of one (not memoised: counted each time)
        return self._scalar(node)

    def _sequence(self, node: yaml.SequenceNode, depth: int) -> YList | _Refused:
        if node.tag != _TAG + "seq":
            self.memo[id(node)] = self.refuse(node, f"unsupported YAML tag {quote(node.tag)}")
            return REFUSED
        items = YList()
        items.line = _line(node)
        items.item_lines = []
        self.memo[id(node)] = items
        for index, child in enumerate(node.value):
            self.trail.append((index, child))
            items.append(self.convert(child, depth + 1))
            self.trail.pop()
            items.item_lines.append(_line(child))
        return items

    def _mapping(self, node: yaml.MappingNode, depth: int) -> YMap | _Refused:
        if node.tag != _TAG + "map":
            self.memo[id(node)] = self.refuse(node, f"unsupported YAML tag {quote(node.tag)}")
            return REFUSED
        own: set[str] = set()
        skip: set[int] = set()  # the key nodes refused: the first of duplicate keys is kept
        for key_node, _ in node.value:
            if key_node.tag == _TAG + "merge":
                continue
            key = self._scalar(key_node) if isinstance(key_node, self.yaml.ScalarNode) else None
            if not isinstance(key, str):
                if key is not REFUSED:
                    self.refuse(key_node, "a key must be a text (quote it)")
                skip.add(id(key_node))
            elif key in own:
                self.refuse(key_node, f"duplicate key {quote(key)}")
                skip.add(id(key_node))
            else:
                own.add(key)
        if skip:
            node.value = [pair for pair in node.value if id(pair[0]) not in skip]
        try:
            self.flattener.flatten_mapping(node)  # resolves `<<` merge keys (merged first, own keys after)
        except self.yaml.YAMLError as exc:
            raise self.fail(node, f"bad merge key: {getattr(exc, 'problem', exc)}") from None
        result = YMap()
        result.line = _line(node)
        result.key_lines = {}
        self.memo[id(node)] = result
        for key_node, value_node in node.value:
            key = self._scalar(key_node) if isinstance(key_node, self.yaml.ScalarNode) else None
            if not isinstance(key, str):  # from a merged mapping
                if key is not REFUSED:
                    self.refuse(key_node, "a key must be a text (quote it)")
                continue
            self.grow(key_node, len(key) + NODE_COST)  # keys too: a merge key copies every key of its mapping
            self.trail.append((key, value_node))
            result[key] = self.convert(value_node, depth + 1)  # an own key overrides a merged one
            self.trail.pop()
            result.key_lines[key] = _line(key_node)
        return result

    def _scalar(self, node: yaml.Node) -> Any:
        tag = node.tag
        text = node.value
        if tag == _TAG + "str":
            return text
        if tag in _CORE:
            # An explicit tag (`!!int "1e3"`, `!!null 2026-06-01`) on text that YAML would not read
            # as that type by itself: refused, not coerced (nor an internal error).
            implicit = self.flattener.resolve(self.yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
            if implicit != tag and not (tag == _TAG + "float" and implicit == _TAG + "int"):
                return self.refuse(node, f"{quote(text)} is not a YAML {tag.removeprefix(_TAG)} "
                                         f"(tag !!{tag.removeprefix(_TAG)})")
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            return text.lower() in {"yes", "true", "on", "y"}
        if tag == _TAG + "int":
            if "_" in text or ":" in text or text.lower().startswith(("0x", "0o", "0b", "-0", "+")) or (
                    len(text) > 1 and text.startswith("0")):
                return YNumber(text)  # octal, hex, sexagesimal: left for the validator to refuse
            if len(text) > 18:
                return self.refuse(node, f"number {text[:20]!r}... is too long")
            return int(text)
        if tag == _TAG + "float":
            return YNumber(text)
        if tag == _TAG + "timestamp":
            if len(text) > 10:
                return text  # a date and a time: left as written, for the validator to refuse where a date is due
            try:
                return dt.date.fromisoformat(text) if len(text) == 10 else YNumber(text)
            except ValueError:
                return text
        return self.refuse(node, f"unsupported YAML tag {quote(tag)}")


_NUMBER_KEY = "$decimal"


def from_plain(value: Any) -> Any:
    """Plain data (from the JSON snapshot of the default rules) in the located form, line 0."""
    if isinstance(value, dict):
        if len(value) == 1 and _NUMBER_KEY in value:
            return YNumber(value[_NUMBER_KEY])
        mapping = YMap((key, from_plain(item)) for key, item in value.items())
        mapping.line = 0
        mapping.key_lines = dict.fromkeys(mapping, 0)
        return mapping
    if isinstance(value, list):
        items = YList(from_plain(item) for item in value)
        items.line = 0
        items.item_lines = [0] * len(items)
        return items
    return value


def to_plain(value: Any) -> Any:
    """Located data as plain JSON-able data (dates as ISO text, decimals kept as their text)."""
    if isinstance(value, YNumber):
        return {_NUMBER_KEY: str(value)}
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def load(text: str, path: str) -> Any:
    """Parse a YAML document to plain located data; raise TpiError with the line on any problem."""
    document, errors = load_noting(text, path)
    if errors:
        raise errors[0]
    return document


def load_noting(text: str, path: str) -> tuple[Any, list[TpiError]]:
    """Like ``load``, but a refused node (an unsupported tag, a duplicate key, a key that is not a
    text) is noted, in the list returned, and stands as ``REFUSED`` in the data; errors that stop
    the parse (bad YAML, too deep, too large) are raised."""
    import yaml

    if len(text) > MAX_BYTES:
        raise TpiError(f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB", file=path)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        problem = exc.problem or exc.context
        if exc.context and exc.problem and exc.problem.startswith("but "):  # "expected a single document ..."
            problem = f"{exc.context}, {exc.problem}"
        raise TpiError(f"not valid YAML: {problem}", file=path, line=line) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, other controls)
        character = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise TpiError(f"not valid YAML: the character {character!a} is not allowed", file=path,
                       line=text.count("\n", 0, exc.position) + 1) from None
    except yaml.YAMLError as exc:
        raise TpiError(f"not valid YAML: {exc}", file=path) from None
    except RecursionError:
        raise TpiError("nested too deeply", file=path) from None
    if node is None:
        raise TpiError("the file is empty", file=path, line=1)
    converter = _Converter(path)
    try:
        return converter.convert(node), converter.errors
    except RecursionError:
        raise TpiError("nested too deeply", file=path) from None
