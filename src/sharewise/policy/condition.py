"""The condition language of rule files, evaluated with three-valued logic."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# A three-valued truth: True, False, or None for unknown.
TV = bool | None


class Missing:
    """Marker for a value the request does not give (unknown)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()

Lookup = Callable[[str], Any]

OPERATORS = ("eq", "in", "contains", "contains_any", "subset_of", "is")
LIST_PATHS = ("source.roles", "recipient.roles", "data")
SCALAR_PATHS = ("source.program", "recipient.kind", "recipient.program", "purpose", "form")


@dataclass(frozen=True)
class Atom:
    """A test of one request path against a value."""

    path: str
    op: str
    value: Any

    def evaluate(self, lookup: Lookup) -> tuple[TV, frozenset[str]]:
        actual = lookup(self.path)
        if actual is MISSING:
            return None, frozenset((self.path,))
        return _apply(self.op, actual, self.value), frozenset()

    def describe(self, lookup: Lookup | None = None, held: bool = True) -> str:
        """Say in words what was tested and, where known, the actual value."""
        actual: Any = lookup(self.path) if lookup else MISSING
        if self.op == "is":
            state = self.value if held else not self.value
            return f"{self.path} is {'true' if state else 'false'}"
        values = self.value if isinstance(self.value, tuple) else (self.value,)
        listed = _listing(values)
        if held:
            if self.op in ("eq", "in") and actual is not MISSING:
                return f"{self.path} = {actual}"
            if self.op == "contains":
                return f"{self.path} includes {self.value}"
            if self.op == "contains_any":
                present = [v for v in values if actual is not MISSING and v in actual] or list(values)
                return f"{self.path} includes {_listing(tuple(present))}"
            if self.op == "subset_of":
                return f"{self.path} only within {listed}"
            return f"{self.path} is one of {listed}"
        shown = f" (it is {actual})" if actual is not MISSING and self.op in ("eq", "in") else ""
        if self.op == "eq":
            return f"{self.path} is not {self.value}{shown}"
        if self.op == "in":
            return f"{self.path} is not one of {listed}{shown}"
        if self.op == "contains":
            return f"{self.path} does not include {self.value}"
        if self.op == "contains_any":
            return f"{self.path} includes none of {listed}"
        outside = [v for v in actual if v not in values] if actual is not MISSING else []
        return f"{self.path} includes {_listing(tuple(outside))}, outside {listed}"


def _listing(values: tuple[Any, ...], limit: int = 6) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" (+{len(values) - limit} more)" if len(values) > limit else "")


def _apply(op: str, actual: Any, value: Any) -> bool:
    if op == "eq":
        return bool(actual == value)
    if op == "in":
        return actual in value
    if op == "contains":
        return value in actual
    if op == "contains_any":
        return any(v in actual for v in value)
    if op == "subset_of":
        return set(actual) <= set(value)
    if op == "is":
        return actual is value
    raise ValueError(f"unknown operator {op}")


