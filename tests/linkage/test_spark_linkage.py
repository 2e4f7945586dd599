"""Splink on Spark (local mode): the same matches, clusters, person index and outputs as on DuckDB.

Java and PySpark are required: without them these tests fail, never skip. One Spark session serves the module,
with one shuffle partition (the data are a few hundred records).
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from sharewise.cli.link import link_app
from sharewise.domain.errors import InvalidDataError
from sharewise.linkage.evaluate import Accuracy, cluster_accuracy, pair_accuracy
from sharewise.linkage.link import LinkOptions, dedupe
from sharewise.linkage.model import TrainedModel, TrainingOptions
from sharewise.linkage.person_index import PersonIndex
from sharewise.linkage.prepare import prepare
from sharewise.linkage.spark import failure, session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

runner = CliRunner()
LIGHT = TrainingOptions(u_max_pairs=2e5, em_max_pairs=1e5)
ENTITIES = 150  # FEBRL4 people in the Spark tests: 150 originals and their 150 duplicates


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    from pyspark.sql import SparkSession

    before = SparkSession.getActiveSession()
    spark = session(cores=2)  # a missing Java raises here: the tests fail
    # A few hundred records: one partition, and no adaptive re-planning (it splits every query into more jobs).
    fast = {"spark.sql.shuffle.partitions": "1", "spark.sql.adaptive.enabled": "false"}
    saved = {key: spark.conf.get(key) for key in fast}
    for key, setting in fast.items():
        spark.conf.set(key, setting)
    yield spark
    for key, value in saved.items():
        if value is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, value)
    if before is None:  # a session another test module started is left to it
        spark.stop()


@pytest.fixture(scope="module")
def tiny(febrl_small: tuple[pa.Table, ...]) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    """The first ENTITIES originals of FEBRL4 and their duplicates, with their truth."""
    a, b, ta, tb = febrl_small
    keep = {str(i) for i in range(ENTITIES)}
    mask_a = pa.array([e in keep for e in ta.column("entity_id").to_pylist()])
    mask_b = pa.array([e in keep for e in tb.column("entity_id").to_pylist()])
    return a.filter(mask_a), b.filter(mask_b), ta.filter(mask_a), tb.filter(mask_b)


def _matches(path: Path) -> pa.Table:
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert rows and list(rows[0]) == ["left_id", "right_id", "match_probability"]
    return pa.table({"left_id": [r["left_id"] for r in rows], "right_id": [r["right_id"] for r in rows]})


def _weights(pairs: pa.Table) -> dict[tuple[str, str], float]:
    rows = pairs.to_pylist()
    return {(r["left_id"], r["right_id"]): r["match_weight"] for r in rows}


def _ids(index: Path) -> dict[str, str]:
    people = PersonIndex(index)
    try:
        return people.persons()
    finally:
        people.close()


def _saved_model(index: Path) -> tuple[int, TrainedModel]:
    people = PersonIndex(index)
    try:
        saved = people.model()
    finally:
        people.close()
    assert saved is not None
    return saved


def test_link_files_on_spark_writes_the_matches_duckdb_finds(
    spark: SparkSession, tmp_path: Path, tiny: tuple[pa.Table, ...]
) -> None:
    a, b, ta, tb = tiny
    file_a, file_b = tmp_path / "a.csv", tmp_path / "b.csv"
    pacsv.write_csv(a, file_a)
    pacsv.write_csv(b, file_b)
    accuracy: dict[str, Accuracy] = {}
    pairs: dict[str, set[tuple[str, str]]] = {}
    for backend in ("duckdb", "spark"):
        out, why = tmp_path / f"matches-{backend}.csv", tmp_path / f"why-{backend}.html"
        args = ["files", str(file_a), str(file_b), "--out", str(out), "--threshold", "0.5", "--one-to-one"]
        result = runner.invoke(link_app, [*args, "--explain", str(why), "--backend", backend, "--no-audit"])
        assert result.exit_code == 0, result.output
        assert why.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
        table = _matches(out)
        accuracy[backend] = pair_accuracy(table, ta, tb)
        pairs[backend] = set(
            zip(table.column("left_id").to_pylist(), table.column("right_id").to_pylist(), strict=True)
        )
    assert accuracy["duckdb"].f1 >= 0.97, accuracy
    assert abs(accuracy["spark"].f1 - accuracy["duckdb"].f1) <= 0.005, accuracy
    assert len(pairs["spark"] ^ pairs["duckdb"]) <= 0.005 * len(pairs["duckdb"]), pairs["spark"] ^ pairs["duckdb"]
    # The run's views and cached tables are gone: the session is left as it was found.
    assert not [t.name for t in spark.catalog.listTables() if t.name.startswith("__splink__")]


def test_spark_dedupe_with_an_index_keeps_ids_stable_and_its_model_serves_duckdb(
    spark: SparkSession, tmp_path: Path, tiny: tuple[pa.Table, ...]
) -> None:
    a, b, ta, tb = tiny
    quarter = b.num_rows // 4
    batches = [pa.concat_tables([a, b.slice(0, 2 * quarter)]), b.slice(2 * quarter, quarter), b.slice(3 * quarter)]
    index = tmp_path / "people.duckdb"
    ids: list[dict[str, str]] = []
    outputs: list[str] = []
    for number, (batch, backend) in enumerate(zip(batches, ("spark", "spark", "duckdb"), strict=True), start=1):
        path, out = tmp_path / f"batch{number}.csv", tmp_path / f"clusters{number}.csv"
        pacsv.write_csv(batch, path)
        args = ["dedupe", str(path), "--out", str(out), "--index", str(index), "--backend", backend, "--no-audit"]
        result = runner.invoke(link_app, args)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
        rows = list(csv.DictReader(out.open(encoding="utf-8")))
        assert [r["record_id"] for r in rows] == batch.column("record_id").to_pylist()
        ids.append(_ids(index))
        if number == 1:
            trained = _saved_model(index)
            assert trained[0] == 1 and trained[1].dialect == "spark"
    assert "trained by batch 1" in outputs[0]
    # The second batch (Spark) and the third (DuckDB) scored with the model Spark trained: no retraining.
    assert all("(trained by batch 1)" in output for output in outputs[1:]), outputs
    assert _saved_model(index) == trained
    for earlier, later in itertools.pairwise(ids):
        assert all(later[record] == person for record, person in earlier.items())
    truth = dict(
        zip(
            ta.column("record_id").to_pylist() + tb.column("record_id").to_pylist(),
            ta.column("entity_id").to_pylist() + tb.column("entity_id").to_pylist(),
            strict=True,
        )
    )
    clusters = pa.table({"record_id": list(ids[-1]), "cluster_id": list(ids[-1].values())})
    accuracy = cluster_accuracy(clusters, pa.table({"record_id": list(truth), "entity_id": list(truth.values())}))
    assert accuracy.precision >= 0.98 and accuracy.recall >= 0.9, accuracy


def test_a_model_trained_on_duckdb_clusters_alike_on_spark(spark: SparkSession, tiny: tuple[pa.Table, ...]) -> None:
    a, b, _, _ = tiny
    both = prepare(pa.concat_tables([a, b]))
    on_duckdb = dedupe(both, LinkOptions(threshold=0.9, training=LIGHT))
    assert on_duckdb.trained and on_duckdb.model.dialect == "duckdb"
    on_spark = dedupe(both, LinkOptions(threshold=0.9, training=LIGHT, backend="spark"), model=on_duckdb.model)
    assert not on_spark.trained and on_spark.model == on_duckdb.model
    assert on_spark.clusters.schema == on_duckdb.clusters.schema and on_spark.pairs.schema == on_duckdb.pairs.schema
    same = sum(x == y for x, y in zip(on_spark.clusters.to_pylist(), on_duckdb.clusters.to_pylist(), strict=True))
    assert same >= 0.995 * on_duckdb.clusters.num_rows
    weights, spark_weights = _weights(on_duckdb.pairs), _weights(on_spark.pairs)
    # The same model scores the same pair alike (Spark's Jaro-Winkler may put a borderline pair one level apart).
    close = sum(abs(spark_weights[p] - w) < 1e-6 for p, w in weights.items() if p in spark_weights)
    assert close >= 0.95 * len(weights)


def _evaluated(output: str) -> dict[str, str]:
    """The synthetic row of `link evaluate`'s table: precision, recall and F1 as printed."""
    row = next(line for line in output.splitlines() if "splink (clear)" in line)
    cells = [c.strip() for c in row.replace("│", "|").split("|") if c.strip()]
    return dict(zip(("precision", "recall", "f1"), cells[2:5], strict=True))


