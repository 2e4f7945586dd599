"""The `sharewise share` commands (plan, run, verify, key, jobs), `dictionary propose` and `synth`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sharewise.cli import synth_options as rates
from sharewise.cli.console import RichProgress, StatePack, escape, handles_errors, out, reading_user, settings_for
from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.pipeline.backend import Backend
from sharewise.pipeline.synth import PROGRAMS, generate
from sharewise.security.keys import FileKeyProvider
from sharewise.security.secrets import FileSecrets
from sharewise.services import shares
from sharewise.wiring import Settings, SystemClock, control_for, law_for

app = typer.Typer(
    help="Execute approved shares: plan, run, verify packages, manage pseudonym keys.", no_args_is_help=True
)
dictionary_app = typer.Typer(help="Data dictionaries: what each source field is.", no_args_is_help=True)
jobs_app = typer.Typer(
    help="Share runs started in the background (web page, API): list them, delete the expired.", no_args_is_help=True
)
app.add_typer(jobs_app, name="jobs")

ENGINES = ("duckdb", "spark")


@dictionary_app.callback()
def dictionary_main() -> None:
    """Data dictionaries: what each source field is."""


def open_backend(engine: str) -> Backend:
    """The engine the user chose (the lead may move this into wiring.py)."""
    if engine == "duckdb":
        from sharewise.pipeline.duckdb_backend import DuckDBBackend

        return DuckDBBackend()
    if engine == "spark":
        from sharewise.pipeline.spark_backend import SparkBackend

        return SparkBackend()
    raise InvalidDataError("invalid option", [Problem("--engine", f"'{engine}' is not one of {', '.join(ENGINES)}")])


def _keys(settings: Settings) -> FileKeyProvider:
    return FileKeyProvider(settings.keys)


@app.command("plan")
@handles_errors
def plan(
    share_file: Annotated[Path, typer.Argument(help="The share file (YAML).")],
    format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    state_pack: StatePack = None,
) -> None:
    """Show what a share would send: each field and its transformation, each dropped field and why.

    Exit codes: 0 planned, 2 invalid share/dictionary/input, 6 the determination is not permitted.
    """
    settings = settings_for(state_pack)
    law = law_for(settings)
    definition = shares.read_share(share_file, law)
    result = shares.plan(definition, law, SystemClock().today())
    if format == "json":
        plan_json = {"outcome": result.determination.outcome.value, **result.spec.as_dict()}
        notices = {"notices": result.determination.notices}
        out.print_json(json.dumps({**plan_json, "output": result.output_settings(), **notices}))
        return
    d = result.determination
    out.print(f"[bold]determination[/]: [green]{d.outcome.value}[/] ({escape(d.law_version)}, as of {d.as_of})")
    for a in d.authorities:
        out.print(f"  {escape(a.authority)}: {a.outcome.value} via {escape(a.pathway or '-')}")
    out.print(f"[bold]form[/]: {result.spec.form}")
    out.print(f"[bold]output[/]: {escape(result.describe_output())}")
    out.print(f"[bold]fields that leave[/] ({len(result.spec.fields)}):")
    for f in result.spec.fields:
        qi = " [dim](quasi-identifier)[/]" if f.quasi_identifier else ""
        out.print(f"  {escape(f.name):28} {f.category:26} {f.transform}{qi}")
    out.print(f"[bold]fields that stay[/] ({len(result.spec.dropped)}):")
    for dropped in result.spec.dropped:
        out.print(f"  {escape(dropped.name):28} {escape(dropped.reason)}")
    for notice in d.notices:
        out.print(f"[italic]{escape(notice)}[/]")


@app.command("run")
@handles_errors
def run(
    share_file: Annotated[Path, typer.Argument(help="The share file (YAML).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where the package is published.")] = Path("packages"),
    engine: Annotated[str, typer.Option("--engine", help="duckdb (default) or spark.")] = "duckdb",
    actor: Annotated[str, typer.Option("--actor", help="Who runs the share (for the audit trail).")] = "cli",
    state_pack: StatePack = None,
) -> None:
    """Execute an approved share: extract, transform, sign, encrypt for the recipient, publish, audit.

    Exit codes: 0 published, 2 invalid input, 4 missing key, 5 storage failure (disk full), 6 not permitted.
    """
    settings = settings_for(state_pack)
    law = law_for(settings)
    definition = shares.read_share(share_file, law)
    control = control_for(settings)
    backend = open_backend(engine)
    progress = RichProgress()
    try:
        with progress.progress:
            result = shares.run(
                control,
                definition,
                law,
                SystemClock().today(),
                backend,
                _keys(settings),
                out_dir,
                actor,
                progress=progress,
                person_index_key=FileSecrets(settings.keys).key("person-index"),
            )
    finally:
        backend.close()
        control.store.dispose()
    out.print(f"[green]published[/] {escape(str(result.package.path))}")
    out.print(
        f"  share {escape(result.share_id)}: {result.extract.rows} rows, {len(result.extract.columns)} columns ({result.extract.format})"
    )
    out.print(f"  package SHA-256 {result.package.sha256}, signed by key {result.signer_key_id}")
    spec = result.plan.spec
    if result.key_id and spec.pseudonymized:
        out.print(f"  pseudonyms with key {result.key_id} of agreement {escape(definition.agreement_id)}")
    if result.key_id and spec.date_shift:
        shift = spec.date_shift
        out.print(
            f"  dates shifted per person (up to {shift.max_days} days either way, by {escape(shift.person.name)}) "
            f"with key {result.key_id}"
        )
    if result.extract.risk:
        r = result.extract.risk
        out.print(
            f"  k-anonymity k={r.k}: {r.records_suppressed} of {r.records_in} records withheld, "
            f"levels {r.levels}, max re-identification risk {r.max_risk:.3f}, average {r.average_risk:.4f}"
        )
    if result.extract.suppression:
        s = result.extract.suppression
        out.print(
            f"  {s['cells']} cells: {s['hidden_small_cells']} small cells and {s['hidden_complementary_cells']} complementary cells hidden"
        )


@app.command("verify")
@handles_errors
def verify(
    package_file: Annotated[Path, typer.Argument(help="The received package (.p7m).")],
    certificate: Annotated[Path, typer.Option("--cert", help="The recipient's certificate (PEM).")],
    private_key: Annotated[Path, typer.Option("--key", help="The recipient's private key (PEM).")],
    signer_key: Annotated[
        Path | None, typer.Option("--signer-key", help="The sender's public key (PEM), received out of band.")
    ] = None,
    extract: Annotated[Path | None, typer.Option("--extract", help="Write the verified files here.")] = None,
) -> None:
    """Decrypt a received package and check its signature and every file's SHA-256.

    Exit codes: 0 intact, 2 unreadable key or certificate, 8 altered or not for this recipient.
    """
    result = shares.verify_package(package_file, certificate, private_key, signer_key, extract)
    m = result.manifest
    pinned = "pinned key" if result.signer_pinned else "[yellow]enclosed key (pass --signer-key to pin the sender)[/]"
    out.print(f"[green]intact[/]: share {escape(str(m.get('share_id')))}, signed by {result.signer_key_id} ({pinned})")
    output = m.get("output", {})
    out.print(
        f"  {output.get('rows')} rows in {len(result.files)} file(s), form {escape(str(m.get('share_spec', {}).get('form')))}, law {escape(str(m.get('law_version')))}"
    )
    if output.get("parquet_encodings") == "v2":
        out.print(
            "  Parquet with the format 2 encodings: open it with pyarrow or pandas, DuckDB, Spark 3.3+ or R's arrow"
        )
    if output.get("token_format") == "bytes":
        out.print(
            "  pseudonyms are 32-byte binary values, not hex text: join on them as they are "
            "(lower(hex(column)) in DuckDB or Spark gives the 64-digit hex token)"
        )
    if extract:
        out.print(f"  extracted to {escape(str(extract))}")


@app.command("key")
@handles_errors
def key(
    agreement: Annotated[str, typer.Argument(help="The agreement id: one pseudonym key per agreement.")],
    rotate: Annotated[bool, typer.Option("--rotate", help="Make a new current key; earlier versions stay.")] = False,
) -> None:
    """Create (or rotate) the pseudonym key of an agreement. The key itself is never printed."""
    created = shares.create_key(_keys(Settings.from_env()), agreement, rotate)
    out.print(f"agreement {escape(created.agreement_id)}: key version {created.version}, id {created.key_id}")


@app.command("signer-key")
@handles_errors
def signer_key(
    target: Annotated[
        Path | None, typer.Option("--out", help="Write the public key here instead of printing it.")
    ] = None,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Retire the current key and start a new one; give recipients the new key.")
    ] = False,
) -> None:
    """The public key that signs package manifests, for recipients to pin."""
    keys = _keys(Settings.from_env())
    if rotate:
        keys.rotate_signing_key()
    pem = shares.signer_public_pem(keys)
    if target:
        target.write_bytes(pem)
        out.print(f"wrote {escape(str(target))}")
    else:
        out.print(pem.decode("ascii"), end="")


@jobs_app.command("list")
@handles_errors
def jobs_list(
    user: Annotated[str | None, typer.Option("--as", help="The user reading (or SHAREWISE_USER).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most this many, newest first.")] = 50,
) -> None:
    """The share jobs of the data directory: id, owner, state, when created and when deleted (UTC).

    Auditors see every job, others the jobs they started (anyone while no user is registered).
    Nothing about the records shared is shown. An expiry in the past: the next sweep deletes the job.
    """
    from sharewise.services import share_jobs

    control = control_for(Settings.from_env())
    try:
        jobs = share_jobs.standalone(control)
        found = jobs.jobs_of(control, reading_user(user), limit)
        out.print(f"{'job':35}  {'owner':16}  {'state':11}  {'created':16}  expires")
        for job in found:
            expires = jobs.expires_at(job)
            out.print(
                f"{job.id:35}  {escape(job.owner):16}  {job.state:11}  {job.created_at[:16].replace('T', ' '):16}  "
                f"{expires.strftime('%Y-%m-%d %H:%M') if expires else '(while it runs)'}"
            )
        if not found:
            out.print("no share jobs")
    finally:
        control.store.dispose()


@jobs_app.command("prune")
@handles_errors
def jobs_prune() -> None:
    """Delete the share jobs (records and packages) whose retention has passed; each deletion is audited.

    A job is kept SHAREWISE_SHARE_JOB_RETENTION_DAYS (default 7) after its run ended. The server also
    deletes expired jobs when it starts and whenever a run is started. Exit 5 when one could not be deleted.
    """
    from sharewise.services import share_jobs

    control = control_for(Settings.from_env())
    try:
        deleted = share_jobs.standalone(control).prune(control, source="cli")
    finally:
        control.store.dispose()
    for job_id in deleted:
        out.print(f"deleted {job_id}")
    out.print(f"{len(deleted)} expired share job{'' if len(deleted) == 1 else 's'} deleted")


@dictionary_app.command("propose")
@handles_errors
def propose(
    sample: Annotated[Path, typer.Argument(help="A CSV or Parquet file (only its first rows are read).")],
    program: Annotated[str, typer.Option("--program", help="The program whose records these are.")],
    target: Annotated[Path | None, typer.Option("--out", help="Write the proposal here (default: print it).")] = None,
) -> None:
    """Propose a data dictionary from column names and value patterns, for a person to review and confirm."""
    text = shares.propose_dictionary(sample, program)
    if target:
        target.write_text(text, encoding="utf-8")
        out.print(f"wrote {escape(str(target))}: review every field, then set status: confirmed")
    else:
        out.print(escape(text), end="")


@handles_errors
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the files.")] = Path("synthetic"),
    people: Annotated[int, typer.Option("--people", min=1, help="How many people.")] = 1000,
    programs: Annotated[str, typer.Option("--programs", help=f"Comma-separated: {', '.join(PROGRAMS)}.")] = ",".join(
        PROGRAMS
    ),
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same files).")] = 20261125,
    nickname_rate: rates.NicknameRate = rates.DEFAULT.nickname,
    typo_rate: rates.TypoRate = rates.DEFAULT.typo,
    move_rate: rates.MoveRate = rates.DEFAULT.move,
    missing_ssn_rate: rates.MissingSsnRate = rates.DEFAULT.missing_ssn,
    duplicate_rate: rates.DuplicateRate = rates.DEFAULT.duplicate,
    twins_rate: rates.TwinsRate = rates.DEFAULT.twins,
    household_rate: rates.HouseholdRate = rates.DEFAULT.household,
    shared_address_rate: rates.SharedAddressRate = rates.DEFAULT.shared_address,
    dob_transposed_rate: rates.DobTransposedRate = rates.DEFAULT.dob_transposed,
) -> None:
    """Generate synthetic client records per program, their dictionaries, and the linkage truth.

    Each phenomenon of real agency data (nicknames, typos, moves, missing SSNs, duplicates, twins, households,
    shared addresses, transposed birth dates) occurs at its rate; set a rate to 0 to leave it out. Exit 2 when a rate
    is not a share from 0 to 1.
    """
    chosen = rates.synth_rates(
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
    result = generate(out_dir, people, [p.strip() for p in programs.split(",") if p.strip()], seed, rates=chosen)
    for program, count in result.records.items():
        out.print(f"{program}: {count} records")
    out.print(f"wrote {len(result.files)} files to {escape(str(out_dir))} (truth.csv maps records to people)")
