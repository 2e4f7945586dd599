"""PPRL: encodings are keyed and deterministic, the matcher sees encodings only, and mismatches are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharewise.domain.errors import InvalidDataError
from sharewise.linkage.evaluate import pair_accuracy
from sharewise.linkage.pprl import files
from sharewise.linkage.pprl.encode import encode
from sharewise.linkage.pprl.match import MatchOptions, MatchResult, clusters, match
from sharewise.linkage.pprl.schema import DEFAULT_SCHEMA, LinkageSchema, parse_schema
from sharewise.linkage.prepare import prepare
from sharewise.services import linkage

SECRET = b"a-secret-shared-out-of-band-0001"
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)


def _people(given_names: list[str]) -> pa.Table:
    n = len(given_names)
    return prepare(
        pa.table(
            {
                "record_id": [str(i) for i in range(n)],
                "given_name": given_names,
                "middle_name": [None] * n,
                "surname": ["smith"] * n,
                "dob": ["1980-01-02"] * n,
                "sex": ["F"] * n,
                "ssn": [None] * n,
                "street_address": ["1 elm st"] * n,
                "city": ["springfield"] * n,
                "state": ["IL"] * n,
                "zip": ["62701"] * n,
                "phone": [None] * n,
            }
        )
    )


@settings(max_examples=25, deadline=None)
@given(
    st.lists(names, min_size=1, max_size=5), st.binary(min_size=16, max_size=32), st.binary(min_size=16, max_size=32)
)
def test_encoding_is_deterministic_per_secret_and_differs_across_secrets(
    given_names: list[str], s1: bytes, s2: bytes
) -> None:
    people = _people(given_names)
    s1, s2 = b"k" + s1.replace(b" ", b"x"), b"j" + s2.replace(b" ", b"x")
    first, again = encode(people, DEFAULT_SCHEMA, s1), encode(people, DEFAULT_SCHEMA, s1)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, encode(people, DEFAULT_SCHEMA, s2))


def test_balanced_encodings_all_have_the_same_weight() -> None:
    bits = encode(_people(["ann", "bartholomew", "jo"]), DEFAULT_SCHEMA, SECRET)
    weights = np.unpackbits(bits, axis=1).sum(axis=1)
    assert set(weights.tolist()) == {DEFAULT_SCHEMA.bits}


def test_xor_folding_halves_the_encoding() -> None:
    schema = LinkageSchema("folded", 1, DEFAULT_SCHEMA.fields, hardening=("xor_fold",))
    assert encode(_people(["ann"]), schema, SECRET).shape[1] * 8 == DEFAULT_SCHEMA.bits // 2


def test_short_secret_is_refused() -> None:
    with pytest.raises(InvalidDataError, match="secret"):
        encode(_people(["ann"]), DEFAULT_SCHEMA, b"short")


def _write_party(tmp_path: Path, people: pa.Table, name: str, secret: bytes = SECRET) -> Path:
    path = tmp_path / f"{name}.csv"
    import pyarrow.csv as pacsv

    pacsv.write_csv(people, path)
    secret_file = tmp_path / f"{name}.secret"
    secret_file.write_bytes(secret)
    out = tmp_path / f"{name}.parquet"
    linkage.pprl_encode(path, secret_file, out)
    return out


def test_linkage_unit_input_contains_no_identifier(tmp_path: Path, febrl_small: tuple[pa.Table, ...]) -> None:
    people = febrl_small[0]
    out = _write_party(tmp_path, people, "a")
    table = pq.read_table(out)
    assert table.column_names == ["enc_id", "clk"]
    raw = out.read_bytes()
    record_ids = set(people.column("record_id").to_pylist())
    assert not record_ids & set(table.column("enc_id").to_pylist())
    for column in ("given_name", "surname", "ssn", "dob", "street_address"):
        for value in people.column(column).to_pylist()[:50]:
            if value and len(value) >= 4:
                assert value.encode() not in raw, column
    crosswalk = out.with_name("a.crosswalk.csv")
    assert crosswalk.exists()


def test_pprl_accuracy_floor_on_febrl_slice(tmp_path: Path, febrl_small: tuple[pa.Table, ...]) -> None:
    a, b, ta, tb = febrl_small
    ea, eb = encode(prepare(a), DEFAULT_SCHEMA, SECRET), encode(prepare(b), DEFAULT_SCHEMA, SECRET)
    result = match(ea, eb, MatchOptions(blocking="none"))
    ids_a, ids_b = np.array(a.column("record_id").to_pylist()), np.array(b.column("record_id").to_pylist())
    accuracy = pair_accuracy(pa.table({"left_id": ids_a[result.left], "right_id": ids_b[result.right]}), ta, tb)
    assert accuracy.precision >= 0.995 and accuracy.recall >= 0.99
    lsh = match(ea, eb, MatchOptions(blocking="lsh"))
    assert lsh.comparisons < len(ea) * len(eb) / 2 and len(lsh.left) >= 0.9 * len(result.left)


def test_schema_mismatch_between_parties_is_refused(tmp_path: Path, febrl_small: tuple[pa.Table, ...]) -> None:
    a = _write_party(tmp_path, febrl_small[0].slice(0, 50), "a")
    other = LinkageSchema("other", 2, DEFAULT_SCHEMA.fields[:3])
    schema_file = tmp_path / "other.yaml"
    schema_file.write_text(other.to_yaml(), encoding="utf-8")
    import pyarrow.csv as pacsv

    pacsv.write_csv(febrl_small[1].slice(0, 50), tmp_path / "b.csv")
    (tmp_path / "b.secret").write_bytes(SECRET)
    b = tmp_path / "b.parquet"
    linkage.pprl_encode(tmp_path / "b.csv", tmp_path / "b.secret", b, schema_path=schema_file)
    with pytest.raises(InvalidDataError, match="schema mismatch") as caught:
        linkage.pprl_match(a, b, tmp_path / "m.csv", MatchOptions())
    assert "other v2" in str(caught.value.problems[0])


def test_different_secrets_are_refused(tmp_path: Path, febrl_small: tuple[pa.Table, ...]) -> None:
    a = _write_party(tmp_path, febrl_small[0].slice(0, 50), "a")
    b = _write_party(tmp_path, febrl_small[1].slice(0, 50), "b", secret=b"another-secret-entirely-0000")
    with pytest.raises(InvalidDataError, match="schema mismatch") as caught:
        linkage.pprl_match(a, b, tmp_path / "m.csv", MatchOptions())
    assert "different secrets" in str(caught.value.problems[0])


def test_wrong_encoding_files_are_refused(tmp_path: Path, febrl_small: tuple[pa.Table, ...]) -> None:
    good = _write_party(tmp_path, febrl_small[0].slice(0, 20), "a")
    leaky = tmp_path / "leaky.parquet"
    table = pq.read_table(good)
    pq.write_table(
        table.append_column("surname", pa.array(["x"] * table.num_rows)).replace_schema_metadata(table.schema.metadata),
        leaky,
    )
    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_text("record_id\n1\n", encoding="utf-8")
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"enc_id": ["1"], "clk": [b"\x00" * 8]}), plain)
    for path, text in ((leaky, "encodings only"), (not_parquet, "not a Parquet"), (plain, "metadata")):
        with pytest.raises(InvalidDataError, match="wrong encodings") as caught:
            files.read_encodings(path, "ENC_A")
        assert text in str(caught.value.problems[0])


def test_schema_validation_gathers_every_problem() -> None:
    with pytest.raises(InvalidDataError) as caught:
        parse_schema({"name": "", "version": 0, "bits": 100, "fields": [{"name": "email", "k": 0}]})
    assert len(caught.value.problems) >= 4


def test_clusters_join_connected_encodings() -> None:
    result = MatchResult(np.array([0, 1]), np.array([0, 0]), np.array([0.9, 0.9], dtype=np.float32), 4)
    labels = clusters(3, 2, result)
    assert labels[0] == labels[1] == labels[3] and len(set(labels.tolist())) == 3
