"""The `sharewise security` commands: categorize, spec, export, assess, five-safes."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from sharewise.cli.console import StatePack, acting_user, escape, handles_errors, out, reading_user, settings_for
from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.domain.events import AuditSink
from sharewise.security.assess import questionnaire
from sharewise.security.five_safes import render_markdown as render_five_safes
from sharewise.security.keys import FileKeyProvider
from sharewise.security.safeguards import SafeguardsSpec, render_markdown, security_clause
from sharewise.services import security as service
from sharewise.services.determinations import read_request
from sharewise.wiring import SystemClock, UtcClock, control_for, law_for

app = typer.Typer(
    help="Security frameworks: categorize a share, specify, export and assess its safeguards.", no_args_is_help=True
)

RequestFile = Annotated[Path, typer.Argument(help="A sharing request (YAML or JSON, the determination contract).")]
Records = Annotated[int | None, typer.Option("--records", help="How many people's records the share holds.")]
Facts = Annotated[list[str] | None, typer.Option("--fact", help="A security fact, NAME=true|false (repeatable).")]
Changes = Annotated[
    list[str] | None,
    typer.Option("--set", help="Reviewer change, OBJECTIVE=LEVEL (repeatable); needs --justification."),
]
Justification = Annotated[
    str | None, typer.Option("--justification", help="Why the reviewer changes the categorization.")
]
Reviewer = Annotated[str | None, typer.Option("--reviewer", help="The reviewer (recorded; default: the login name).")]
AsOf = Annotated[dt.datetime | None, typer.Option("--as-of", formats=["%Y-%m-%d"], help="Date to apply the law as of.")]
Output = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of the screen.")]


def _spec(
    request_file: Path,
    state_pack: Path | None,
    records: int | None,
    facts: list[str] | None,
    changes: list[str] | None,
    justification: str | None,
    reviewer: str | None,
    as_of: dt.datetime | None,
) -> tuple[Any, Any, SafeguardsSpec]:
    settings = settings_for(state_pack)
    law = law_for(settings)
    request = read_request(request_file, law)
    sec = service.security_law(law)
    parsed_facts = service.parse_facts(facts or [], sec.overlays)
    parsed_changes = service.parse_changes(changes or [])
    sink: AuditSink | None = control_for(settings).sink if parsed_changes else None
    spec = service.specify(
        law,
        request,
        as_of.date() if as_of else SystemClock().today(),
        records=records,
        facts=parsed_facts,
        changes=parsed_changes,
        justification=justification,
        reviewer=reviewer or getpass.getuser(),
        sink=sink,
    )
    return law, request, spec


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        out.print(escape(text), end="" if text.endswith("\n") else "\n")
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidDataError("cannot write output", [Problem(str(output), exc.strerror or "write failed")]) from exc
    out.print(f"wrote {escape(str(output))}")


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


@app.command("categorize")
@handles_errors
def categorize(
    request_file: RequestFile,
    records: Records = None,
    fact: Facts = None,
    set_: Changes = None,
    justification: Justification = None,
    reviewer: Reviewer = None,
    as_of: AsOf = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state_pack: StatePack = None,
) -> None:
    """FIPS 199 categorization of a share, with its reasons, the overlays it triggers and the baseline."""
    _, _, spec = _spec(request_file, state_pack, records, fact, set_, justification, reviewer, as_of)
    cat = spec.categorization
    if as_json:
        data = {
            "categorization": cat.model_dump(mode="json"),
            "overall": cat.overall,
            "baselines": list(spec.baselines),
            "overlays": [o.model_dump(mode="json") for o in spec.overlays],
        }
        _emit(_json(data), None)
        return
    out.print(f"[bold]{escape(cat.summary())}[/]  overall {cat.overall}")
    for reason in cat.reasons:
        out.print(
            f"  {reason.objective} {reason.level}  ({reason.source}: {escape(reason.subject)}) {escape(reason.explanation)}"
        )
    out.print(f"baselines: {' + '.join(spec.baselines)}  ({escape(cat.privacy_reason)})")
    for overlay in spec.overlays:
        if overlay.status in ("applies", "undetermined"):
            out.print(f"overlay {overlay.overlay}: {overlay.status} ({escape('; '.join(overlay.citations))})")
    for path, ask in spec.questions:
        out.print(f"[yellow]question[/] {path}: {escape(ask)}")


@app.command("spec")
@handles_errors
def spec(
    request_file: RequestFile,
    records: Records = None,
    fact: Facts = None,
    set_: Changes = None,
    justification: Justification = None,
    reviewer: Reviewer = None,
    as_of: AsOf = None,
    fmt: Annotated[
        str, typer.Option("--format", help="markdown, json or clause (the agreement's security clause).")
    ] = "markdown",
    output: Output = None,
    state_pack: StatePack = None,
) -> None:
    """The safeguards specification: every control with the recipient's duty and the evidence that shows it."""
    _, _, specification = _spec(request_file, state_pack, records, fact, set_, justification, reviewer, as_of)
    if fmt == "json":
        _emit(_json(specification.model_dump(mode="json")), output)
    elif fmt == "clause":
        _emit(security_clause(specification), output)
    elif fmt == "markdown":
        _emit(render_markdown(specification), output)
    else:
        raise InvalidDataError("unknown format", [Problem("--format", "use markdown, json or clause")])


