"""`sharewise synth`: every rate of the generator is an option, it changes the files, and bad values are refused."""

from __future__ import annotations

import csv
import dataclasses
import re
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sharewise.cli.main import app
from sharewise.cli.synth_options import OPTIONS
from sharewise.pipeline.synth import NICKNAMES, SynthRates

runner = CliRunner()
PEOPLE = "800"


def _synth(tmp_path: Path, name: str, *options: str) -> Path:
    out = tmp_path / name
    result = runner.invoke(
        app, ["synth", "--out", str(out), "--people", PEOPLE, "--programs", "snap,medicaid", "--seed", "7", *options]
    )
    assert result.exit_code == 0, result.output
    return out


def _records(out: Path) -> list[dict[str, str]]:
    with (out / "truth.csv").open(encoding="utf-8") as handle:
        person = {(t["program"], t["record_id"]): t["person_id"] for t in csv.DictReader(handle)}
    records = []
    for program in ("snap", "medicaid"):
        with (out / f"{program}.csv").open(encoding="utf-8") as handle:
            records += [{**r, "person_id": person[(program, r["record_id"])]} for r in csv.DictReader(handle)]
    return records


def _twin_pairs(out: Path) -> int:
    """Distinct people in the truth who share surname, birth date, street and phone (twins, by construction)."""
    groups: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for r in _records(out):
        groups[(r["last_name"], r["birth_date"], r["street"], r["phone"])].add(r["person_id"])
    return sum(len(people) * (len(people) - 1) // 2 for people in groups.values())


def test_every_rate_of_the_generator_is_an_option_with_its_default_in_help() -> None:
    assert set(OPTIONS) == {f.name for f in dataclasses.fields(SynthRates)}
    result = runner.invoke(app, ["synth", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    text = re.sub(r"\s+", " ", result.output)
    for name, option in OPTIONS.items():
        default = getattr(SynthRates(), name)
        assert re.search(rf"{re.escape(option)} [^\[]*\[default: {default}\]", text), (option, default)


def test_twins_rate_zero_writes_no_twins_and_a_higher_rate_writes_more(tmp_path: Path) -> None:
    none = _twin_pairs(_synth(tmp_path, "none", "--twins-rate", "0"))
    usual = _twin_pairs(_synth(tmp_path, "usual"))
    many = _twin_pairs(_synth(tmp_path, "many", "--twins-rate", "0.3"))
    assert none == 0
    assert 0 < usual < many
    assert many >= 60  # about 0.3 x 800 people / 2 pairs, of whom some have no records in these programs


def test_missing_ssn_and_duplicate_rates_change_the_records(tmp_path: Path) -> None:
    without = _records(_synth(tmp_path, "no-ssn", "--missing-ssn-rate", "1", "--duplicate-rate", "0"))
    complete = _records(_synth(tmp_path, "ssn", "--missing-ssn-rate", "0", "--duplicate-rate", "0.5"))
    assert without and all(r["ssn"] == "" for r in without)
    assert all(r["ssn"] for r in complete)

    def duplicates(records: list[dict[str, str]]) -> int:
        seen: defaultdict[tuple[str, str], int] = defaultdict(int)
        for r in records:
            seen[(r["record_id"][:4], r["person_id"])] += 1
        return sum(n - 1 for n in seen.values())

    assert duplicates(without) == 0
    assert duplicates(complete) >= 0.3 * len({r["person_id"] for r in complete})


def test_nickname_and_typo_rates_put_variation_in_the_names(tmp_path: Path) -> None:
    plain = _records(_synth(tmp_path, "plain", "--nickname-rate", "0", "--typo-rate", "0"))
    varied = _records(_synth(tmp_path, "varied", "--nickname-rate", "1", "--typo-rate", "1"))
    # Every record of a name that has a nickname carries the nickname at rate 1, none at rate 0.
    assert {r["first_name"] for r in plain} & set(NICKNAMES)
    assert not {r["first_name"] for r in varied} & set(NICKNAMES)
    assert {r["first_name"] for r in varied} & set(NICKNAMES.values())

    def surnames_vary(records: list[dict[str, str]]) -> float:
        """The share of people with several records whose records spell the surname in more than one way."""
        spellings: defaultdict[str, list[str]] = defaultdict(list)
        for r in records:
            spellings[r["person_id"]].append(r["last_name"])
        several = [names for names in spellings.values() if len(names) > 1]
        assert len(several) > 50
        return sum(len(set(names)) > 1 for names in several) / len(several)

    assert surnames_vary(plain) == 0
    assert surnames_vary(varied) > 0.5


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--twins-rate", "1.5"], ["--twins-rate: 1.5 is out of range: give a share from 0 to 1"]),
        (["--typo-rate", "-0.1"], ["--typo-rate: -0.1 is out of range"]),
        (["--missing-ssn-rate", "nan"], ["--missing-ssn-rate: nan is out of range"]),
        (
            ["--nickname-rate", "2", "--dob-transposed-rate", "-1"],
            ["--nickname-rate: 2 is out of range", "--dob-transposed-rate: -1 is out of range"],
        ),
        (
            ["--household-rate", "0.8", "--shared-address-rate", "0.3"],
            ["--household-rate and --shared-address-rate: add up to 1.1: at most 1"],
        ),
    ],
)
def test_rates_out_of_range_are_refused_naming_every_option(
    tmp_path: Path, options: list[str], expected: list[str]
) -> None:
    out = tmp_path / "refused"
    result = runner.invoke(app, ["synth", "--out", str(out), "--people", "10", *options])
    assert result.exit_code == 2, result.output
    assert "invalid rates" in result.output
    for line in expected:
        assert line in result.output
    assert not out.exists()  # nothing written


def test_a_rate_that_is_not_a_number_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "x"), "--move-rate", "often"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "Invalid value for '--move-rate'" in result.output and "number" in result.output
    assert not (tmp_path / "x").exists()
