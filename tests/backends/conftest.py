"""The same tests over every engine: a `backend` fixture for DuckDB and Spark, selected by marker (-m duckdb / -m spark)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from sharewise.pipeline.backend import Backend
from sharewise.pipeline.duckdb_backend import DuckDBBackend

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "duckdb: runs on the DuckDB backend")
    config.addinivalue_line("markers", "spark: runs on the Spark backend (local mode; Java required, never skipped)")


@pytest.fixture(scope="session")
def spark_session() -> Iterator[SparkSession]:
    # One session for the whole run: starting the JVM takes seconds. A missing Java fails the run.
    from sharewise.pipeline.spark_backend import local_session

    session = local_session(cores=2, app="sharewise-tests")
    yield session
    session.stop()


ENGINES = ("duckdb", "spark")


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Marks are added here, not in the fixture's params: a subdirectory's conftest is imported
    # after strict marker checking starts, and before its pytest_configure registers them.
    for item in items:
        callspec = getattr(item, "callspec", None)
        engine = callspec.params.get("backend") if callspec is not None else None
        if engine in ENGINES:
            item.add_marker(getattr(pytest.mark, engine))


@pytest.fixture(params=ENGINES)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    engine: Backend
    if request.param == "duckdb":
        engine = DuckDBBackend(threads=2)
    else:
        from sharewise.pipeline.spark_backend import SparkBackend

        engine = SparkBackend(request.getfixturevalue("spark_session"))
    yield engine
    engine.close()
