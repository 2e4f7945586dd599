"""The `sharewise consent` commands: add, show, list, find, revoke, validate, FHIR import/export."""

from __future__ import annotations

import datetime as dt
import getpass
import os
from pathlib import Path
from typing import Annotated

import typer

from sharewise.cli.console import StatePack, err, escape, handles_errors, out, settings_for
from sharewise.domain.consent import ConsentRecord
from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.policy.request_parse import parse_request
from sharewise.services import consents as service
from sharewise.wiring import SystemClock, control_for, law_for

app = typer.Typer(help="The consent registry: record, check, find and revoke consents.", no_args_is_help=True)

Actor = Annotated[
    str, typer.Option("--actor", "--as", help="Who is acting, recorded in the audit trail (or SHAREWISE_USER).")
]


def _actor(actor: str | None) -> str:
    """The acting user: --as/--actor, else SHAREWISE_USER (as every other command), else the login name."""
    return actor or os.environ.get("SHAREWISE_USER") or getpass.getuser()


def _describe(consent: ConsentRecord) -> None:
    status = (
        "revoked"
        if consent.revocation
        else ("in force" if consent.in_force(SystemClock().today()) else "not in force today")
    )
    out.print(f"[bold]{consent.id}[/] ({status})")
    out.print(
        f"  disclosers: {', '.join(d.program + (f' ({escape(d.agency)})' if d.agency else '') for d in consent.disclosers)}"
    )
    out.print(
        f"  recipients: {', '.join(escape(r.name or r.kind) + (escape(f' [{r.program}]') if r.program else '') for r in consent.recipients)}"
    )
    out.print(f"  data: {', '.join(consent.data)}; purposes: {', '.join(consent.purposes)}")
    exp = consent.expiration
    out.print(f"  effective {consent.effective}; expires {exp.date or exp.event or exp.condition or 'not stated'}")
    out.print(
        f"  signed: {', '.join(f'{s.signer} {escape(s.name)} on {s.signed_on} ({s.method})' for s in consent.signatures)}"
    )
    out.print(f"  statements: {', '.join(consent.statements) or 'none'}")
    if consent.revocation:
        out.print(f"  revoked on {consent.revocation.revoked_on} ({consent.revocation.method})")
    if consent.person is not None:
        p = consent.person
        out.print(f"  person: {escape(p.given_name)} {escape(p.family_name)}, born {p.date_of_birth}")


@app.command("validate")
@handles_errors
def validate(
    consent_file: Annotated[Path, typer.Argument(help="A consent (YAML or JSON).")], state_pack: StatePack = None
) -> None:
    """Check a consent against every governing law's required elements (nothing is stored).

    Exit codes: 0 valid, 1 elements missing, 2 malformed file.
    """
    law = law_for(settings_for(state_pack))
    consent = service.read_consent(consent_file)
    problems = service.validate(law, consent, str(consent_file))
    requirements = service.requirements_for(law, consent)
    out.print(f"checked against: {', '.join(r.rule for r in requirements) or 'no consent rule governs this scope'}")
    for p in problems:
        out.print(f"[red]missing[/] {escape(str(p))}")
    if problems:
        raise typer.Exit(1)
    out.print("[green]valid[/]: every required element is present")


@app.command("add")
@handles_errors
def add(
    consent_file: Annotated[Path, typer.Argument(help="A consent (YAML or JSON).")],
    actor: Actor = "",
    state_pack: StatePack = None,
) -> None:
    """Validate and record a consent (refused, with each missing element, if it is not valid).

    A consent that repeats one in force (same person, programs, recipients, data, purposes and dates) is
    recorded with a warning naming it: a person may sign again, but one signature entered twice is a mistake.
    """
    settings = settings_for(state_pack)
    consent = service.read_consent(consent_file)
    recorded = service.record(control_for(settings), law_for(settings), consent, _actor(actor), str(consent_file))
    _report(recorded, "recorded")


def _report(recorded: service.Recorded, done: str) -> None:
    """The new id last (scripts read it there), after a warning for each consent in force it repeats."""
    for other in recorded.repeats:
        err.print(
            f"[yellow]warning[/]: consent {other} is in force for the same person, programs, recipients, data, "
            "purposes and dates; recorded all the same, as a person may sign again: if one signature was "
            "entered twice, revoke one"
        )
    out.print(f"{done} consent {recorded.id}")


@app.command("show")
@handles_errors
def show(
    consent_id: str,
    reveal: Annotated[bool, typer.Option("--reveal", help="Show the person's identifiers (audited).")] = False,
    actor: Actor = "",
) -> None:
    """Show one consent; identifiers only with --reveal."""
    _describe(service.show(control_for(settings_for(None)), consent_id, _actor(actor), reveal))


