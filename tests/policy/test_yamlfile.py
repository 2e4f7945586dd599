"""Strict YAML reading: values YAML cannot construct and files that are not text are located problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharewise.policy.yamlfile import YamlProblem, parse_yaml, read_yaml


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("person:\n  born: 1990-02-30\n", "f.yaml:2: person.born: not a valid date"),
        ("a: 2026-13-01\n", "f.yaml:1: a: not a valid date"),
        ("a: 2026-02-30 10:00:00\n", "f.yaml:1: a: not a valid date"),
        ("2026-02-30: x\n", "f.yaml:1: not a valid date"),
        ("- ok\n- 2026-04-31\n", "f.yaml:2: 1: not a valid date"),
        ("a: !!int x\n", "f.yaml:1: a: not a valid int"),
        ("a: !custom x\n", "f.yaml:1: a: invalid value: could not determine a constructor"),
        ("a: !!binary zz@\n", "f.yaml:1: a: invalid value: failed to decode base64"),
        ("? [1, 2]\n: 3\n", "f.yaml:1: a key must be a plain value"),
    ],
)
def test_values_yaml_cannot_construct_are_located_problems(text: str, expected: str) -> None:
    with pytest.raises(YamlProblem) as caught:
        parse_yaml(text, "f.yaml")
    assert expected in str(caught.value)


def test_every_bad_value_is_reported_at_once_and_none_is_echoed() -> None:
    with pytest.raises(YamlProblem) as caught:
        parse_yaml("born: 1990-02-30\nsigned: 2026-02-29\nok: 2024-02-29\n", "f.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "f.yaml:1: born: not a valid date",
        "f.yaml:2: signed: not a valid date",
    ]
    assert "1990" not in str(caught.value)


def test_a_file_that_is_not_utf8_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(YamlProblem, match="not UTF-8 text"):
        read_yaml(path)


def test_valid_dates_still_read_as_dates(tmp_path: Path) -> None:
    import datetime as dt

    path = tmp_path / "ok.yaml"
    path.write_text("a: 2024-02-29\n")
    assert read_yaml(path)[0] == {"a": dt.date(2024, 2, 29)}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("f.json", '{"a": 1,\n "b": 2,\n}\n', "f.json:3:1: malformed JSON: Expecting property name"),
        ("f.json", "a: 1\n", "f.json:1:1: malformed JSON: Expecting value"),  # a .json file must be JSON
        ("f.yaml", '{"a": [1, 2\n, "b": 3}\n', "f.yaml:2:6: malformed JSON"),  # opens as JSON, YAML fails too
        ("f.yaml", "a: [1, 2\n", "malformed YAML"),
    ],
)
def test_json_syntax_errors_are_named_as_json_by_line_and_column(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(YamlProblem) as caught:
        read_yaml(path, name)
    assert expected in str(caught.value)


@pytest.mark.parametrize("as_json", [True, False])
def test_json_that_yaml_cannot_read_is_read_as_json(as_json: bool) -> None:
    from sharewise.policy.yamlfile import parse_yaml_or_json

    data, lines = parse_yaml_or_json('\t{"a": [1, 2]}\n', "f", as_json=as_json)  # a tab YAML refuses
    assert data == {"a": [1, 2]} and lines == {}
