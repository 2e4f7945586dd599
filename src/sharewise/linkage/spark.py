"""Splink on Spark: the session with Splink's similarity functions, inputs sent as Arrow, and results collected."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from sharewise.domain.errors import InvalidDataError, Problem, SharewiseError
from sharewise.engines import spark as spark_sessions
from sharewise.engines.spark import EngineUnavailableError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from splink.internals.splink_dataframe import SplinkDataFrame

# The Splink functions sharewise's comparisons call (Jaro-Winkler, Damerau-Levenshtein): Scala UDFs in Splink's jar.
SPLINK_FUNCTIONS = ("jaro_winkler", "damerau_levenshtein")
# Shuffle partitions of a local session: one per core. Splink repartitions to half of this after blocking; Spark's
# default (200) costs a task per partition in each of the hundreds of small jobs that training runs, which
# dominates on one machine.
MIN_SHUFFLE_PARTITIONS = 2


def linkage_settings(jar: str, cores: int | str) -> dict[str, str]:
    """Linkage's layer on the shared session settings (`sharewise.engines.spark`): Splink's jar on the class path,
    Arrow for the tables sent and collected, and one shuffle partition per core."""
    partitions = max(MIN_SHUFFLE_PARTITIONS, os.cpu_count() or 1) if cores == "*" else max(1, int(cores))
    return {
        "spark.sql.shuffle.partitions": str(partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.jars": jar,
    }


def _has_functions(spark: SparkSession) -> bool:
    return all(spark.catalog.functionExists(name) for name in SPLINK_FUNCTIONS)


def session(cores: int | str = "*") -> SparkSession:
    """The active Spark session (a cluster's, under spark-submit) or a new local-mode one, built as every sharewise
    session is (`sharewise.engines.spark.local_session`) with linkage's settings.

    Splink's jar is added to a session that lacks it (one built before, by `sharewise share --engine spark`); the
    functions are registered by `SparkEngine`.
    Raises EngineUnavailableError when Spark cannot start (no pyspark, no Java, a JAVA_HOME without Java).
    """
    spark_sessions.check_startable()
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    spark_sessions.silence_spark()
    jar = similarity_jar_location()
    active = SparkSession.getActiveSession() or spark_sessions.local_session(
        cores, "sharewise-linkage", linkage_settings(jar, cores)
    )
    try:
        listed = [str(row[0]) for row in active.sql("LIST JARS").collect()]
        if not any(Path(jar).name in name for name in listed):
            active.sql(f"ADD JAR '{jar}'")
    except Exception as exc:
        raise EngineUnavailableError("the Spark engine could not load Splink's jar") from exc
    return active


def failure(exc: Exception, doing: str) -> InvalidDataError:
    """A Spark error as a sharewise error: Spark's messages can quote records, so only its error class is kept."""
    code = re.search(r"\[([A-Z_]+(?:\.[A-Z_]+)?)\]", str(exc))
    return InvalidDataError(
        "the Spark engine could not run the linkage", [Problem(doing, code.group(1) if code else type(exc).__name__)]
    )


def _foreign(exc: Exception) -> bool:
    """An error of Spark or of its Java bridge (py4j)."""
    from pyspark.errors import PySparkException

    return isinstance(exc, PySparkException) or type(exc).__module__.startswith("py4j")


class SparkEngine:
    """Splink's Spark backend for one run: inputs registered from Arrow, results collected as Arrow, and the
    views and cached tables the run made dropped at the end."""

    dialect = "spark"
    # u by random sampling in one pass: each chunk is a Spark job per comparison, whose fixed cost outweighs
    # stopping early on one machine (DuckDB keeps Splink's ten chunks).
    u_chunks = 1

    def __init__(self, spark: SparkSession | None = None) -> None:
        from splink.backends.spark import SparkAPI

        self.spark = spark or session()
        self._before = self._views()
        try:
            # Persisted in memory (spilling to disk): Splink's default writes parquet to a checkpoint directory,
            # which a local run would have to create and clean up.
            self.db_api = SparkAPI(  # type: ignore[no-untyped-call]
                spark_session=self.spark, break_lineage_method="persist"
            )
            if not _has_functions(self.spark):
                raise EngineUnavailableError("Splink's similarity functions could not be loaded into the Spark session")
        except SharewiseError:
            raise
        except Exception as exc:
            if _foreign(exc):
                raise failure(exc, "spark session") from exc
            raise

    def _views(self) -> set[str]:
        return {t.name for t in self.spark.catalog.listTables() if t.isTemporary}

    def register(self, table: pa.Table, name: str) -> SplinkDataFrame:
        """Send a prepared table to Spark as Arrow batches (no row-by-row conversion)."""
        frame = self.spark.createDataFrame(table)
        return self.db_api.register(frame, dataset_display_name=name)

    def arrow(self, sql: str) -> pa.Table:
        """Collect a query's result (Spark SQL) as an Arrow table."""
        return self.spark.sql(sql).toArrow()

    @contextlib.contextmanager
    def failures(self, doing: str) -> Iterator[None]:
        """Translate Spark's errors raised inside the block."""
        try:
            yield
        except Exception as exc:
            if _foreign(exc):
                raise failure(exc, doing) from exc
            raise

    def close(self) -> None:
        """Unpersist and drop every view this run made (the session stays for the next run)."""
        for name in sorted(self._views() - self._before):
            with contextlib.suppress(Exception):
                self.spark.table(name).unpersist()
            self.spark.catalog.dropTempView(name)
