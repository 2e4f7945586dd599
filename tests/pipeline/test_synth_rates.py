"""Each phenomenon of real agency data occurs in synthetic data at about its rate, and the truth stays correct."""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from faker.providers.person.en_US import Provider as Names

from sharewise.domain.errors import InvalidDataError
from sharewise.pipeline.synth import NICKNAMES, SynthRates, generate

PEOPLE = 1500
PROGRAMS = ("snap", "tanf", "medicaid")
# Every rate off: a test turns on the one phenomenon it measures, so nothing else blurs the measurement.
QUIET = SynthRates(
    nickname=0,
    typo=0,
    move=0,
    missing_ssn=0,
    duplicate=0,
    twins=0,
    household=0,
    shared_address=0,
    dob_transposed=0,
)
_UNIT = re.compile(r" (?:Apt\.|Suite) \d+$")

Record = dict[str, str]


def _records(directory: Path, programs: tuple[str, ...] = PROGRAMS) -> list[Record]:
    """Every record of every program, with its person id from the truth file."""
    with (directory / "truth.csv").open(encoding="utf-8") as handle:
        person_of = {(t["program"], t["record_id"]): t["person_id"] for t in csv.DictReader(handle)}
    records = []
    for program in programs:
        with (directory / f"{program}.csv").open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                records.append({**row, "program": program, "person_id": person_of[(program, row["record_id"])]})
    return records


def _people(records: list[Record]) -> dict[str, Record]:
    """One record per person (with every other rate off, all of a person's records agree)."""
    return {r["person_id"]: r for r in records}


def _generate(tmp_path: Path, rates: SynthRates, name: str = "syn", seed: int = 11) -> list[Record]:
    generate(tmp_path / name, PEOPLE, PROGRAMS, seed=seed, rates=rates)
    return _records(tmp_path / name)


def _assert_about(observed: int, trials: int, rate: float, slack: float = 0.0) -> None:
    """Observed successes within four binomial standard deviations (plus slack) of trials x rate."""
    assert trials > 100, trials
    sd = math.sqrt(rate * (1 - rate) / trials)
    share = observed / trials
    assert abs(share - rate) <= 4 * sd + slack, (share, rate, trials)


def test_twins_are_distinct_people_sharing_surname_home_and_birth_date(tmp_path: Path) -> None:
    people = _people(_generate(tmp_path, SynthRates(**{**vars(QUIET), "twins": 0.10})))
    groups: dict[tuple[str, ...], list[Record]] = defaultdict(list)
    for p in people.values():
        groups[(p["last_name"], p["birth_date"], p["street"], p["phone"])].append(p)
    pairs = [g for g in groups.values() if len(g) > 1]
    assert all(len(g) == 2 for g in pairs)
    for a, b in pairs:
        assert a["person_id"] != b["person_id"] and a["ssn"] != b["ssn"]
        assert a["first_name"] != b["first_name"] and NICKNAMES.get(a["first_name"]) != b["first_name"]
    # Twins share their programs, so both appear or neither does: the share among people with records is the rate.
    _assert_about(2 * len(pairs), len(people), 0.10, slack=0.01)


def test_family_members_share_surname_address_and_phone_but_not_birth_date(tmp_path: Path) -> None:
    people = _people(_generate(tmp_path, SynthRates(**{**vars(QUIET), "household": 0.30})))
    groups: dict[tuple[str, ...], list[Record]] = defaultdict(list)
    for p in people.values():
        groups[(p["last_name"], p["street"], p["phone"])].append(p)
    members = sum(len(g) - 1 for g in groups.values())
    assert max(len(g) for g in groups.values()) >= 3  # several family members at one address
    for group in groups.values():
        assert len({p["first_name"] for p in group}) == len(group)
        assert len({p["ssn"] for p in group}) == len(group)
    _assert_about(members, len(people), 0.30, slack=0.02)


def test_unrelated_households_share_an_address_under_other_surnames(tmp_path: Path) -> None:
    people = _people(_generate(tmp_path, SynthRates(**{**vars(QUIET), "shared_address": 0.15})))
    surnames: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for p in people.values():
        surnames[(_UNIT.sub("", p["street"]), p["city"], p["zip"])].add(p["last_name"])
    households = sum(len(s) - 1 for s in surnames.values())
    assert max(len(s) for s in surnames.values()) >= 3  # several households at one address
    _assert_about(households, len(people), 0.15, slack=0.02)


def _aligned(tmp_path: Path, **rate: float) -> list[tuple[Record, Record]]:
    """Each record generated with every rate off, beside the same record generated with one rate on.

    Nicknames, missing SSNs and transposed dates draw the same random numbers whatever their rate, so the two runs
    of one seed hold the same records in the same order and differ only where the phenomenon occurred.
    """
    plain = _generate(tmp_path, QUIET, "plain")
    varied = _generate(tmp_path, SynthRates(**{**vars(QUIET), **rate}), "varied")
    assert [r["record_id"] for r in plain] == [r["record_id"] for r in varied]
    return list(zip(plain, varied, strict=True))


def test_nicknames_replace_given_names_at_their_rate(tmp_path: Path) -> None:
    pairs = _aligned(tmp_path, nickname=0.4)
    eligible = [(a, b) for a, b in pairs if a["first_name"] in NICKNAMES]
    changed = [(a, b) for a, b in eligible if a["first_name"] != b["first_name"]]
    assert all(b["first_name"] == NICKNAMES[a["first_name"]] for a, b in changed)
    assert all(a["first_name"] == b["first_name"] for a, b in pairs if a["first_name"] not in NICKNAMES)
    _assert_about(len(changed), len(eligible), 0.4)


