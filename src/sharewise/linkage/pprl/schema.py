"""The linkage schema both parties agree on (versioned): which fields are encoded, how, and how hardened."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sharewise.domain.errors import InvalidDataError, NotFoundError, Problem

SCHEMA_FORMAT = 1
TOKENIZERS = ("qgram", "date", "exact")
HARDENINGS = ("balance", "xor_fold")
# Prepared columns a schema may encode (see sharewise.linkage.prepare.PREPARED_COLUMNS).
ENCODABLE = (
    "given_std",
    "middle_std",
    "surname_std",
    "dob",
    "sex",
    "ssn",
    "ssn_last4",
    "street_std",
    "house_number",
    "city_std",
    "state_std",
    "zip",
    "phone",
)


@dataclass(frozen=True)
class FieldSpec:
    """One encoded field: its prepared column, how it is split into tokens, and hashes per token (its weight)."""

    name: str
    tokenizer: str = "qgram"
    q: int = 2
    k: int = 10


@dataclass(frozen=True)
class LinkageSchema:
    """The agreed encoding: fields, filter length, hardening, and the matcher's default threshold."""

    name: str
    version: int
    fields: tuple[FieldSpec, ...]
    bits: int = 1024
    hardening: tuple[str, ...] = ("balance",)
    threshold: float = 0.7
    format: int = SCHEMA_FORMAT
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def encoded_bits(self) -> int:
        bits = self.bits * (2 if "balance" in self.hardening else 1)
        return bits // 2 if "xor_fold" in self.hardening else bits

    def canonical(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        data.pop("notes")
        return data

    def fingerprint(self) -> str:
        """SHA-256 of the canonical schema: equal for both parties exactly when they encode alike."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_yaml(self) -> str:
        data = self.canonical()
        data["fields"] = [asdict(f) for f in self.fields]
        data["hardening"] = list(self.hardening)
        return "# sharewise PPRL linkage schema: both parties must use this exact file.\n" + yaml.safe_dump(
            data, sort_keys=False
        )


DEFAULT_SCHEMA = LinkageSchema(
    name="sharewise-default",
    version=1,
    fields=(
        FieldSpec("given_std", "qgram", 2, 12),
        FieldSpec("surname_std", "qgram", 2, 12),
        FieldSpec("dob", "date", 1, 12),
        FieldSpec("sex", "exact", 1, 4),
        FieldSpec("ssn", "qgram", 2, 8),
        FieldSpec("street_std", "qgram", 2, 4),
        FieldSpec("city_std", "qgram", 2, 4),
        FieldSpec("zip", "qgram", 2, 6),
    ),
)


def parse_schema(raw: Any, location: str = "schema") -> LinkageSchema:
    """Validate a schema document, gathering every problem."""
    problems: list[Problem] = []
    if not isinstance(raw, dict):
        raise InvalidDataError("invalid linkage schema", [Problem(location, "a mapping")])
    fmt = raw.get("format", SCHEMA_FORMAT)
    if fmt != SCHEMA_FORMAT:
        problems.append(
            Problem(f"{location}.format", f"format {fmt} is not supported (this sharewise reads {SCHEMA_FORMAT})")
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append(Problem(f"{location}.name", "a name is required"))
    version = raw.get("version")
    if not isinstance(version, int) or version < 1:
        problems.append(Problem(f"{location}.version", "a positive integer is required"))
    bits = raw.get("bits", 1024)
    if not isinstance(bits, int) or bits < 64 or bits % 64:
        problems.append(Problem(f"{location}.bits", "a multiple of 64, at least 64"))
    hardening = raw.get("hardening", ["balance"])
    if not isinstance(hardening, list) or any(h not in HARDENINGS for h in hardening):
        problems.append(Problem(f"{location}.hardening", f"a list of {', '.join(HARDENINGS)}"))
        hardening = []
    threshold = raw.get("threshold", 0.7)
    if not isinstance(threshold, int | float) or not 0 < threshold <= 1:
        problems.append(Problem(f"{location}.threshold", "a number in (0, 1]"))
    fields: list[FieldSpec] = []
    raw_fields = raw.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        problems.append(Problem(f"{location}.fields", "a non-empty list"))
        raw_fields = []
    for i, item in enumerate(raw_fields):
        where = f"{location}.fields[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, "a mapping"))
            continue
        fname, tok = item.get("name"), item.get("tokenizer", "qgram")
        q, k = item.get("q", 2), item.get("k", 10)
        if fname not in ENCODABLE:
            problems.append(Problem(f"{where}.name", f"one of {', '.join(ENCODABLE)}"))
        if tok not in TOKENIZERS:
            problems.append(Problem(f"{where}.tokenizer", f"one of {', '.join(TOKENIZERS)}"))
        if not isinstance(q, int) or not 1 <= q <= 3:
            problems.append(Problem(f"{where}.q", "1, 2 or 3"))
        if not isinstance(k, int) or not 1 <= k <= 64:
            problems.append(Problem(f"{where}.k", "an integer from 1 to 64"))
        fields.append(
            FieldSpec(str(fname), str(tok), int(q) if isinstance(q, int) else 2, int(k) if isinstance(k, int) else 10)
        )
    if len({f.name for f in fields}) != len(fields):
        problems.append(Problem(f"{location}.fields", "each field at most once"))
    if problems:
        raise InvalidDataError("invalid linkage schema", problems)
    return LinkageSchema(
        name=str(name),
        version=int(version),  # type: ignore[arg-type]
        fields=tuple(fields),
        bits=int(bits),
        hardening=tuple(hardening),
        threshold=float(threshold),
        notes=str(raw.get("notes", "")),
    )


def read_schema(path: Path) -> LinkageSchema:
    if not path.is_file():
        raise NotFoundError(f"linkage schema not found: {path.name}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: not UTF-8, or a value such as 2026-02-30
        raise InvalidDataError("invalid linkage schema", [Problem(path.name, "not a readable YAML file")]) from exc
    return parse_schema(raw, path.name)
