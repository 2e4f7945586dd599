"""The sharewise command line."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from sharewise.cli import accounting as accounting_cli
from sharewise.cli import accounts as accounts_cli
from sharewise.cli import audit as audit_cli
from sharewise.cli import consent as consent_cli
from sharewise.cli import documents as documents_cli
from sharewise.cli import link as link_cli
from sharewise.cli import render
from sharewise.cli import security as security_cli
from sharewise.cli import serve as serve_cli
from sharewise.cli import share as share_cli
from sharewise.cli import workflow as workflow_cli
from sharewise.cli.console import StatePack, handles_errors, out, settings_for, state
from sharewise.domain.errors import InvalidDataError, InvalidRequestError, Problem
from sharewise.services import demo as demo_service
from sharewise.services import law_docs as law_docs_service
from sharewise.services import law_library
from sharewise.services.determinations import determine, read_request
from sharewise.wiring import SystemClock, law_for

app = typer.Typer(
    name="sharewise",
    help="Decide, agree, share and account: responsible sharing of human-services records.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
law_app = typer.Typer(help="The law library: list, show, cite, validate and test rules.", no_args_is_help=True)
app.add_typer(law_app, name="law")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(consent_cli.app, name="consent")
app.command("accounting")(accounting_cli.accounting)
app.add_typer(workflow_cli.agency_app, name="agency")
app.add_typer(workflow_cli.user_app, name="user")
app.add_typer(accounts_cli.app, name="account")
app.add_typer(workflow_cli.request_app, name="request")
app.add_typer(workflow_cli.initiative_app, name="initiative")
app.add_typer(documents_cli.agreement_app, name="agreement")
app.command("consent-form")(documents_cli.consent_form)
app.add_typer(security_cli.app, name="security")
app.add_typer(share_cli.app, name="share")
app.add_typer(share_cli.dictionary_app, name="dictionary")
app.command("synth")(share_cli.synth)
package_app = typer.Typer(help="Received packages.", no_args_is_help=True)
package_app.command("verify")(share_cli.verify)
app.add_typer(package_app, name="package")
app.add_typer(link_cli.link_app, name="link")
app.add_typer(link_cli.pprl_app, name="pprl")
app.command("serve")(serve_cli.serve)


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """sharewise: is this disclosure lawful, under which provision, on what conditions?"""
    state["debug"] = debug


def _parse_date(value: str | None, where: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(
            "invalid option", [Problem(where, f"'{value}' is not a date (use YYYY-MM-DD)")]
        ) from None


@app.command()
@handles_errors
def check(
    request: Annotated[Path, typer.Argument(help="The sharing request, YAML or JSON ('-' for standard input).")],
    format: Annotated[str, typer.Option("--format", "-f", help="text, json or markdown.")] = "text",
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Date of the disclosure (YYYY-MM-DD); overrides the request."),
    ] = None,
    trace: Annotated[bool, typer.Option("--trace", help="Show every rule considered (text format).")] = False,
    state_pack: StatePack = None,
) -> None:
    """Determine whether a disclosure is lawful, with reasons, citations and conditions.

    Exit codes: 0 determined (whatever the outcome), 2 invalid request, 3 invalid law pack.
    """
    if format not in ("text", "json", "markdown"):
        raise InvalidRequestError(
            "invalid option",
            [Problem("--format", f"'{format}' is not one of text, json, markdown")],
        )
    date = _parse_date(as_of, "--as-of")
    law = law_for(settings_for(state_pack))
    if str(request) == "-":
        from sharewise.services.determinations import parse_request_text

        req = parse_request_text(sys.stdin.read(), law, "<stdin>")
    else:
        req = read_request(request, law)
    checker = None
    if req.consents:  # only then open the store: plain checks need no database
        from sharewise.services import consents as consent_service
        from sharewise.wiring import control_for

        control = control_for(settings_for(state_pack))

        def checker(r: Any, on: dt.date) -> Any:
            return consent_service.check_cited(control, law, r, on)

    det = determine(law, req, SystemClock().today(), as_of=date, consent_checker=checker)
    if format == "json":
        sys.stdout.write(json.dumps(det.to_contract(), indent=2) + "\n")
    elif format == "markdown":
        sys.stdout.write(render.markdown(det))
    else:
        out.print(render.text(det, verbose=trace))


@app.command()
@handles_errors
def interview(
    save: Annotated[Path | None, typer.Option("--save", help="Write the request you built to this YAML file.")] = None,
    state_pack: StatePack = None,
) -> None:
    """A guided interview: whose records, to whom, for what; then only the facts that matter."""
    from sharewise.cli.interview import run_interview

    law = law_for(settings_for(state_pack))
    run_interview(law, out, SystemClock().today(), save)


@app.command()
@handles_errors
def demo(
    state_pack: StatePack = None,
    chain: Annotated[
        bool, typer.Option("--chain/--no-chain", help="Also run the whole chain in a scratch workspace.")
    ] = True,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Keep the chain's workspace here (default: a temporary directory).")
    ] = None,
    people: Annotated[
        int, typer.Option("--people", min=50, max=1_000_000, help="Synthetic people for the share.")
    ] = 1000,
    serve: Annotated[
        bool, typer.Option("--serve", help="Then serve the chain's workspace in the web application.")
    ] = False,
    host: Annotated[str, typer.Option("--host", help="With --serve: interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="With --serve: port to listen on.")] = 8000,
) -> None:
    """A tour: realistic requests and their determinations, then the whole chain end to end.

    The chain runs in its own workspace (SQLite store, keys, files): a request is created,
    reviewed, determined and approved, an agreement drafted and signed, a share executed on
    synthetic data, the audit trail verified, and one person's accounting of disclosures printed.
    """
    import tempfile

    if serve and not chain:
        raise InvalidDataError("nothing to serve", [Problem("--serve", "needs the chain; drop --no-chain")])
    law = law_for(settings_for(state_pack))
    steps = demo_service.run(law, SystemClock().today())
    out.print(f"[bold]sharewise demo[/]: {len(steps)} requests, law pack {law.law_version}\n")
    for i, step in enumerate(steps, 1):
        det = step.determination
        out.print(f"[bold]{i}. {render._esc(step.title)}[/]")
        out.print(f"   {render._esc(step.story)}")
        out.print(f"   -> [{render.STYLES[det.outcome]}]{render.LABELS[det.outcome]}[/]")
        for a in det.authorities:
            out.print(f"      {a.authority}: {a.outcome.value} - {render._esc(a.explanation)}")
        for q in det.questions:
            out.print(f"      Question: {render._esc(q.ask)}")
        for r in det.remedies[:2]:
            out.print(f"      To make it lawful: {render._esc(r.description)} -> {r.outcome.value}")
        if det.documents:
            out.print(f"      Documents: {', '.join(det.documents)}")
        out.print("")
    if chain:
        from sharewise.services.demo_chain import run_chain

        out.print("[bold]The whole chain[/]: decide, agree, share, account")
        base = workdir or Path(tempfile.mkdtemp(prefix="sharewise-demo-"))

        def say(item: Any) -> None:
            out.print(f"  [green]✓[/] [bold]{render._esc(item.title)}[/]: {render._esc(item.result)}")

        run_chain(base, law, people=people, say=say)
        out.print(f"  workspace: {base}")
        out.print("")
        if serve:
            from sharewise.cli.serve import serve_workspace

            serve_workspace(base, law, host, port)
            return
    out.print(f"[italic]{render._esc(steps[0].determination.notices[0])}[/]")
    out.print("Try: sharewise check REQUEST.yaml, sharewise interview, sharewise law list")


@law_app.command("list")
@handles_errors
def law_list(
    authority: Annotated[str | None, typer.Option("--authority", "-a", help="Only this authority's rules.")] = None,
    state_pack: StatePack = None,
) -> None:
    """List authorities and their rules."""
    law = law_for(settings_for(state_pack))
    authorities = [law_library.find_authority(law, authority)] if authority else list(law.authorities)
    for a in authorities:
        out.print(f"[bold]{a.id}[/] {render._esc(a.name)} [dim]({len(a.rules)} rules, {a.folder})[/]")
        for rule in a.rules:
            current = rule.versions[-1]
            flag = " [yellow]needs legal review[/]" if current.needs_legal_review else ""
            out.print(f"  {rule.id:48} {rule.kind:10} {render._esc(current.citations[0].cite)}{flag}")


@law_app.command("show")
@handles_errors
def law_show(
    rule_id: Annotated[str, typer.Argument(help="A rule id (or an authority id).")],
    state_pack: StatePack = None,
) -> None:
    """Show a rule: summary, citations, versions, condition source, obligations and cases."""
    law = law_for(settings_for(state_pack))
    if law.authority(rule_id) is not None and law.rule(rule_id) is None:
        a = law_library.find_authority(law, rule_id)
        out.print(f"[bold]{render._esc(a.name)}[/] ({a.id})")
        out.print(render._esc(a.summary))
        out.print("Citations: " + render._esc("; ".join(c.cite for c in a.citations)))
        out.print(f"Confidence: {a.confidence}")
        if a.notes:
            out.print(f"Notes: {render._esc(a.notes)}")
        out.print(f"Rules: {', '.join(r.id for r in a.rules)}")
        return
    rule = law_library.find_rule(law, rule_id)
    out.print(f"[bold]{rule.id}[/] ({rule.kind}) - {render._esc(rule.title)}")
    out.print(f"Defined at {rule.source}")
    for v in rule.versions:
        out.print(
            f"\n[bold]Version {v.label}[/] (confidence {v.confidence}{', needs legal review' if v.needs_legal_review else ''})"
        )
        out.print(render._esc(v.summary))
        for c in v.citations:
            out.print(f"  {render._esc(c.cite)}  [dim]{c.url or ''}[/]")
        for ob in v.obligations:
            out.print(f"  Obligation: {render._esc(ob.text)}")
        for el in v.consent_elements:
            out.print(f"  Consent element: {render._esc(el.text)}")
        if v.documents:
            out.print(f"  Documents: {', '.join(v.documents)}")
        if v.notes:
            out.print(f"  Notes: {render._esc(v.notes)}")
    if rule.remedy:
        out.print(f"\nRemedy: {render._esc(rule.remedy)}")
    cases = law_library.cases_for_rule(law, rule.id)
    if cases:
        out.print("\n[bold]Cases[/]")
        for case in cases:
            out.print(f"  - {render._esc(case.name)} [dim]{case.source}[/]")


@law_app.command("cite")
@handles_errors
def law_cite(
    rule_id: Annotated[str, typer.Argument(help="A rule id.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Cite the version in force on this date.")] = None,
    state_pack: StatePack = None,
) -> None:
    """Print a rule's citations and source links, ready to paste into a memo."""
    law = law_for(settings_for(state_pack))
    rule = law_library.find_rule(law, rule_id)
    date = _parse_date(as_of, "--as-of") or SystemClock().today()
    version = rule.version_on(date)
    if version is None:
        out.print(f"{rule.id} is not in force on {date.isoformat()}.")
        raise typer.Exit(1)
    for c in version.citations:
        out.print(f"{render._esc(c.cite)}" + (f" <{c.url}>" if c.url else ""))


