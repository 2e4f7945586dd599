"""Small client files and dictionaries that the pipeline, backend and service tests share."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import yaml

DICTIONARY: dict[str, Any] = {
    "program": "snap",
    "status": "confirmed",
    "fields": {
        "client_id": {"category": "identity", "identifier": "direct", "kind": "unique_id", "type": "string"},
        "first_name": {"category": "identity", "identifier": "direct", "kind": "name", "type": "string"},
        "ssn": {"category": "identity", "identifier": "direct", "kind": "ssn", "type": "string"},
        "birth_date": {"category": "identity", "identifier": "direct", "kind": "birth_date", "type": "date"},
        "age": {"category": "demographics", "identifier": "quasi", "kind": "age", "type": "integer"},
        "sex": {"category": "demographics", "identifier": "quasi", "type": "string"},
        "zip": {"category": "contact", "identifier": "direct", "kind": "zip", "type": "string"},
        "phone": {"category": "contact", "identifier": "direct", "kind": "phone", "type": "string"},
        "note": {"category": "case_records", "identifier": "sensitive", "type": "string"},
        "benefit": {"category": "eligibility_and_benefits", "identifier": "other", "type": "decimal"},
        "certified_on": {"category": "eligibility_and_benefits", "identifier": "other", "type": "date"},
    },
}

HEADER = [
    "client_id",
    "first_name",
    "ssn",
    "birth_date",
    "age",
    "sex",
    "zip",
    "phone",
    "note",
    "benefit",
    "certified_on",
    "secret_flag",
]


def client_rows(n: int = 60) -> list[list[str]]:
    """Deterministic rows: a few ZIPs (one restricted prefix), ages including over 89, formula-like notes."""
    zips = ["02139", "03601", "60614", "60615", "94110"]  # 036 is a restricted prefix
    notes = ["=SUM(A1:A2)", "+1 call", "-dash", "@home", "\tindent", "plain", "\rcarriage", "ok"]
    rows = []
    for i in range(n):
        age = 95 if i % 20 == 0 else 20 + (i * 7) % 60
        birth = dt.date(2026 - age, 1 + i % 12, 1 + i % 28)
        rows.append(
            [
                f"C{i:04d}",
                f"Name{i}",
                f"900-{i % 100:02d}-{1000 + i:04d}",
                birth.isoformat(),
                str(age),
                "F" if i % 2 else "M",
                zips[i % len(zips)],
                f"555-01{i % 100:02d}",
                notes[i % len(notes)],
                f"{100 + i}.50",
                f"2025-{1 + i % 12:02d}-15",
                "Y" if i % 3 else "N",
            ]
        )
    return rows


def write_clients(directory: Path, n: int = 60) -> tuple[Path, Path]:
    """clients.csv and its dictionary (which does not map secret_flag)."""
    data = directory / "clients.csv"
    with data.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(client_rows(n))
    dictionary = directory / "dictionary.yaml"
    dictionary.write_text(yaml.safe_dump(DICTIONARY), encoding="utf-8")
    return data, dictionary
