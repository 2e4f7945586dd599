"""Data dictionaries are validated whole, and proposals need a person's confirmation."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from sharewise.domain.errors import InvalidDataError
from sharewise.pipeline.dictionary import load_dictionary, parse_dictionary
from sharewise.pipeline.propose import proposal_yaml, propose_fields, read_sample
from sharewise.policy.model import LawPack
from tests.pipeline.data import DICTIONARY, write_clients


def test_a_confirmed_dictionary_loads(law: LawPack, tmp_path: Path) -> None:
    _, path = write_clients(tmp_path)
    dictionary = load_dictionary(path, law.vocabulary.data_categories)
    ssn = dictionary.get("ssn")
    assert ssn is not None and ssn.is_direct and ssn.kind == "ssn"
    assert dictionary.get("secret_flag") is None


def test_every_problem_is_reported_with_its_field(law: LawPack) -> None:
    data = copy.deepcopy(DICTIONARY)
    data["fields"]["ssn"] = {"category": "identity", "identifier": "direct", "type": "string"}  # no kind
    data["fields"]["note"]["category"] = "gossip"
    data["fields"]["age"]["type"] = "text"
    with pytest.raises(InvalidDataError) as caught:
        parse_dictionary(data, law.vocabulary.data_categories, "d.yaml")
    where = {p.location for p in caught.value.problems}
    assert {"d.yaml: fields.ssn.kind", "d.yaml: fields.note.category", "d.yaml: fields.age.type"} <= where


def test_a_proposed_dictionary_is_refused_until_confirmed(law: LawPack) -> None:
    data = {**DICTIONARY, "status": "proposed"}
    with pytest.raises(InvalidDataError) as caught:
        parse_dictionary(data, law.vocabulary.data_categories)
    assert "status: confirmed" in str(caught.value.problems[0])


def test_propose_recognises_identifiers_by_name_and_by_value_pattern(tmp_path: Path, law: LawPack) -> None:
    sample = tmp_path / "sample.csv"
    sample.write_text(
        "id_code,fname,contact,mailing,when,zz,amount\n"
        + "".join(f"{i},Ann,ann{i}@example.org,6061{i},2024-01-0{i},900-12-345{i},{i}.5\n" for i in range(1, 9)),
        encoding="utf-8",
    )
    header, rows = read_sample(sample)
    kinds = {p.name: p.kind for p in propose_fields(header, rows)}
    assert (
        kinds["contact"] == "email" and kinds["mailing"] == "zip" and kinds["zz"] == "ssn" and kinds["when"] == "date"
    )
    text = proposal_yaml("snap", propose_fields(header, rows), str(sample))
    import yaml

    assert yaml.safe_load(text)["status"] == "proposed"
    with pytest.raises(InvalidDataError):
        parse_dictionary(yaml.safe_load(text), law.vocabulary.data_categories)


def test_propose_reports_a_ragged_sample_row_by_line(tmp_path: Path) -> None:
    sample = tmp_path / "bad.csv"
    sample.write_text("a,b\n1,2\n3\n", encoding="utf-8")
    with pytest.raises(InvalidDataError) as caught:
        read_sample(sample)
    assert str(caught.value.problems[0]).startswith(f"{sample}:3")
