"""DuckDBBackend: the embedded default engine, streaming inputs to files without loading them in Python."""

from __future__ import annotations

import csv
import re
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from duckdb.func import ARROW, SPECIAL

from sharewise.domain.errors import InvalidDataError, Problem, StorageError
from sharewise.pipeline.backend import (
    CsvInput,
    Input,
    PostgresInput,
    PseudonymPads,
    WriteResult,
    storage_error,
)
from sharewise.pipeline.sql import HMAC_BYTES_FUNCTION, HMAC_FUNCTION, KEY_TABLE, SOURCE, hmac_sha256_sql, literal

if TYPE_CHECKING:
    import pyarrow as pa

    from sharewise.pipeline.hmac_kernel import HexTokens

_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-16": "utf-16", "latin-1": "latin-1", "iso-8859-1": "latin-1"}


def first_bad_csv_line(source: CsvInput) -> tuple[int, str] | None:
    """The physical line of the first record that is not valid text or does not have the header's cells.

    Streams the file with Python's csv module (never holding it whole, never keeping a value),
    so engines whose errors carry no line numbers can still say where the problem is.
    """
    try:
        with source.path.open(encoding=source.encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=source.delimiter, strict=True)
            width = None
            start = 1
            try:
                for row in reader:
                    if width is None:
                        width = len(row)
                    elif row and len(row) != width:
                        return start, f"has {len(row)} cells where the header has {width}"
                    start = reader.line_num + 1
            except csv.Error:
                return start, "has a quoting error"
    except UnicodeDecodeError:
        return _first_undecodable_line(source), f"is not {source.encoding} text"
    except OSError:
        return None
    return None


def _first_undecodable_line(source: CsvInput) -> int:
    with source.path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                raw.decode(source.encoding)
            except UnicodeDecodeError:
                return number
    return 1


def read_csv_header(source: CsvInput) -> list[str]:
    """The column names of a CSV file's header row; duplicates and blanks are errors."""
    label = str(source.path)
    try:
        with source.path.open(encoding=source.encoding, newline="") as handle:
            header = next(csv.reader(handle, delimiter=source.delimiter), None)
    except UnicodeDecodeError as exc:
        line = _first_undecodable_line(source)  # the reader decodes ahead, so find the line itself
        raise InvalidDataError(
            "malformed CSV", [Problem(f"{label}:{line}", f"the row is not {source.encoding} text")]
        ) from exc
    except OSError as exc:
        raise InvalidDataError("cannot read input", [Problem(label, "cannot read the file")]) from exc
    if not header:
        raise InvalidDataError("malformed CSV", [Problem(label, "the file is empty: no header row")])
    header = [h.strip().lstrip("\ufeff") for h in header]
    problems = [Problem(f"{label}:1", f"column {i + 1} has no name") for i, h in enumerate(header) if not h]
    seen: set[str] = set()
    for h in header:
        if h and h in seen:
            problems.append(Problem(f"{label}:1", f"column '{h}' appears twice"))
        seen.add(h)
    if problems:
        raise InvalidDataError("malformed CSV", problems)
    return header


def translate_engine_error(exc: Exception, label: str) -> InvalidDataError | StorageError:
    """An engine error as a sharewise error that names lines and columns, never the values in them."""
    text = str(exc)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    where = f"{label}:{line.group(1)}" if line else label
    columns = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if columns:
        return InvalidDataError(
            "malformed CSV", [Problem(where, f"{columns.group(2)} cells where the header has {columns.group(1)}")]
        )
    if "Invalid unicode" in text or ("MALFORMED" in text.upper() and "ENCODING" in text.upper()):
        return InvalidDataError("malformed CSV", [Problem(where, "not valid text in the declared encoding")])
    if "unterminated quote" in text:
        return InvalidDataError("malformed CSV", [Problem(where, "a quoted cell is never closed")])
    if isinstance(exc, duckdb.ConversionException) or "CAST_INVALID_INPUT" in text or "Conversion Error" in text:
        return InvalidDataError(
            "a value does not match its dictionary type",
            [Problem(label, "a cell does not parse as the type its data dictionary gives (values are not shown)")],
        )
    if isinstance(exc, duckdb.IOException) or "No space left" in text:
        return storage_error(exc, "the engine wrote the extract")
    if line:
        return InvalidDataError("malformed CSV", [Problem(where, "the row cannot be parsed")])
    return InvalidDataError("the engine could not read the input", [Problem(label, type(exc).__name__)])


