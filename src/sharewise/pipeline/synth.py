"""Synthetic client records for several programs, with the linkage truth kept aside (no real person's data)."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import random
import re
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


@dataclass(frozen=True)
class SynthRates:
    """How often each phenomenon of real agency data occurs: shares from 0 to 1, realistic by default.

    - nickname: records of a person whose given name has a common nickname that carry the nickname;
    - typo: records with a typo in the surname (letters transposed, dropped or replaced);
    - move: people with a second address (each of their records carries one of the two, half and half);
    - missing_ssn: records without an SSN;
    - duplicate: enrolments recorded twice in one program;
    - twins: people who are one of a pair of twins (same surname, address, phone, date of birth and programs; own
      given name, sex and SSN): about 3 % of US births are twins;
    - household: people who live with an earlier person's family (same surname, address and phone; own given name,
      date of birth, sex and SSN; households of up to six): SNAP households average about two people;
    - shared_address: people who live where an unrelated household lives (another surname at the same street
      address: a shelter, a shared house, another unit of the same building);
    - dob_transposed: records whose date of birth has day and month swapped, among the records where the swap is
      still a date (day 12 or less, day and month different).
    """

    nickname: float = 0.08
    typo: float = 0.04
    move: float = 0.12
    missing_ssn: float = 0.10
    duplicate: float = 0.03
    twins: float = 0.03
    household: float = 0.30
    shared_address: float = 0.05
    dob_transposed: float = 0.02

    def problems(self) -> list[Problem]:
        """Every rate out of range, located by name."""
        result = [
            Problem(f"rates.{f.name}", "a share from 0 to 1")
            for f in dataclasses.fields(self)
            if not 0 <= getattr(self, f.name) <= 1
        ]
        if self.household + self.shared_address > 1:
            result.append(Problem("rates.shared_address", "household and shared_address add up to at most 1"))
        return result


@dataclass
class _Home:
    """A household with records: what later family members share, and its given names (kept apart)."""

    surname: str
    address: str
    city: str
    state: str
    zip: str
    phone: str
    names: set[str]
    slot: int = -1  # its place among the homes kept for sharing, -1 when not kept


class _Homes:
    """A bounded sample of households for later people to join or live beside (memory does not grow with people)."""

    KEPT = 5000
    # Households of more than six people are rare in caseloads; a full one takes no more members.
    LARGEST = 6

    def __init__(self, r: random.Random) -> None:
        self.r = r
        self.homes: list[_Home] = []

    def pick(self) -> _Home | None:
        return self.homes[self.r.randrange(len(self.homes))] if self.homes else None

    def keep(self, home: _Home) -> None:
        if home.slot >= 0:
            return
        if len(self.homes) < self.KEPT:
            home.slot = len(self.homes)
            self.homes.append(home)
        else:
            slot = self.r.randrange(self.KEPT)
            self.homes[slot].slot = -1
            home.slot = slot
            self.homes[slot] = home

    def joined(self, home: _Home) -> None:
        """Count a new member; a full household is no longer offered."""
        if len(home.names) >= self.LARGEST and home.slot >= 0:
            last = self.homes.pop()
            if last is not home:
                last.slot = home.slot
                self.homes[home.slot] = last
            home.slot = -1


_UNIT = re.compile(r"^(?P<street>.+ (?:Apt\.|Suite)) (?P<number>\d+)$")


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


def _given_name(fake: Faker, sex: str) -> str:
    return str(fake.first_name_female() if sex == "F" else fake.first_name_male())


def _ssn(r: random.Random) -> str:
    return f"9{r.randrange(100):02d}-{r.randrange(1, 100):02d}-{r.randrange(1, 10000):04d}"  # 9xx: never issued


def _person(fake: Faker, r: random.Random, today: dt.date, index: int, move: float) -> dict[str, Any]:
    sex = r.choice(["F", "M"])
    first = _given_name(fake, sex)
    # Ages skew young in human-services caseloads; a few are over 89 (Safe Harbor's top code).
    age = min(int(r.expovariate(1 / 28)), 104)
    birth = today - dt.timedelta(days=age * 365 + r.randrange(365))
    person = {
        "person_id": f"P{index:08d}",
        "first_name": first,
        "last_name": fake.last_name(),
        "ssn": _ssn(r),
        "birth_date": birth,
        "sex": sex,
        "address": fake.street_address(),
        "city": fake.city(),
        "state": fake.state_abbr(include_territories=False),
        "zip": fake.zipcode(),
        "phone": fake.numerify("###-###-####"),
        "email": fake.free_email(),
    }
    person["moved"] = (fake.street_address(), fake.city(), fake.zipcode()) if r.random() < move else None
    return person


def _home_of(person: dict[str, Any]) -> _Home:
    return _Home(
        person["last_name"],
        person["address"],
        person["city"],
        person["state"],
        person["zip"],
        person["phone"],
        {person["first_name"]},
    )


def _another_name(fake: Faker, sex: str, taken: set[str]) -> str:
    """A given name that is none of the taken names nor a nickname of one (family members are named apart)."""
    while True:
        name = _given_name(fake, sex)
        if name not in taken and NICKNAMES.get(name) not in taken and not any(NICKNAMES.get(t) == name for t in taken):
            return name


def _twin(fake: Faker, r: random.Random, sibling: dict[str, Any], index: int, home: _Home) -> dict[str, Any]:
    """The sibling's twin: another person (own id, given name, sex and SSN) with the same birth date and home."""
    sex = r.choice(["F", "M"])
    first = _another_name(fake, sex, home.names)
    home.names.add(first)
    return {
        **sibling,
        "person_id": f"P{index:08d}",
        "first_name": first,
        "sex": sex,
        "ssn": _ssn(r),
        "email": fake.free_email(),
    }


