"""Link two prepared files, or deduplicate one, with Splink on DuckDB or Spark: train, predict, resolve, cluster,
explain."""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker
from splink.internals.exceptions import SplinkException

from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.domain.events import DetailValue
from sharewise.linkage.constraints import CannotLinkRules, Constrained, apply_constraints, default_rules, provenance
from sharewise.linkage.model import SPLINK_LOG_LEVEL, TrainedModel, TrainingOptions, available_columns, train

if TYPE_CHECKING:
    from splink.internals.splink_dataframe import SplinkDataFrame

# The engines Splink runs on: DuckDB embedded (the default), Spark when the data outgrow one machine.
BACKENDS = ("duckdb", "spark")


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
    """Decision options: the probability threshold, one-to-one resolution, the cannot-link rules, training effort,
    explanations, and the engine (`backend`: duckdb or spark; `threads` is DuckDB's).

    `cannot_link` vetoes pairs, and splits clusters, that the cannot-link rules say join two people; the rules are
    `cannot_link_rules` (read with `constraints.read_rules`), or the shipped ones when it is None.
    """

    threshold: float = 0.9
    one_to_one: bool = False
    cannot_link: bool = True
    cannot_link_rules: CannotLinkRules | None = None
    training: TrainingOptions = field(default_factory=TrainingOptions)
    explain_path: Path | None = None
    explain_pairs: int = 20
    threads: int | None = None
    backend: str = "duckdb"

    def __post_init__(self) -> None:
        if not self.cannot_link and self.cannot_link_rules is not None:
            raise InvalidDataError(
                "invalid option", [Problem("cannot_link_rules", "rules were given with the cannot-link rules off")]
            )

    @property
    def rules(self) -> CannotLinkRules | None:
        """The cannot-link rules in force: the ones given, the shipped ones, or None when they are off."""
        if not self.cannot_link:
            return None
        return self.cannot_link_rules if self.cannot_link_rules is not None else default_rules()

    def audit_details(self) -> dict[str, DetailValue]:
        """The engine and the cannot-link rules a run used, for its audit event: which rules by provenance
        (shipped, file) and the SHA-256 of their file, never the file's path (it can name a person)."""
        details: dict[str, DetailValue] = {"backend": self.backend, "cannot_link": self.cannot_link}
        rules = self.rules
        if rules is not None:
            details["cannot_link_rules"] = provenance(rules)
            details["cannot_link_rules_sha256"] = rules.sha256 or None
        return details


@dataclass(frozen=True)
class LinkResult:
    """Pairs (left_id, right_id, match_probability, match_weight), what the model compared, and the model."""

    pairs: pa.Table
    comparisons: tuple[str, ...]
    candidate_pairs: int
    model: TrainedModel
    pairs_vetoed: int = 0  # scored pairs at the threshold that the cannot-link rules removed


@dataclass(frozen=True)
class DedupeResult:
    """Each record's cluster (record_id, cluster_id), the scored pairs, what the model compared, and the model
    (trained by this run, or the saved one it reused)."""

    clusters: pa.Table
    pairs: pa.Table
    comparisons: tuple[str, ...]
    model: TrainedModel
    trained: bool
    pairs_vetoed: int = 0  # scored pairs at the threshold that the cannot-link rules removed
    clusters_split: int = 0  # persons built through other records that the rules split


def _quiet_splink() -> None:
    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(SPLINK_LOG_LEVEL)
    logging.getLogger("splink").propagate = False


class Engine(Protocol):
    """Where Splink runs: registers inputs, runs sharewise's own queries on Splink's tables, collects results."""

    dialect: str
    u_chunks: int

    def register(self, table: pa.Table, name: str) -> SplinkDataFrame: ...

    def arrow(self, sql: str) -> pa.Table: ...

    def failures(self, doing: str) -> contextlib.AbstractContextManager[None]: ...

    def close(self) -> None: ...


