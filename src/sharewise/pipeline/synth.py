"""Synthetic client records for several programs, with the linkage truth kept aside (no real person's data)."""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from faker import Faker

from sharewise.domain.errors import InvalidDataError, Problem

# Common English nicknames, for the variation a linkage step must tolerate.
NICKNAMES = {
    "William": "Bill",
    "Robert": "Bob",
    "Richard": "Rick",
    "James": "Jim",
    "John": "Johnny",
    "Michael": "Mike",
    "Joseph": "Joe",
    "Thomas": "Tom",
    "Christopher": "Chris",
    "Daniel": "Dan",
    "Elizabeth": "Liz",
    "Jennifer": "Jen",
    "Katherine": "Kate",
    "Margaret": "Peggy",
    "Patricia": "Pat",
    "Rebecca": "Becky",
    "Samantha": "Sam",
    "Stephanie": "Steph",
    "Victoria": "Vicky",
    "Alexander": "Alex",
}

IDENTITY_FIELDS: dict[str, dict[str, str]] = {
    "record_id": {"category": "identity", "identifier": "direct", "kind": "unique_id", "type": "string"},
    "first_name": {
        "category": "identity",
        "identifier": "direct",
        "kind": "name",
        "type": "string",
        "person_index": "given_name",
    },
    "last_name": {
        "category": "identity",
        "identifier": "direct",
        "kind": "name",
        "type": "string",
        "person_index": "family_name",
    },
    "ssn": {"category": "identity", "identifier": "direct", "kind": "ssn", "type": "string"},
    "birth_date": {
        "category": "identity",
        "identifier": "direct",
        "kind": "birth_date",
        "type": "date",
        "person_index": "date_of_birth",
    },
    "sex": {"category": "demographics", "identifier": "quasi", "type": "string"},
    "street": {"category": "contact", "identifier": "direct", "kind": "street_address", "type": "string"},
    "city": {"category": "contact", "identifier": "direct", "kind": "city", "type": "string"},
    "state": {"category": "contact", "identifier": "other", "type": "string"},
    "zip": {"category": "contact", "identifier": "direct", "kind": "zip", "type": "string"},
    "phone": {"category": "contact", "identifier": "direct", "kind": "phone", "type": "string"},
    "email": {"category": "contact", "identifier": "direct", "kind": "email", "type": "string"},
}

Gen = Callable[[random.Random, dt.date], Any]


def _date_between(r: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=r.randrange(max(1, (end - start).days)))


def _recent(years: int) -> Gen:
    return lambda r, today: _date_between(r, today - dt.timedelta(days=365 * years), today).isoformat()


# Per program: (share of people enrolled, extra fields: name -> (dictionary entry, generator)).
PROGRAMS: dict[str, tuple[float, dict[str, tuple[dict[str, str], Gen]]]] = {
    "snap": (
        0.45,
        {
            "household_size": (
                {"category": "eligibility_and_benefits", "identifier": "quasi", "type": "integer"},
                lambda r, t: r.choice([1, 1, 2, 2, 3, 3, 4, 5, 6]),
            ),
            "monthly_benefit": (
                {"category": "eligibility_and_benefits", "identifier": "sensitive", "type": "decimal"},
                lambda r, t: round(r.uniform(23, 975), 2),
            ),
            "certification_date": (
                {"category": "eligibility_and_benefits", "identifier": "other", "type": "date"},
                _recent(3),
            ),
        },
    ),
    "tanf": (
        0.15,
        {
            "monthly_grant": (
                {"category": "eligibility_and_benefits", "identifier": "sensitive", "type": "decimal"},
                lambda r, t: round(r.uniform(150, 900), 2),
            ),
            "work_participation": (
                {"category": "eligibility_and_benefits", "identifier": "other", "type": "boolean"},
                lambda r, t: r.random() < 0.4,
            ),
            "application_date": (
                {"category": "eligibility_and_benefits", "identifier": "other", "type": "date"},
                _recent(2),
            ),
        },
    ),
    "medicaid": (
        0.55,
        {
            "eligibility_group": (
                {"category": "eligibility_and_benefits", "identifier": "other", "type": "string"},
                lambda r, t: r.choice(["child", "parent", "expansion_adult", "aged", "disabled", "pregnant"]),
            ),
            "enrollment_date": (
                {"category": "eligibility_and_benefits", "identifier": "other", "type": "date"},
                _recent(5),
            ),
        },
    ),
    "child_welfare": (
        0.08,
        {
            "case_role": (
                {"category": "case_records", "identifier": "quasi", "type": "string"},
                lambda r, t: r.choice(["child", "child", "parent", "caregiver"]),
            ),
            "case_open_date": ({"category": "case_records", "identifier": "other", "type": "date"}, _recent(4)),
            "placement_type": (
                {"category": "case_records", "identifier": "sensitive", "type": "string"},
                lambda r, t: r.choice(["in_home", "kinship", "foster_family", "congregate"]),
            ),
        },
    ),
    "wic": (
        0.12,
        {
            "participant_category": (
                {"category": "eligibility_and_benefits", "identifier": "quasi", "type": "string"},
                lambda r, t: r.choice(["infant", "child", "pregnant", "postpartum", "breastfeeding"]),
            ),
            "certification_date": (
                {"category": "eligibility_and_benefits", "identifier": "other", "type": "date"},
                _recent(1),
            ),
        },
    ),
}


