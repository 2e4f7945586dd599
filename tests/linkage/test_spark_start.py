"""When Spark cannot start: one engine error, found before any work, and a one-line CLI message, fast.

These tests never start a JVM: the CLI runs in a subprocess whose JAVA_HOME names a missing folder, or whose PATH
holds no java, and the checks run on a given environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sharewise.engines import spark as engines
from sharewise.engines.spark import EngineUnavailableError, check_startable, java_problem, session_settings
from sharewise.linkage.spark import linkage_settings
from sharewise.pipeline.spark_backend import PIPELINE_SETTINGS

CLI = Path(sys.executable).parent / "sharewise"
PEOPLE = "record_id,given_name,surname,dob\n1,Ann,Lee,2000-01-02\n2,Bo,Ray,1990-03-04\n"


def _java_home(tmp_path: Path) -> Path:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text("#!/bin/sh\n", encoding="utf-8")
    java.chmod(0o755)
    return home


def test_a_java_home_without_java_is_named_without_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "alice-smith" / "jdk-17"
    problem = java_problem({"JAVA_HOME": str(missing)}, lambda _: "/usr/bin/java")
    assert problem is not None and "JAVA_HOME" in problem and "bin/java" in problem
    assert "alice-smith" not in problem  # a path can name a person
    empty = tmp_path / "empty-jdk"
    (empty / "bin").mkdir(parents=True)
    (empty / "bin" / "java").write_text("not a program", encoding="utf-8")  # there, but not executable
    assert java_problem({"JAVA_HOME": str(empty)}, lambda _: "/usr/bin/java") is not None
    assert java_problem({"JAVA_HOME": str(_java_home(tmp_path))}, lambda _: None) is None


def test_without_java_home_java_is_looked_for_on_the_path() -> None:
    problem = java_problem({}, lambda _: None)
    assert problem is not None and "no Java found" in problem and "Java 17" in problem
    assert java_problem({}, lambda name: f"/opt/bin/{name}") is None
    # Under spark-submit the gateway runs already: no Java of our own is needed.
    assert java_problem({"PYSPARK_GATEWAY_PORT": "4040", "JAVA_HOME": "/nowhere"}, lambda _: None) is None


def test_a_missing_pyspark_is_an_engine_error_with_the_storage_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # what find_spec reports for a package that is not there
    with pytest.raises(EngineUnavailableError, match="pyspark is not installed") as caught:
        check_startable()
    assert caught.value.code == "storage_failed" and caught.value.exit_code == 5


def test_a_java_home_without_java_fails_the_check_in_this_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(engines, "_running", lambda: False)  # as in a process where no Spark runs yet
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "gone"))
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    with pytest.raises(EngineUnavailableError, match="JAVA_HOME is set but holds no bin/java"):
        check_startable()
    monkeypatch.setenv("JAVA_HOME", str(_java_home(tmp_path)))
    check_startable()
    # A session already running needs no check: its settings are in force.
    monkeypatch.setattr(engines, "_running", lambda: True)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "gone"))
    check_startable()


def test_every_session_turns_off_the_ui_and_the_progress_bar_and_each_caller_layers_its_own() -> None:
    pipeline = session_settings(PIPELINE_SETTINGS)
    linkage = session_settings(linkage_settings("/opt/splink.jar", 3))
    for settings in (pipeline, linkage):
        assert settings["spark.ui.enabled"] == "false"
        assert settings["spark.ui.showConsoleProgress"] == "false"
        assert settings["spark.sql.session.timeZone"] == "UTC" and settings["spark.log.level"] == "OFF"
    assert pipeline["spark.sql.shuffle.partitions"] == "8" and "spark.jars" not in pipeline
    assert linkage["spark.jars"] == "/opt/splink.jar"
    assert linkage["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    assert linkage["spark.sql.shuffle.partitions"] == "3"
    assert int(linkage_settings("x.jar", "*")["spark.sql.shuffle.partitions"]) >= 2
    # A caller's setting wins over the shared one.
    assert session_settings({"spark.ui.enabled": "true"})["spark.ui.enabled"] == "true"


def _no_java_path(tmp_path: Path) -> str:
    """A PATH with the interpreter's folder only (no java: the system folders are left out)."""
    alone = tmp_path / "bin"
    alone.mkdir(exist_ok=True)
    return os.pathsep.join([str(Path(sys.executable).parent), str(alone)])


def _run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.perf_counter()
    done = subprocess.run([str(CLI), *args], check=False, env=env, cwd=cwd, capture_output=True, text=True, timeout=180)
    return done, time.perf_counter() - start


@pytest.mark.parametrize("command", ["files", "dedupe", "evaluate"])
def test_the_cli_says_in_one_line_that_spark_cannot_start_and_reads_nothing(command: str, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE, encoding="utf-8")
    out = tmp_path / "out.csv"
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PYSPARK_GATEWAY_PORT", "SPARK_HOME")}
    env["PATH"] = _no_java_path(tmp_path)
    env["SHAREWISE_DATA_DIR"] = str(tmp_path / "data")
    if command != "evaluate":  # one with a JAVA_HOME that names a missing folder, one with no Java at all
        env["JAVA_HOME"] = str(tmp_path / "private-folder" / "jdk")
    args = {
        "files": ["link", "files", str(people), str(people), "--out", str(out)],
        "dedupe": ["link", "dedupe", str(people), "--out", str(out)],
        "evaluate": ["link", "evaluate", "--dataset", "synthetic", "--people", "50"],
    }[command]
    done, seconds = _run([*args, "--backend", "spark", "--no-audit"], env, tmp_path)
    assert done.returncode == 5, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # no traceback, no Spark launcher output: no JVM was started
    assert lines[0].startswith("error [storage_failed]: the Spark engine could not start")
    assert ("JAVA_HOME is set but holds no bin/java" if command != "evaluate" else "no Java found") in lines[0]
    assert "private-folder" not in done.stderr and not out.exists()
    # Fast: the time to start the CLI (seconds on a loaded machine), not Spark's (tens of seconds).
    assert seconds < 60, seconds
