"""SparkBackend: Apache Spark for data that outgrows one machine, running the same generated SQL."""

from __future__ import annotations

import re
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sharewise.domain.errors import InvalidDataError, Problem, StorageError
from sharewise.engines import spark as spark_sessions
from sharewise.pipeline.backend import (
    CsvInput,
    Input,
    PostgresInput,
    PseudonymPads,
    WriteResult,
    storage_error,
)
from sharewise.pipeline.duckdb_backend import first_bad_csv_line, read_csv_header
from sharewise.pipeline.sql import KEY_TABLE, SOURCE, render

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


# The share pipeline's own layer on the shared settings (sharewise.engines.spark.BASE_SETTINGS): a few shuffle
# partitions, where Spark's default of 200 gives each small extract 200 tasks.
PIPELINE_SETTINGS = {"spark.sql.shuffle.partitions": "8"}


def local_session(cores: int | str = "*", app: str = "sharewise") -> SparkSession:
    """A local-mode Spark session as every sharewise session is set up (web UI and progress bar off, Spark's own
    logging silenced: it can echo data), with the pipeline's settings; EngineUnavailableError when Spark cannot start."""
    return spark_sessions.local_session(cores, app, PIPELINE_SETTINGS)


def translate_spark_error(
    exc: Exception, label: str, csv_source: CsvInput | None = None
) -> InvalidDataError | StorageError:
    """A Spark error as a sharewise error; Spark's messages quote records, so none of the text is kept.

    Spark's CSV errors carry no line numbers; for a CSV input the file is scanned to find the line.
    """
    text = str(exc)
    if "No space left" in text:
        return storage_error(exc, "the engine wrote the extract")
    malformed = "MALFORMED_CSV_RECORD" in text or "MalformedCSV" in text
    undecodable = "MalformedInput" in text or "encoding" in text.lower()
    if (malformed or undecodable) and csv_source is not None:
        found = first_bad_csv_line(csv_source)
        if found is not None:
            return InvalidDataError("malformed CSV", [Problem(f"{label}:{found[0]}", f"the row {found[1]}")])
    if malformed:
        return InvalidDataError("malformed CSV", [Problem(label, "a row does not match the header (cells or quoting)")])
    if (
        "CAST_INVALID_INPUT" in text
        or "CANNOT_PARSE" in text
        or ("DATETIME" in text.upper() and "PARSE" in text.upper())
    ):
        return InvalidDataError(
            "a value does not match its dictionary type",
            [Problem(label, "a cell does not parse as the type its data dictionary gives (values are not shown)")],
        )
    if undecodable:
        return InvalidDataError("malformed CSV", [Problem(label, "not valid text in the declared encoding")])
    code = re.search(r"\[([A-Z_]+(?:\.[A-Z_]+)?)\]", text)
    return InvalidDataError(
        "the engine could not run the share", [Problem(label, code.group(1) if code else type(exc).__name__)]
    )


class SparkBackend:
    """Spark SQL over a session (local mode in tests); outputs are directories of part files."""

    dialect = "spark"

    def __init__(self, session: SparkSession | None = None) -> None:
        self.session = session or local_session()
        self.label = "input"
        self.csv_source: CsvInput | None = None

    def _frame(self, sql: str) -> DataFrame:
        return self.session.sql(render(sql, self.dialect))

    def register_input(self, source: Input) -> list[str]:
        if isinstance(source, PostgresInput):
            raise InvalidDataError("stage PostgreSQL tables first", [Problem("source", "use stage_postgres()")])
        self.label = str(source.path)
        self.csv_source = source if isinstance(source, CsvInput) else None
        try:
            if isinstance(source, CsvInput):
                header = read_csv_header(source)
                frame = (
                    self.session.read.option("header", True)
                    .option("mode", "FAILFAST")
                    .option("encoding", source.encoding)
                    .option("sep", source.delimiter)
                    .option("quote", '"')
                    .option("escape", '"')
                    .option("multiLine", True)
                    .csv(str(source.path))
                )
                if list(frame.columns) != header:
                    frame = frame.toDF(*header)
            else:
                frame = self.session.read.parquet(str(source.path))
            frame.createOrReplaceTempView(SOURCE)
        except Exception as exc:
            if isinstance(exc, InvalidDataError):
                raise
            raise translate_spark_error(exc, self.label, self.csv_source) from exc
        return list(frame.columns)

    def register_key(self, pads: PseudonymPads) -> None:
        from pyspark.sql.types import BinaryType, StructField, StructType

        schema = StructType([StructField("ipad", BinaryType(), False), StructField("opad", BinaryType(), False)])
        frame = self.session.createDataFrame([(bytearray(pads.ipad), bytearray(pads.opad))], schema)
        frame.createOrReplaceTempView(KEY_TABLE)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return [tuple(row) for row in self._frame(sql).collect()]
        except Exception as exc:
            raise translate_spark_error(exc, self.label, self.csv_source) from exc

    def text_columns(self, sql: str) -> list[tuple[str, bool]]:
        from pyspark.sql.types import StringType

        try:
            schema = self._frame(sql).schema
        except Exception as exc:
            raise translate_spark_error(exc, self.label, self.csv_source) from exc
        return [(f.name, isinstance(f.dataType, StringType)) for f in schema.fields]

    def write(
        self,
        sql: str,
        directory: Path,
        fmt: str,
        parquet_encodings: str = "compatible",
        tokens: Collection[str] = (),  # Spark's writer sets options per file only
    ) -> WriteResult:
        target = directory / "spark-out"
        try:
            writer = self._frame(sql).write.mode("errorifexists")
            if fmt == "parquet":
                # parquet-mr's writer version: v2 writes the format 2 encodings (delta for text and integers)
                version = "v2" if parquet_encodings == "v2" else "v1"
                writer.option("compression", "zstd").option("parquet.writer.version", version).parquet(str(target))
            else:
                writer.option("header", True).option("escape", '"').option("quote", '"').csv(str(target))
        except OSError as exc:
            raise storage_error(exc, "the engine wrote the extract") from exc
        except Exception as exc:
            raise translate_spark_error(exc, self.label, self.csv_source) from exc
        files: list[str] = []
        for index, part in enumerate(sorted(target.glob(f"part-*.{fmt}"))):
            name = f"part-{index}.{fmt}"
            part.rename(directory / name)
            files.append(name)
        shutil.rmtree(target)  # _SUCCESS and .crc files
        rows = self._count(directory, files, fmt)
        return WriteResult(tuple(files), rows)

    def _count(self, directory: Path, files: list[str], fmt: str) -> int:
        if not files:
            return 0
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return sum(pq.ParquetFile(directory / f).metadata.num_rows for f in files)
        paths = [str(directory / f) for f in files]
        return int(
            self.session.read.option("header", True).option("escape", '"').option("multiLine", True).csv(paths).count()
        )

    def close(self) -> None:
        for view in (SOURCE, KEY_TABLE):
            self.session.catalog.dropTempView(view)
