"""The share pipeline's Spark session comes from the shared builder: the same quiet settings as linkage's, and the
same engine error when Spark cannot start."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from sharewise.engines.spark import BASE_SETTINGS

CHILD = textwrap.dedent(
    """
    from sharewise.domain.errors import SharewiseError
    from sharewise.pipeline.spark_backend import SparkBackend

    try:
        SparkBackend()
    except SharewiseError as exc:
        print(type(exc).__name__, exc.code, exc.exit_code, exc.message, sep="|")
    """
)


def test_the_pipeline_session_turns_off_the_progress_bar_and_the_ui() -> None:
    # Local mode, two cores; a missing Java fails the test (never skipped). A running session is reused and left.
    from pyspark.sql import SparkSession

    from sharewise.pipeline.spark_backend import local_session

    running = SparkSession.getActiveSession()
    session = running or local_session(cores=2, app="sharewise-tests")
    try:
        conf = session.sparkContext.getConf()
        for key, value in BASE_SETTINGS.items():
            assert conf.get(key) == value, key
        if running is None:  # the pipeline's own layer, when this test built the session
            assert session.conf.get("spark.sql.shuffle.partitions") == "8"
    finally:
        if running is None:
            session.stop()


def test_a_pipeline_backend_without_java_raises_the_engine_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_GATEWAY_PORT"}
    env["JAVA_HOME"] = str(tmp_path / "no-jdk-here")
    done = subprocess.run(
        [sys.executable, "-c", CHILD], check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    kind, code, exit_code, message = done.stdout.strip().split("|")
    assert (kind, code, exit_code) == ("EngineUnavailableError", "storage_failed", "5")
    assert message.startswith("the Spark engine could not start: JAVA_HOME is set but holds no bin/java")
    assert "no-jdk-here" not in done.stdout + done.stderr


QUIET_CHILD = textwrap.dedent(
    """
    from sharewise.pipeline.spark_backend import local_session

    session = local_session(cores=1, app="sharewise-quiet-test")
    assert session.range(3).count() == 3
    session.stop()
    print("ran")
    """
)


def test_a_spark_session_starts_without_jvm_warnings_on_stderr() -> None:
    """Spark's start-up lines ("Using Spark's default log4j profile", native Hadoop warnings) were printed before
    spark.log.level applied; the driver JVM now starts with sharewise's log4j2 settings (logging off)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_GATEWAY_PORT", "PYSPARK_SUBMIT_ARGS")}
    done = subprocess.run(
        [sys.executable, "-c", QUIET_CHILD], check=False, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "ran", done.stderr[-2000:]
    # No log4j line (they name the host and its address, and in a failure can quote records); the JVM's and
    # Spark's own few generic lines outside log4j remain (see spark-log4j2.properties).
    logged = [line for line in done.stderr.splitlines() if re.match(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d ", line)]
    assert not logged and "log4j profile" not in done.stderr, done.stderr[-2000:]


def test_the_jvm_log_settings_file_ships_and_turns_logging_off() -> None:
    from sharewise.engines.spark import LOG_SETTINGS, session_settings

    assert "rootLogger.level = off" in LOG_SETTINGS.read_text(encoding="utf-8")
    options = session_settings()["spark.driver.extraJavaOptions"]
    assert options == f"-Dlog4j2.configurationFile={LOG_SETTINGS.as_uri()}" and " " not in options
    assert session_settings({"spark.driver.extraJavaOptions": "-Xss4m"})["spark.driver.extraJavaOptions"] == "-Xss4m"
