"""Propose a data dictionary from a sample of a file, for a person to review and confirm."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from sharewise.domain.errors import InvalidDataError, Problem

SAMPLE_ROWS = 500

# Value patterns: (kind, identifier class, category, type, pattern). A column is given a
# pattern's kind when at least 80% of its non-empty sample values match.
_PATTERNS: list[tuple[str, str, str, str, re.Pattern[str]]] = [
    ("ssn", "direct", "identity", "string", re.compile(r"^\d{3}-?\d{2}-?\d{4}$")),
    ("email", "direct", "contact", "string", re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")),
    ("phone", "direct", "contact", "string", re.compile(r"^\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}$")),
    ("zip", "direct", "contact", "string", re.compile(r"^\d{5}(-\d{4})?$")),
    ("date", "quasi", "case_records", "date", re.compile(r"^\d{4}-\d{2}-\d{2}$")),
    ("date", "quasi", "case_records", "date", re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$")),
]

# Column-name hints, checked before value patterns: (regex on the lower-cased name, kind,
# identifier class, category, type). Order matters: the first match wins.
_NAME_HINTS: list[tuple[str, str | None, str, str, str]] = [
    (r"(^|_)(ssn|social_security)", "ssn", "direct", "identity", "string"),
    (r"(first|last|middle|given|family|sur)_?name|^name$|full_?name", "name", "direct", "identity", "string"),
    (r"(dob|birth_?date|date_of_birth)", "birth_date", "direct", "identity", "date"),
    (r"(street|address|addr)", "street_address", "direct", "contact", "string"),
    (r"(^|_)city", "city", "direct", "contact", "string"),
    (r"county", "county", "direct", "contact", "string"),
    (r"(zip|postal)", "zip", "direct", "contact", "string"),
    (r"(phone|mobile|tel)", "phone", "direct", "contact", "string"),
    (r"fax", "fax", "direct", "contact", "string"),
    (r"e_?mail", "email", "direct", "contact", "string"),
    (r"(mrn|medical_record)", "medical_record_number", "direct", "health_information", "string"),
    (r"(medicaid|member|beneficiary)_?(id|number)", "health_plan_number", "direct", "identity", "string"),
    (r"(account|acct)", "account_number", "direct", "eligibility_and_benefits", "string"),
    (r"(license|licence)", "license_number", "direct", "identity", "string"),
    (r"(^|_)ip(_|$)", "ip_address", "direct", "contact", "string"),
    (r"(^|_)age$", "age", "quasi", "demographics", "integer"),
    (r"(client|person|case|household)_?(id|number)", "unique_id", "direct", "identity", "string"),
    (r"(sex|gender|race|ethnic|language)", None, "quasi", "demographics", "string"),
]


@dataclass(frozen=True)
class ProposedField:
    """A suggestion for one column, and why it was made."""

    name: str
    category: str
    identifier: str
    type: str
    kind: str | None
    why: str


def read_sample(path: Path, rows: int = SAMPLE_ROWS) -> tuple[list[str], list[list[str]]]:
    """The header and the first rows of a CSV or Parquet file (a sample, never the whole file)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            file = pq.ParquetFile(path)
            batch = next(file.iter_batches(batch_size=rows), None)
        except (OSError, ValueError) as exc:
            raise InvalidDataError("cannot read sample", [Problem(str(path), "not a readable Parquet file")]) from exc
        names = list(file.schema_arrow.names)
        if batch is None:
            return names, []
        columns = [[("" if v is None else str(v)) for v in batch.column(i).to_pylist()] for i in range(len(names))]
        return names, [list(r) for r in zip(*columns, strict=True)]
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise InvalidDataError("empty sample", [Problem(str(path), "the file is empty")])
            sample = []
            for i, row in enumerate(reader):
                if i >= rows:
                    break
                if len(row) != len(header):
                    raise InvalidDataError(
                        "malformed CSV",
                        [Problem(f"{path}:{reader.line_num}", f"{len(row)} cells where the header has {len(header)}")],
                    )
                sample.append(row)
    except UnicodeDecodeError as exc:
        raise InvalidDataError("malformed CSV", [Problem(str(path), "not UTF-8 text")]) from exc
    except OSError as exc:
        raise InvalidDataError("cannot read sample", [Problem(str(path), "cannot read the file")]) from exc
    return header, sample


def propose_fields(header: list[str], rows: list[list[str]]) -> list[ProposedField]:
    """Suggest a dictionary entry for each column from its name and the patterns of its values."""
    proposals = []
    for index, name in enumerate(header):
        values = [r[index].strip() for r in rows if index < len(r) and r[index].strip()]
        proposals.append(_propose(name, values))
    return proposals


def _propose(name: str, values: list[str]) -> ProposedField:
    lower = re.sub(r"[^a-z0-9]+", "_", name.lower())
    for hint, kind, identifier, category, type_ in _NAME_HINTS:
        if re.search(hint, lower):
            return ProposedField(
                name, category, identifier, type_, kind, f"column name looks like {kind or identifier}"
            )
    for kind, identifier, category, type_, pattern in _PATTERNS:
        if values and _share(values, pattern.match) >= 0.8:
            return ProposedField(name, category, identifier, type_, kind, f"values look like {kind}")
    if values and _share(values, re.compile(r"^-?\d+$").match) >= 0.95:
        return ProposedField(name, "case_records", "other", "integer", None, "values are whole numbers")
    if values and _share(values, re.compile(r"^-?\d+(\.\d+)?$").match) >= 0.95:
        return ProposedField(name, "case_records", "other", "decimal", None, "values are numbers")
    return ProposedField(name, "case_records", "other", "string", None, "no pattern recognised: review")


def _share(values: list[str], match: Callable[[str], object]) -> float:
    return sum(1 for v in values if match(v)) / len(values)


def proposal_yaml(program: str, proposals: list[ProposedField], source: str) -> str:
    """The proposal as a dictionary file with status: proposed, which the loader refuses until confirmed."""
    fields: dict[str, dict[str, str]] = {}
    for p in proposals:
        entry = {"category": p.category, "identifier": p.identifier, "type": p.type}
        if p.kind is not None:
            entry["kind"] = p.kind
        entry["description"] = f"proposed: {p.why}"
        fields[p.name] = entry
    header = (
        f"# Proposed by `sharewise dictionary propose` from a sample of {Path(source).name}.\n"
        "# Review every field (category, identifier class, kind, type), then set status: confirmed.\n"
        "# A field missing from a confirmed dictionary never leaves in a share.\n"
    )
    body = yaml.safe_dump({"program": program, "status": "proposed", "fields": fields}, sort_keys=False)
    return header + body
