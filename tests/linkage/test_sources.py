"""Reading person files: column mappings and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharewise.domain.errors import InvalidDataError, NotFoundError
from sharewise.linkage.sources import ColumnMapping, read_people


def test_every_missing_required_column_is_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("record_id,city\n1,Springfield\n", encoding="utf-8")
    with pytest.raises(InvalidDataError) as caught:
        read_people(path)
    locations = {p.location for p in caught.value.problems}
    assert locations == {"input.given_name", "input.surname", "input.dob"}


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    empty, header_only = tmp_path / "e.csv", tmp_path / "h.csv"
    empty.write_text("", encoding="utf-8")
    header_only.write_text("record_id,given_name,surname,dob\n", encoding="utf-8")
    for path in (empty, header_only):
        with pytest.raises(InvalidDataError, match="empty input"):
            read_people(path)


def test_wrong_text_encoding_is_named_without_data(tmp_path: Path) -> None:
    path = tmp_path / "u16.csv"
    path.write_text("record_id,given_name,surname,dob\n1,José,Núñez,1980-01-01\n", encoding="utf-16")
    with pytest.raises(InvalidDataError) as caught:
        read_people(path)
    message = str(caught.value.problems[0])
    assert "UTF-16" in message and "José" not in message


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        read_people(tmp_path / "nope.csv")


def test_mapping_renames_and_joins_source_columns(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("id,first,last,born,num,street\n1,Ann,Lee,1990-01-02,12,Elm St\n", encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "record_id: id\ngiven_name: first\nsurname: last\ndob: born\nstreet_address: [num, street]\n", encoding="utf-8"
    )
    people = read_people(path, ColumnMapping.from_file(mapping))
    row = people.to_pylist()[0]
    assert row["given_name"] == "Ann" and row["street_address"] == "12 Elm St" and row["phone"] is None


def test_mapping_flags_parse_and_unknown_standard_columns_are_rejected() -> None:
    assert ColumnMapping.from_flags(["given_name=first", "street_address=num+street"]).columns["street_address"] == (
        "num",
        "street",
    )
    with pytest.raises(InvalidDataError):
        ColumnMapping.from_flags(["nickname=first"])


def test_duplicate_record_ids_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("record_id,given_name,surname,dob\n1,A,B,1990-01-01\n1,C,D,1990-01-01\n", encoding="utf-8")
    with pytest.raises(InvalidDataError, match="record ids"):
        read_people(path)


def test_binary_pseudonyms_in_a_shares_parquet_are_read_as_their_hex_tokens(tmp_path: Path) -> None:
    """A share's Parquet carries pseudonyms as 32 bytes by default; linkage reads them as the hex token."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    token = bytes(range(200, 232))  # not valid UTF-8: a plain cast to text would fail
    table = pa.table(
        {
            "record_id": pa.array([token, None], pa.binary()),
            "given_name": ["Ann", "Bo"],
            "surname": ["Lee", "Ng"],
            "dob": ["1990-01-02", "1985-03-04"],
            "case": pa.array([token, token], pa.binary(32)),
        }
    )
    path = tmp_path / "share.parquet"
    pq.write_table(table, path)
    with pytest.raises(InvalidDataError, match="record"):  # the second record has no id
        read_people(path)
    pq.write_table(table.slice(0, 1), path)
    row = read_people(path).to_pylist()[0]
    assert row["record_id"] == token.hex() and row["given_name"] == "Ann"
