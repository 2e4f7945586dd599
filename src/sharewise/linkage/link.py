"""Link two prepared files, or deduplicate one, with Splink on DuckDB: train, predict, resolve, cluster, explain."""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker
from splink.internals.exceptions import SplinkException

from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.linkage.model import SPLINK_LOG_LEVEL, TrainedModel, TrainingOptions, available_columns, train


class Progress(Protocol):
    """Where long steps are reported (the CLI shows them as Rich progress)."""

    def step(self, description: str) -> contextlib.AbstractContextManager[None]: ...


class NoProgress:
    """Reports nothing."""

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class LinkOptions:
    """Decision options: the probability threshold, one-to-one resolution, training effort, explanations."""

    threshold: float = 0.9
    one_to_one: bool = False
    training: TrainingOptions = field(default_factory=TrainingOptions)
    explain_path: Path | None = None
    explain_pairs: int = 20
    threads: int | None = None


@dataclass(frozen=True)
class LinkResult:
    """Pairs (left_id, right_id, match_probability, match_weight), what the model compared, and the model."""

    pairs: pa.Table
    comparisons: tuple[str, ...]
    candidate_pairs: int
    model: TrainedModel


@dataclass(frozen=True)
class DedupeResult:
    """Each record's cluster (record_id, cluster_id), the scored pairs, what the model compared, and the model
    (trained by this run, or the saved one it reused)."""

    clusters: pa.Table
    pairs: pa.Table
    comparisons: tuple[str, ...]
    model: TrainedModel
    trained: bool


def _quiet_splink() -> None:
    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(SPLINK_LOG_LEVEL)
    logging.getLogger("splink").propagate = False


def _connection(threads: int | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")  # sharewise reports progress itself
    if threads:
        con.execute(f"SET threads TO {int(threads)}")
    return con


def _check_available(available: set[str]) -> None:
    needed = {"given_std", "surname_std", "dob"}
    if not available & needed:
        raise InvalidDataError(
            "nothing to compare",
            [Problem("input", "given_name, surname and dob are empty in at least one file")],
        )


def _predictor(inputs: Any, model: TrainedModel) -> Linker:
    """A linker that scores with the given model (Splink loads its own saved JSON)."""
    try:
        return Linker(inputs, model.settings, log_level=None)
    except (SplinkException, ValueError, KeyError, TypeError) as exc:
        raise InvalidDataError(
            "the saved linkage model cannot be used", [Problem("model", "it does not fit these data; train a new one")]
        ) from exc


def _explain(linker: Linker, predictions: Any, con: duckdb.DuckDBPyConnection, path: Path, n: int) -> None:
    """Save Splink's waterfall chart of the pairs nearest the decision boundary and of the strongest pairs."""
    name = predictions.physical_name
    half = max(1, n // 2)
    rows = con.sql(
        f"(SELECT * FROM {name} ORDER BY abs(match_weight) ASC LIMIT {half}) "
        f"UNION ALL (SELECT * FROM {name} ORDER BY match_weight DESC LIMIT {half})"
    )
    records = [dict(zip(rows.columns, row, strict=True)) for row in rows.fetchall()]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not records:
        path.write_text(f"<!doctype html><p>{html.escape('No candidate pairs to explain.')}</p>", encoding="utf-8")
        return
    chart = linker.visualisations.waterfall_chart(records, filter_nulls=False)
    path.write_text(chart.to_html(inline=True), encoding="utf-8")


def link(left: pa.Table, right: pa.Table, options: LinkOptions, progress: Progress | None = None) -> LinkResult:
    """Link two prepared tables (link only: no pairs within one table)."""
    progress = progress or NoProgress()
    _quiet_splink()
    available = available_columns([left, right])
    _check_available(available)
    con = _connection(options.threads)
    try:
        db_api = DuckDBAPI(con)
        a = db_api.register(left, dataset_display_name="file_a")
        b = db_api.register(right, dataset_display_name="file_b")
        with progress.step("training the model (u by random sampling, m by EM)"):
            model = train(
                [a, b],
                "link_only",
                available,
                options.training,
                left.num_rows + right.num_rows,
                left.num_rows * right.num_rows,
            )
        linker = _predictor([a, b], model)
        with progress.step("scoring candidate pairs"):
            predictions = linker.inference.predict(threshold_match_probability=min(0.05, options.threshold))
        name = predictions.physical_name
        candidate_pairs = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
        # Orient each pair as (left file, right file) whatever order Splink chose.
        oriented = f"""
            SELECT CASE WHEN source_dataset_l = 'file_a' THEN record_id_l ELSE record_id_r END AS left_id,
                   CASE WHEN source_dataset_l = 'file_a' THEN record_id_r ELSE record_id_l END AS right_id,
                   match_probability, match_weight
            FROM {name} WHERE match_probability >= {float(options.threshold)}"""
        if options.one_to_one:
            query = f"""
                WITH p AS ({oriented}),
                r AS (SELECT *, row_number() OVER (PARTITION BY left_id ORDER BY match_weight DESC, right_id) AS rl,
                               row_number() OVER (PARTITION BY right_id ORDER BY match_weight DESC, left_id) AS rr
                      FROM p)
                SELECT left_id, right_id, match_probability, match_weight FROM r WHERE rl = 1 AND rr = 1
                ORDER BY left_id, right_id"""
        else:
            query = oriented + " ORDER BY left_id, right_id"
        pairs = con.sql(query).to_arrow_table()
        if options.explain_path:
            with progress.step("explaining match weights (waterfall chart)"):
                _explain(linker, predictions, con, options.explain_path, options.explain_pairs)
        return LinkResult(pairs, model.comparisons, int(candidate_pairs), model)
    finally:
        con.close()


def dedupe(
    people: pa.Table, options: LinkOptions, progress: Progress | None = None, model: TrainedModel | None = None
) -> DedupeResult:
    """Deduplicate one prepared table: score pairs, then cluster them (connected components at the threshold).

    A saved model is reused when it is fit for these data (`TrainedModel.reusable_for`); otherwise the run trains.
    """
    progress = progress or NoProgress()
    _quiet_splink()
    available = available_columns([people])
    _check_available(available)
    con = _connection(options.threads)
    try:
        db_api = DuckDBAPI(con)
        data = db_api.register(people, dataset_display_name="people")
        n = people.num_rows
        trained = model is None or not model.reusable_for("dedupe_only", available)
        if model is None or trained:
            with progress.step("training the model (u by random sampling, m by EM)"):
                model = train(data, "dedupe_only", available, options.training, n, n * (n - 1) // 2)
        linker = _predictor(data, model)
        with progress.step("scoring candidate pairs"):
            predictions = linker.inference.predict(threshold_match_probability=options.threshold)
        with progress.step("clustering into persons"):
            clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
                predictions, threshold_match_probability=options.threshold
            )
        cluster_table = con.sql(
            f"SELECT CAST(record_id AS VARCHAR) AS record_id, CAST(cluster_id AS VARCHAR) AS cluster_id "
            f"FROM {clusters.physical_name} ORDER BY record_id"
        ).to_arrow_table()
        pairs = con.sql(
            f"SELECT record_id_l AS left_id, record_id_r AS right_id, match_probability, match_weight "
            f"FROM {predictions.physical_name}"
        ).to_arrow_table()
        if options.explain_path:
            with progress.step("explaining match weights (waterfall chart)"):
                _explain(linker, predictions, con, options.explain_path, options.explain_pairs)
        return DedupeResult(cluster_table, pairs, model.comparisons, model, trained)
    finally:
        con.close()
