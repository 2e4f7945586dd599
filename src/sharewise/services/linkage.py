"""Linkage use cases: link files, deduplicate into a person index, evaluate, and PPRL encode and match."""

from __future__ import annotations

import csv
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sharewise.domain.errors import InvalidDataError, NotFoundError, Problem, StorageError
from sharewise.domain.events import AuditEvent, AuditSink, DetailValue
from sharewise.linkage import evaluate as ev
from sharewise.linkage.constraints import CannotLinkRules
from sharewise.linkage.link import LinkOptions, NoProgress, Progress, dedupe, link
from sharewise.linkage.person_index import PersonIndex, assign, person_label
from sharewise.linkage.pprl import files as enc_files
from sharewise.linkage.pprl.encode import encode, secret_check
from sharewise.linkage.pprl.match import MatchOptions, clusters, match
from sharewise.linkage.pprl.schema import DEFAULT_SCHEMA, LinkageSchema, read_schema
from sharewise.linkage.prepare import prepare
from sharewise.linkage.sources import ColumnMapping, read_people
from sharewise.pipeline.synth import SynthRates

SYNTH_MAPPING = ColumnMapping(
    {
        "given_name": ("first_name",),
        "surname": ("last_name",),
        "dob": ("birth_date",),
        "street_address": ("street",),
    }
)


@dataclass(frozen=True)
class Outcome:
    """What a linkage command wrote and counted (ids and counts only)."""

    out: Path
    rows: int
    seconds: float
    details: dict[str, DetailValue] = field(default_factory=dict)


def _audit(
    sink: AuditSink | None,
    action: str,
    actor: str,
    subject: str,
    details: dict[str, DetailValue],
    outcome: str = "success",
) -> None:
    if sink is not None:
        sink.record(AuditEvent(action, actor, "linkage", subject, outcome=outcome, details=details))