@app.command("export")
@handles_errors
def export(
    request_file: RequestFile,
    kind: Annotated[str, typer.Option("--kind", help="profile or component-definition.")] = "profile",
    records: Records = None,
    fact: Facts = None,
    set_: Changes = None,
    justification: Justification = None,
    reviewer: Reviewer = None,
    as_of: AsOf = None,
    output: Output = None,
    state_pack: StatePack = None,
) -> None:
    """The specification as OSCAL JSON (a profile of the NIST catalog, or a component definition)."""
    _, _, specification = _spec(request_file, state_pack, records, fact, set_, justification, reviewer, as_of)
    _emit(_json(service.export(specification, kind, UtcClock().now())), output)


@app.command("assess")
@handles_errors
def assess(
    request_file: RequestFile,
    answers: Annotated[Path | None, typer.Option("--answers", help="The recipient's completed questionnaire.")] = None,
    recipient: Annotated[str, typer.Option("--recipient", help="Recipient name for a blank questionnaire.")] = "",
    sign: Annotated[
        bool, typer.Option("--sign", help="Sign as the --as user with their key from the key directory.")
    ] = False,
    sign_key: Annotated[
        Path | None, typer.Option("--sign-key", help="Sign with an Ed25519 private key file (PEM, mode 600).")
    ] = None,
    user: Annotated[str | None, typer.Option("--as", help="The security officer signing (or SHAREWISE_USER).")] = None,
    decision: Annotated[
        str, typer.Option("--decision", help="accepted, accepted_with_plan or rejected.")
    ] = "accepted_with_plan",
    records: Records = None,
    fact: Facts = None,
    reviewer: Reviewer = None,
    as_of: AsOf = None,
    output: Output = None,
    state_pack: StatePack = None,
) -> None:
    """Without --answers: print a blank questionnaire. With it: gaps and plan of action; with --sign or --sign-key: signed.

    Exit codes: 0 no gaps (or signed), 1 gaps remain (unsigned), 2 incomplete answers.
    """
    _, _, specification = _spec(request_file, state_pack, records, fact, None, None, reviewer, as_of)
    if answers is None:
        _emit(
            yaml.safe_dump(questionnaire(specification, recipient or "RECIPIENT"), sort_keys=False, allow_unicode=True),
            output,
        )
        return
    today = as_of.date() if as_of else SystemClock().today()
    result = service.assess(specification, answers, today)
    if sign and sign_key is not None:
        raise InvalidDataError("choose one way to sign", [Problem("--sign/--sign-key", "give one, not both")])
    if sign:
        settings = settings_for(state_pack)
        signed = service.sign_assessment_as(
            control_for(settings), FileKeyProvider(settings.keys), reading_user(user), result, decision
        )
        _emit(_json(signed.model_dump(mode="json")), output)
        return
    if sign_key is not None:
        sink = control_for(settings_for(state_pack)).sink
        signed = service.sign_assessment(
            result, sign_key, reviewer or getpass.getuser(), decision, UtcClock().now(), sink
        )
        _emit(_json(signed.model_dump(mode="json")), output)
        return
    if output is not None:
        _emit(_json(result.model_dump(mode="json")), output)
    else:
        out.print(f"{result.answered} answered, {result.implemented} implemented, {len(result.gaps)} gaps")
        for item in result.plan:
            out.print(
                f"  {item.id} {escape(item.weakness)} -> {escape(item.action)} by {item.due} ({item.proposed_by})"
            )
    if result.gaps:
        raise typer.Exit(1)


@app.command("reviewer-key")
@handles_errors
def reviewer_key(
    user: Annotated[str | None, typer.Option("--as", help="The reviewer (or SHAREWISE_USER).")] = None,
    rotate: Annotated[bool, typer.Option("--rotate", help="Start a new key; older signatures still verify.")] = False,
    state_pack: StatePack = None,
) -> None:
    """Print the reviewer's public key (PEM), for those who verify their signed assessments."""
    settings = settings_for(state_pack)
    out.print(
        service.reviewer_public_key(FileKeyProvider(settings.keys), acting_user(user), rotate).decode(),
        end="",
        highlight=False,
    )


@app.command("five-safes")
@handles_errors
def five_safes(
    request_file: RequestFile,
    answers: Annotated[Path | None, typer.Option("--answers", help="The recipient's completed questionnaire.")] = None,
    users: Annotated[list[str] | None, typer.Option("--user", help="An authorized user (repeatable).")] = None,
    records: Records = None,
    fact: Facts = None,
    as_of: AsOf = None,
    output: Output = None,
    state_pack: StatePack = None,
) -> None:
    """The one-page Five Safes summary: safe project, people, setting, data and outputs."""
    law, request, specification = _spec(request_file, state_pack, records, fact, None, None, None, as_of)
    today = as_of.date() if as_of else SystemClock().today()
    result = service.assess(specification, answers, today) if answers else None
    view = service.five_safes_view(law, request, specification, today, result, tuple(users or ()))
    _emit(render_five_safes(view, request_file.stem), output)
