"""YAML and JSON with line numbers, for templates.

A ``SafeLoader`` subclass (the libyaml-backed one when present, for speed) whose mappings and sequences
remember the line of every key and item, and which turns CloudFormation's short-form tags (``!Ref``,
``!GetAtt``, ``!Sub``...) into their long form (``{"Ref": ...}``). Unknown tags become
``{"Tag::name": value}`` instead of an error. Nothing here can construct a Python object: only the safe
constructors plus our own are registered, never ``yaml.load`` with an unsafe loader.

JSON is parsed by the same loader (YAML is a superset of the JSON that templates use), so JSON templates
get line numbers too; above :data:`JSON_FAST_BYTES` the stdlib parser is used instead and lines are
unknown, because the YAML path costs seconds on multi-megabyte documents.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import yaml

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

JSON_FAST_BYTES = 2 * 1024 * 1024
MAX_NODES = 2_000_000  # aliases can make a small document reference a huge structure; bounded walk


class LMap(dict[Any, Any]):
    """A mapping that knows its own line and the line of each key (1-based)."""

    line: int | None = None
    key_lines: dict[Any, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines = {}

    def line_of(self, key: Any) -> int | None:
        return self.key_lines.get(key, self.line)


class LList(list[Any]):
    """A sequence that knows its own line and the line of each item."""

    line: int | None = None
    item_lines: list[int]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines = []

    def line_of(self, index: int) -> int | None:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


class TemplateLoader(_BaseLoader):  # type: ignore[misc]
    """Safe loader with line-aware containers and CloudFormation short-form intrinsics."""


def _construct_map(loader: Any, node: Any) -> LMap:
    out = LMap()
    out.line = node.start_mark.line + 1
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            key = brief(key)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_seq(loader: Any, node: Any) -> LList:
    out = LList()
    out.line = node.start_mark.line + 1
    for item in node.value:
        out.append(loader.construct_object(item, deep=True))
        out.item_lines.append(item.start_mark.line + 1)
    return out


_SHORT_FORMS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
}


def _construct_tag(loader: Any, tag_suffix: str, node: yaml.Node) -> LMap:
    name = tag_suffix.lstrip("!")
    key = _SHORT_FORMS.get(name, f"Fn::{name}")
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if name == "GetAtt" and isinstance(value, str):
            value = LList(value.split(".", 1))
    elif isinstance(node, yaml.SequenceNode):
        value = _construct_seq(loader, node)
    else:
        value = _construct_map(loader, node)
    out = LMap({key: value})
    out.line = node.start_mark.line + 1
    out.key_lines[key] = out.line
    return out


TemplateLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
TemplateLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
TemplateLoader.add_multi_constructor("!", _construct_tag)


class TemplateError(ValueError):
    """The document is not valid YAML/JSON; ``line`` is where the parser gave up."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


MAX_DEPTH = 200  # far deeper than any real template; libyaml recurses in C and crashes on hostile depth
_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'')
_BRACKETS = re.compile(r"[\[\]{}]")
_DEEP_INDENT = re.compile(rf"^[ \t]{{{2 * MAX_DEPTH},}}\S", re.MULTILINE)


def check_depth(text: str) -> None:
    """Refuse documents nested deeper than :data:`MAX_DEPTH` before any parser recurses into them.

    libyaml's composer recurses in C once per level, and past a few thousand levels the process dies
    with a segmentation fault instead of an exception, so depth is measured first: flow brackets
    outside quoted strings, and indentation for block style.
    """
    depth = 0
    openings = text.count("[") + text.count("{")
    for bracket in _BRACKETS.findall(_QUOTED.sub("", text)) if openings > MAX_DEPTH else ():
        depth = depth + 1 if bracket in "[{" else max(depth - 1, 0)
        if depth > MAX_DEPTH:
            raise TemplateError(f"nested more than {MAX_DEPTH} levels deep; not parsed")
    match = _DEEP_INDENT.search(text)
    if match is not None:
        line = text.count("\n", 0, match.start()) + 1
        raise TemplateError(f"indented more than {2 * MAX_DEPTH} columns; not parsed", line)


def load(text: str, *, json_hint: bool = False) -> Any:
    """Parse YAML (or JSON) into LMap/LList/scalars. Raises :class:`TemplateError` on malformed input."""
    check_depth(text)
    if json_hint and len(text) > JSON_FAST_BYTES:
        try:
            return json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            line = getattr(exc, "lineno", None)
            raise TemplateError(f"invalid JSON: {exc}", line) from None
    try:
        return yaml.load(text, Loader=TemplateLoader)  # noqa: S506 - TemplateLoader derives from SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "malformed"
        raise TemplateError(f"invalid YAML: {problem}", line) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise TemplateError(f"invalid YAML: {type(exc).__name__}") from None


def brief(node: Any, depth: int = 0) -> str:
    """``str(node)`` cut short: a few levels, a few items. An alias can make a small document's node stand
    for billions of items, and ``str()`` of it never returns."""
    if isinstance(node, dict):
        if depth >= 2:
            return "{...}"
        items = [f"{brief(k, 9)}: {brief(v, depth + 1)}" for k, v in itertools.islice(node.items(), 3)]
        return "{" + ", ".join(items) + (", ...}" if len(node) > 3 else "}")
    if isinstance(node, list):
        if depth >= 2:
            return "[...]"
        elems = [brief(v, depth + 1) for v in itertools.islice(node, 3)]
        return "[" + ", ".join(elems) + (", ...]" if len(node) > 3 else "]")
    text = repr(node) if depth and isinstance(node, str) else str(node)
    return text if len(text) <= 80 else text[:77] + "..."


def line_of(container: Any, key: Any) -> int | None:
    """Line of ``key`` in an LMap (or index in an LList), else the container's own line, else None."""
    if isinstance(container, LMap | LList):
        return container.line_of(key)
    return None