def test_dates_of_birth_have_day_and_month_transposed_at_their_rate(tmp_path: Path) -> None:
    pairs = _aligned(tmp_path, dob_transposed=0.2)

    def transposable(value: str) -> bool:
        d = dt.date.fromisoformat(value)
        return d.day <= 12 and d.day != d.month

    eligible = [(a, b) for a, b in pairs if transposable(a["birth_date"])]
    changed = [(a, b) for a, b in eligible if a["birth_date"] != b["birth_date"]]
    for a, b in changed:
        x, y = dt.date.fromisoformat(a["birth_date"]), dt.date.fromisoformat(b["birth_date"])
        assert (y.year, y.month, y.day) == (x.year, x.day, x.month)
    assert all(a["birth_date"] == b["birth_date"] for a, b in pairs if not transposable(a["birth_date"]))
    _assert_about(len(changed), len(eligible), 0.2)


def test_ssns_go_missing_at_their_rate(tmp_path: Path) -> None:
    pairs = _aligned(tmp_path, missing_ssn=0.25)
    assert all(a["ssn"] for a, _ in pairs)
    _assert_about(sum(1 for _, b in pairs if not b["ssn"]), len(pairs), 0.25)


def test_surname_typos_occur_at_their_rate(tmp_path: Path) -> None:
    records = _generate(tmp_path, SynthRates(**{**vars(QUIET), "typo": 0.2}))
    # Faker draws surnames from its list; a typo almost always leaves it (a few typos change nothing or make
    # another listed name, hence the slack below the rate).
    misspelt = sum(1 for r in records if r["last_name"] not in Names.last_names)
    _assert_about(misspelt, len(records), 0.2, slack=0.02)


def test_enrolments_are_recorded_twice_at_the_duplicate_rate(tmp_path: Path) -> None:
    records = _generate(tmp_path, SynthRates(**{**vars(QUIET), "duplicate": 0.1}))
    per_enrolment = Counter((r["program"], r["person_id"]) for r in records)
    assert set(per_enrolment.values()) <= {1, 2}
    _assert_about(sum(1 for n in per_enrolment.values() if n == 2), len(per_enrolment), 0.1)


def test_people_who_moved_carry_two_addresses(tmp_path: Path) -> None:
    records = _generate(tmp_path, SynthRates(**{**vars(QUIET), "move": 0.3, "duplicate": 0.3}))
    addresses: dict[str, list[str]] = defaultdict(list)
    for r in records:
        addresses[r["person_id"]].append(r["street"])
    several = {p: a for p, a in addresses.items() if len(a) > 1}
    assert all(len(set(a)) <= 2 for a in several.values())
    # A mover's k records all show one of the two addresses with probability 2 x 0.5^k.
    expected = sum(0.3 * (1 - 0.5 ** (len(a) - 1)) for a in several.values())
    observed = sum(1 for a in several.values() if len(set(a)) == 2)
    assert abs(observed - expected) <= 4 * math.sqrt(expected) + 5, (observed, expected)


def test_truth_keeps_twins_family_members_and_neighbours_apart_at_default_rates(tmp_path: Path) -> None:
    generate(tmp_path, 2000, PROGRAMS, seed=5)
    records = _records(tmp_path)
    # Every person has one SSN: records that share one belong to one person, and a person's records have one.
    persons_of_ssn: dict[str, set[str]] = defaultdict(set)
    ssns_of_person: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if r["ssn"]:
            persons_of_ssn[r["ssn"]].add(r["person_id"])
            ssns_of_person[r["person_id"]].add(r["ssn"])
    assert all(len(p) == 1 for p in persons_of_ssn.values())
    assert all(len(s) == 1 for s in ssns_of_person.values())
    # Twins (same surname, birth date and home under different given names) are there, and are different people.
    lookalikes: dict[tuple[str, ...], set[tuple[str, str]]] = defaultdict(set)
    for r in records:
        lookalikes[(r["last_name"], r["birth_date"], r["street"])].add((r["person_id"], r["first_name"]))
    twins = [g for g in lookalikes.values() if len({p for p, _ in g}) > 1]
    assert twins
    for group in twins:  # a given name (or its nickname) never stands for two of them
        people_named: dict[str, set[str]] = defaultdict(set)
        for person, name in group:
            people_named[NICKNAMES.get(name, name)].add(person)
        assert all(len(p) == 1 for p in people_named.values())
    # Several people share most addresses of families and unrelated households.
    at_address: dict[str, set[str]] = defaultdict(set)
    for r in records:
        at_address[r["street"]].add(r["person_id"])
    assert sum(1 for p in at_address.values() if len(p) > 1) > 100


@pytest.mark.parametrize(
    ("change", "location"),
    [
        (lambda q: SynthRates(**{**vars(q), "twins": 1.5}), "rates.twins"),
        (lambda q: SynthRates(**{**vars(q), "typo": -0.1}), "rates.typo"),
        (lambda q: SynthRates(**{**vars(q), "household": 0.7, "shared_address": 0.5}), "rates.shared_address"),
    ],
)
def test_rates_out_of_range_are_refused(
    tmp_path: Path, change: Callable[[SynthRates], SynthRates], location: str
) -> None:
    with pytest.raises(InvalidDataError) as caught:
        generate(tmp_path, 10, ["snap"], rates=change(QUIET))
    assert [p.location for p in caught.value.problems] == [location]
