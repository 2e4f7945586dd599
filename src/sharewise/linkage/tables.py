"""The reference tables shipped as data: nicknames, USPS street suffixes, unit designators, directionals."""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources


def _rows(name: str) -> list[tuple[str, str]]:
    text = resources.files("sharewise.linkage").joinpath("data", name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    reader = csv.reader(lines[1:])  # the first non-comment line is the header
    return [(row[0].strip().lower(), row[1].strip()) for row in reader if len(row) >= 2]


@cache
def nicknames() -> dict[str, tuple[str, ...]]:
    """Nickname -> the formal names it can stand for (lower case)."""
    table: dict[str, list[str]] = {}
    for nickname, formal in _rows("nicknames.csv"):
        table.setdefault(nickname, [])
        if formal.lower() not in table[nickname]:
            table[nickname].append(formal.lower())
    return {name: tuple(sorted(forms)) for name, forms in table.items()}


@cache
def street_suffixes() -> dict[str, str]:
    """Street suffix variant (lower case) -> USPS standard abbreviation (Publication 28, C1)."""
    return dict(_rows("street_suffixes.csv"))


@cache
def unit_designators() -> dict[str, str]:
    """Secondary unit designator variant (lower case) -> USPS standard abbreviation (Publication 28, C2)."""
    return dict(_rows("unit_designators.csv"))


@cache
def directionals() -> dict[str, str]:
    """Directional variant (lower case) -> USPS standard abbreviation (Publication 28, B)."""
    return dict(_rows("directionals.csv"))