@app.command("list")
@handles_errors
def list_(
    agency: Annotated[str | None, typer.Option("--agency", help="Only the consents recorded for this agency.")] = None,
    actor: Actor = "",
) -> None:
    """Recent consents (no identifiers); says so when none matched (exit 0), and exits 2 for an unknown agency."""
    found = service.list_consents(control_for(settings_for(None)), agency, actor=_actor(actor))
    if not found:
        out.print(f"no consents recorded for agency '{escape(agency)}'" if agency else "no consents to list")
    for consent in found:
        status = (
            "revoked"
            if consent.revocation
            else ("in force" if consent.in_force(SystemClock().today()) else "not in force")
        )
        out.print(
            f"{consent.id:20} {status:14} {','.join(d.program for d in consent.disclosers):24} -> {','.join(r.kind for r in consent.recipients)}"
        )


@app.command("revoke")
@handles_errors
def revoke(
    consent_id: str,
    method: Annotated[str, typer.Option("--method", help="written, electronic or verbal")] = "written",
    by: Annotated[str | None, typer.Option("--by", help="Who revoked it (the person or representative).")] = None,
    on: Annotated[str | None, typer.Option("--on", help="Date of revocation (default today).")] = None,
    actor: Actor = "",
) -> None:
    """Record the revocation of a consent."""
    if method not in ("written", "electronic", "verbal"):
        raise InvalidDataError("invalid option", [Problem("--method", "use written, electronic or verbal")])
    if not by:
        raise InvalidDataError("invalid option", [Problem("--by", "say who revoked the consent")])
    try:
        date = dt.date.fromisoformat(on) if on else SystemClock().today()
    except ValueError:
        raise InvalidDataError("invalid option", [Problem("--on", f"'{on}' is not a date")]) from None
    revocation = service.revocation(date, method, by, {"revoked_on": "--on", "method": "--method", "by": "--by"})
    updated = service.revoke(control_for(settings_for(None)), consent_id, revocation, _actor(actor))
    out.print(f"consent {updated.id} revoked on {date}")


@app.command("find")
@handles_errors
def find(
    person_file: Annotated[Path, typer.Option("--person", help="YAML with given_name, family_name, date_of_birth.")],
    source: Annotated[str, typer.Option("--source", help="The program that would disclose.")],
    recipient_kind: Annotated[str, typer.Option("--recipient-kind")],
    purpose: Annotated[str, typer.Option("--purpose")],
    data: Annotated[str, typer.Option("--data", help="Comma-separated data categories.")],
    recipient_program: Annotated[str | None, typer.Option("--recipient-program")] = None,
    on: Annotated[str | None, typer.Option("--on", help="Date of the disclosure (default today).")] = None,
    actor: Actor = "",
    state_pack: StatePack = None,
) -> None:
    """Does a consent in force cover this person, recipient, purpose and data? (Reveals no other consent.)"""
    settings = settings_for(state_pack)
    law = law_for(settings)
    person = service.read_person(person_file)
    raw = {
        "source": {"program": source},
        "recipient": {"kind": recipient_kind, **({"program": recipient_program} if recipient_program else {})},
        "purpose": purpose,
        "data": [d.strip() for d in data.split(",") if d.strip()],
    }
    request = parse_request(raw, law.vocabulary, label="options")
    try:
        date = dt.date.fromisoformat(on) if on else SystemClock().today()
    except ValueError:
        raise InvalidDataError("invalid option", [Problem("--on", f"'{on}' is not a date")]) from None
    result = service.find(control_for(settings), law, person, request, date, _actor(actor))
    if result.covered:
        out.print(f"[green]covered[/] by consent {result.consent_id}")
    else:
        out.print("[yellow]not covered[/]: no consent in force covers this disclosure")
        raise typer.Exit(1)


@app.command("import-fhir")
@handles_errors
def import_fhir(path: Path, actor: Actor = "", state_pack: StatePack = None) -> None:
    """Import an HL7 FHIR R4 Consent resource (JSON), validated like any other consent."""
    settings = settings_for(state_pack)
    _report(service.import_fhir(control_for(settings), law_for(settings), path, _actor(actor)), "imported")


@app.command("export-fhir")
@handles_errors
def export_fhir(consent_id: str, out_file: Annotated[Path, typer.Option("--out")], actor: Actor = "") -> None:
    """Export a consent as an HL7 FHIR R4 Consent resource (JSON; includes identifiers, audited).

    The file is written whole or not at all, readable by its owner only (mode 600).
    """
    service.export_fhir_file(control_for(settings_for(None)), consent_id, _actor(actor), out_file)
    out.print(f"wrote {escape(str(out_file))}")
