"""The `sharewise link` (files, dedupe, evaluate) and `sharewise pprl` (encode, match) commands."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sharewise.cli import synth_options as rates
from sharewise.cli.console import RichProgress, escape, handles_errors, out, settings_for
from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.domain.events import AuditSink
from sharewise.linkage.constraints import CannotLinkRules, read_rules
from sharewise.linkage.link import BACKENDS, LinkOptions
from sharewise.linkage.model import TrainingOptions
from sharewise.linkage.pprl.match import MatchOptions
from sharewise.linkage.sources import ColumnMapping
from sharewise.services import linkage

link_app = typer.Typer(
    help="Record linkage in the clear (Splink): link files, deduplicate, evaluate.", no_args_is_help=True
)
pprl_app = typer.Typer(
    help="Privacy-preserving record linkage: encode locally with a shared secret, match encodings only.",
    no_args_is_help=True,
)

MapFile = Annotated[Path | None, typer.Option("--mapping", help="YAML mapping: standard column -> source column(s).")]
MapFlags = Annotated[list[str] | None, typer.Option("--map", help="standard=source[+source] (repeatable).")]
Threshold = Annotated[float, typer.Option("--threshold", min=0.0, max=1.0, help="Match probability threshold.")]
Actor = Annotated[str, typer.Option("--actor", help="Who runs it (for the audit trail).")]
NoAudit = Annotated[bool, typer.Option("--no-audit", help="Do not record the run in the audit trail.")]
DayFirst = Annotated[bool, typer.Option("--dayfirst", help="Read ambiguous dates as day/month/year.")]
NoCannotLink = Annotated[
    bool,
    typer.Option(
        "--no-cannot-link",
        help="Do not apply the cannot-link rules (twins, parents and children named alike: docs/linkage.md).",
    ),
]
RulesFile = Annotated[
    Path | None,
    typer.Option(
        "--cannot-link-rules",
        help="A cannot-link rules file (YAML, format sharewise-cannot-link/1; docs/linkage.md) instead of the shipped "
        "one. The audit trail records its SHA-256, not its path.",
    ),
]
Backend = Annotated[
    str,
    typer.Option(
        "--backend",
        help="Where Splink runs: duckdb (embedded, the default) or spark (the active session, or local mode: needs "
        "Java 17 or later).",
    ),
]


def _backend(name: str) -> str:
    """The engine named, checked before any file is read: a Spark that cannot start fails here, at once."""
    if name not in BACKENDS:
        raise InvalidDataError(
            "invalid option", [Problem("--backend", f"'{name}' is not one of {', '.join(BACKENDS)}")]
        )
    if name == "spark":
        from sharewise.engines.spark import check_startable

        check_startable()
    return name


def _rules(path: Path | None, no_cannot_link: bool) -> CannotLinkRules | None:
    """The cannot-link rules file given (validated, every problem listed), or None for the shipped rules."""
    if path is None:
        return None
    if no_cannot_link:
        raise InvalidDataError(
            "invalid option", [Problem("--cannot-link-rules", "cannot be used with --no-cannot-link (give one)")]
        )
    return read_rules(path)


def _mapping(path: Path | None, flags: list[str] | None) -> ColumnMapping | None:
    if path is None and not flags:
        return None
    mapping = ColumnMapping.from_file(path) if path else ColumnMapping()
    return mapping.merged(ColumnMapping.from_flags(flags)) if flags else mapping


@contextlib.contextmanager
def _sink(no_audit: bool) -> Iterator[AuditSink | None]:
    if no_audit:
        yield None
        return
    from sharewise.wiring import control_for

    control = control_for(settings_for(None))
    try:
        yield control.sink
    finally:
        control.store.dispose()


@link_app.command("files")
@handles_errors
def files(
    file_a: Annotated[Path, typer.Argument(help="The first person file (CSV or Parquet).")],
    file_b: Annotated[Path, typer.Argument(help="The second person file.")],
    out_path: Annotated[Path, typer.Option("--out", help="matches.csv: left_id, right_id, match_probability.")] = Path(
        "matches.csv"
    ),
    threshold: Threshold = 0.9,
    one_to_one: Annotated[
        bool, typer.Option("--one-to-one", help="Keep each record's mutual best match only.")
    ] = False,
    mapping_a: Annotated[Path | None, typer.Option("--mapping-a", help="Column mapping of file A (YAML).")] = None,
    mapping_b: Annotated[Path | None, typer.Option("--mapping-b", help="Column mapping of file B (YAML).")] = None,
    map_flags: MapFlags = None,
    explain: Annotated[Path | None, typer.Option("--explain", help="Save Splink waterfall charts (HTML) here.")] = None,
    dayfirst: DayFirst = False,
    backend: Backend = "duckdb",
    no_cannot_link: NoCannotLink = False,
    cannot_link_rules: RulesFile = None,
    actor: Actor = "cli",
    no_audit: NoAudit = False,
) -> None:
    """Link two files probabilistically (Splink on DuckDB or Spark, trained unsupervised).

    Exit 2 on invalid input (files, mappings, a rules file), 4 for a missing file, 5 when Spark cannot start.
    """
    options = LinkOptions(
        threshold=threshold,
        one_to_one=one_to_one,
        explain_path=explain,
        backend=_backend(backend),
        cannot_link=not no_cannot_link,
        cannot_link_rules=_rules(cannot_link_rules, no_cannot_link),
    )
    flags = _mapping(None, map_flags)
    ma, mb = _mapping(mapping_a, None), _mapping(mapping_b, None)
    if flags:
        ma, mb = (ma or ColumnMapping()).merged(flags), (mb or ColumnMapping()).merged(flags)
    progress = RichProgress()
    with _sink(no_audit) as sink, progress.progress:
        result = linkage.link_files(file_a, file_b, out_path, options, ma, mb, sink, actor, progress, dayfirst)
    out.print(f"[green]linked[/] {result.rows} pairs -> {escape(str(out_path))} ({result.seconds:.1f}s)")
    if explain:
        out.print(f"  match weights explained in {escape(str(explain))}")


@link_app.command("dedupe")
@handles_errors
def dedupe(
    file: Annotated[Path, typer.Argument(help="The person file (CSV or Parquet).")],
    out_path: Annotated[Path, typer.Option("--out", help="clusters.csv: record_id, person_id.")] = Path("clusters.csv"),
    index: Annotated[
        Path | None, typer.Option("--index", help="Person index (DuckDB file): stable ids across batches.")
    ] = None,
    threshold: Threshold = 0.9,
    mapping: MapFile = None,
    map_flags: MapFlags = None,
    explain: Annotated[Path | None, typer.Option("--explain", help="Save Splink waterfall charts (HTML) here.")] = None,
    dayfirst: DayFirst = False,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Train a new model instead of reusing the one the index saved.")
    ] = False,
    backend: Backend = "duckdb",
    no_cannot_link: NoCannotLink = False,
    cannot_link_rules: RulesFile = None,
    actor: Actor = "cli",
    no_audit: NoAudit = False,
) -> None:
    """Deduplicate a file into persons; with --index, add the batch to a person index without renumbering.

    The index saves the trained model and later batches reuse it (no retraining), on either backend; --retrain
    trains a new one. Exit 2 on invalid input (a rules file too), 4 for a missing file, 5 when Spark cannot start.
    """
    options = LinkOptions(
        threshold=threshold,
        explain_path=explain,
        backend=_backend(backend),
        cannot_link=not no_cannot_link,
        cannot_link_rules=_rules(cannot_link_rules, no_cannot_link),
    )
    progress = RichProgress()
    with _sink(no_audit) as sink, progress.progress:
        result = linkage.dedupe_file(
            file, out_path, options, _mapping(mapping, map_flags), index, sink, actor, progress, dayfirst, retrain
        )
    d = result.details
    out.print(f"[green]deduplicated[/] {result.rows} records into {d['persons']} persons -> {escape(str(out_path))}")
    if index:
        out.print(
            f"  index batch {d['batch']}: {d['persons_created']} created, {d['persons_merged']} merged, {d['persons_split']} split"
        )
        out.print(f"  model {d['model']} (trained by batch {d['model_batch']})")


@link_app.command("evaluate")
@handles_errors
def evaluate(
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", help="febrl4, febrl3, synthetic (repeatable; default all).")
    ] = None,
    people: Annotated[int, typer.Option("--people", min=10, help="People in the synthetic data.")] = 2000,
    nickname_rate: rates.NicknameRate = rates.DEFAULT.nickname,
    typo_rate: rates.TypoRate = rates.DEFAULT.typo,
    move_rate: rates.MoveRate = rates.DEFAULT.move,
    missing_ssn_rate: rates.MissingSsnRate = rates.DEFAULT.missing_ssn,
    duplicate_rate: rates.DuplicateRate = rates.DEFAULT.duplicate,
    twins_rate: rates.TwinsRate = rates.DEFAULT.twins,
    household_rate: rates.HouseholdRate = rates.DEFAULT.household,
    shared_address_rate: rates.SharedAddressRate = rates.DEFAULT.shared_address,
    dob_transposed_rate: rates.DobTransposedRate = rates.DEFAULT.dob_transposed,
    backend: Backend = "duckdb",
    no_cannot_link: NoCannotLink = False,
    cannot_link_rules: RulesFile = None,
    actor: Actor = "cli",
    no_audit: NoAudit = False,
) -> None:
    """Precision, recall and F1 against known truth (FEBRL data sets and the synthetic generator).

    Splink runs on --backend (the FEBRL4 PPRL row does not use an engine). The rate options shape the synthetic data
    as in `sharewise synth`; exit 2 when a rate is not a share from 0 to 1 or a rules file is invalid, 5 when Spark
    cannot start.
    """
    engine = _backend(backend)
    rules = _rules(cannot_link_rules, no_cannot_link)
    chosen = tuple(dataset or ("febrl4", "febrl3", "synthetic"))
    synth_rates = rates.synth_rates(
        nickname=nickname_rate,
        typo=typo_rate,
        move=move_rate,
        missing_ssn=missing_ssn_rate,
        duplicate=duplicate_rate,
        twins=twins_rate,
        household=household_rate,
        shared_address=shared_address_rate,
        dob_transposed=dob_transposed_rate,
    )
    progress = RichProgress()
    with _sink(no_audit) as sink, progress.progress:
        rows = linkage.evaluate(
            chosen,
            people,
            None,
            progress,
            sink,
            actor,
            synth_rates=synth_rates,
            cannot_link=not no_cannot_link,
            backend=engine,
            cannot_link_rules=rules,
        )
    table = Table("data set", "method", "precision", "recall", "F1", "seconds")
    for r in rows:
        a = r.accuracy
        table.add_row(r.dataset, r.method, f"{a.precision:.4f}", f"{a.recall:.4f}", f"{a.f1:.4f}", f"{r.seconds:.1f}")
    out.print(table)


@pprl_app.command("encode")
@handles_errors
def encode(
    file: Annotated[Path, typer.Argument(help="The person file to encode (stays with you).")],
    secret_file: Annotated[
        Path, typer.Option("--secret-file", help="The secret shared out of band with the other party.")
    ],
    out_path: Annotated[Path, typer.Option("--out", help="enc.parquet: what you send to the linkage unit.")] = Path(
        "enc.parquet"
    ),
    schema: Annotated[Path | None, typer.Option("--schema", help="The agreed linkage schema (YAML).")] = None,
    mapping: MapFile = None,
    map_flags: MapFlags = None,
    dayfirst: DayFirst = False,
    actor: Actor = "cli",
    no_audit: NoAudit = False,
) -> None:
    """Encode identifiers locally into keyed, hardened Bloom filters; a crosswalk to record ids stays with you."""
    progress = RichProgress()
    with _sink(no_audit) as sink, progress.progress:
        result = linkage.pprl_encode(
            file, secret_file, out_path, schema, _mapping(mapping, map_flags), sink, actor, progress, dayfirst
        )
    out.print(f"[green]encoded[/] {result.rows} records -> {escape(str(out_path))} ({result.seconds:.1f}s)")
    out.print(f"  keep {escape(str(result.details['crosswalk']))} locally; send only the encodings")


@pprl_app.command("match")
@handles_errors
def match(
    enc_a: Annotated[Path, typer.Argument(help="Party A's encodings.")],
    enc_b: Annotated[Path, typer.Argument(help="Party B's encodings.")],
    out_path: Annotated[Path, typer.Option("--out", help="matches.csv (left_id, right_id, similarity).")] = Path(
        "matches.csv"
    ),
    threshold: Annotated[float, typer.Option("--threshold", min=0.0, max=1.0, help="Dice similarity threshold.")] = 0.7,
    blocking: Annotated[str, typer.Option("--blocking", help="none (every pair) or lsh.")] = "none",
    resolution: Annotated[str, typer.Option("--resolution", help="one_to_one, clusters or all.")] = "one_to_one",
    actor: Actor = "cli",
    no_audit: NoAudit = False,
) -> None:
    """Match encodings only (the linkage unit never sees identifiers)."""
    if resolution not in ("one_to_one", "clusters", "all"):
        raise InvalidDataError("invalid option", [Problem("--resolution", "one_to_one, clusters or all")])
    options = MatchOptions(threshold=threshold, blocking=blocking, resolution=resolution)
    progress = RichProgress()
    with _sink(no_audit) as sink, progress.progress:
        result = linkage.pprl_match(enc_a, enc_b, out_path, options, sink, actor, progress)
    d = result.details
    out.print(
        f"[green]matched[/] {d['matches']} pairs from {d['comparisons']} comparisons -> {escape(str(out_path))} ({result.seconds:.1f}s)"
    )


# Keep the training options importable for callers that tune them (bench).
__all__ = ["TrainingOptions", "link_app", "pprl_app"]
