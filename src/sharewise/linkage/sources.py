"""Person files read into the standard person columns, through a column mapping when a source differs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from sharewise.domain.errors import InvalidDataError, NotFoundError, Problem

STANDARD_COLUMNS: tuple[str, ...] = (
    "record_id",
    "given_name",
    "middle_name",
    "surname",
    "dob",
    "sex",
    "ssn",
    "street_address",
    "city",
    "state",
    "zip",
    "phone",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("record_id", "given_name", "surname", "dob")


@dataclass(frozen=True)
class ColumnMapping:
    """Standard column -> the source column(s) holding it; several source columns are joined with a space."""

    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, object], location: str = "mapping") -> ColumnMapping:
        problems: list[Problem] = []
        columns: dict[str, tuple[str, ...]] = {}
        for standard, source in raw.items():
            if standard not in STANDARD_COLUMNS:
                problems.append(
                    Problem(f"{location}.{standard}", f"not a standard column ({', '.join(STANDARD_COLUMNS)})")
                )
            elif isinstance(source, str) and source:
                columns[standard] = (source,)
            elif isinstance(source, list) and source and all(isinstance(s, str) and s for s in source):
                columns[standard] = tuple(source)
            else:
                problems.append(Problem(f"{location}.{standard}", "a source column name or a list of them"))
        if problems:
            raise InvalidDataError("invalid column mapping", problems)
        return cls(columns)

    @classmethod
    def from_file(cls, path: Path) -> ColumnMapping:
        if not path.is_file():
            raise NotFoundError(f"mapping file not found: {path.name}")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, ValueError) as exc:  # ValueError: not UTF-8, or a value such as 2026-02-30
            raise InvalidDataError("invalid column mapping", [Problem(path.name, "not a readable YAML file")]) from exc
        if not isinstance(raw, dict):
            raise InvalidDataError("invalid column mapping", [Problem(path.name, "a mapping of standard -> source")])
        return cls.parse(raw, path.name)

    @classmethod
    def from_flags(cls, flags: Sequence[str]) -> ColumnMapping:
        """Parse --map standard=source[+source...] flags."""
        raw: dict[str, object] = {}
        problems = []
        for flag in flags:
            standard, sep, source = flag.partition("=")
            if not sep or not source:
                problems.append(Problem("--map", f"'{standard}': expected standard=source"))
                continue
            raw[standard.strip()] = [s.strip() for s in source.split("+")]
        if problems:
            raise InvalidDataError("invalid column mapping", problems)
        return cls.parse(raw, "--map")

    def merged(self, other: ColumnMapping) -> ColumnMapping:
        return ColumnMapping({**self.columns, **other.columns})


def _as_text(table: pa.Table) -> pa.Table:
    """Every column as text; binary ones (a share's pseudonyms, Parquet's default form) as lowercase hex."""
    columns = []
    for column_field, column in zip(table.schema, table.columns, strict=True):
        kind = column_field.type
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
            columns.append(pa.array([None if v is None else v.hex() for v in column.to_pylist()], pa.string()))
        else:
            columns.append(column.cast(pa.string()))
    return pa.table(columns, names=table.column_names)


def _read_raw(path: Path, label: str) -> pa.Table:
    if not path.exists():
        raise NotFoundError(f"{label}: file not found: {path.name}")
    if path.stat().st_size == 0:
        raise InvalidDataError("empty input", [Problem(label, f"{path.name} is empty")])
    try:
        if path.suffix.lower() in (".parquet", ".pq") or path.is_dir():
            return _as_text(pq.read_table(path))
        with path.open("rb") as handle:
            head = handle.read(4)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise InvalidDataError("wrong encoding", [Problem(label, f"{path.name} is UTF-16; save it as UTF-8")])
        convert = pacsv.ConvertOptions(strings_can_be_null=True, null_values=[""], column_types=None)
        read = pacsv.ReadOptions(block_size=1 << 24)
        first = pacsv.read_csv(path, read_options=read, convert_options=convert)
        schema = pa.schema([pa.field(name, pa.string()) for name in first.column_names])
        return first.cast(schema)
    except InvalidDataError:
        raise
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
        text = str(exc)
        reason = (
            "is not valid UTF-8"
            if "utf8" in text.lower() or "utf-8" in text.lower()
            else "is not a readable CSV/Parquet file"
        )
        raise InvalidDataError("unreadable input", [Problem(label, f"{path.name} {reason}")]) from exc


def read_people(path: Path, mapping: ColumnMapping | None = None, label: str = "input") -> pa.Table:
    """Read a CSV or Parquet file into the standard person columns (text; absent optional columns are null)."""
    raw = _read_raw(path, label)
    mapping = mapping or ColumnMapping()
    problems: list[Problem] = []
    columns: dict[str, pa.Array] = {}
    present = set(raw.column_names)
    for standard in STANDARD_COLUMNS:
        sources = mapping.columns.get(standard, (standard,))
        missing = [s for s in sources if s not in present]
        if missing:
            if standard in REQUIRED_COLUMNS or standard in mapping.columns:
                problems.append(Problem(f"{label}.{standard}", f"missing column {', '.join(missing)}"))
            columns[standard] = pa.nulls(raw.num_rows, pa.string())
            continue
        parts = [raw.column(s).combine_chunks() for s in sources]
        if len(parts) == 1:
            columns[standard] = parts[0]
        else:
            joined = pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], " ")
            columns[standard] = pc.utf8_trim_whitespace(joined)
    if problems:
        raise InvalidDataError("missing columns", problems)
    if raw.num_rows == 0:
        raise InvalidDataError("empty input", [Problem(label, f"{path.name} has no records")])
    table = pa.table(columns)
    ids = table.column("record_id")
    if ids.null_count:
        raise InvalidDataError(
            "invalid record ids", [Problem(f"{label}.record_id", f"{ids.null_count} records have no id")]
        )
    if len(pc.unique(ids)) != table.num_rows:
        raise InvalidDataError("invalid record ids", [Problem(f"{label}.record_id", "record ids are not unique")])
    return table
