"""Data dictionaries: what each source field is, in the contract's categories and HIPAA's identifier classes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sharewise.domain.errors import InvalidDataError, Problem

IDENTIFIER_CLASSES = ("direct", "quasi", "sensitive", "other")
TYPES = ("string", "integer", "decimal", "date", "boolean")

# The kinds of identifier a field may hold, each with its item in the Safe Harbor list of
# 45 CFR 164.514(b)(2)(i). Geography and dates are split into the kinds that are treated
# differently (a street address is removed, a ZIP code truncated, a date reduced to its year).
KINDS: dict[str, int] = {
    "name": 1,
    "street_address": 2,
    "city": 2,
    "county": 2,
    "zip": 2,
    "birth_date": 3,
    "date": 3,
    "age": 3,
    "phone": 4,
    "fax": 5,
    "email": 6,
    "ssn": 7,
    "medical_record_number": 8,
    "health_plan_number": 9,
    "account_number": 10,
    "license_number": 11,
    "vehicle_id": 12,
    "device_id": 13,
    "url": 14,
    "ip_address": 15,
    "biometric": 16,
    "photo": 17,
    "unique_id": 18,
}

# The 16 direct identifiers a limited data set must not contain, 45 CFR 164.514(e)(2): the
# Safe Harbor list without dates, ages, town or city and ZIP code, and without item 18.
# County is removed too: it is not among the geographic elements a limited data set may keep.
LIMITED_DATA_SET_REMOVES = frozenset(
    {
        "name",
        "street_address",
        "county",
        "phone",
        "fax",
        "email",
        "ssn",
        "medical_record_number",
        "health_plan_number",
        "account_number",
        "license_number",
        "vehicle_id",
        "device_id",
        "url",
        "ip_address",
        "biometric",
        "photo",
    }
)

_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .-]{0,127}$")
_DATE_FORMAT = re.compile(r"^[%A-Za-z0-9/ .:-]{2,40}$")


@dataclass(frozen=True)
class FieldEntry:
    """One source field: its data category, identifier class, kind of identifier and type."""

    name: str
    category: str
    identifier: str  # direct | quasi | sensitive | other
    type: str  # string | integer | decimal | date | boolean
    kind: str | None = None  # one of KINDS, for direct identifiers and identifying quasi-identifiers
    date_format: str | None = None  # strptime format of dates stored as text, default ISO 8601
    description: str = ""
    person_index: str | None = None  # given_name | family_name | date_of_birth: feeds the keyed person index

    @property
    def is_direct(self) -> bool:
        return self.identifier == "direct"


PERSON_INDEX_ROLES = ("given_name", "family_name", "date_of_birth")


@dataclass(frozen=True)
class DataDictionary:
    """A program's confirmed data dictionary."""

    program: str
    fields: tuple[FieldEntry, ...]
    source: str = "dictionary"

    def get(self, name: str) -> FieldEntry | None:
        for entry in self.fields:
            if entry.name == name:
                return entry
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def person_fields(self) -> dict[str, str] | None:
        """The fields that identify a person for the person index (role -> field), if all are mapped."""
        roles = {f.person_index: f.name for f in self.fields if f.person_index}
        return roles if set(roles) == set(PERSON_INDEX_ROLES) else None


def load_dictionary(path: Path, categories: Iterable[str]) -> DataDictionary:
    """Read a dictionary file (YAML), reporting every problem with its location."""
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidDataError("cannot read data dictionary", [Problem(label, "cannot read the file")]) from exc
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a value YAML cannot build, such as 2026-02-30
        mark = getattr(exc, "problem_mark", None)
        where = f"{label}:{mark.line + 1}" if mark is not None else label
        raise InvalidDataError(
            "malformed data dictionary",
            [
                Problem(
                    where,
                    "not valid YAML"
                    if isinstance(exc, yaml.YAMLError)
                    else "a value that cannot be read (for example an impossible date)",
                )
            ],
        ) from exc
    return parse_dictionary(data, categories, label)


