"""Strict YAML reading: line numbers for every value, duplicate keys rejected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sharewise.domain.errors import Problem

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_constructor = yaml.constructor.SafeConstructor()

Lines = dict[tuple[Any, ...], int]


class YamlProblem(Exception):
    """Raised inside reading when the YAML itself is broken."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def read_yaml(path: Path, name: str | None = None) -> tuple[Any, Lines]:
    """Read a YAML file; return its data and a map from value path to 1-based line."""
    label = name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlProblem([Problem(label, f"cannot read file: {exc.strerror}")]) from exc
    return parse_yaml(text, label)


def parse_yaml(text: str, label: str) -> tuple[Any, Lines]:
    """Parse YAML text (see read_yaml)."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{label}:{mark.line + 1}" if mark else label
        raise YamlProblem([Problem(where, f"malformed YAML: {exc.problem}")]) from exc
    except yaml.YAMLError as exc:
        raise YamlProblem([Problem(label, f"malformed YAML: {exc}")]) from exc
    if node is None:
        return None, {}
    lines: Lines = {}
    problems: list[Problem] = []
    data = _convert(node, (), lines, problems, label)
    if problems:
        raise YamlProblem(problems)
    return data, lines


def _convert(node: yaml.Node, path: tuple[Any, ...], lines: Lines, problems: list[Problem], label: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _constructor.construct_object(key_node, deep=True)
            if key == "<<":
                problems.append(Problem(f"{label}:{key_node.start_mark.line + 1}", "merge keys (<<) are not allowed"))
                continue
            if key in out:
                problems.append(
                    Problem(
                        f"{label}:{key_node.start_mark.line + 1}",
                        f"duplicate key '{key}' (first at line {lines[(*path, key)]})",
                    )
                )
                continue
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, (*path, key), lines, problems, label)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, problems, label) for i, item in enumerate(node.value)]
    return _constructor.construct_object(node)


def line_of(lines: Lines, path: tuple[Any, ...]) -> int | None:
    """The line of the deepest known prefix of a value path."""
    for end in range(len(path), -1, -1):
        line = lines.get(tuple(path[:end]))
        if line is not None:
            return line
    return None
