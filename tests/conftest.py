"""Shared fixtures: the federal law pack, a fixed date, and stores on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sharewise.policy.load import load_law
from sharewise.policy.model import LawPack
from sharewise.store.database import Store, open_store

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TODAY = dt.date(2026, 11, 25)


@pytest.fixture(scope="session")
def law() -> LawPack:
    return load_law()


@pytest.fixture(scope="session")
def today() -> dt.date:
    return TODAY


POSTGRES_ADMIN = os.environ.get("SHAREWISE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (its SQLAlchemy URL), dropped afterwards.

    A missing PostgreSQL server fails the test (CI must have it); it is never skipped.
    """
    name = f"sw_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_store() -> Iterator[Store]:
    with postgres_database() as url:
        store = open_store(url)
        try:
            yield store
        finally:
            store.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'sharewise.db'}")
        yield s
        s.dispose()
    else:
        yield from _postgres_store()


@pytest.fixture
def postgres_store() -> Iterator[Store]:
    yield from _postgres_store()


def drop_append_only_triggers(conn: object, is_sqlite: bool) -> None:
    """What an attacker with rights over the schema would do first: tamper tests start here."""
    from sqlalchemy import text

    for table in ("audit_records", "audit_checkpoints"):
        if is_sqlite:
            statements = [f"DROP TRIGGER IF EXISTS {table}_no_update", f"DROP TRIGGER IF EXISTS {table}_no_delete"]
        else:
            statements = [
                f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
                f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
            ]
        for statement in statements:
            conn.execute(text(statement))  # type: ignore[attr-defined]