@dataclass(frozen=True)
class SynthResult:
    """What was generated: records per program and the files written."""

    people: int
    records: dict[str, int]
    files: tuple[Path, ...]


def _typo(r: random.Random, text: str) -> str:
    if len(text) < 3:
        return text
    i = r.randrange(len(text) - 1)
    choice = r.random()
    if choice < 0.4:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]  # transposition
    if choice < 0.7:
        return text[:i] + text[i + 1 :]  # deletion
    return text[:i] + r.choice("aeiou") + text[i + 1 :]  # substitution


def _person(fake: Faker, r: random.Random, today: dt.date, index: int) -> dict[str, Any]:
    sex = r.choice(["F", "M"])
    first = fake.first_name_female() if sex == "F" else fake.first_name_male()
    # Ages skew young in human-services caseloads; a few are over 89 (Safe Harbor's top code).
    age = min(int(r.expovariate(1 / 28)), 104)
    birth = today - dt.timedelta(days=age * 365 + r.randrange(365))
    return {
        "person_id": f"P{index:08d}",
        "first_name": first,
        "last_name": fake.last_name(),
        "ssn": f"9{r.randrange(100):02d}-{r.randrange(1, 100):02d}-{r.randrange(1, 10000):04d}",  # 9xx: never issued as an SSN
        "birth_date": birth.isoformat(),
        "sex": sex,
        "address": fake.street_address(),
        "city": fake.city(),
        "state": fake.state_abbr(include_territories=False),
        "zip": fake.zipcode(),
        "phone": fake.numerify("###-###-####"),
        "email": fake.free_email(),
    }


def dictionary_for(program: str) -> dict[str, Any]:
    """The confirmed data dictionary of a synthetic program's file."""
    fields = {name: dict(entry) for name, entry in IDENTITY_FIELDS.items()}
    for name, (entry, _) in PROGRAMS[program][1].items():
        fields[name] = dict(entry)
    return {"program": program, "status": "confirmed", "fields": fields}


def generate(
    out_dir: Path, people: int, programs: Sequence[str], seed: int = 20261125, today: dt.date | None = None
) -> SynthResult:
    """Write <program>.csv, dictionary-<program>.yaml and truth.csv (record -> person) into out_dir.

    Deterministic for a seed. Records carry nicknames (8%), typos in last names (4%), moves
    (12% have another address), missing SSNs (10%), and duplicates within a program (3%).
    People are generated one at a time and written as they go.
    """
    unknown = [p for p in programs if p not in PROGRAMS]
    if unknown or not programs:
        raise InvalidDataError(
            "unknown programs",
            [Problem("--programs", f"'{p}': supported are {', '.join(PROGRAMS)}") for p in unknown or ["(none)"]],
        )
    if people < 1:
        raise InvalidDataError("invalid option", [Problem("--people", "at least 1")])
    today = today or dt.date(2026, 1, 1)
    r = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    handles = {p: (out_dir / f"{p}.csv").open("w", encoding="utf-8", newline="") for p in programs}
    files = [out_dir / f"{p}.csv" for p in programs]
    counts = dict.fromkeys(programs, 0)
    try:
        writers = {}
        for p, handle in handles.items():
            writers[p] = csv.writer(handle)
            writers[p].writerow([*IDENTITY_FIELDS, *PROGRAMS[p][1]])
        with (out_dir / "truth.csv").open("w", encoding="utf-8", newline="") as truth_handle:
            truth = csv.writer(truth_handle)
            truth.writerow(["program", "record_id", "person_id"])
            for index in range(people):
                person = _person(fake, r, today, index)
                moved = (fake.street_address(), fake.city(), fake.zipcode()) if r.random() < 0.12 else None
                for program in programs:
                    share, extra = PROGRAMS[program]
                    if r.random() >= share:
                        continue
                    copies = 2 if r.random() < 0.03 else 1
                    for _ in range(copies):
                        counts[program] += 1
                        record_id = f"{program.upper()}-{counts[program]:08d}"
                        first = person["first_name"]
                        if first in NICKNAMES and r.random() < 0.08:
                            first = NICKNAMES[first]
                        last = _typo(r, person["last_name"]) if r.random() < 0.04 else person["last_name"]
                        street, city, zip_ = (
                            moved if moved and r.random() < 0.5 else (person["address"], person["city"], person["zip"])
                        )
                        ssn = "" if r.random() < 0.10 else person["ssn"]
                        row = [
                            record_id,
                            first,
                            last,
                            ssn,
                            person["birth_date"],
                            person["sex"],
                            street,
                            city,
                            person["state"],
                            zip_,
                            person["phone"],
                            person["email"],
                        ]
                        row += [gen(r, today) for _, gen in extra.values()]
                        writers[program].writerow(row)
                        truth.writerow([program, record_id, person["person_id"]])
    finally:
        for handle in handles.values():
            handle.close()
    for program in programs:
        path = out_dir / f"dictionary-{program}.yaml"
        path.write_text(
            "# Data dictionary of the synthetic file "
            + f"{program}.csv (generated by sharewise synth).\n"
            + yaml.safe_dump(dictionary_for(program), sort_keys=False),
            encoding="utf-8",
        )
        files.append(path)
    files.append(out_dir / "truth.csv")
    return SynthResult(people, counts, tuple(files))
