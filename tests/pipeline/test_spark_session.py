"""The share pipeline's Spark session comes from the shared builder: the same quiet settings as linkage's, and the
same engine error when Spark cannot start."""

from __future__ import annotations

import os
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