def test_link_evaluate_on_spark_gives_duckdbs_accuracy(spark: SparkSession) -> None:
    args = ["evaluate", "--dataset", "synthetic", "--people", "200", "--no-audit"]
    results = {}
    for backend in ("duckdb", "spark"):
        result = runner.invoke(link_app, [*args, "--backend", backend], terminal_width=200)
        assert result.exit_code == 0, result.output
        results[backend] = _evaluated(result.output)
    assert results["spark"] == results["duckdb"], results
    assert float(results["duckdb"]["f1"]) >= 0.9, results
    refused = runner.invoke(link_app, [*args, "--backend", "sparkle"])
    assert refused.exit_code == 2 and "'sparkle' is not one of duckdb, spark" in refused.output


def test_a_saved_model_converts_between_dialects_and_back() -> None:
    settings = prepared_model_settings()
    model = TrainedModel(settings, frozenset(COLUMNS), 100, 60)
    on_spark = model.settings_for("spark")
    conditions = [level["sql_condition"] for c in on_spark["comparisons"] for level in c["comparison_levels"]]
    assert any("jaro_winkler(`given_std_l`" in c for c in conditions)
    assert not any('"' in c or "jaro_winkler_similarity" in c for c in conditions)
    assert on_spark["sql_dialect"] == "spark"
    assert all("`" in r["blocking_rule"] for r in on_spark["blocking_rules_to_generate_predictions"])
    trained_on_spark = TrainedModel(on_spark, model.columns, 100, 60)
    assert trained_on_spark.settings_for("duckdb") == settings
    assert model.settings_for("duckdb") is settings  # the engine that trained it loads it as saved
    # m and u probabilities travel with the levels.
    assert [c["comparison_levels"][1].get("m_probability") for c in on_spark["comparisons"]] == [
        c["comparison_levels"][1].get("m_probability") for c in settings["comparisons"]
    ]


