"""Commands that generate documents: `agreement draft` and `consent-form`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sharewise.cli.console import StatePack, err, escape, handles_errors, out, settings_for
from sharewise.services import documents as documents_service
from sharewise.wiring import SystemClock, law_for

agreement_app = typer.Typer(
    help="Sharing agreements drafted from a determination and the parties.", no_args_is_help=True
)


def _report(result: documents_service.Generated) -> None:
    for warning in result.warnings:
        err.print(f"[yellow]warning[/]: {escape(warning)}")
    out.print(f"wrote {escape(result.title)} ({result.doc_type}) to {escape(str(result.path))}")


@agreement_app.command("draft")
@handles_errors
def draft(
    request: Annotated[Path, typer.Argument(help="The sharing request (YAML or JSON).")],
    parties: Annotated[Path, typer.Option("--parties", help="The parties file (see examples/parties/).")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the agreement.")],
    doc_type: Annotated[
        str | None,
        typer.Option(
            "--type", help="Agreement type, e.g. data_sharing_agreement (default: the one the determination lists)."
        ),
    ] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="docx, pdf, md or html.")] = "docx",
    clauses: Annotated[
        Path | None,
        typer.Option(
            "--clauses", help="A directory of clause overrides layered on the built-in library.", file_okay=False
        ),
    ] = None,
    state_pack: StatePack = None,
) -> None:
    """Draft an agreement with every clause the determination's obligations require.

    Refused (exit 6) unless the determination is permitted.
    """
    law = law_for(settings_for(state_pack))
    result = documents_service.draft_agreement_file(
        law, request, parties, format, out_file, SystemClock().today(), doc_type=doc_type, clauses=clauses
    )
    _report(result)


@handles_errors
def consent_form(
    request: Annotated[Path, typer.Argument(help="The sharing request (YAML or JSON).")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the form.")],
    format: Annotated[str, typer.Option("--format", "-f", help="docx, pdf or html.")] = "docx",
    state_pack: StatePack = None,
) -> None:
    """Generate a universal consent form with every element each governing law requires."""
    law = law_for(settings_for(state_pack))
    result = documents_service.consent_form_file(law, request, format, out_file, SystemClock().today())
    _report(result)