def parse_dictionary(data: Any, categories: Iterable[str], label: str = "dictionary") -> DataDictionary:
    """Validate a parsed dictionary; every problem is gathered before raising."""
    known = set(categories)
    problems: list[Problem] = []
    if not isinstance(data, Mapping):
        raise InvalidDataError("malformed data dictionary", [Problem(label, "expected a mapping")])
    program = data.get("program")
    if not isinstance(program, str) or not program:
        problems.append(Problem(f"{label}: program", "required: the program whose records these are"))
    status = data.get("status", "confirmed")
    if status != "confirmed":
        problems.append(
            Problem(
                f"{label}: status",
                f"'{status}': a person must review this dictionary and set status: confirmed before it is used",
            )
        )
    for key in data:
        if key not in ("program", "status", "fields", "description"):
            problems.append(Problem(f"{label}: {key}", "unknown key"))
    raw_fields = data.get("fields")
    entries: list[FieldEntry] = []
    if not isinstance(raw_fields, Mapping) or not raw_fields:
        problems.append(Problem(f"{label}: fields", "required: a mapping of field name to its description"))
        raw_fields = {}
    for name, spec in raw_fields.items():
        where = f"{label}: fields.{name}"
        entry = _parse_field(str(name), spec, known, where, problems)
        if entry is not None:
            entries.append(entry)
    if problems:
        raise InvalidDataError("invalid data dictionary", problems)
    return DataDictionary(program=str(program), fields=tuple(entries), source=label)


def _parse_field(name: str, spec: Any, known: set[str], where: str, problems: list[Problem]) -> FieldEntry | None:
    before = len(problems)
    if not _FIELD_NAME.match(name):
        problems.append(Problem(where, "field names are letters, digits, spaces and _ . - (at most 128)"))
    if not isinstance(spec, Mapping):
        problems.append(Problem(where, "expected a mapping with category, identifier and type"))
        return None
    for key in spec:
        if key not in ("category", "identifier", "type", "kind", "date_format", "description", "person_index"):
            problems.append(Problem(f"{where}.{key}", "unknown key"))
    category = spec.get("category")
    if category not in known:
        problems.append(Problem(f"{where}.category", f"'{category}' is not a data category of the vocabulary"))
    identifier = spec.get("identifier")
    if identifier not in IDENTIFIER_CLASSES:
        problems.append(Problem(f"{where}.identifier", f"'{identifier}' is not one of {', '.join(IDENTIFIER_CLASSES)}"))
    type_ = spec.get("type")
    if type_ not in TYPES:
        problems.append(Problem(f"{where}.type", f"'{type_}' is not one of {', '.join(TYPES)}"))
    kind = spec.get("kind")
    if kind is not None and kind not in KINDS:
        problems.append(Problem(f"{where}.kind", f"'{kind}' is not a known kind of identifier"))
    if identifier == "direct" and kind is None:
        problems.append(Problem(f"{where}.kind", "required for a direct identifier (which of HIPAA's 18 it is)"))
    if kind in ("birth_date", "date") and type_ != "date":
        problems.append(Problem(f"{where}.type", f"a field of kind {kind} must have type date"))
    if kind == "zip" and type_ not in ("string", "integer"):
        problems.append(Problem(f"{where}.type", "a field of kind zip must have type string or integer"))
    if kind == "age" and type_ != "integer":
        problems.append(Problem(f"{where}.type", "a field of kind age must have type integer"))
    person_index = spec.get("person_index")
    if person_index is not None and person_index not in PERSON_INDEX_ROLES:
        problems.append(Problem(f"{where}.person_index", f"use one of {', '.join(PERSON_INDEX_ROLES)}"))
    date_format = spec.get("date_format")
    if date_format is not None and (type_ != "date" or not _DATE_FORMAT.match(str(date_format))):
        problems.append(Problem(f"{where}.date_format", "only for date fields; a strptime format such as %m/%d/%Y"))
    if len(problems) > before:
        return None
    return FieldEntry(
        name=name,
        category=str(category),
        identifier=str(identifier),
        type=str(type_),
        kind=str(kind) if kind is not None else None,
        date_format=str(date_format) if date_format is not None else None,
        description=str(spec.get("description", "")),
        person_index=str(person_index) if person_index is not None else None,
    )