@law_app.command("vocab")
@handles_errors
def law_vocab(state_pack: StatePack = None) -> None:
    """The request vocabulary: every id a request may use, and every fact the pack reads."""
    law = law_for(settings_for(state_pack))
    v = law.vocabulary
    sections = [
        ("Programs (source.program, recipient.program)", v.programs),
        ("Recipient kinds (recipient.kind)", v.recipient_kinds),
        ("Purposes (purpose)", v.purposes),
        ("Data categories (data)", v.data_categories),
        ("Roles (source.roles, recipient.roles)", v.roles),
        ("Forms (form)", v.forms),
        ("Document types", v.documents),
        ("Facts (facts.*): true / false; absent = unknown", v.facts),
    ]
    for title, ids in sections:
        out.print(f"\n[bold]{title}[/]")
        for key, label in ids.items():
            out.print(f"  {key:45} {render._esc(label)}")


@law_app.command("validate")
@handles_errors
def law_validate(state_pack: StatePack = None) -> None:
    """Load the law pack strictly; report every problem with file:line (exit 3 if any)."""
    law = law_for(settings_for(state_pack))
    rules = law.all_rules()
    law.cases  # noqa: B018 - reading the cases validates them too
    out.print(
        f"[green]valid[/]: {law.law_version}, {len(law.authorities)} authorities, {len(rules)} rules, "
        f"{len(law.cases)} cases, content {law.content_hash[:12]}"
    )


