"""Consent and person files in YAML or JSON: a syntax error is named in the file's own language, by place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sharewise.domain.errors import InvalidDataError
from sharewise.services import consents as service
from tests.consent.conftest import PART2, consent

# A comma missing after the person: line 3, column 3 is where the next key begins.
BROKEN_JSON = (
    '{\n  "person": {"given_name": "Ana", "family_name": "Example", "date_of_birth": "1990-04-02"}\n  "data": []\n}\n'
)


def problems_of(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(InvalidDataError) as info:
        service.read_consent(path)
    assert info.value.message == "malformed consent file"
    return [(p.location, p.message) for p in info.value.problems]


def test_a_json_consent_is_read_like_a_yaml_one(tmp_path: Path) -> None:
    path = tmp_path / "consent.json"
    path.write_text(json.dumps(PART2, indent=2))
    assert service.read_consent(path) == consent()


def test_a_json_file_with_a_syntax_error_is_malformed_json_by_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "consent.json"
    path.write_text(BROKEN_JSON)
    assert problems_of(path) == [(f"{path}:3:3", "malformed JSON: Expecting ',' delimiter")]


def test_json_text_under_another_name_is_known_by_its_content(tmp_path: Path) -> None:
    path = tmp_path / "consent.txt"
    path.write_text(BROKEN_JSON)
    assert problems_of(path) == [(f"{path}:3:3", "malformed JSON: Expecting ',' delimiter")]


def test_a_yaml_file_with_a_syntax_error_is_still_malformed_yaml(tmp_path: Path) -> None:
    path = tmp_path / "consent.yaml"
    path.write_text(yaml.safe_dump(PART2, sort_keys=False).replace("purposes:", "purposes: [care", 1))
    ((location, message),) = problems_of(path)
    assert location.startswith(f"{path}:") and message.startswith("malformed YAML: ")


def test_a_yaml_flow_mapping_that_is_not_json_is_read_as_yaml(tmp_path: Path) -> None:
    path = tmp_path / "consent.yaml"
    path.write_text(json.dumps(PART2).replace('"effective"', "effective"))  # YAML, not JSON
    assert service.read_consent(path) == consent()


def test_a_json_file_must_be_json(tmp_path: Path) -> None:
    path = tmp_path / "consent.json"
    path.write_text(yaml.safe_dump(PART2))
    ((location, message),) = problems_of(path)
    assert location == f"{path}:1:1" and message.startswith("malformed JSON: ")


def test_a_json_syntax_error_does_not_echo_the_file(tmp_path: Path) -> None:
    path = tmp_path / "consent.json"
    path.write_text('{"person": {"given_name": "Ana" "family_name": "Example"}}')
    said = " ".join(f"{location} {message}" for location, message in problems_of(path))
    assert "Ana" not in said and "Example" not in said


def test_a_person_file_in_broken_json_is_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "person.json"
    path.write_text('{"given_name": "Ana",\n "family_name": "Example"\n "date_of_birth": "1990-04-02"}')
    with pytest.raises(InvalidDataError) as info:
        service.read_person(path)
    assert info.value.message == "malformed person file"
    assert [(p.location, p.message) for p in info.value.problems] == [
        (f"{path}:3:2", "malformed JSON: Expecting ',' delimiter")
    ]
