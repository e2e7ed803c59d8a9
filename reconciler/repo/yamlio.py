"""Safe, bounded YAML loading, and JSON pointer to line/column mapping for failing files.

`load_yaml(data, path)` turns the bytes of one file into plain JSON-compatible data (dicts
with string keys, lists, str, int, float, bool, None) or raises a `DocumentError` with file
and line. It is the only YAML reader of the project.

Why not `yaml.safe_load`: it accepts duplicate keys (the last silently wins), expands aliases
without limit (a billion-laughs file eats memory), turns `2024-01-01` into a date and `no`
into False, and its Python composer is slow. Here libyaml composes the node tree in C with a
resolver that does nothing, and a lean constructor applies YAML 1.2 core-schema scalars while
enforcing the limits below. Positions are not kept in the data: `locate` composes the file
again, only for files that have findings, and walks the pointer through the nodes.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml._yaml import CParser
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.errors import DocumentError

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIAS_NODES = 10_000  # nodes produced by expanding aliases, per file

_CORE = "tag:yaml.org,2002:"
_PLAIN = "?plain"  # what our resolver tags plain scalars with; the constructor resolves them
_STR, _MAP, _SEQ = _CORE + "str", _CORE + "map", _CORE + "seq"
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)")
_INT_BASES = {"0o": 8, "0x": 16}
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_TRUES = frozenset(("true", "True", "TRUE"))
_FALSES = frozenset(("false", "False", "FALSE"))
# Nesting is checked while constructing; libyaml's composer recurses in C, so a file that could
# nest deeper than this is first scanned by events (iteratively) to fail before composing.
_COMPOSE_SAFE_DEPTH = 2000


class _Parser(CParser):
    """libyaml's composer with a resolver that only tells plain scalars from the rest."""

    def resolve(self, kind: type[Node], value: str | None, implicit: Any) -> str:
        if kind is ScalarNode:
            return _PLAIN if implicit[0] else _STR
        return _MAP if kind is MappingNode else _SEQ

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


def load_yaml(data: bytes, path: str) -> Any:
    """Plain data of the single YAML document in `data`; `DocumentError` naming `path` and line."""
    text = decode(data, path)
    node = compose(text, path)
    if node is None:
        raise DocumentError(
            path, "the file is empty: a document needs apiVersion, kind, metadata and spec", 1, 1
        )
    return _Constructor(path).construct(node, 0)


def decode(data: bytes, path: str) -> str:
    """The text of a file, enforcing the size limit and UTF-8."""
    if len(data) > MAX_FILE_BYTES:
        raise DocumentError(path, f"the file is larger than {MAX_FILE_BYTES // 1024} KiB: split it up")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise DocumentError(
            path, f"the file is not UTF-8 (byte 0x{data[err.start]:02x}): save it as UTF-8", line, column
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def compose(text: str, path: str) -> Node | None:
    """The node tree of the single document in `text` (None when there is none)."""
    if _could_nest_deeper_than(text, _COMPOSE_SAFE_DEPTH):
        _check_depth_by_events(text, path)
    try:
        node: Node | None = _Parser(text).get_single_node()
    except yaml.YAMLError as err:
        raise _depth_or_yaml_error(err, path, text) from None
    return node


def _could_nest_deeper_than(text: str, depth: int) -> bool:
    # Every nesting level needs at least one of these indicator characters.
    return sum(text.count(c) for c in "[{-?:") > depth


def _check_depth_by_events(text: str, path: str) -> None:
    parser = _Parser(text)
    depth = 0
    try:
        while (event := parser.get_event()) is not None and not isinstance(event, yaml.StreamEndEvent):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
                    raise DocumentError(path, _DEPTH_MESSAGE, line, column)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as err:
        raise _depth_or_yaml_error(err, path, text) from None


_DEPTH_MESSAGE = f"nesting deeper than {MAX_DEPTH} levels: flatten the document"


def _depth_or_yaml_error(err: yaml.YAMLError, path: str, text: str) -> DocumentError:
    """`err` as a DocumentError; libyaml's own nesting limit reads as ours, at our limit's place.

    Newer libyaml refuses more than 1,000 levels while it scans ahead, before any event shows
    that our lower limit was crossed. The text before the place it stopped nests under its
    limit, so the event check finds where ours was crossed there.
    """
    mark = getattr(err, "problem_mark", None)
    if mark is None or getattr(err, "problem", None) != "exceeded maximum nesting depth":
        return _yaml_error(err, path, text)
    try:
        _check_depth_by_events(text[: mark.index], path)
    except DocumentError as found:
        if found.message == _DEPTH_MESSAGE:
            return found
    return DocumentError(path, _DEPTH_MESSAGE, mark.line + 1, mark.column + 1)


def _yaml_error(err: yaml.YAMLError, path: str, text: str) -> DocumentError:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or getattr(err, "reason", None) or str(err)
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, err.position) + 1
        column = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        return DocumentError(
            path, f"not valid YAML: {err.reason} (character {err.character!r})", line, column
        )
    context = getattr(err, "context", None)
    message = f"not valid YAML: {context + ', ' if context else ''}{problem}"
    if mark is None:
        return DocumentError(path, message)
    return DocumentError(path, message, mark.line + 1, mark.column + 1)