# zstd at level 1 rather than DuckDB's default 3: on share outputs (64-digit hex tokens, which
# only entropy coding shrinks) level 1 wrote the same 2M-row extract with 20-40% less CPU and a
# 4% smaller file (docs/performance.md); any zstd reader opens either. DuckDB's own COPY with these
# options is the benchmark's floor; shares are written by pyarrow with the same codec and level.
ZSTD_LEVEL = 1
PARQUET_OPTIONS = f"FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {ZSTD_LEVEL}"
ROW_GROUP_ROWS = 122_880  # DuckDB's default row group: batches from the engine, and row groups in the file
_COMPILED_HMAC = "sw_hmac_sha256_compiled"  # the vectorized function HMAC_FUNCTION calls when compiled
_COMPILED_HMAC_BYTES = "sw_hmac_sha256_bytes_compiled"  # and the one HMAC_BYTES_FUNCTION calls


class DuckDBBackend:
    """DuckDB in process; spills to temp_directory rather than holding large results in memory.

    Pseudonyms are computed by a compiled, vectorized HMAC-SHA256 function (see hmac_kernel) when
    compiled_hmac is on and it is available, else by the same HMAC in SQL; the tokens are equal.
    """

    dialect = "duckdb"

    def __init__(
        self,
        threads: int | None = None,
        memory_limit: str | None = None,
        temp_directory: Path | None = None,
        compiled_hmac: bool = True,
    ) -> None:
        self.compiled_hmac = compiled_hmac
        self.hmac_engine = "none"  # after register_key: "openssl" or "simd" (compiled) or "sql"
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET preserve_insertion_order = false")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = {literal(memory_limit)}")
        if temp_directory:
            self.con.execute(f"SET temp_directory = {literal(str(temp_directory))}")
        self.label = "input"

    def register_input(self, source: Input) -> list[str]:
        if isinstance(source, PostgresInput):
            raise InvalidDataError("stage PostgreSQL tables first", [Problem("source", "use stage_postgres()")])
        self.label = str(source.path)
        if isinstance(source, CsvInput):
            encoding = _ENCODINGS.get(source.encoding.lower())
            if encoding is None:
                raise InvalidDataError("unsupported encoding", [Problem("source.encoding", f"'{source.encoding}'")])
            header = read_csv_header(source)
            columns = "{" + ", ".join(f"{literal(h)}: 'VARCHAR'" for h in header) + "}"
            reader = (
                f"read_csv({literal(str(source.path))}, header = true, auto_detect = false, columns = {columns}, "
                f"delim = {literal(source.delimiter)}, quote = '\"', escape = '\"', strict_mode = true, "
                f"null_padding = false, encoding = {literal(encoding)})"
            )
        else:
            path = source.path
            glob = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
            reader = f"read_parquet({literal(glob)})"
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {SOURCE} AS SELECT * FROM {reader}")
            names = [str(r[0]) for r in self.con.execute(f"DESCRIBE {SOURCE}").fetchall()]
        except duckdb.Error as exc:
            raise translate_engine_error(exc, self.label) from exc
        return names

    def register_key(self, pads: PseudonymPads) -> None:
        """The key table, and HMAC_FUNCTION and HMAC_BYTES_FUNCTION for that key: compiled where possible, else SQL macros.

        The compiled functions hold the key's SHA-256 midstates in this connection (as secret as
        the key, never in SQL text or logs) and ignores the pad arguments of the call, which
        stay for engines that compute HMAC in SQL; table and function are replaced together.
        """
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {KEY_TABLE} (ipad BLOB, opad BLOB)")
        self.con.execute(f"INSERT INTO {KEY_TABLE} VALUES (?, ?)", [pads.ipad, pads.opad])
        tokens = self._compiled_tokens(pads)
        if self.hmac_engine not in ("none", "sql"):
            self.con.remove_function(_COMPILED_HMAC)
            self.con.remove_function(_COMPILED_HMAC_BYTES)
        if tokens is None:
            body = hmac_sha256_sql("ipad", "opad", "message")
            body_bytes = hmac_sha256_sql("ipad", "opad", "message", as_bytes=True)
            self.hmac_engine = "sql"
        else:
            blob, text = duckdb.sqltype("BLOB"), duckdb.sqltype("VARCHAR")
            for name, function, returns in ((_COMPILED_HMAC, tokens[0], text), (_COMPILED_HMAC_BYTES, tokens[1], blob)):
                self.con.create_function(
                    name,
                    function,
                    [blob],
                    returns,
                    type=ARROW,
                    null_handling=SPECIAL,  # the kernel keeps nulls itself
                )
            body = f"{_COMPILED_HMAC}(message)"
            body_bytes = f"{_COMPILED_HMAC_BYTES}(message)"
            self.hmac_engine = tokens[0].engine.name
        self.con.execute(f"CREATE OR REPLACE TEMP MACRO {HMAC_FUNCTION}(ipad, opad, message) AS {body}")
        self.con.execute(f"CREATE OR REPLACE TEMP MACRO {HMAC_BYTES_FUNCTION}(ipad, opad, message) AS {body_bytes}")

    def _compiled_tokens(self, pads: PseudonymPads) -> tuple[HexTokens, HexTokens] | None:
        """The compiled hex and bytes token functions for the key, or None (HMAC in SQL)."""
        if not self.compiled_hmac:
            return None
        from sharewise.pipeline.hmac_kernel import HexTokens, compiled_hmac

        engine = compiled_hmac()
        if engine is None:
            return None
        return HexTokens(engine, pads.ipad, pads.opad), HexTokens(engine, pads.ipad, pads.opad, raw=True)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self.con.execute(sql).fetchall()
        except duckdb.Error as exc:
            raise translate_engine_error(exc, self.label) from exc

    def text_columns(self, sql: str) -> list[tuple[str, bool]]:
        try:
            relation = self.con.sql(sql)
        except duckdb.Error as exc:
            raise translate_engine_error(exc, self.label) from exc
        return [(name, str(t) == "VARCHAR") for name, t in zip(relation.columns, relation.types, strict=True)]

    def write(
        self,
        sql: str,
        directory: Path,
        fmt: str,
        parquet_encodings: str = "compatible",
        tokens: Collection[str] = (),
    ) -> WriteResult:
        name = f"part-0.{fmt}"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if fmt == "parquet":
                return WriteResult((name,), self._write_parquet(sql, directory / name, parquet_encodings, tokens))
            rows = self.con.execute(f"COPY ({sql}) TO {literal(str(directory / name))} (FORMAT csv, HEADER true)")
            counted = rows.fetchone()
        except OSError as exc:
            raise storage_error(exc, "the engine wrote the extract") from exc
        except duckdb.Error as exc:
            raise translate_engine_error(exc, self.label) from exc
        return WriteResult((name,), int(counted[0]) if counted else 0)

    def _write_parquet(self, sql: str, path: Path, encodings: str, tokens: Collection[str]) -> int:
        """Stream the query's Arrow batches into pyarrow's Parquet writer; the rows written.

        DuckDB computes (on all its threads); pyarrow writes, with settings per column that DuckDB's
        own COPY cannot give: pseudonym columns hold unique random values, which no dictionary,
        statistics or (for 32-byte tokens) compression can shrink, so they are written plainly
        while every other column keeps zstd, dictionaries and statistics (docs/performance.md).
        A failure leaves no file behind.
        """
        import pyarrow.parquet as pq

        reader = self.con.sql(sql).to_arrow_reader(ROW_GROUP_ROWS)
        options = parquet_writer_options(reader.schema, encodings, tokens)
        rows = 0
        batches = iter(reader)
        try:
            with pq.ParquetWriter(path, reader.schema, **options) as writer:
                while True:
                    try:
                        batch = next(batches)
                    except StopIteration:
                        break
                    except OSError as exc:  # the engine's errors reach us through Arrow's stream as OSError
                        raise translate_engine_error(exc, self.label) from exc
                    writer.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
                    rows += batch.num_rows
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return rows

    def close(self) -> None:
        self.con.close()


