"""The `sharewise accounting` command: one person's accounting of disclosures."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path
from typing import Annotated

import typer

from sharewise.cli.console import escape, handles_errors, out, settings_for
from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.services import accounting as service
from sharewise.services.consents import read_person
from sharewise.wiring import control_for, law_for


@handles_errors
def accounting(
    person_file: Annotated[Path, typer.Option("--person", help="YAML with given_name, family_name, date_of_birth.")],
    since: Annotated[str | None, typer.Option("--since", help="First date (default: six years back).")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text, csv, pdf or fhir")] = "text",
    out_file: Annotated[Path | None, typer.Option("--out", help="File to write (required for pdf).")] = None,
    actor: Annotated[str, typer.Option("--actor")] = "",
) -> None:
    """Every disclosure of one person's records that HIPAA, Part 2, FERPA or the Privacy Act requires listing."""
    if format not in ("text", "csv", "pdf", "fhir"):
        raise InvalidDataError("invalid option", [Problem("--format", "use text, csv, pdf or fhir")])
    if format == "pdf" and out_file is None:
        raise InvalidDataError("invalid option", [Problem("--out", "a PDF needs an output file")])
    try:
        start = dt.date.fromisoformat(since) if since else None
    except ValueError:
        raise InvalidDataError("invalid option", [Problem("--since", f"'{since}' is not a date")]) from None
    settings = settings_for(None)
    person = read_person(person_file)
    control = control_for(settings)
    acc = service.accounting_for(control, law_for(settings), person, start, actor or getpass.getuser())
    if format == "csv":
        text = service.to_csv(acc)
    elif format == "fhir":
        text = json.dumps(service.to_fhir_audit_events(acc, "Patient/requester"), indent=2)
    elif format == "pdf":
        assert out_file is not None
        service.to_pdf(acc, f"{person.given_name} {person.family_name}", out_file)
        out.print(f"wrote {out_file} ({len(acc.entries)} disclosures)")
        return
    else:
        lines = [f"Accounting of disclosures since {acc.since.isoformat()}: {len(acc.entries)} listed"]
        for e in acc.entries:
            lines.append(
                f"  {e.at.date()}  {escape(e.recipient)}: {e.information}; purpose {e.purpose}; basis {'; '.join(e.citations)} [{', '.join(e.required_by)}]"
            )
        for citation, count in acc.exempt.items():
            lines.append(f"  ({count} exempt under {citation})")
        text = "\n".join(lines) + "\n"
    if out_file is not None:
        tmp = out_file.with_name(out_file.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out_file)
        out.print(f"wrote {out_file}")
    else:
        out.print(text, end="")