def _join_family(fake: Faker, person: dict[str, Any], home: _Home) -> None:
    """Make the person a member of the home's family: its surname, address and phone, a given name of their own."""
    person["first_name"] = _another_name(fake, person["sex"], home.names)
    home.names.add(person["first_name"])
    person.update(
        last_name=home.surname, address=home.address, city=home.city, state=home.state, zip=home.zip, phone=home.phone
    )


def _share_address(fake: Faker, r: random.Random, person: dict[str, Any], home: _Home) -> None:
    """Make the person an unrelated household at the home's address (another unit when the address has one)."""
    while person["last_name"] == home.surname:
        person["last_name"] = fake.last_name()
    unit = _UNIT.match(home.address)
    address = home.address
    if unit:
        number = int(unit["number"])
        other = r.randrange(1, 1000)
        address = f"{unit['street']} {other if other != number else number % 999 + 1:03d}"
    person.update(address=address, city=home.city, state=home.state, zip=home.zip)


def _transposed(birth: dt.date) -> dt.date | None:
    """The date with day and month swapped, when that is another valid date."""
    if birth.day > 12 or birth.day == birth.month:
        return None
    return birth.replace(month=birth.day, day=birth.month)


def dictionary_for(program: str) -> dict[str, Any]:
    """The confirmed data dictionary of a synthetic program's file."""
    fields = {name: dict(entry) for name, entry in IDENTITY_FIELDS.items()}
    for name, (entry, _) in PROGRAMS[program][1].items():
        fields[name] = dict(entry)
    return {"program": program, "status": "confirmed", "fields": fields}


