"""Aggregate tables: counts with every margin, small-cell suppression and complementary suppression."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

ALL = "(all)"  # the label of a margin: the total over that dimension
MISSING = "(missing)"


@dataclass(frozen=True)
class Cell:
    """One published count: a value (or ALL) per dimension, and the count unless suppressed."""

    key: tuple[str, ...]
    count: int
    suppressed: bool = False
    primary: bool = False  # hidden because small, rather than to protect another hidden cell


def tabulate(rows: Iterable[tuple[tuple[str | None, ...], int]], dimensions: int) -> dict[tuple[str, ...], int]:
    """Every cell and every margin (sub-totals over each subset of dimensions, and the grand total)."""
    cells: dict[tuple[str, ...], int] = {}
    for values, count in rows:
        labels = tuple(MISSING if v is None else str(v) for v in values)
        for size in range(dimensions + 1):
            for kept in combinations(range(dimensions), size):
                key = tuple(labels[i] if i in kept else ALL for i in range(dimensions))
                cells[key] = cells.get(key, 0) + count
    return cells


def _equations(cells: dict[tuple[str, ...], int], dimensions: int) -> list[list[tuple[str, ...]]]:
    """Each total with the cells that add up to it: [total, part, part, ...]."""
    groups: dict[tuple[tuple[str, ...], int], list[tuple[str, ...]]] = {}
    for key in cells:
        for d in range(dimensions):
            if key[d] != ALL:
                parent = (*key[:d], ALL, *key[d + 1 :])
                groups.setdefault((parent, d), []).append(key)
    return [[parent, *sorted(parts)] for (parent, _), parts in sorted(groups.items())]


def suppress(cells: dict[tuple[str, ...], int], dimensions: int, hide_at_most: int) -> list[Cell]:
    """Hide counts 1..hide_at_most, then hide more cells until no total has exactly one hidden term.

    If a total and all but one of its parts are visible, the hidden part is their difference,
    so each such equation gets a second hidden cell: the smallest visible part (or the total).
    This protects against recovery by subtraction; it does not claim optimality.
    """
    hidden = {key for key, n in cells.items() if 0 < n <= hide_at_most}
    primary = set(hidden)
    equations = _equations(cells, dimensions)
    changed = True
    while changed:
        changed = False
        for equation in equations:
            if sum(1 for key in equation if key in hidden) != 1:
                continue
            visible_parts = [key for key in equation[1:] if key not in hidden]
            candidates = visible_parts or [equation[0]]
            hidden.add(min(candidates, key=lambda key: (cells[key], key)))
            changed = True
    return [Cell(key, cells[key], key in hidden, key in primary) for key in sorted(cells)]


def recoverable(cells: Sequence[Cell], dimensions: int) -> list[tuple[str, ...]]:
    """Hidden cells that one equation reveals by subtraction (empty after suppress())."""
    by_key = {c.key: c for c in cells}
    found = []
    for equation in _equations({c.key: c.count for c in cells}, dimensions):
        hidden = [key for key in equation if by_key[key].suppressed]
        if len(hidden) == 1:
            found.append(hidden[0])
    return found
