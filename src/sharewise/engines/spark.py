"""The one local-mode Spark session builder: settings every sharewise session needs, layered with a caller's own,
and one clear error when Spark cannot start (no pyspark, no Java, a JAVA_HOME without Java)."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sharewise.domain.errors import StorageError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Every local session sharewise starts: no web UI and no console progress bar (a server and a CLI with its own
# progress), Spark's own logging off (its messages can quote records), and UTC so dates do not shift with the host.
BASE_SETTINGS: Mapping[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.log.level": "OFF",
}

START_HINT = "install Java 17 or later, or set JAVA_HOME to one"
# log4j2 settings for the driver JVM from its first line: Spark's start-up warnings (no native Hadoop library,
# "Using Spark's default log4j profile") are printed before spark.log.level applies.
LOG_SETTINGS = Path(__file__).with_name("spark-log4j2.properties")


class EngineUnavailableError(StorageError):
    """An engine could not start (Spark without pyspark or Java): failed infrastructure, so the code stays
    storage_failed (exit 5, HTTP 503); the message says what is missing, never a path (it can name a person)."""


def java_problem(environ: Mapping[str, str], which: Callable[[str], str | None] = shutil.which) -> str | None:
    """What keeps Spark's launcher from finding Java, or None when it will find one.

    Spark's launcher (`spark-class`) runs `$JAVA_HOME/bin/java` when JAVA_HOME is set, and `java` on the PATH
    otherwise; checked here first, because a launcher that cannot find Java exits with a shell message and PySpark
    reports only that the gateway exited. A gateway already running (spark-submit sets PYSPARK_GATEWAY_PORT)
    needs no Java of its own.
    """
    if environ.get("PYSPARK_GATEWAY_PORT"):
        return None
    home = environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        if not (java.is_file() and os.access(java, os.X_OK)):
            return "JAVA_HOME is set but holds no bin/java: point it at Java 17 or later, or unset it"
        return None
    if which("java") is None:
        return f"no Java found (JAVA_HOME is not set and java is not on the PATH): {START_HINT}"
    return None


def _running() -> bool:
    """A Spark context is already running in this process (its settings are the ones in force)."""
    from pyspark import SparkContext

    return SparkContext._active_spark_context is not None


def check_startable() -> None:
    """Fail fast, before any work, when a local Spark session cannot start; nothing to check when one runs already.

    Raises EngineUnavailableError naming what is missing.
    """
    if importlib.util.find_spec("pyspark") is None:
        raise EngineUnavailableError("the Spark engine could not start: pyspark is not installed")
    if _running():
        return
    problem = java_problem(os.environ)
    if problem:
        raise EngineUnavailableError(f"the Spark engine could not start: {problem}")


def silence_spark() -> None:
    """PySpark logs a failed query's message to stderr, and Spark's messages can quote values: keep them out."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)


def session_settings(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings of a local session: BASE_SETTINGS and the JVM's log settings, then the caller's (theirs win).

    The log settings file is named by URI (spaces percent-encoded), so Spark's splitting of the Java options
    cannot cut it; a caller's own spark.driver.extraJavaOptions replaces it.
    """
    jvm = {"spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG_SETTINGS.as_uri()}"}
    return {**BASE_SETTINGS, **jvm, **(extra or {})}


def local_session(
    cores: int | str = "*", app: str = "sharewise", extra: Mapping[str, str] | None = None
) -> SparkSession:
    """A local-mode Spark session (`local[cores]`) with BASE_SETTINGS and the caller's `extra` settings.

    When a session already runs in this process, Spark returns it (static settings such as `spark.jars` then stay
    as its builder set them; runtime ones are applied). Raises EngineUnavailableError when Spark cannot start,
    keeping only Spark's error class (its text can hold paths and values).
    """
    check_startable()
    from pyspark.sql import SparkSession

    silence_spark()
    builder = SparkSession.builder.master(f"local[{cores}]").appName(app)
    for key, value in session_settings(extra).items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:
        code = re.search(r"\[([A-Z_]+(?:\.[A-Z_]+)?)\]", str(exc))
        kind = code.group(1) if code else type(exc).__name__
        raise EngineUnavailableError(
            f"the Spark engine could not start ({kind}): is Java 17 or later installed?"
        ) from exc
    session.sparkContext.setLogLevel("OFF")
    return session
