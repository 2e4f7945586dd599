"""Strict YAML (and JSON) reading: line numbers for every value, duplicate keys rejected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from sharewise.domain.errors import Problem

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Lines = dict[tuple[Any, ...], int]


class YamlProblem(Exception):
    """Raised inside reading when the YAML itself is broken."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def read_yaml(path: Path, name: str | None = None) -> tuple[Any, Lines]:
    """Read a YAML (or JSON) file; return its data and a map from value path to 1-based line."""
    label = name or str(path)
    return parse_yaml_or_json(read_text(path, label), label, as_json=path.suffix.lower() == ".json")


def parse_yaml_or_json(text: str, label: str, as_json: bool = False) -> tuple[Any, Lines]:
    """Parse YAML or JSON text: the data and the line of each value (none for JSON YAML cannot read).

    JSON is YAML too, so both are read as YAML (for the lines); but JSON with a syntax error is
    reported as JSON, by line and column, as whoever wrote it knows it. Text is JSON when as_json
    says so (a `.json` file, which must then be JSON), or when it opens with `{` or `[` and YAML
    cannot read it. JSON that YAML cannot read (tabs for indentation) is read as JSON.
    """
    if as_json:
        _json(text, label)
    try:
        return parse_yaml(text, label)
    except YamlProblem:
        if as_json or text.lstrip().startswith(("{", "[")):
            return _json(text, label), {}
        raise


def _json(text: str, label: str) -> Any:
    """The JSON text's data; YamlProblem naming the syntax error by line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:  # exc.msg names the syntax error only, never the file's text
        raise YamlProblem([Problem(f"{label}:{exc.lineno}:{exc.colno}", f"malformed JSON: {exc.msg}")]) from None


def read_text(path: Path, label: str | None = None) -> str:
    """A file's text, decoded as UTF-8; YamlProblem (never its contents) if it cannot be read or decoded."""
    label = label or str(path)
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise YamlProblem([Problem(label, f"cannot read file: {exc.strerror or exc}")]) from exc
    except UnicodeDecodeError as exc:
        # The offset, not the bytes: the file may hold personal data.
        raise YamlProblem([Problem(label, f"not UTF-8 text (invalid byte at offset {exc.start})")]) from None


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
    # One constructor per document: a constructor keeps every object it built, so a shared one would
    # grow with every file a long-running server reads (and is not safe across threads).
    data = _convert(node, (), lines, problems, label, yaml.constructor.SafeConstructor())
    if problems:
        raise YamlProblem(problems)
    return data, lines


def _convert(
    node: yaml.Node,
    path: tuple[Any, ...],
    lines: Lines,
    problems: list[Problem],
    label: str,
    constructor: yaml.constructor.SafeConstructor,
) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, path, problems, label, constructor)
            if key is _INVALID:
                continue
            try:
                hash(key)
            except TypeError:
                problems.append(Problem(f"{label}:{key_node.start_mark.line + 1}", "a key must be a plain value"))
                continue
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
            out[key] = _convert(value_node, (*path, key), lines, problems, label, constructor)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, problems, label, constructor) for i, item in enumerate(node.value)]
    value = _scalar(node, path, problems, label, constructor)
    return None if value is _INVALID else value


_INVALID = object()
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


def _scalar(
    node: yaml.Node,
    path: tuple[Any, ...],
    problems: list[Problem],
    label: str,
    constructor: yaml.constructor.SafeConstructor,
) -> Any:
    """Construct one value; a value YAML cannot construct (2026-02-30, an unknown tag) is a problem, not a crash.

    Messages name the line and the field, never the value (it may be personal data).
    """
    try:
        return constructor.construct_object(node, deep=True)
    except (ValueError, TypeError, OverflowError, yaml.YAMLError) as exc:
        if node.tag == _TIMESTAMP:
            message = "not a valid date"
        elif isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
            message = f"invalid value: {exc.problem}"
        else:
            message = f"not a valid {node.tag.rsplit(':', 1)[-1]}"
        dotted = ".".join(str(p) for p in path)
        where = f"{label}:{node.start_mark.line + 1}"
        problems.append(Problem(f"{where}: {dotted}" if dotted else where, message))
        return _INVALID


def line_of(lines: Lines, path: tuple[Any, ...]) -> int | None:
    """The line of the deepest known prefix of a value path."""
    for end in range(len(path), -1, -1):
        line = lines.get(tuple(path[:end]))
        if line is not None:
            return line
    return None
