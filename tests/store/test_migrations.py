"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sharewise.store.database import Store, open_store
from sharewise.store.schema import metadata


def test_migrated_schema_matches_the_declared_tables(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], diff


def test_migrating_twice_is_harmless(store: Store) -> None:
    store.migrate()
    again = open_store(store.url)
    again.dispose()