class _Constructor:
    """Node tree to plain data, with the limits on depth, aliases, keys and tags."""

    def __init__(self, path: str):
        self.path = path
        self.seen: set[int] = set()
        self.expanding = 0  # > 0 while constructing a node met before (an alias)
        self.alias_nodes = 0

    def fail(self, node: Node, message: str) -> DocumentError:
        return DocumentError(self.path, message, node.start_mark.line + 1, node.start_mark.column + 1)

    def construct(self, node: Node, depth: int) -> Any:
        again = id(node) in self.seen
        if again:
            self.expanding += 1
        else:
            self.seen.add(id(node))
        if self.expanding:
            self.alias_nodes += 1
            if self.alias_nodes > MAX_ALIAS_NODES:
                raise self.fail(
                    node, f"aliases expand to more than {MAX_ALIAS_NODES} nodes: write the values out"
                )
        try:
            if node.__class__ is ScalarNode:
                return self.scalar(node)
            if depth >= MAX_DEPTH:
                raise self.fail(node, _DEPTH_MESSAGE + " (or an alias refers to itself)")
            if node.__class__ is MappingNode:
                return self.mapping(node, depth + 1)
            return self.sequence(node, depth + 1)
        finally:
            if again:
                self.expanding -= 1

    def sequence(self, node: Node, depth: int) -> list[Any]:
        if node.tag != _SEQ:
            raise self.fail(node, _tag_message(node.tag))
        return [self.construct(child, depth) for child in node.value]

    def mapping(self, node: Node, depth: int) -> dict[str, Any]:
        if node.tag != _MAP:
            raise self.fail(node, _tag_message(node.tag))
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node)
            if key in result:
                raise self.fail(key_node, f"duplicate key {key!r}: each key may appear once in a mapping")
            result[key] = self.construct(value_node, depth)
        return result

    def key(self, node: Node) -> str:
        if node.__class__ is not ScalarNode:
            raise self.fail(node, "a mapping key must be a plain string, not a collection")
        if node.tag not in (_PLAIN, _STR):
            raise self.fail(node, _tag_message(node.tag))
        if node.value == "<<" and node.tag == _PLAIN:
            raise self.fail(node, "merge keys (`<<`) are not supported: write the keys out")
        value: str = node.value
        return value

    def scalar(self, node: Node) -> Any:
        tag, value = node.tag, node.value
        if tag == _PLAIN:
            return plain_scalar(value)
        if tag == _STR:
            return value
        resolved = plain_scalar(value)
        expected = _EXPLICIT.get(tag)
        if expected is None:
            raise self.fail(node, _tag_message(tag))
        if not isinstance(resolved, expected) or (expected is int and isinstance(resolved, bool)):
            if expected is float and isinstance(resolved, int) and not isinstance(resolved, bool):
                return float(resolved)
            raise self.fail(node, f"{value!r} is not a valid {tag.removeprefix(_CORE)}")
        return resolved


_EXPLICIT: dict[str, type | tuple[type, ...]] = {
    _CORE + "int": int,
    _CORE + "float": float,
    _CORE + "bool": bool,
    _CORE + "null": type(None),
}


def _tag_message(tag: str) -> str:
    return (
        f"the tag {tag!r} is not allowed: only plain YAML (strings, numbers, booleans, null, lists, mappings)"
    )


def plain_scalar(value: str) -> Any:
    """A plain (unquoted) scalar under the YAML 1.2 core schema: `no` and dates stay strings."""
    if value in _NULLS:
        return None
    first = value[0]
    if first in "0123456789+-.":
        if _INT.fullmatch(value):
            base = _INT_BASES.get(value[:2], 10)
            return int(value[2:] if base != 10 else value, base)
        if _FLOAT.fullmatch(value):
            return float(value)
        if _INF.fullmatch(value):
            return float("-inf") if first == "-" else float("inf")
        if _NAN.fullmatch(value):
            return float("nan")
        return value
    if value in _TRUES:
        return True
    if value in _FALSES:
        return False
    return value


def locate(data: bytes, pointer: str) -> tuple[int, int] | None:
    """Line and column (1-based) of what a JSON pointer names in the YAML `data`.

    A mapping member is located at its key. When the pointer names something absent (a
    missing property), the closest existing parent is located instead. None when the file
    cannot be composed at all (its own error already carries a position).
    """
    try:
        node = compose(decode(data, ""), "")
    except DocumentError:
        return None
    if node is None:
        return None
    mark = node.start_mark
    for token in _pointer_tokens(pointer):
        found = _child(node, token)
        if found is None:
            break
        mark, node = found
    return mark.line + 1, mark.column + 1


def _child(node: Node, token: str) -> tuple[Any, Node] | None:
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == token:
                return key.start_mark, value
    elif isinstance(node, SequenceNode) and token.isdigit() and int(token) < len(node.value):
        child: Node = node.value[int(token)]
        return child.start_mark, child
    return None


def _pointer_tokens(pointer: str) -> list[str]:
    if not pointer:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.lstrip("/").split("/")]
