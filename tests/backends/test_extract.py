"""Share extraction gives the same, correct results on every engine."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sharewise.domain.errors import InvalidDataError
from sharewise.pipeline.backend import Backend, CsvInput, ParquetInput, PseudonymPads
from sharewise.pipeline.dictionary import parse_dictionary
from sharewise.pipeline.extract import extract
from sharewise.pipeline.spec import AggregateOptions, DeidentificationOptions, ShareSpec, build_spec
from sharewise.policy.model import LawPack
from tests.pipeline.data import DICTIONARY, HEADER, client_rows, write_clients

AS_OF = dt.date(2026, 3, 1)
KEY = bytes(range(32))


def spec_for(law: LawPack, columns: list[str], form: str, needs: list[str], **options: object) -> ShareSpec:
    dictionary = parse_dictionary(DICTIONARY, law.vocabulary.data_categories)
    permitted = ["identity", "demographics", "contact", "case_records", "eligibility_and_benefits"]
    return build_spec(dictionary, columns, needs, permitted, form, **options)  # type: ignore[arg-type]


def read_rows(directory: Path, files: tuple[str, ...]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name in files:
        path = directory / name
        if name.endswith(".parquet"):
            rows += pq.read_table(path).to_pylist()
        else:
            with path.open(encoding="utf-8", newline="") as handle:
                rows += list(csv.DictReader(handle))
    return rows


def test_pseudonyms_are_hmac_sha256_of_the_value_with_the_agreement_key(
    backend: Backend, law: LawPack, tmp_path: Path
) -> None:
    data, _ = write_clients(tmp_path)
    columns = backend.register_input(CsvInput(data))
    spec = spec_for(law, columns, "identified", ["client_id", "ssn", "benefit"], pseudonymize=["client_id", "ssn"])
    result = extract(backend, spec, tmp_path / "out", "parquet", AS_OF, PseudonymPads.from_key(KEY))
    rows = read_rows(tmp_path / "out", result.files)
    expected = {hmac.new(KEY, r[0].encode(), hashlib.sha256).digest(): r for r in client_rows()}
    assert result.rows == 60 == len(rows) and result.token_format == "bytes"  # Parquet's default
    for row in rows:
        source = expected[row["client_id"]]  # type: ignore[index]
        assert row["ssn"] == hmac.new(KEY, source[2].encode(), hashlib.sha256).digest()
    assert set(rows[0]) == {"client_id", "ssn", "benefit"}


def encodings_of(directory: Path, files: tuple[str, ...]) -> set[str]:
    """Every encoding any column chunk of the Parquet files uses."""
    found: set[str] = set()
    for name in files:
        metadata = pq.ParquetFile(directory / name).metadata
        for group in range(metadata.num_row_groups):
            for column in range(metadata.num_columns):
                found.update(metadata.row_group(group).column(column).encodings)
    return found


@pytest.mark.parametrize("encodings", ["compatible", "v2"])
def test_parquet_v2_encodings_are_written_only_when_asked_and_read_back_the_same(
    backend: Backend, law: LawPack, tmp_path: Path, encodings: str
) -> None:
    data, _ = write_clients(tmp_path)
    columns = backend.register_input(CsvInput(data))
    needs = ["client_id", "ssn", "benefit", "zip"]
    spec = spec_for(law, columns, "identified", needs, pseudonymize=["client_id", "ssn"])
    out = tmp_path / "out"
    result = extract(backend, spec, out, "parquet", AS_OF, PseudonymPads.from_key(KEY), parquet_encodings=encodings)
    delta = {"DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY", "DELTA_BINARY_PACKED"}
    used = encodings_of(out, result.files)
    assert bool(used & delta) == (encodings == "v2"), used
    assert result.parquet_encodings == encodings
    rows = read_rows(out, result.files)
    expected = {hmac.new(KEY, r[0].encode(), hashlib.sha256).digest() for r in client_rows()}
    assert len(rows) == 60 and {row["client_id"] for row in rows} == expected


def test_unknown_parquet_encodings_are_refused_before_anything_is_written(
    backend: Backend, law: LawPack, tmp_path: Path
) -> None:
    data, _ = write_clients(tmp_path)
    columns = backend.register_input(CsvInput(data))
    spec = spec_for(law, columns, "identified", ["client_id", "benefit"])
    with pytest.raises(InvalidDataError) as refused:
        extract(backend, spec, tmp_path / "out", "parquet", AS_OF, parquet_encodings="v3")
    assert refused.value.problems[0].location == "parquet_encodings"
    assert not (tmp_path / "out").exists()


def test_csv_output_escapes_cells_a_spreadsheet_would_run_as_formulas(
    backend: Backend, law: LawPack, tmp_path: Path
) -> None:
    data, _ = write_clients(tmp_path)
    columns = backend.register_input(CsvInput(data))
    spec = spec_for(law, columns, "identified", ["client_id", "note", "benefit"])
    result = extract(backend, spec, tmp_path / "out", "csv", AS_OF)
    notes = {str(r["note"]) for r in read_rows(tmp_path / "out", result.files)}
    assert {"'=SUM(A1:A2)", "'+1 call", "'-dash", "'@home", "'\tindent", "'\rcarriage", "plain", "ok"} == notes
    assert all(float(str(r["benefit"])) > 0 for r in read_rows(tmp_path / "out", result.files))  # numbers untouched


def test_safe_harbor_reduces_zip_dates_and_ages_and_withholds_the_rest(
    backend: Backend, law: LawPack, tmp_path: Path
) -> None:
    data, _ = write_clients(tmp_path)
    columns = backend.register_input(CsvInput(data))
    needs = ["client_id", "first_name", "birth_date", "age", "zip", "phone", "note", "certified_on"]
    spec = spec_for(
        law, columns, "deidentified", needs, deidentification=DeidentificationOptions(k=2, max_suppression=0.5)
    )
    assert spec.columns == ("birth_date", "age", "zip", "note", "certified_on")
    result = extract(backend, spec, tmp_path / "out", "parquet", AS_OF)
    rows = read_rows(tmp_path / "out", result.files)
    assert rows and result.rows == len(rows)
    assert {r["zip"] for r in rows} <= {"021", "000", "606", "941", None} and "000" in {r["zip"] for r in rows}
    assert {r["certified_on"] for r in rows} == {2025}
    assert "90+" in {r["age"] for r in rows}
    assert all(r["birth_date"] is None or int(str(r["birth_date"])) > AS_OF.year - 90 for r in rows)
    source_values = {v for row in client_rows() for v in (row[0], row[1], row[7])}
    assert not source_values & {str(v) for r in rows for v in r.values()}


def test_k_anonymity_leaves_no_class_smaller_than_k(backend: Backend, law: LawPack, tmp_path: Path) -> None:
    data, _ = write_clients(tmp_path)
    columns = backend.register_input(CsvInput(data))
    spec = spec_for(
        law,
        columns,
        "deidentified",
        ["age", "sex", "zip", "benefit"],
        deidentification=DeidentificationOptions(k=5, max_suppression=0.1),
    )
    result = extract(backend, spec, tmp_path / "out", "parquet", AS_OF)
    rows = read_rows(tmp_path / "out", result.files)
    classes: dict[tuple[object, ...], int] = {}
    for r in rows:
        key = (r["age"], r["sex"], r["zip"])
        classes[key] = classes.get(key, 0) + 1
    assert result.risk is not None
    assert min(classes.values()) >= 5
    assert result.risk.records_suppressed <= 0.1 * 60
    assert result.risk.records_in - result.risk.records_suppressed == len(rows)
    assert result.risk.max_risk <= 1 / 5
    assert result.risk.levels["age"] > 0  # ages alone are nearly unique: they had to be generalized


def test_aggregate_counts_hide_small_cells_on_every_engine(backend: Backend, law: LawPack, tmp_path: Path) -> None:
    data, _ = write_clients(tmp_path)
    columns = backend.register_input(CsvInput(data))
    spec = spec_for(
        law, columns, "aggregate", ["sex", "zip"], aggregate=AggregateOptions(by=("sex", "zip"), hide_at_most=10)
    )
    result = extract(backend, spec, tmp_path / "out", "parquet", AS_OF)
    rows = read_rows(tmp_path / "out", result.files)
    grand = next(r for r in rows if r["sex"] == "(all)" and r["zip"] == "(all)")
    assert grand["count"] == 60
    assert all(r["count"] is None or r["count"] > 10 for r in rows)
    assert all(r["suppressed"] == (r["count"] is None) for r in rows)


def test_parquet_input_gives_the_same_pseudonyms_as_csv(backend: Backend, law: LawPack, tmp_path: Path) -> None:
    import duckdb

    data, _ = write_clients(tmp_path)
    parquet = tmp_path / "clients.parquet"
    duckdb.execute(f"COPY (SELECT * FROM read_csv('{data}', all_varchar=true)) TO '{parquet}' (FORMAT parquet)")
    columns = backend.register_input(ParquetInput(parquet))
    spec = spec_for(law, columns, "identified", ["client_id"], pseudonymize=["client_id"])
    result = extract(backend, spec, tmp_path / "out", "parquet", AS_OF, PseudonymPads.from_key(KEY))
    tokens = {r["client_id"] for r in read_rows(tmp_path / "out", result.files)}
    assert tokens == {hmac.new(KEY, r[0].encode(), hashlib.sha256).digest() for r in client_rows()}


def test_a_ragged_csv_row_is_a_clear_error_without_its_values(backend: Backend, law: LawPack, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("client_id,note\nC1,fine\nC2,Jane Roe private,extra\nC3,ok\n", encoding="utf-8")
    with pytest.raises(InvalidDataError) as caught:
        backend.register_input(CsvInput(path))
        backend.query("SELECT COUNT(*) FROM sw_source")
    text = caught.value.message + " ".join(str(p) for p in caught.value.problems)
    assert "malformed CSV" in text and "Jane Roe" not in text
    assert caught.value.problems[0].location.endswith("ragged.csv:3")  # every engine says which line


def test_text_in_another_encoding_is_a_clear_error_with_its_line(backend: Backend, tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("client_id,note\nC1,fine\nC2,Jos\u00e9 private\n".encode("latin-1"))
    with pytest.raises(InvalidDataError) as caught:
        backend.register_input(CsvInput(path))
        backend.query("SELECT COUNT(*), MAX(note) FROM sw_source")
    text = caught.value.message + " ".join(str(p) for p in caught.value.problems)
    assert "malformed CSV" in text and "private" not in text
    assert caught.value.problems[0].location.endswith("latin.csv:3")


def test_a_value_that_does_not_match_its_type_is_reported_without_the_value(
    backend: Backend, law: LawPack, tmp_path: Path
) -> None:
    path = tmp_path / "typed.csv"
    path.write_text("client_id,certified_on\nC1,2025-01-02\nC2,Jane Roe 1984\n", encoding="utf-8")
    columns = backend.register_input(CsvInput(path))
    spec = spec_for(law, columns, "identified", ["client_id", "certified_on"])
    with pytest.raises(InvalidDataError) as caught:
        extract(backend, spec, tmp_path / "out", "parquet", AS_OF)
    text = caught.value.message + " ".join(str(p) for p in caught.value.problems)
    assert "type" in text and "Jane Roe" not in text


def digests_of_clients(field: int) -> set[bytes]:
    return {hmac.new(KEY, r[field].encode(), hashlib.sha256).digest() for r in client_rows()}


@pytest.mark.parametrize("encodings", ["compatible", "v2"])
def test_bytes_tokens_are_the_hmac_digests_themselves(
    backend: Backend, law: LawPack, tmp_path: Path, encodings: str
) -> None:
    data, _ = write_clients(tmp_path)
    columns = backend.register_input(CsvInput(data))
    spec = spec_for(law, columns, "identified", ["client_id", "ssn", "benefit"], pseudonymize=["client_id", "ssn"])
    out = tmp_path / "out"
    pads = PseudonymPads.from_key(KEY)
    result = extract(backend, spec, out, "parquet", AS_OF, pads, parquet_encodings=encodings, token_format="bytes")
    assert result.token_format == "bytes"
    table = pq.read_table(out / result.files[0])
    assert str(table.schema.field("client_id").type) == "binary" and str(table.schema.field("ssn").type) == "binary"
    rows = read_rows(out, result.files)
    assert len(rows) == 60
    assert {row["client_id"] for row in rows} == digests_of_clients(0)
    assert {row["ssn"] for row in rows} == digests_of_clients(2)


def test_parquet_defaults_to_bytes_csv_to_hex_and_hex_tokens_are_the_bytes_digits(
    backend: Backend, law: LawPack, tmp_path: Path
) -> None:
    data, _ = write_clients(tmp_path)
    columns = backend.register_input(CsvInput(data))
    spec = spec_for(law, columns, "identified", ["client_id", "benefit"], pseudonymize=["client_id"])
    pads = PseudonymPads.from_key(KEY)
    raw = extract(backend, spec, tmp_path / "bytes", "parquet", AS_OF, pads)
    hexed = extract(backend, spec, tmp_path / "hex", "parquet", AS_OF, pads, token_format="hex")
    in_csv = extract(backend, spec, tmp_path / "csv", "csv", AS_OF, pads)
    assert (raw.token_format, hexed.token_format, in_csv.token_format) == ("bytes", "hex", "hex")
    as_bytes = {bytes(r["client_id"]).hex() for r in read_rows(tmp_path / "bytes", raw.files)}  # type: ignore[arg-type]
    as_hex = {str(r["client_id"]) for r in read_rows(tmp_path / "hex", hexed.files)}
    as_text = {str(r["client_id"]) for r in read_rows(tmp_path / "csv", in_csv.files)}
    assert as_hex == as_bytes == as_text and len(as_hex) == 60


def test_no_token_format_is_recorded_when_nothing_is_pseudonymized(
    backend: Backend, law: LawPack, tmp_path: Path
) -> None:
    data, _ = write_clients(tmp_path)
    columns = backend.register_input(CsvInput(data))
    spec = spec_for(law, columns, "identified", ["client_id", "benefit"])
    assert extract(backend, spec, tmp_path / "out", "csv", AS_OF).token_format is None


@pytest.mark.parametrize(("fmt", "token_format"), [("csv", "bytes"), ("parquet", "base64")])
def test_bytes_tokens_in_csv_and_unknown_token_formats_are_refused_before_anything_is_written(
    backend: Backend, law: LawPack, tmp_path: Path, fmt: str, token_format: str
) -> None:
    data, _ = write_clients(tmp_path)
    columns = backend.register_input(CsvInput(data))
    spec = spec_for(law, columns, "identified", ["client_id", "benefit"], pseudonymize=["client_id"])
    with pytest.raises(InvalidDataError) as refused:
        extract(backend, spec, tmp_path / "out", fmt, AS_OF, PseudonymPads.from_key(KEY), token_format=token_format)
    assert refused.value.problems[0].location == "token_format"
    assert not (tmp_path / "out").exists()


def test_bytes_tokens_are_the_same_when_duckdb_computes_hmac_in_sql(law: LawPack, tmp_path: Path) -> None:
    from sharewise.pipeline.duckdb_backend import DuckDBBackend

    data, _ = write_clients(tmp_path)
    found = []
    for compiled in (True, False):
        backend = DuckDBBackend(threads=2, compiled_hmac=compiled)
        try:
            columns = backend.register_input(CsvInput(data))
            spec = spec_for(law, columns, "identified", ["client_id", "benefit"], pseudonymize=["client_id"])
            out = tmp_path / f"out-{compiled}"
            result = extract(backend, spec, out, "parquet", AS_OF, PseudonymPads.from_key(KEY), token_format="bytes")
            assert backend.hmac_engine != "sql" if compiled else backend.hmac_engine == "sql"
            found.append({r["client_id"] for r in read_rows(out, result.files)})
        finally:
            backend.close()
    assert found[0] == found[1] == digests_of_clients(0)


def test_a_cell_that_does_not_parse_as_its_type_is_a_clear_error_without_its_value(
    backend: Backend, law: LawPack, tmp_path: Path
) -> None:
    rows = client_rows()
    rows[37][9] = "12x.50 Jane Roe"  # benefit: decimal
    data = tmp_path / "clients.csv"
    with data.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    columns = backend.register_input(CsvInput(data))
    spec = spec_for(law, columns, "identified", ["client_id", "benefit"], pseudonymize=["client_id"])
    with pytest.raises(InvalidDataError) as caught:
        extract(backend, spec, tmp_path / "out", "parquet", AS_OF, PseudonymPads.from_key(KEY))
    text = caught.value.message + " ".join(str(p) for p in caught.value.problems)
    assert "does not match its dictionary type" in text and "Jane Roe" not in text and "12x" not in text
    assert not list((tmp_path / "out").rglob("*.parquet"))


def test_a_bad_cell_after_the_first_row_group_leaves_no_parquet_file(law: LawPack, tmp_path: Path) -> None:
    """DuckDB streams batches to the Parquet writer: an error after some were written removes the file."""
    from sharewise.pipeline.duckdb_backend import ROW_GROUP_ROWS, DuckDBBackend

    rows = client_rows()
    data = tmp_path / "clients.csv"
    with data.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(3 * ROW_GROUP_ROWS):
            row = list(rows[i % len(rows)])
            row[0] = f"C{i:07d}"
            if i == 3 * ROW_GROUP_ROWS - 5:
                row[9] = "not a number"
            writer.writerow(row)
    backend = DuckDBBackend(threads=2)
    try:
        columns = backend.register_input(CsvInput(data))
        spec = spec_for(law, columns, "identified", ["client_id", "benefit"], pseudonymize=["client_id"])
        with pytest.raises(InvalidDataError) as caught:
            extract(backend, spec, tmp_path / "out", "parquet", AS_OF, PseudonymPads.from_key(KEY))
    finally:
        backend.close()
    assert "does not match its dictionary type" in caught.value.message
    assert not list((tmp_path / "out").rglob("*.parquet"))


@pytest.mark.parametrize(
    ("encodings", "token_format"), [("compatible", "bytes"), ("compatible", "hex"), ("v2", "bytes")]
)
def test_duckdb_writes_pseudonyms_plainly_and_every_other_column_with_zstd_and_statistics(
    law: LawPack, tmp_path: Path, encodings: str, token_format: str
) -> None:
    """Unique random tokens get no dictionary or statistics; 32-byte ones are not compressed (ADR 0005)."""
    from sharewise.pipeline.duckdb_backend import DuckDBBackend

    data, _ = write_clients(tmp_path)
    backend = DuckDBBackend(threads=2)
    try:
        columns = backend.register_input(CsvInput(data))
        needs = ["client_id", "ssn", "sex", "benefit", "certified_on"]
        spec = spec_for(law, columns, "identified", needs, pseudonymize=["client_id", "ssn"])
        out = tmp_path / "out"
        pads = PseudonymPads.from_key(KEY)
        result = extract(
            backend, spec, out, "parquet", AS_OF, pads, parquet_encodings=encodings, token_format=token_format
        )
    finally:
        backend.close()
    metadata = pq.ParquetFile(out / result.files[0]).metadata
    group = metadata.row_group(0)
    chunks = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    for name in ("client_id", "ssn"):
        chunk = chunks[name]
        assert chunk.statistics is None or not chunk.statistics.has_min_max
        assert not {"PLAIN_DICTIONARY", "RLE_DICTIONARY"} & set(chunk.encodings)
        assert chunk.compression == ("UNCOMPRESSED" if token_format == "bytes" else "ZSTD")
        assert ("DELTA_LENGTH_BYTE_ARRAY" in chunk.encodings) == (encodings == "v2")
    for name in ("sex", "benefit", "certified_on"):
        chunk = chunks[name]
        assert chunk.compression == "ZSTD" and chunk.statistics is not None and chunk.statistics.has_min_max
    delta = {"DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY", "DELTA_BINARY_PACKED"}
    assert bool(delta & {e for c in chunks.values() for e in c.encodings}) == (encodings == "v2")
