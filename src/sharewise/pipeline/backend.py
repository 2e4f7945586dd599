"""The Backend interface: an engine that registers inputs and keys, and executes generated SQL."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sharewise.domain.errors import InvalidDataError, Problem, StorageError


@dataclass(frozen=True)
class CsvInput:
    """A CSV file with a header row; cells are read as text and typed by the dictionary."""

    path: Path
    encoding: str = "utf-8"
    delimiter: str = ","


@dataclass(frozen=True)
class ParquetInput:
    """A Parquet file (or a directory of Parquet files)."""

    path: Path


@dataclass(frozen=True)
class PostgresInput:
    """A table of a PostgreSQL database, streamed in batches."""

    dsn: str
    table: str
    schema: str = "public"

    def __post_init__(self) -> None:
        for part in (self.schema, self.table):
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", part):
                raise InvalidDataError(
                    "invalid source", [Problem("source.postgres", "schema and table are plain SQL names")]
                )


Input = CsvInput | ParquetInput | PostgresInput


@dataclass(frozen=True)
class PseudonymPads:
    """The HMAC-SHA256 inner and outer pads of a 32-byte key (as secret as the key itself)."""

    ipad: bytes = field(repr=False)
    opad: bytes = field(repr=False)

    @classmethod
    def from_key(cls, key: bytes) -> PseudonymPads:
        block = hashlib.sha256(key).digest() if len(key) > 64 else key
        block = block.ljust(64, b"\0")
        return cls(bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block))


@dataclass(frozen=True)
class WriteResult:
    """What a backend wrote: the files (relative to the target directory) and the row count."""

    files: tuple[str, ...]
    rows: int


class Backend(Protocol):
    """An SQL engine: registers the input and the key, runs queries, writes results. Generates no SQL."""

    dialect: str  # sqlglot dialect name of the engine

    def register_input(self, source: Input) -> list[str]:
        """Expose the input as the view sw_source; return its column names."""
        ...

    def register_key(self, pads: PseudonymPads) -> None:
        """Expose the pseudonym key's pads as the one-row table sw_pseudonym_key."""
        ...

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a query whose result is small (counts, aggregates) and return its rows."""
        ...

    def text_columns(self, sql: str) -> list[tuple[str, bool]]:
        """The output columns of a query, each with whether it is text, without running it."""
        ...

    def write(
        self,
        sql: str,
        directory: Path,
        fmt: str,
        parquet_encodings: str = "compatible",
        tokens: Collection[str] = (),
    ) -> WriteResult:
        """Stream a query's result into files in directory (parquet or csv) and count its rows.

        parquet_encodings: "compatible" (the Parquet 1.0 encodings every reader knows) or "v2"
        (the format 2 encodings: DELTA_LENGTH_BYTE_ARRAY for text and the like; see PARQUET_ENCODINGS).
        tokens: the output columns that hold pseudonyms (unique random values), which an engine
        that can set Parquet options per column writes without dictionary, statistics or, as
        bytes, compression. The values written are the same either way.
        """
        ...

    def close(self) -> None: ...


def disk_full(exc: BaseException) -> bool:
    """Whether an engine's or the OS's error means the disk is full."""
    text = str(exc).lower()
    return "no space left" in text or "disk full" in text or getattr(exc, "errno", None) == 28


def storage_error(exc: BaseException, what: str) -> StorageError:
    """A StorageError for a failed write, naming a full disk when that is the cause."""
    if disk_full(exc):
        return StorageError(f"the disk is full while {what}; nothing was published")
    return StorageError(f"writing failed while {what}; nothing was published")