def parquet_writer_options(schema: pa.Schema, encodings: str, tokens: Collection[str]) -> dict[str, Any]:
    """pyarrow ParquetWriter options for a share's columns: zstd, and pseudonyms written plainly.

    tokens: the columns that hold pseudonyms. As 32 bytes (binary) they are random, so they are
    stored uncompressed; as 64 hex digits, zstd halves them. Neither gets a dictionary (every value
    is unique) or min/max statistics (meaningless for random values).
    encodings: "compatible" writes Parquet 1.0 data pages, plain and dictionary encodings only;
    "v2" writes format 2 data pages with DELTA_LENGTH_BYTE_ARRAY for text and binary,
    DELTA_BINARY_PACKED for integers and dates, BYTE_STREAM_SPLIT for floating point.
    """
    import pyarrow as pa

    names = schema.names
    token_set = set(tokens) & set(names)
    compression = {n: "none" if n in token_set and pa.types.is_binary(schema.field(n).type) else "zstd" for n in names}
    options: dict[str, Any] = {
        "compression": compression,
        "compression_level": {n: ZSTD_LEVEL for n in names if compression[n] == "zstd"},
        "write_statistics": [n for n in names if n not in token_set],
        "data_page_version": "2.0" if encodings == "v2" else "1.0",
    }
    column_encoding: dict[str, str] = {}
    if encodings == "v2":
        for field in schema:
            kind = field.type
            if pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_string(kind):
                column_encoding[field.name] = "DELTA_LENGTH_BYTE_ARRAY"
            elif pa.types.is_integer(kind) or pa.types.is_date32(kind) or pa.types.is_timestamp(kind):
                column_encoding[field.name] = "DELTA_BINARY_PACKED"
            elif pa.types.is_floating(kind):
                column_encoding[field.name] = "BYTE_STREAM_SPLIT"
    options["use_dictionary"] = [n for n in names if n not in token_set and n not in column_encoding]
    if column_encoding:
        options["column_encoding"] = column_encoding
    return options