class DuckDBEngine:
    """Splink's DuckDB backend on an in-memory connection of its own."""

    dialect = "duckdb"
    u_chunks = 10  # Splink's default: u sampling stops early once every level is observed enough

    def __init__(self, threads: int | None = None) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET enable_progress_bar = false")  # sharewise reports progress itself
        if threads:
            self.con.execute(f"SET threads TO {int(threads)}")
        self.db_api = DuckDBAPI(self.con)

    def register(self, table: pa.Table, name: str) -> SplinkDataFrame:
        return self.db_api.register(table, dataset_display_name=name)

    def arrow(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    @contextlib.contextmanager
    def failures(self, doing: str) -> Iterator[None]:
        """DuckDB's errors as sharewise errors (the error's kind, not its message, which can quote values)."""
        try:
            yield
        except duckdb.Error as exc:
            raise InvalidDataError(
                "the DuckDB engine could not run the linkage", [Problem(doing, type(exc).__name__)]
            ) from exc

    def close(self) -> None:
        self.con.close()


def open_engine(options: LinkOptions) -> Engine:
    """The engine the options name; InvalidDataError for any other name."""
    if options.backend == "duckdb":
        return DuckDBEngine(options.threads)
    if options.backend == "spark":
        from sharewise.linkage.spark import SparkEngine

        return SparkEngine()
    raise InvalidDataError(
        "invalid option", [Problem("backend", f"'{options.backend}' is not one of {', '.join(BACKENDS)}")]
    )


def _check_available(available: set[str]) -> None:
    needed = {"given_std", "surname_std", "dob"}
    if not available & needed:
        raise InvalidDataError(
            "nothing to compare",
            [Problem("input", "given_name, surname and dob are empty in at least one file")],
        )


def _predictor(inputs: Any, model: TrainedModel, dialect: str) -> Linker:
    """A linker that scores with the given model (Splink loads its own saved JSON, in this engine's dialect)."""
    splink_settings = model.settings_for(dialect)
    try:
        return Linker(inputs, splink_settings, log_level=None)
    except (SplinkException, ValueError, KeyError, TypeError) as exc:
        raise InvalidDataError(
            "the saved linkage model cannot be used", [Problem("model", "it does not fit these data; train a new one")]
        ) from exc


def _explain(linker: Linker, predictions: SplinkDataFrame, engine: Engine, path: Path, n: int) -> None:
    """Save Splink's waterfall chart of the pairs nearest the decision boundary and of the strongest pairs."""
    name = predictions.physical_name
    half = max(1, n // 2)
    records = engine.arrow(
        f"(SELECT * FROM {name} ORDER BY abs(match_weight) ASC LIMIT {half}) "
        f"UNION ALL (SELECT * FROM {name} ORDER BY match_weight DESC LIMIT {half})"
    ).to_pylist()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not records:
        path.write_text(f"<!doctype html><p>{html.escape('No candidate pairs to explain.')}</p>", encoding="utf-8")
        return
    chart = linker.visualisations.waterfall_chart(records, filter_nulls=False)
    path.write_text(chart.to_html(inline=True), encoding="utf-8")


PAIRS = pa.schema(
    [
        ("left_id", pa.string()),
        ("right_id", pa.string()),
        ("match_probability", pa.float64()),
        ("match_weight", pa.float64()),
    ]
)
CLUSTERS = pa.schema([("record_id", pa.string()), ("cluster_id", pa.string())])


def _collect(engine: Engine, sql: str, schema: pa.Schema) -> pa.Table:
    """A query's result with the same column types whatever the engine (Spark's Arrow strings are large)."""
    return engine.arrow(sql).select(schema.names).cast(schema)


def _constrained(
    engine: Engine,
    name: str,
    records: pa.Table | dict[str, pa.Table],
    threshold: float,
    cluster: bool,
    rules: CannotLinkRules,
) -> tuple[str, Constrained]:
    """The scored pairs at the threshold without those the cannot-link rules veto (a table the engine can query)
    and what the rules did: when deduplicating, clusters that respect them (`linkage/constraints.py`, DuckDB SQL)."""
    if isinstance(engine, DuckDBEngine):
        result = apply_constraints(engine.con, name, records, threshold, rules, cluster=cluster)
        return result.edges, result
    # Another engine: its pairs at the threshold (ids and scores only) go through a local DuckDB and come back.
    sources = "" if cluster else "source_dataset_l, source_dataset_r, "
    scored = engine.arrow(
        f"SELECT record_id_l, record_id_r, {sources}match_probability, match_weight FROM {name} "
        f"WHERE match_probability >= {float(threshold)}"
    )
    local = duckdb.connect()
    try:
        local.register("scored", scored)
        result = apply_constraints(local, "scored", records, threshold, rules, cluster=cluster)
        kept = local.sql(f"SELECT * FROM {result.edges}").to_arrow_table()
    finally:
        local.close()
    return engine.register(kept, "sw_constrained_pairs").physical_name, result


def cluster(linker: Linker, predictions: SplinkDataFrame, threshold: float) -> SplinkDataFrame:
    """Where scored pairs become persons: connected components of the pairs at or above the threshold (Splink's,
    on the run's engine). Each record's cluster_id names its cluster; the one place that decides which records are
    one person."""
    return linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold
    )


def link(left: pa.Table, right: pa.Table, options: LinkOptions, progress: Progress | None = None) -> LinkResult:
    """Link two prepared tables (link only: no pairs within one table)."""
    progress = progress or NoProgress()
    _quiet_splink()
    available = available_columns([left, right])
    _check_available(available)
    engine = open_engine(options)
    try:
        with engine.failures("registering the files"):
            a = engine.register(left, "file_a")
            b = engine.register(right, "file_b")
        with progress.step("training the model (u by random sampling, m by EM)"), engine.failures("training"):
            model = train(
                [a, b],
                "link_only",
                available,
                options.training,
                left.num_rows + right.num_rows,
                left.num_rows * right.num_rows,
                engine.u_chunks,
            )
        linker = _predictor([a, b], model, engine.dialect)
        with progress.step("scoring candidate pairs"), engine.failures("scoring"):
            predictions = linker.inference.predict(threshold_match_probability=min(0.05, options.threshold))
            name = predictions.physical_name
            candidate_pairs = engine.arrow(f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py()
            rules = options.rules
            vetoed = 0
            if rules is not None:
                records = {"file_a": left, "file_b": right}
                name, applied = _constrained(engine, name, records, options.threshold, False, rules)
                vetoed = applied.pairs_vetoed
            # Orient each pair as (left file, right file) whatever order Splink chose.
            oriented = f"""
                SELECT CASE WHEN source_dataset_l = 'file_a' THEN record_id_l ELSE record_id_r END AS left_id,
                       CASE WHEN source_dataset_l = 'file_a' THEN record_id_r ELSE record_id_l END AS right_id,
                       match_probability, match_weight
                FROM {name} WHERE match_probability >= {float(options.threshold)}"""
            if options.one_to_one:
                query = f"""
                    WITH p AS ({oriented}),
                    r AS (SELECT *,
                                 row_number() OVER (PARTITION BY left_id ORDER BY match_weight DESC, right_id) AS rl,
                                 row_number() OVER (PARTITION BY right_id ORDER BY match_weight DESC, left_id) AS rr
                          FROM p)
                    SELECT left_id, right_id, match_probability, match_weight FROM r WHERE rl = 1 AND rr = 1
                    ORDER BY left_id, right_id"""
            else:
                query = oriented + " ORDER BY left_id, right_id"
            pairs = _collect(engine, query, PAIRS)
        if options.explain_path:
            with progress.step("explaining match weights (waterfall chart)"), engine.failures("explaining"):
                _explain(linker, predictions, engine, options.explain_path, options.explain_pairs)
        return LinkResult(pairs, model.comparisons, int(candidate_pairs), model, vetoed)
    finally:
        engine.close()


def dedupe(
    people: pa.Table, options: LinkOptions, progress: Progress | None = None, model: TrainedModel | None = None
) -> DedupeResult:
    """Deduplicate one prepared table: score pairs, then cluster them (`cluster`: connected components at the
    threshold).

    A saved model is reused when it is fit for these data (`TrainedModel.reusable_for`), whichever engine trained it;
    otherwise the run trains.
    """
    progress = progress or NoProgress()
    _quiet_splink()
    available = available_columns([people])
    _check_available(available)
    if people.num_rows < 2:
        # A single record has no pair to score (Splink's prior would divide by zero).
        raise InvalidDataError(
            "nothing to deduplicate",
            [Problem("input", f"{people.num_rows} record(s): deduplication needs two or more")],
        )
    engine = open_engine(options)
    try:
        with engine.failures("registering the file"):
            data = engine.register(people, "people")
        n = people.num_rows
        trained = model is None or not model.reusable_for("dedupe_only", available)
        if model is None or trained:
            with progress.step("training the model (u by random sampling, m by EM)"), engine.failures("training"):
                model = train(data, "dedupe_only", available, options.training, n, n * (n - 1) // 2, engine.u_chunks)
        linker = _predictor(data, model, engine.dialect)
        with progress.step("scoring candidate pairs"), engine.failures("scoring"):
            predictions = linker.inference.predict(threshold_match_probability=options.threshold)
        with progress.step("clustering into persons"), engine.failures("clustering"):
            scored = predictions.physical_name
            rules = options.rules
            vetoed = split = 0
            if rules is not None:
                scored, applied = _constrained(engine, scored, people, options.threshold, True, rules)
                cluster_table = applied.clusters.select(CLUSTERS.names).cast(CLUSTERS)
                vetoed, split = applied.pairs_vetoed, applied.clusters_split
            else:
                clusters = cluster(linker, predictions, options.threshold)
                cluster_table = _collect(
                    engine,
                    f"SELECT CAST(record_id AS STRING) AS record_id, CAST(cluster_id AS STRING) AS cluster_id "
                    f"FROM {clusters.physical_name} ORDER BY record_id",
                    CLUSTERS,
                )
            pairs = _collect(
                engine,
                f"SELECT record_id_l AS left_id, record_id_r AS right_id, match_probability, match_weight "
                f"FROM {scored} ORDER BY left_id, right_id",
                PAIRS,
            )
        if options.explain_path:
            with progress.step("explaining match weights (waterfall chart)"), engine.failures("explaining"):
                _explain(linker, predictions, engine, options.explain_path, options.explain_pairs)
        return DedupeResult(cluster_table, pairs, model.comparisons, model, trained, vetoed, split)
    finally:
        engine.close()
