"""Commands that generate documents: `agreement draft` and `consent-form`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from sharewise.cli.console import StatePack, acting_user, err, escape, handles_errors, out, reading_user, settings_for
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
    record: Annotated[
        bool, typer.Option("--record", help="Also register the draft in the agreement registry.")
    ] = False,
    user: Annotated[str | None, typer.Option("--as", help="Who records it (or SHAREWISE_USER).")] = None,
    request_id: Annotated[str | None, typer.Option("--request-id", help="The sharing request it implements.")] = None,
    consents: Annotated[
        list[str] | None, typer.Option("--consent", help="Consent ids the agreement relies on.")
    ] = None,
) -> None:
    """Draft an agreement with every clause the determination's obligations require.

    Refused (exit 6) unless the determination is permitted.
    """
    from sharewise.services import agreement_registry
    from sharewise.wiring import control_for

    settings = settings_for(state_pack)
    law = law_for(settings)
    control: list[Any] = []  # opened only when the request cites consents or the draft is recorded

    def checker(r: Any, on: Any) -> Any:
        control[:] = control or [control_for(settings)]
        return agreement_registry.consent_checker(control[0], law)(r, on)

    today = SystemClock().today()
    if not record:
        _report(
            documents_service.draft_agreement_file(
                law, request, parties, format, out_file, today, doc_type, clauses, consent_checker=checker
            )
        )
        return
    actor = acting_user(user)  # before anything is written: a draft that cannot be recorded is not left behind
    staged = out_file.with_name(f".{out_file.name}.unrecorded")
    try:
        result = documents_service.draft_agreement_file(
            law, request, parties, format, staged, today, doc_type, clauses, consent_checker=checker
        )
        control[:] = control or [control_for(settings)]
        agreement_id = agreement_registry.record_draft(
            control[0], law, actor, request, parties, staged, doc_type, request_id, consents
        )
        staged.replace(out_file)
    finally:
        staged.unlink(missing_ok=True)
    _report(dataclasses.replace(result, path=out_file))
    out.print(f"registered agreement {agreement_id} (draft)")


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


def _registry() -> Any:
    from sharewise.services import agreement_registry

    return agreement_registry


def _control() -> Any:
    from sharewise.wiring import control_for

    return control_for(settings_for(None))


AsUser = Annotated[str | None, typer.Option("--as", help="The user acting (or SHAREWISE_USER).")]


@agreement_app.command("submit")
@handles_errors
def agreement_submit(agreement_id: str, user: AsUser = None) -> None:
    """Send a draft agreement to review."""
    _registry().submit_for_review(_control(), acting_user(user), agreement_id)
    out.print(f"{agreement_id}: in review")


@agreement_app.command("sign")
@handles_errors
def agreement_sign(
    agreement_id: str,
    party: Annotated[str, typer.Option("--party", help="discloser or recipient")],
    user: AsUser = None,
) -> None:
    """Sign for one party (approvers); the agreement is signed once both parties have."""
    state = _registry().sign(_control(), acting_user(user), agreement_id, party)
    out.print(f"{agreement_id}: signed for the {party}; now {state}")


@agreement_app.command("activate")
@handles_errors
def agreement_activate(agreement_id: str, user: AsUser = None) -> None:
    """Put a signed agreement into effect."""
    _registry().activate(_control(), acting_user(user), agreement_id)
    out.print(f"{agreement_id}: active")


@agreement_app.command("amend")
@handles_errors
def agreement_amend(
    agreement_id: str,
    reason: Annotated[str, typer.Option("--reason")],
    term_end: Annotated[str | None, typer.Option("--term-end", help="New end of term (YYYY-MM-DD).")] = None,
    users_file: Annotated[
        Path | None, typer.Option("--authorized-users", help="YAML list of {role, name, organization}.")
    ] = None,
    user: AsUser = None,
) -> None:
    """Amend the end of term or the authorized users; the history keeps before and after."""
    import datetime as dt

    from sharewise.domain.errors import InvalidDataError, Problem

    end = None
    if term_end:
        try:
            end = dt.date.fromisoformat(term_end)
        except ValueError:
            raise InvalidDataError("invalid option", [Problem("--term-end", f"'{term_end}' is not a date")]) from None
    users = _registry().read_authorized_users(users_file) if users_file else None
    _registry().amend(_control(), acting_user(user), agreement_id, users, end, reason)
    out.print(f"{agreement_id}: amended")


@agreement_app.command("renew")
@handles_errors
def agreement_renew(agreement_id: str, user: AsUser = None) -> None:
    """Renew an active agreement within the renewals the law allows."""
    end = _registry().renew(_control(), acting_user(user), agreement_id)
    out.print(f"{agreement_id}: renewed until {end}")


@agreement_app.command("terminate")
@handles_errors
def agreement_terminate(
    agreement_id: str, reason: Annotated[str, typer.Option("--reason")], user: AsUser = None
) -> None:
    """Terminate an agreement."""
    _registry().terminate(_control(), acting_user(user), agreement_id, reason)
    out.print(f"{agreement_id}: terminated")


@agreement_app.command("show")
@handles_errors
def agreement_show(agreement_id: str, user: AsUser = None) -> None:
    """An agreement with its history."""
    import datetime as dt

    r = _registry().show(_control(), reading_user(user), agreement_id)
    out.print(f"[bold]{r.id}[/] {r.title} ({r.doc_type}) — {r.state_on(dt.date.today())}")
    out.print(
        f"  {r.discloser} -> {r.recipient}; term {r.effective} to {r.term_end}; renewals {r.renewals_used}/{r.max_renewals if r.max_renewals is not None else 'any'}"
    )
    out.print(
        f"  law {r.law_version}; authorized users: {len(r.authorized_users)}"
        + (f"; request {r.request_id}" if r.request_id else "")
    )
    for e in r.events:
        party = f" ({e.party})" if e.party else ""
        out.print(f"  {e.at:%Y-%m-%d %H:%M} {e.event}{party} by {e.actor} {e.details if e.details else ''}")


@agreement_app.command("list")
@handles_errors
def agreement_list(
    expiring: Annotated[
        str | None, typer.Option("--expiring", help="e.g. 60d: active agreements ending within 60 days.")
    ] = None,
    user: AsUser = None,
) -> None:
    """Registered agreements (those the acting user may see), or those expiring soon."""
    import datetime as dt

    from sharewise.domain.errors import InvalidDataError, Problem

    days = None
    if expiring:
        if not (expiring.endswith("d") and expiring[:-1].isdigit()):
            raise InvalidDataError("invalid option", [Problem("--expiring", "use a number of days such as 60d")])
        days = int(expiring[:-1])
        if days > _registry().MAX_EXPIRY_WINDOW_DAYS:
            raise InvalidDataError(
                "invalid option",
                [Problem("--expiring", f"at most {_registry().MAX_EXPIRY_WINDOW_DAYS}d (ten years)")],
            )
    records = _registry().listing(_control(), reading_user(user), days)
    for r in records:
        out.print(f"{r.id:16} {r.state_on(dt.date.today()):11} ends {r.term_end}  {r.title}")
    if not records:
        out.print("no agreements")