@law_app.command("docs")
@handles_errors
def law_docs(
    out_dir: Annotated[Path, typer.Argument(help="Where to write the pages.")] = Path("docs/reference/rules"),
    state_pack: StatePack = None,
) -> None:
    """Generate reference pages listing every rule with its citations, source links and cases."""
    law = law_for(settings_for(state_pack))
    written = law_docs_service.write_all(law, out_dir)
    out.print(f"wrote {len(written)} pages to {out_dir}")


@law_app.command("impact")
@handles_errors
def law_impact(
    from_version: Annotated[
        str | None, typer.Option("--from", help="Only determinations made under this law version.")
    ] = None,
    state_pack: StatePack = None,
) -> None:
    """Which active sharing requests would be decided differently under the current law pack, and why.

    Exit codes: 0 nothing changes, 1 some determinations change.
    """
    from sharewise.services.law_impact import impact
    from sharewise.wiring import control_for

    settings = settings_for(state_pack)
    law = law_for(settings)
    changes = impact(control_for(settings), law, from_version)
    for item in changes:
        out.print(
            f"[bold]{item.request_id}[/] {render._esc(item.title)}: {item.old_outcome} ({item.old_version}) -> {item.new_outcome} ({law.law_version})"
        )
        for ob in item.obligations_added:
            out.print(f"  + obligation {ob}")
        for ob in item.obligations_removed:
            out.print(f"  - obligation {ob}")
        for rule in item.rules_changed:
            out.print(f"  rule {render._esc(rule)}")
    out.print(f"{len(changes)} active request(s) affected")
    if changes:
        raise typer.Exit(1)


@law_app.command("test")
@handles_errors
def law_test(
    cases: Annotated[
        list[Path] | None,
        typer.Option("--cases", help="Extra case files (e.g. the shared golden cases)."),
    ] = None,
    only: Annotated[
        str | None, typer.Option("--only", help="Only cases whose file or name contains this text.")
    ] = None,
    state_pack: StatePack = None,
) -> None:
    """Run every golden case of the pack; check every rule has applying and non-applying cases."""
    law = law_for(settings_for(state_pack))
    report = law_library.run_tests(law, SystemClock().today(), cases, only)
    for result in report.failed:
        out.print(f"[red]FAIL[/] {render._esc(result.case.name)} [dim]{result.case.source}[/]")
        for failure in result.failures:
            out.print(f"     {render._esc(failure)}")
    for gap in report.gaps:
        out.print(f"[yellow]GAP[/]  {render._esc(gap)}")
    passed = len(report.results) - len(report.failed)
    out.print(f"{passed} passed, {len(report.failed)} failed, {len(report.gaps)} coverage gaps")
    if not report.ok:
        raise typer.Exit(1)
