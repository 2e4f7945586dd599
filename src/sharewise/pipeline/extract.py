"""Extract a share: run its specification on a backend and write the output files."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.pipeline import aggregate as agg
from sharewise.pipeline.backend import Backend, PseudonymPads, storage_error
from sharewise.pipeline.deidentify import RiskReport, search_levels
from sharewise.pipeline.spec import ShareSpec
from sharewise.pipeline.sql import (
    FORMULA_PREFIXES,
    TOKEN_FORMATS,
    aggregate_sql,
    base_sql,
    csv_escaped_sql,
    default_token_format,
    k_anonymous_sql,
)

OUTPUT_FORMATS = ("parquet", "csv")
# How Parquet output is encoded. "compatible": the Parquet 1.0 encodings (PLAIN, dictionary), which
# every reader opens. "v2": the format 2 encodings (DELTA_LENGTH_BYTE_ARRAY, DELTA_BINARY_PACKED,
# BYTE_STREAM_SPLIT), smaller and much faster to write for pseudonym tokens, opened by pyarrow,
# pandas, DuckDB, Spark 3.3 and later, R arrow; not by some older readers.
PARQUET_ENCODINGS = ("compatible", "v2")


class Progress(Protocol):
    """Where long steps are reported (the CLI shows them as Rich progress)."""

    def step(self, description: str) -> contextlib.AbstractContextManager[None]: ...


class NoProgress:
    """Reports nothing."""

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class ExtractResult:
    """What was written: files relative to the output directory, rows, columns and the protection applied."""

    files: tuple[str, ...]
    rows: int
    columns: tuple[str, ...]
    format: str
    risk: RiskReport | None = None
    parquet_encodings: str | None = None  # for parquet output: "compatible" or "v2"
    suppression: dict[str, Any] = field(default_factory=dict)
    token_format: str | None = None  # when fields are pseudonymized: "hex" or "bytes" (TOKEN_FORMATS)


def escape_formula(value: str) -> str:
    """Prefix a quote to a text cell that a spreadsheet would read as a formula."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def extract(
    backend: Backend,
    spec: ShareSpec,
    directory: Path,
    fmt: str,
    as_of: dt.date,
    pads: PseudonymPads | None = None,
    progress: Progress | None = None,
    parquet_encodings: str = "compatible",
    token_format: str | None = None,
) -> ExtractResult:
    """Write the share's records (or table) into directory/data; the records stream through the engine.

    A table of counts (the aggregate form) is small and always written with the compatible encodings.
    token_format: pseudonyms as their 32 bytes ("bytes": Parquet only) or as 64 hex digits ("hex");
    None: the output's default (bytes in Parquet, hex in CSV; default_token_format).
    """
    progress = progress or NoProgress()
    if token_format is None:
        token_format = default_token_format(fmt)
    if fmt not in OUTPUT_FORMATS:
        raise InvalidDataError("invalid share", [Problem("output", f"'{fmt}' is not one of parquet, csv")])
    if parquet_encodings not in PARQUET_ENCODINGS:
        raise InvalidDataError(
            "invalid share", [Problem("parquet_encodings", f"'{parquet_encodings}' is not one of compatible, v2")]
        )
    if token_format not in TOKEN_FORMATS:
        raise InvalidDataError(
            "invalid share", [Problem("token_format", f"'{token_format}' is not one of {', '.join(TOKEN_FORMATS)}")]
        )
    if token_format == "bytes" and fmt != "parquet":
        raise InvalidDataError(
            "invalid share", [Problem("token_format", "bytes tokens are written only to parquet output; CSV needs hex")]
        )
    if spec.needs_key:
        if pads is None:
            what = "pseudonymize" if spec.pseudonymized else "date_shift"
            raise InvalidDataError("invalid share", [Problem(what, "the agreement's pseudonym key is required")])
        backend.register_key(pads)
    base = base_sql(spec.fields, as_of.year, spec.date_shift, token_format)
    tokens = token_format if spec.pseudonymized else None
    data = directory / "data"
    risk: RiskReport | None = None
    if spec.form == "aggregate":
        with progress.step("counting cells"):
            rows = backend.query(aggregate_sql(base, spec.fields))
        return replace(_write_table(spec, rows, data, fmt), token_format=tokens)
    final = base
    if spec.form == "deidentified":
        with progress.step(f"k-anonymity search (k={spec.deidentification.k})"):
            risk = search_levels(backend.query, base, spec.fields, spec.deidentification)
        final = k_anonymous_sql(base, spec.fields, risk.levels, spec.deidentification.k)
    if fmt == "csv":
        final = csv_escaped_sql(final, backend.text_columns(final))
    with progress.step(f"writing {fmt}"):
        written = backend.write(final, data, fmt, parquet_encodings, spec.pseudonymized)
    return ExtractResult(
        files=tuple(f"data/{f}" for f in written.files),
        rows=written.rows,
        columns=spec.columns,
        format=fmt,
        risk=risk,
        parquet_encodings=parquet_encodings if fmt == "parquet" else None,
        token_format=tokens,
    )


def _write_table(spec: ShareSpec, rows: list[tuple[Any, ...]], data: Path, fmt: str) -> ExtractResult:
    dims = len(spec.fields)
    cells = agg.suppress(
        agg.tabulate(((tuple(r[:dims]), int(r[dims])) for r in rows), dims), dims, spec.aggregate.hide_at_most
    )
    columns: dict[str, list[Any]] = {p.name: [] for p in spec.fields}
    counts: list[int | None] = []
    flags: list[bool] = []
    for cell in cells:
        for plan, label in zip(spec.fields, cell.key, strict=True):
            columns[plan.name].append(escape_formula(label) if fmt == "csv" else label)
        counts.append(None if cell.suppressed else cell.count)
        flags.append(cell.suppressed)
    table = pa.table({**columns, "count": pa.array(counts, pa.int64()), "suppressed": pa.array(flags, pa.bool_())})
    name = f"part-0.{fmt}"
    try:
        data.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, data / name)
        else:
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, data / name)
    except OSError as exc:
        raise storage_error(exc, "writing the table") from exc
    primary = sum(1 for c in cells if c.primary)
    return ExtractResult(
        files=(f"data/{name}",),
        rows=len(cells),
        columns=(*spec.columns, "count", "suppressed"),
        format=fmt,
        parquet_encodings="compatible" if fmt == "parquet" else None,
        suppression={
            "cells": len(cells),
            "hidden_small_cells": primary,
            "hidden_complementary_cells": sum(1 for c in cells if c.suppressed) - primary,
            "hide_at_most": spec.aggregate.hide_at_most,
        },
    )
