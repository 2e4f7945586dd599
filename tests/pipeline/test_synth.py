"""Synthetic data is deterministic, realistic enough to test on, and keeps the linkage truth aside."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sharewise.domain.errors import InvalidDataError
from sharewise.pipeline.dictionary import load_dictionary
from sharewise.pipeline.synth import generate
from sharewise.policy.model import LawPack


def test_the_same_seed_gives_the_same_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", 120, ["snap", "medicaid"], seed=7)
    generate(tmp_path / "b", 120, ["snap", "medicaid"], seed=7)
    for name in ("snap.csv", "medicaid.csv", "truth.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_records_link_to_people_only_through_the_truth_file(tmp_path: Path, law: LawPack) -> None:
    result = generate(tmp_path, 300, ["snap", "medicaid", "child_welfare"], seed=3)
    with (tmp_path / "truth.csv").open(encoding="utf-8") as handle:
        truth = list(csv.DictReader(handle))
    assert len(truth) == sum(result.records.values())
    people = {t["person_id"] for t in truth}
    assert len(people) < len(truth)  # people appear in several programs (and some twice in one)
    with (tmp_path / "snap.csv").open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert "person_id" not in header
    dictionary = load_dictionary(tmp_path / "dictionary-snap.yaml", law.vocabulary.data_categories)
    assert set(dictionary.names) == set(header)


def test_unknown_programs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError):
        generate(tmp_path, 10, ["snap", "nope"])
