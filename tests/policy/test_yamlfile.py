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
