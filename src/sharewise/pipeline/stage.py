"""Stage a PostgreSQL table as a private CSV file by streaming COPY, so every engine can read it."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from psycopg import sql

from sharewise.domain.errors import InvalidDataError, Problem, StorageError
from sharewise.pipeline.backend import CsvInput, PostgresInput, storage_error


def stage_postgres(source: PostgresInput, directory: Path) -> CsvInput:
    """Copy the table, chunk by chunk, into directory/<table>.csv (mode 600); never the whole table in memory."""
    target = directory / f"{source.table}.csv"
    statement = sql.SQL("COPY (SELECT * FROM {}.{}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(
        sql.Identifier(source.schema), sql.Identifier(source.table)
    )
    where = f"postgres:{source.schema}.{source.table}"
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle, psycopg.connect(source.dsn, connect_timeout=10) as conn:
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for chunk in copy:
                    handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    except psycopg.errors.UndefinedTable as exc:
        raise InvalidDataError("no such table", [Problem(where, "the table does not exist")]) from exc
    except psycopg.OperationalError as exc:
        raise StorageError(f"cannot read {where}: the database is unreachable or refused the connection") from exc
    except psycopg.Error as exc:
        raise InvalidDataError("cannot read the table", [Problem(where, type(exc).__name__)]) from exc
    except OSError as exc:
        raise storage_error(exc, "staging the PostgreSQL table") from exc
    return CsvInput(target)


def postgres_columns(source: PostgresInput) -> list[str]:
    """The column names of a PostgreSQL table, without reading its rows."""
    statement = sql.SQL("SELECT * FROM {}.{} LIMIT 0").format(
        sql.Identifier(source.schema), sql.Identifier(source.table)
    )
    where = f"postgres:{source.schema}.{source.table}"
    try:
        with psycopg.connect(source.dsn, connect_timeout=10) as conn, conn.cursor() as cur:
            cur.execute(statement)
            return [d.name for d in cur.description or []]
    except psycopg.errors.UndefinedTable as exc:
        raise InvalidDataError("no such table", [Problem(where, "the table does not exist")]) from exc
    except psycopg.OperationalError as exc:
        raise StorageError(f"cannot read {where}: the database is unreachable or refused the connection") from exc