def test_a_model_whose_sql_this_version_would_not_write_is_refused_on_another_engine() -> None:
    settings = prepared_model_settings()
    settings["comparisons"][0]["comparison_levels"][2]["sql_condition"] = '"given_std_l" LIKE "given_std_r"'
    model = TrainedModel(settings, frozenset(COLUMNS), 100, 60)
    with pytest.raises(InvalidDataError, match="cannot be used on this engine") as caught:
        model.settings_for("spark")
    assert "train a new one" in str(caught.value.problems[0])


def test_an_unknown_backend_is_refused_naming_the_choices(
    tmp_path: Path, febrl_files: tuple[Path, Path], febrl_small: tuple[pa.Table, ...]
) -> None:
    a, b = febrl_files
    out = tmp_path / "m.csv"
    result = runner.invoke(link_app, ["files", str(a), str(b), "--out", str(out), "--backend", "postgres"])
    assert result.exit_code == 2
    assert "--backend" in result.output and "duckdb, spark" in result.output and not out.exists()
    result = runner.invoke(link_app, ["dedupe", str(a), "--out", str(out), "--backend", "Spark", "--no-audit"])
    assert result.exit_code == 2 and "'Spark' is not one of duckdb, spark" in result.output
    with pytest.raises(InvalidDataError, match="invalid option") as caught:
        dedupe(prepare(febrl_small[0].slice(0, 20)), LinkOptions(backend="sqlite"))
    assert "'sqlite' is not one of duckdb, spark" in str(caught.value.problems[0])


def test_spark_errors_keep_their_class_not_their_text() -> None:
    error = failure(RuntimeError("[CAST_INVALID_INPUT] The value 'Zebulon 1980-02-03' cannot be cast"), "scoring")
    assert error.code == "invalid_data" and "CAST_INVALID_INPUT" in str(error.problems[0])
    assert "Zebulon" not in str(error) and "Zebulon" not in str(error.problems[0])
    assert "RuntimeError" in str(failure(RuntimeError("no class here: 1980-02-03"), "training").problems[0])


COLUMNS = ("given_std", "given_formal", "given_phon", "surname_std", "surname_phon", "surname_parts", "dob", "ssn")


def prepared_model_settings() -> dict[str, Any]:
    """Splink's settings as a DuckDB run saves them (untrained parameters: the structure is what matters here)."""
    from sharewise.linkage.model import settings

    saved = settings("dedupe_only", set(COLUMNS), 0.001).create_settings_dict("duckdb")
    saved["sql_dialect"] = "duckdb"
    for comparison in saved["comparisons"]:
        for number, level in enumerate(comparison["comparison_levels"]):
            level["m_probability"] = 0.1 + number / 100
    result: dict[str, Any] = json.loads(json.dumps(saved))
    return result