@dataclass(frozen=True)
class All:
    """Holds when every member holds."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """Holds when at least one member holds."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """Holds when its member does not."""

    item: Condition


@dataclass(frozen=True)
class Always:
    """A constant."""

    value: bool


Condition = Atom | All | AnyOf | Not | Always


def evaluate(cond: Condition, lookup: Lookup) -> tuple[TV, frozenset[str]]:
    """Evaluate a condition; return its truth and, when unknown, the paths it turns on."""
    if isinstance(cond, Atom):
        return cond.evaluate(lookup)
    if isinstance(cond, All):
        unknown: set[str] = set()
        undecided = False
        for item in cond.items:
            value, paths = evaluate(item, lookup)
            if value is False:
                return False, frozenset()
            if value is None:
                undecided = True
                unknown |= paths
        return (None, frozenset(unknown)) if undecided else (True, frozenset())
    if isinstance(cond, AnyOf):
        unknown = set()
        undecided = False
        for item in cond.items:
            value, paths = evaluate(item, lookup)
            if value is True:
                return True, frozenset()
            if value is None:
                undecided = True
                unknown |= paths
        return (None, frozenset(unknown)) if undecided else (False, frozenset())
    if isinstance(cond, Not):
        value, paths = evaluate(cond.item, lookup)
        return (None if value is None else not value), paths
    return cond.value, frozenset()


def atoms(cond: Condition, polarity: bool = True) -> Iterator[tuple[Atom, bool]]:
    """Every atom in a condition with its polarity (False under an odd number of nots)."""
    if isinstance(cond, Atom):
        yield cond, polarity
    elif isinstance(cond, All | AnyOf):
        for item in cond.items:
            yield from atoms(item, polarity)
    elif isinstance(cond, Not):
        yield from atoms(cond.item, not polarity)


def reasons(cond: Condition, lookup: Lookup) -> list[str]:
    """Short descriptions of why a condition came out as it did (held atoms, or the first miss)."""
    value, paths = evaluate(cond, lookup)
    if value is None:
        return [f"unknown: {', '.join(sorted(paths))}"]
    return _explain(cond, lookup, value)


def _explain(cond: Condition, lookup: Lookup, value: bool) -> list[str]:
    if isinstance(cond, Atom):
        return [cond.describe(lookup, held=value)]
    if isinstance(cond, Always):
        return []
    if isinstance(cond, Not):
        return _explain(cond.item, lookup, not value)
    want_all = isinstance(cond, All)
    out: list[str] = []
    for item in cond.items:
        item_value, _ = evaluate(item, lookup)
        if item_value is None:
            continue
        if want_all and value and item_value:
            out += _explain(item, lookup, True)
        elif want_all and not value and not item_value:
            return _explain(item, lookup, False)
        elif not want_all and value and item_value:
            return _explain(item, lookup, True)
        elif not want_all and not value and not item_value:
            out += _explain(item, lookup, False)
    if not want_all and not value:
        return ["none of: " + "; ".join(out)] if len(out) > 1 else out
    return out


def parse(raw: Any, where: str = "when") -> tuple[Condition | None, list[str]]:
    """Parse a YAML condition into its tree; return it and every problem found (path: message)."""
    problems: list[str] = []
    cond = _parse(raw, where, problems)
    return (cond if not problems else None), problems


def _parse(raw: Any, where: str, problems: list[str]) -> Condition:
    if not isinstance(raw, dict):
        problems.append(f"{where}: a condition must be a mapping, got {type(raw).__name__}")
        return Always(False)
    keys = set(raw)
    if keys == {"always"}:
        if not isinstance(raw["always"], bool):
            problems.append(f"{where}.always: must be true or false")
        return Always(bool(raw["always"]))
    for combinator in ("all", "any"):
        if combinator in raw:
            if keys != {combinator}:
                problems.append(f"{where}: '{combinator}' cannot be combined with {sorted(keys - {combinator})}")
            items = raw[combinator]
            if not isinstance(items, list) or not items:
                problems.append(f"{where}.{combinator}: must be a non-empty list of conditions")
                return Always(False)
            parsed = tuple(_parse(it, f"{where}.{combinator}[{i}]", problems) for i, it in enumerate(items))
            return All(parsed) if combinator == "all" else AnyOf(parsed)
    if "not" in raw:
        if keys != {"not"}:
            problems.append(f"{where}: 'not' cannot be combined with {sorted(keys - {'not'})}")
        return Not(_parse(raw["not"], f"{where}.not", problems))
    if "fact" in raw:
        ops = keys - {"fact"}
        path = raw["fact"]
        if not isinstance(path, str):
            problems.append(f"{where}.fact: must be a path such as facts.court_order")
            return Always(False)
        if not ops:
            return Atom(path, "is", True)
        if len(ops) != 1:
            problems.append(f"{where}: one operator per test, got {sorted(ops)}")
            return Always(False)
        (op,) = ops
        if op not in OPERATORS:
            problems.append(f"{where}: unknown operator '{op}' (use one of {', '.join(OPERATORS)})")
            return Always(False)
        value = raw[op]
        if op in ("in", "contains_any", "subset_of"):
            if not isinstance(value, list) or not value:
                problems.append(f"{where}.{op}: must be a non-empty list")
                return Always(False)
            value = tuple(value)
        if op == "is" and not isinstance(value, bool):
            problems.append(f"{where}.is: must be true or false")
        return Atom(path, op, value)
    problems.append(f"{where}: not a condition (expected all, any, not, always or fact), keys {sorted(keys)}")
    return Always(False)
