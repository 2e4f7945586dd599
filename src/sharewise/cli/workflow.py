"""The `sharewise agency`, `user` and `request` commands: the review workflow from the terminal."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from sharewise.cli.console import acting_user, escape, handles_errors, out, reading_user, settings_for
from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.policy.yamlfile import YamlProblem, read_yaml
from sharewise.services import workflow as service
from sharewise.wiring import control_for, law_for
from sharewise.workflow.store import SharingRequestRecord

agency_app = typer.Typer(help="Agencies taking part in sharing.", no_args_is_help=True)
user_app = typer.Typer(help="People and their roles.", no_args_is_help=True)
request_app = typer.Typer(
    help="Sharing requests through program, legal and security review to approval.", no_args_is_help=True
)

As = Annotated[str | None, typer.Option("--as", help="The user acting (or SHAREWISE_USER).")]


def _control() -> Any:
    return control_for(settings_for(None))


@agency_app.command("add")
@handles_errors
def agency_add(agency_id: str, name: str, user: As = None) -> None:
    """Register an agency (administrators; the very first needs no user)."""
    service.add_agency(_control(), agency_id, name, user or os.environ.get("SHAREWISE_USER"))
    out.print(f"agency {agency_id} added")


@user_app.command("add")
@handles_errors
def user_add(
    user_id: str,
    name: Annotated[str, typer.Option("--name")],
    agency: Annotated[str, typer.Option("--agency")],
    roles: Annotated[
        str,
        typer.Option(
            "--roles",
            help="Comma-separated: requester, program_reviewer, legal_reviewer, security_officer, approver, data_steward, auditor, administrator",
        ),
    ],
    user: As = None,
) -> None:
    """Register a person with roles (administrators; the first user bootstraps the system)."""
    role_set = {r.strip() for r in roles.split(",") if r.strip()}
    service.add_user(_control(), user_id, name, agency, role_set, user or os.environ.get("SHAREWISE_USER"))
    out.print(f"user {user_id} added to {agency} as {', '.join(sorted(role_set))}")


def _print(record: SharingRequestRecord) -> None:
    out.print(f"[bold]{record.id}[/] {escape(record.title)} — [bold]{record.state}[/]")
    out.print(
        f"  agency {record.agency_id}"
        + (f" -> {record.recipient_agency_id}" if record.recipient_agency_id else "")
        + f"; created by {record.created_by} on {record.created_at.date()}"
    )
    out.print(f"  use case: {escape(record.use_case)}")
    if record.vision:
        out.print(f"  vision: {escape(record.vision)}")
    r = record.request
    out.print(
        f"  disclosure: {r['source']['program']} -> {r['recipient']['kind']} for {r['purpose']}: {', '.join(r['data'])}"
    )
    if record.determination:
        out.print(f"  determination: {record.determination['outcome']} ({record.determination['law_version']})")
    if record.agreement_id:
        out.print(f"  agreement: {record.agreement_id}")
    for s in record.steps:
        comment = f" — {escape(s.comments)}" if s.comments else ""
        out.print(f"  {s.at:%Y-%m-%d %H:%M} {s.step:10} {s.decision:10} {s.actor} ({s.agency_id}){comment}")


@request_app.command("create")
@handles_errors
def create(
    proposal: Annotated[Path, typer.Argument(help="YAML: title, use_case, vision, recipient_agency, request.")],
    user: As = None,
) -> None:
    """Draft a sharing request from a proposal file."""
    try:
        data, _ = read_yaml(proposal)
    except YamlProblem as exc:
        raise InvalidDataError("malformed proposal", exc.problems) from exc
    if not isinstance(data, dict):
        raise InvalidDataError("malformed proposal", [Problem(str(proposal), "must be a mapping")])
    missing = [k for k in ("title", "use_case", "request") if k not in data]
    if missing:
        raise InvalidDataError(
            "incomplete proposal", [Problem(f"{proposal}: {k}", "required field is missing") for k in missing]
        )
    settings = settings_for(None)
    request_id = service.create_request(
        control_for(settings),
        law_for(settings),
        acting_user(user),
        str(data["title"]),
        str(data["use_case"]),
        data["request"],
        data.get("vision"),
        data.get("recipient_agency"),
    )
    out.print(f"created sharing request {request_id} (draft)")


@request_app.command("revise")
@handles_errors
def revise(
    request_id: str,
    request: Annotated[
        Path | None, typer.Option("--request", help="YAML: the disclosure in the contract's terms, replacing it.")
    ] = None,
    use_case: Annotated[str | None, typer.Option("--use-case", help="The use case, replacing it.")] = None,
    user: As = None,
) -> None:
    """Change a draft (for example one returned with comments); its history stays. Then submit it again."""
    raw = None
    if request is not None:
        try:
            raw, _ = read_yaml(request)
        except YamlProblem as exc:
            raise InvalidDataError("malformed request", exc.problems) from exc
    if raw is None and use_case is None:
        raise InvalidDataError("nothing to revise", [Problem("--request/--use-case", "give at least one")])
    settings = settings_for(None)
    service.revise(control_for(settings), law_for(settings), acting_user(user), request_id, raw, use_case)
    out.print(f"{request_id} revised; submit it again when ready")


@request_app.command("submit")
@handles_errors
def submit(request_id: str, user: As = None) -> None:
    """Send a draft to program review."""
    service.submit(_control(), acting_user(user), request_id)
    out.print(f"{request_id} submitted: program review")


@request_app.command("review")
@handles_errors
def review(
    request_id: str,
    decision: Annotated[str, typer.Option("--decision", help="approve, return or deny")],
    comments: Annotated[str | None, typer.Option("--comments")] = None,
    user: As = None,
) -> None:
    """Record the program, legal or security review that is due (the legal review records the determination)."""
    settings = settings_for(None)
    state = service.review(control_for(settings), law_for(settings), acting_user(user), request_id, decision, comments)
    out.print(f"{request_id}: {decision} -> {state}")


@request_app.command("approve")
@handles_errors
def approve(
    request_id: str,
    decision: Annotated[str, typer.Option("--decision")] = "approve",
    comments: Annotated[str | None, typer.Option("--comments")] = None,
    user: As = None,
) -> None:
    """Leadership approval for your agency (every agency involved must approve)."""
    state = service.approve(_control(), acting_user(user), request_id, decision, comments)
    out.print(f"{request_id}: {decision} -> {state}")


@request_app.command("execute")
@handles_errors
def execute(
    request_id: str,
    agreement: Annotated[str, typer.Option("--agreement", help="The signed agreement's id.")],
    user: As = None,
) -> None:
    """Record the signed agreement: the request becomes active."""
    service.execute_agreement(_control(), acting_user(user), request_id, agreement)
    out.print(f"{request_id}: active under agreement {agreement}")


@request_app.command("end")
@handles_errors
def end(
    request_id: str,
    how: Annotated[str, typer.Option("--how", help="terminated or expired")],
    comments: Annotated[str, typer.Option("--comments")],
    user: As = None,
) -> None:
    """Terminate or expire an active request."""
    service.end(_control(), acting_user(user), request_id, how, comments)
    out.print(f"{request_id}: {how}")


@request_app.command("show")
@handles_errors
def show(request_id: str, user: As = None) -> None:
    """A request with its timeline of reviews and comments."""
    _print(service.show(_control(), acting_user(user), request_id))


@request_app.command("list")
@handles_errors
def list_(
    queue: Annotated[bool, typer.Option("--queue", help="Only what waits for you.")] = False, user: As = None
) -> None:
    """Requests of your agency (or your queue)."""
    who = acting_user(user)
    records = service.queue(_control(), who) if queue else service.all_requests(_control(), who)
    for r in records:
        out.print(f"{r.id:16} {r.state:18} {escape(r.title)}")
    if not records:
        out.print("nothing here")


initiative_app = typer.Typer(
    help="Initiatives: vision, sponsors, stakeholders and the toolkit's steps.", no_args_is_help=True
)


@initiative_app.command("create")
@handles_errors
def initiative_create(
    proposal: Annotated[Path, typer.Argument(help="YAML: name, vision, agencies, sponsors, stakeholders.")],
    user: As = None,
) -> None:
    """Create an initiative; its ten toolkit steps start as not started."""
    from sharewise.services import initiatives

    try:
        data, _ = read_yaml(proposal)
    except YamlProblem as exc:
        raise InvalidDataError("malformed initiative file", exc.problems) from exc
    initiative_id = initiatives.create(_control(), acting_user(user), initiatives.parse_proposal(data, str(proposal)))
    out.print(f"created initiative {initiative_id}")


@initiative_app.command("show")
@handles_errors
def initiative_show(initiative_id: str, user: As = None) -> None:
    """The initiative with its stakeholders and step checklist."""
    from sharewise.services import initiatives

    i = initiatives.get(_control(), reading_user(user), initiative_id)
    out.print(f"[bold]{i.id}[/] {escape(i.name)}")
    out.print(f"  vision: {escape(i.vision)}")
    out.print(f"  agencies: {', '.join(i.agencies)}; sponsors: {', '.join(escape(s['name']) for s in i.sponsors)}")
    for s in i.stakeholders:
        out.print(
            f"  stakeholder ({s.group}): {escape(s.name)}" + (f", {escape(s.organization)}" if s.organization else "")
        )
    for n, st in enumerate(i.steps, 1):
        mark = {"done": "[green]done[/]", "in_progress": "[cyan]in progress[/]", "blocked": "[red]blocked[/]"}.get(
            st.status, "not started"
        )
        extra = "".join([f"; owner {escape(st.owner)}" if st.owner else "", f"; due {st.due}" if st.due else ""])
        out.print(f"  {n:2}. {st.title} — {mark}{extra}")


@initiative_app.command("list")
@handles_errors
def initiative_list(user: As = None) -> None:
    """The initiatives of the acting user's agency (auditors and administrators: all)."""
    from sharewise.services import initiatives

    for initiative_id, name in initiatives.list_all(_control(), reading_user(user)):
        out.print(f"{initiative_id:14} {escape(name)}")


@initiative_app.command("step")
@handles_errors
def initiative_step(
    initiative_id: str,
    step: str,
    owner: Annotated[str | None, typer.Option("--owner")] = None,
    due: Annotated[str | None, typer.Option("--due", help="YYYY-MM-DD")] = None,
    status: Annotated[str | None, typer.Option("--status", help="not_started, in_progress, blocked, done")] = None,
    user: As = None,
) -> None:
    """Assign or move one of the toolkit's steps."""
    import datetime as dt

    from sharewise.services import initiatives

    try:
        due_date = dt.date.fromisoformat(due) if due else None
    except ValueError:
        raise InvalidDataError("invalid option", [Problem("--due", f"'{due}' is not a date")]) from None
    initiatives.update_step(_control(), acting_user(user), initiative_id, step, owner, due_date, status)
    out.print(f"{initiative_id}: {step} updated")
