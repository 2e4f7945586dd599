"""The `sharewise audit` commands: verify, checkpoint, export, log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sharewise.cli.console import acting_user, escape, handles_errors, out, reading_user
from sharewise.services import audit as audit_service
from sharewise.wiring import Settings, control_for

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


@app.command("verify")
@handles_errors
def verify(
    checkpoints: Annotated[
        list[Path] | None, typer.Option("--checkpoints", help="Checkpoint or export files kept outside the database.")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="PEM public key that signed the checkpoints.")
    ] = None,
) -> None:
    """Recompute the chain; report any modification, deletion, reordering, insertion or truncation, and where.

    Exit codes: 0 intact, 8 tampering found.
    """
    report = audit_service.verify(control_for(Settings.from_env()), checkpoints, public_key)
    for finding in report.findings:
        where = f"record {finding.seq}" if finding.seq is not None else "chain"
        out.print(f"[red]{finding.kind}[/] at {where}: {escape(finding.message)}")
    status = "[green]intact[/]" if report.ok else "[red]TAMPERED[/]"
    out.print(f"{status}: {report.records} records, {report.checkpoints} signed checkpoints checked")
    if not report.ok:
        raise typer.Exit(8)


@app.command("checkpoint")
@handles_errors
def checkpoint(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Append the signed checkpoint to this file (keep it elsewhere).")
    ] = None,
    user: Annotated[
        str | None, typer.Option("--as", help="An auditor, security officer or administrator (or SHAREWISE_USER).")
    ] = None,
) -> None:
    """Sign the chain's current head now."""
    cp = audit_service.checkpoint(control_for(Settings.from_env()), out_file, reading_user(user))
    if cp is None:
        out.print("nothing to sign: the chain is empty")
        return
    out.print(f"checkpoint at record {cp.seq}: {cp.hash[:16]}... signed by key {cp.key_id}")


@app.command("export")
@handles_errors
def export(
    target: Annotated[Path, typer.Argument(help="The JSON-lines file to write.")],
    user: Annotated[str | None, typer.Option("--as", help="An auditor (or SHAREWISE_USER).")] = None,
) -> None:
    """Export every record and checkpoint, with the public key beside it (.pub.pem). Auditors only."""
    count = audit_service.export(control_for(Settings.from_env()), target, acting_user(user))
    out.print(f"exported {count} records to {target}")


@app.command("log")
@handles_errors
def log(
    subject_type: Annotated[str | None, typer.Option("--type", help="Only records about this kind of subject.")] = None,
    subject_id: Annotated[str | None, typer.Option("--id", help="Only records about this subject id.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 50,
    user: Annotated[str | None, typer.Option("--as", help="An auditor (or SHAREWISE_USER).")] = None,
) -> None:
    """The newest audit records. Auditors only."""
    for r in audit_service.log(control_for(Settings.from_env()), acting_user(user), subject_type, subject_id, limit):
        out.print(
            f"{r['seq']:>6} {r['at']} {r['action']:24} {r['actor']:16} {r['subject_type']}:{escape(r['subject_id'])} "
            f"{r['outcome']} [dim]{escape(r['details'])}[/]"
        )