def generate(
    out_dir: Path,
    people: int,
    programs: Sequence[str],
    seed: int = 20261125,
    today: dt.date | None = None,
    rates: SynthRates | None = None,
) -> SynthResult:
    """Write <program>.csv, dictionary-<program>.yaml and truth.csv (record -> person) into out_dir.

    Deterministic for a seed. Records carry what real agency data has, each at its rate (`SynthRates`): nicknames,
    surname typos, moves, missing SSNs, duplicates within a program, twins (distinct people who share surname, home
    and date of birth), family members and unrelated households at one address, and day/month transpositions of
    dates of birth. People are generated one at a time and written as they go; only a bounded sample of homes is kept
    for later people to share.
    """
    rates = rates or SynthRates()
    unknown = [p for p in programs if p not in PROGRAMS]
    if unknown or not programs:
        raise InvalidDataError(
            "unknown programs",
            [Problem("--programs", f"'{p}': supported are {', '.join(PROGRAMS)}") for p in unknown or ["(none)"]],
        )
    if people < 1:
        raise InvalidDataError("invalid option", [Problem("--people", "at least 1")])
    if problems := rates.problems():
        raise InvalidDataError("invalid rates", problems)
    today = today or dt.date(2026, 1, 1)
    r = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    # A pair of twins is started with probability q, so that the share of people in pairs, 2q / (1 + q), is the rate.
    twin_start = rates.twins / (2 - rates.twins)
    out_dir.mkdir(parents=True, exist_ok=True)
    handles = {p: (out_dir / f"{p}.csv").open("w", encoding="utf-8", newline="") for p in programs}
    files = [out_dir / f"{p}.csv" for p in programs]
    counts = dict.fromkeys(programs, 0)
    homes = _Homes(r)
    try:
        writers = {}
        for p, handle in handles.items():
            writers[p] = csv.writer(handle)
            writers[p].writerow([*IDENTITY_FIELDS, *PROGRAMS[p][1]])
        with (out_dir / "truth.csv").open("w", encoding="utf-8", newline="") as truth_handle:
            truth = csv.writer(truth_handle)
            truth.writerow(["program", "record_id", "person_id"])
            sibling: tuple[dict[str, Any], list[str], _Home] | None = None
            for index in range(people):
                if sibling is not None:
                    home = sibling[2]
                    person, enrolled = _twin(fake, r, sibling[0], index, home), sibling[1]
                    homes.joined(home)
                    sibling = None
                else:
                    person = _person(fake, r, today, index, rates.move)
                    where, shared = r.random(), homes.pick()
                    if shared is not None and where < rates.household:
                        _join_family(fake, person, shared)
                        homes.joined(shared)
                        home = shared
                    else:
                        if shared is not None and where < rates.household + rates.shared_address:
                            _share_address(fake, r, person, shared)
                        home = _home_of(person)
                    enrolled = [p for p in programs if r.random() < PROGRAMS[p][0]]
                    if index + 1 < people and r.random() < twin_start:
                        sibling = (person, enrolled, home)
                for program in enrolled:
                    copies = 2 if r.random() < rates.duplicate else 1
                    for _ in range(copies):
                        counts[program] += 1
                        record_id = f"{program.upper()}-{counts[program]:08d}"
                        writers[program].writerow(_record(r, today, person, record_id, program, rates))
                        truth.writerow([program, record_id, person["person_id"]])
                if enrolled and len(home.names) < _Homes.LARGEST:
                    homes.keep(home)
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


def _record(
    r: random.Random, today: dt.date, person: dict[str, Any], record_id: str, program: str, rates: SynthRates
) -> list[Any]:
    """One program record of a person, with the variation of data entered by hand."""
    first = person["first_name"]
    if first in NICKNAMES and r.random() < rates.nickname:
        first = NICKNAMES[first]
    last = _typo(r, person["last_name"]) if r.random() < rates.typo else person["last_name"]
    moved = person["moved"]
    street, city, zip_ = moved if moved and r.random() < 0.5 else (person["address"], person["city"], person["zip"])
    ssn = "" if r.random() < rates.missing_ssn else person["ssn"]
    birth: dt.date = person["birth_date"]
    swapped = _transposed(birth)
    if swapped is not None and r.random() < rates.dob_transposed:
        birth = swapped
    row = [
        record_id,
        first,
        last,
        ssn,
        birth.isoformat(),
        person["sex"],
        street,
        city,
        person["state"],
        zip_,
        person["phone"],
        person["email"],
    ]
    return row + [gen(r, today) for _, gen in PROGRAMS[program][1].values()]