def _write_csv(table: pa.Table, out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(table, out)
    except OSError as exc:
        raise StorageError(f"cannot write {out.name}") from exc


def link_files(
    file_a: Path,
    file_b: Path,
    out: Path,
    options: LinkOptions,
    mapping_a: ColumnMapping | None = None,
    mapping_b: ColumnMapping | None = None,
    sink: AuditSink | None = None,
    actor: str = "cli",
    progress: Progress | None = None,
    dayfirst: bool = False,
) -> Outcome:
    """Link two person files and write matches.csv (left_id, right_id, match_probability)."""
    progress = progress or NoProgress()
    start = time.perf_counter()
    with progress.step("reading and preparing the files"):
        a = prepare(read_people(file_a, mapping_a, "file A"), dayfirst)
        b = prepare(read_people(file_b, mapping_b, "file B"), dayfirst)
    result = link(a, b, options, progress)
    _write_csv(result.pairs.select(["left_id", "right_id", "match_probability"]), out)
    details: dict[str, DetailValue] = {
        "records_a": a.num_rows,
        "records_b": b.num_rows,
        "matches": result.pairs.num_rows,
        "threshold": options.threshold,
        "one_to_one": options.one_to_one,
        "comparisons": ",".join(result.comparisons),
        "pairs_vetoed": result.pairs_vetoed,
        **options.audit_details(),
    }
    _audit(sink, "linkage-executed", actor, out.name, {"kind": "link", **details})
    return Outcome(out, result.pairs.num_rows, time.perf_counter() - start, details)


def dedupe_file(
    file: Path,
    out: Path,
    options: LinkOptions,
    mapping: ColumnMapping | None = None,
    index_path: Path | None = None,
    sink: AuditSink | None = None,
    actor: str = "cli",
    progress: Progress | None = None,
    dayfirst: bool = False,
    retrain: bool = False,
) -> Outcome:
    """Deduplicate a person file (with the person index when given) and write clusters.csv (record_id, person_id).

    With an index, the batch is scored with the model the index saved (no training, so earlier records keep their
    scores and their ids) unless `retrain` is set or the index has no model fit for reuse yet; a model trained by
    this batch is saved in the index with it.
    """
    progress = progress or NoProgress()
    start = time.perf_counter()
    with progress.step("reading and preparing the file"):
        batch = prepare(read_people(file, mapping, "input"), dayfirst)
    index = PersonIndex(index_path) if index_path else None
    try:
        existing: dict[str, str] = {}
        combined = batch
        next_number = 1
        saved = None
        if index is not None:
            index.check_new(batch)
            previous = index.prepared()
            existing = index.persons()
            next_number = index.next_number()
            saved = None if retrain else index.model()
            if previous is not None:
                combined = pa.concat_tables([previous, batch.cast(previous.schema)])
        result = dedupe(combined, options, progress, saved[1] if saved else None)
        cluster_of = dict(
            zip(
                result.clusters.column("record_id").to_pylist(),
                result.clusters.column("cluster_id").to_pylist(),
                strict=True,
            )
        )
        assignment = assign(existing, cluster_of, next_number)
        events = assignment.events
        batch_number = (
            index.apply(batch, assignment, result.model if result.trained else None) if index is not None else 0
        )
    finally:
        if index is not None:
            index.close()
    ids = batch.column("record_id").to_pylist()
    table = pa.table({"record_id": ids, "person_id": [assignment.persons[r] for r in ids]})
    _write_csv(table, out)
    counts = {kind: sum(1 for e in events if e.event == kind) for kind in ("created", "merged", "split")}
    details: dict[str, DetailValue] = {
        "records": batch.num_rows,
        "persons": len(set(table.column("person_id").to_pylist())),
        "threshold": options.threshold,
        "batch": batch_number,
        "persons_created": counts["created"],
        "persons_merged": counts["merged"],
        "persons_split": counts["split"],
        "model": "trained" if result.trained else "reused",
        "model_batch": batch_number if result.trained or saved is None else saved[0],
        "pairs_vetoed": result.pairs_vetoed,
        "clusters_split": result.clusters_split,
        **options.audit_details(),
    }
    _audit(sink, "linkage-executed", actor, out.name, {"kind": "dedupe", **details})
    return Outcome(out, table.num_rows, time.perf_counter() - start, details)


@dataclass(frozen=True)
class EvaluationRow:
    """One evaluation: the data set, the method, its accuracy and time."""

    dataset: str
    method: str
    accuracy: ev.Accuracy
    seconds: float


def evaluate(
    datasets: tuple[str, ...] = ("febrl4", "febrl3", "synthetic"),
    synth_people: int = 2000,
    options: LinkOptions | None = None,
    progress: Progress | None = None,
    sink: AuditSink | None = None,
    actor: str = "cli",
    synth_rates: SynthRates | None = None,
    cannot_link: bool = True,
    backend: str = "duckdb",
    cannot_link_rules: CannotLinkRules | None = None,
) -> list[EvaluationRow]:
    """Precision, recall and F1 on FEBRL4 (link), FEBRL3 (dedupe) and the synthetic generator's truth (generated at
    `synth_rates`, realistic by default); `cannot_link` applies the cannot-link rules (linkage/constraints.py):
    `cannot_link_rules`, or the shipped ones. Splink runs on `backend`; each data set keeps its own threshold unless
    `options` sets one for all."""
    progress = progress or NoProgress()
    base = LinkOptions(cannot_link=cannot_link, cannot_link_rules=cannot_link_rules, backend=backend)
    rows: list[EvaluationRow] = []
    unknown = [d for d in datasets if d not in ("febrl4", "febrl3", "synthetic")]
    if unknown:
        raise InvalidDataError("unknown data sets", [Problem("--dataset", f"'{d}'") for d in unknown])
    if "febrl4" in datasets:
        with progress.step("FEBRL4: linking 5,000 x 5,000 in the clear"):
            a, b, ta, tb = ev.febrl4()
            start = time.perf_counter()
            pa_, pb = prepare(a), prepare(b)
            result = link(pa_, pb, options or replace(base, threshold=0.5, one_to_one=True))
            rows.append(
                EvaluationRow(
                    "febrl4", "splink (clear)", ev.pair_accuracy(result.pairs, ta, tb), time.perf_counter() - start
                )
            )
        with progress.step("FEBRL4: PPRL encode and match"):
            start = time.perf_counter()
            secret = b"sharewise-evaluation-secret-not-for-real-use"
            ea, eb = encode(pa_, DEFAULT_SCHEMA, secret), encode(pb, DEFAULT_SCHEMA, secret)
            m = match(ea, eb, MatchOptions(threshold=DEFAULT_SCHEMA.threshold, blocking="none"))
            ids_a, ids_b = np.array(a.column("record_id").to_pylist()), np.array(b.column("record_id").to_pylist())
            pairs = pa.table({"left_id": ids_a[m.left], "right_id": ids_b[m.right]})
            rows.append(
                EvaluationRow(
                    "febrl4", "pprl (bloom filters)", ev.pair_accuracy(pairs, ta, tb), time.perf_counter() - start
                )
            )
    if "febrl3" in datasets:
        with progress.step("FEBRL3: deduplicating 5,000 records"):
            people, truth = ev.febrl3()
            start = time.perf_counter()
            d = dedupe(prepare(people), options or replace(base, threshold=0.9))
            rows.append(
                EvaluationRow(
                    "febrl3", "splink dedupe", ev.cluster_accuracy(d.clusters, truth), time.perf_counter() - start
                )
            )
    if "synthetic" in datasets:
        with progress.step(f"synthetic: {synth_people} people in two programs"):
            rows.append(_evaluate_synthetic(synth_people, options or replace(base, threshold=0.5), synth_rates))
    _audit(
        sink,
        "linkage-evaluated",
        actor,
        "evaluation",
        {
            **{f"{r.dataset}/{r.method}/f1": round(r.accuracy.f1, 4) for r in rows},
            **(options or base).audit_details(),
        },
    )
    return rows


def _evaluate_synthetic(people: int, options: LinkOptions, rates: SynthRates | None) -> EvaluationRow:
    from sharewise.pipeline.synth import generate

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        generate(directory, people, ("snap", "tanf"), rates=rates)
        truth_rows = list(csv.DictReader((directory / "truth.csv").open(encoding="utf-8")))
        start = time.perf_counter()
        a = prepare(read_people(directory / "snap.csv", SYNTH_MAPPING, "snap"))
        b = prepare(read_people(directory / "tanf.csv", SYNTH_MAPPING, "tanf"))
        result = link(a, b, options)

        def truth_of(program: str) -> pa.Table:
            rows = [r for r in truth_rows if r["program"] == program]
            return pa.table({"record_id": [r["record_id"] for r in rows], "entity_id": [r["person_id"] for r in rows]})

        accuracy = ev.pair_accuracy(result.pairs, truth_of("snap"), truth_of("tanf"))
        return EvaluationRow("synthetic", "splink (clear)", accuracy, time.perf_counter() - start)


def _secret(path: Path) -> bytes:
    if not path.is_file():
        raise NotFoundError(f"secret file not found: {path.name}")
    return path.read_bytes().strip()


def pprl_encode(
    file: Path,
    secret_file: Path,
    out: Path,
    schema_path: Path | None = None,
    mapping: ColumnMapping | None = None,
    sink: AuditSink | None = None,
    actor: str = "cli",
    progress: Progress | None = None,
    dayfirst: bool = False,
) -> Outcome:
    """Encode a person file into enc.parquet (opaque ids, hardened Bloom filters) and a local crosswalk."""
    progress = progress or NoProgress()
    start = time.perf_counter()
    schema: LinkageSchema = read_schema(schema_path) if schema_path else DEFAULT_SCHEMA
    secret = _secret(secret_file)
    with progress.step("reading and preparing the file"):
        people = prepare(read_people(file, mapping, "input"), dayfirst)
    with progress.step("encoding"):
        bits = encode(people, schema, secret)
        ids = enc_files.opaque_ids(people.num_rows)
    enc_files.write_encodings(out, ids, bits, schema, secret_check(secret, schema))
    crosswalk = out.with_name(out.stem + ".crosswalk.csv")
    _write_csv(pa.table({"record_id": people.column("record_id"), "enc_id": ids}), crosswalk)
    details: dict[str, DetailValue] = {
        "records": people.num_rows,
        "schema": schema.name,
        "schema_version": schema.version,
        "fingerprint": schema.fingerprint()[:16],
        "crosswalk": crosswalk.name,
    }
    _audit(sink, "pprl-encoded", actor, out.name, details)
    return Outcome(out, people.num_rows, time.perf_counter() - start, details)


def pprl_match(
    enc_a: Path,
    enc_b: Path,
    out: Path,
    options: MatchOptions,
    sink: AuditSink | None = None,
    actor: str = "cli",
    progress: Progress | None = None,
) -> Outcome:
    """Match two parties' encodings (never identifiers) and write matches.csv, or group ids when clustering."""
    progress = progress or NoProgress()
    start = time.perf_counter()
    a = enc_files.read_encodings(enc_a, "ENC_A")
    b = enc_files.read_encodings(enc_b, "ENC_B")
    enc_files.check_compatible(a, b)
    with progress.step("matching encodings"):
        result = match(a.bits, b.bits, options)
    ids_a, ids_b = np.array(a.ids), np.array(b.ids)
    if options.resolution == "clusters":
        labels = clusters(len(a.ids), len(b.ids), result)
        table = pa.table(
            {
                "party": ["A"] * len(a.ids) + ["B"] * len(b.ids),
                "enc_id": np.concatenate([ids_a, ids_b]),
                "group_id": [person_label(int(x) + 1) for x in labels],
            }
        )
    else:
        table = pa.table(
            {"left_id": ids_a[result.left], "right_id": ids_b[result.right], "similarity": result.similarity.round(4)}
        )
    _write_csv(table, out)
    details: dict[str, DetailValue] = {
        "encodings_a": len(a.ids),
        "encodings_b": len(b.ids),
        "comparisons": result.comparisons,
        "matches": len(result.left),
        "threshold": options.threshold,
        "blocking": options.blocking,
        "resolution": options.resolution,
        "schema": a.schema_name,
        "schema_version": a.schema_version,
    }
    _audit(sink, "pprl-matched", actor, out.name, details)
    return Outcome(out, table.num_rows, time.perf_counter() - start, details)
