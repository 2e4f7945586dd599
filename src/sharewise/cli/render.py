"""Render determinations and law-pack views as text or Markdown for people."""

from __future__ import annotations

from sharewise.domain.determination import Determination
from sharewise.domain.outcome import Outcome

LABELS = {
    Outcome.PERMITTED: "PERMITTED",
    Outcome.CONSENT_REQUIRED: "CONSENT REQUIRED",
    Outcome.NEEDS_FACTS: "NEEDS FACTS",
    Outcome.NEEDS_LEGAL_REVIEW: "NEEDS LEGAL REVIEW",
    Outcome.PROHIBITED: "PROHIBITED",
}

STYLES = {
    Outcome.PERMITTED: "bold green",
    Outcome.CONSENT_REQUIRED: "bold yellow",
    Outcome.NEEDS_FACTS: "bold cyan",
    Outcome.NEEDS_LEGAL_REVIEW: "bold magenta",
    Outcome.PROHIBITED: "bold red",
}


def _esc(text: str) -> str:
    return text.replace("[", r"\[")


def text(det: Determination, verbose: bool = False) -> str:
    """Rich-markup text a privacy officer can read."""
    out: list[str] = []
    out.append(f"[{STYLES[det.outcome]}]Outcome: {LABELS[det.outcome]}[/]")
    out.append(f"As of {det.as_of.isoformat()} under law pack {det.law_version} (content {det.law_hash[:12]})")
    out.append("")
    for a in det.authorities:
        out.append(f"[bold]{_esc(a.name)}[/] [dim]({a.authority})[/]: [{STYLES[a.outcome]}]{LABELS[a.outcome]}[/]")
        if a.pathway:
            out.append(f"  Pathway: {a.pathway}")
        out.append(f"  {_esc(a.explanation)}")
        if a.citations:
            out.append(f"  Citations: {_esc('; '.join(a.citations))}")
        for flag in a.flags:
            out.append(f"  [yellow]Note: {_esc(flag)}[/]")
        if a.error:
            out.append(f"  [red]Evaluation error: {_esc(a.error)}[/]")
        for alt in a.alternatives:
            facts = f" ({', '.join(alt.facts)})" if alt.facts else ""
            out.append(f"  [dim]Alternative: {_esc(alt.title)} - {alt.status.replace('_', ' ')}{_esc(facts)}[/]")
        out.append("")
    if det.obligations:
        out.append("[bold]Obligations[/]")
        for ob in det.obligations:
            out.append(f"  - {_esc(ob.text)} [dim]({_esc('; '.join(ob.citations))})[/]")
        out.append("")
    if det.documents:
        out.append("[bold]Documents needed[/]: " + ", ".join(det.documents))
        out.append("")
    if det.questions:
        out.append("[bold]Open questions[/]")
        for q in det.questions:
            leads = ""
            if q.if_true is not None and q.if_false is not None:
                leads = f" [dim](yes -> {q.if_true.value}; no -> {q.if_false.value})[/]"
            out.append(f"  - {_esc(q.ask)} [dim]{q.fact}[/]{leads}")
        out.append("")
    if det.consent_checks:
        out.append("[bold]Consents cited[/]")
        for check in det.consent_checks:
            state = "[green]valid for this disclosure[/]" if check.ok else "[red]not valid for this disclosure[/]"
            out.append(f"  {check.consent_id}: {state}")
            for failure in check.failures:
                out.append(f"    - {_esc(failure)}")
        out.append("")
    if det.remedies:
        out.append("[bold]What would make it lawful[/] (least change first)")
        for r in det.remedies:
            cites = f" [dim]({_esc('; '.join(r.citations))})[/]" if r.citations else ""
            out.append(f"  - {_esc(r.description)} -> {r.outcome.value}{cites}")
            for el in r.consent_elements:
                out.append(f"      [dim]{el['authority']}: {_esc(el['text'])}[/]")
        out.append("")
    if verbose:
        out.append("[bold]Trace[/]")
        for t in det.trace:
            out.append(f"  {t.result:14} {t.rule} [dim]{_esc(t.reason)}[/]")
        out.append("")
    for notice in det.notices:
        out.append(f"[italic]{_esc(notice)}[/]")
    return "\n".join(out)


def markdown(det: Determination) -> str:
    """A Markdown memo of the determination."""
    out = [f"# Determination: {LABELS[det.outcome].lower()}", ""]
    out.append(f"- As of: {det.as_of.isoformat()}")
    out.append(f"- Law pack: `{det.law_version}` (content `{det.law_hash[:12]}`)")
    out.append("")
    out.append("## Authorities")
    out.append("")
    for a in det.authorities:
        out.append(f"### {a.name} (`{a.authority}`): {a.outcome.value}")
        out.append("")
        if a.pathway:
            out.append(f"Pathway: `{a.pathway}`")
            out.append("")
        out.append(a.explanation)
        out.append("")
        if a.citations:
            out.append("Citations: " + "; ".join(a.citations))
            out.append("")
        for alt in a.alternatives:
            out.append(f"- Alternative: {alt.title} ({alt.status.replace('_', ' ')})")
        if a.alternatives:
            out.append("")
    if det.obligations:
        out += ["## Obligations", ""]
        out += [f"- {ob.text} ({'; '.join(ob.citations)})" for ob in det.obligations]
        out.append("")
    if det.documents:
        out += ["## Documents needed", ""] + [f"- {d}" for d in det.documents] + [""]
    if det.questions:
        out += ["## Open questions", ""]
        out += [f"- {q.ask} (`{q.fact}`)" for q in det.questions]
        out.append("")
    if det.consent_checks:
        out += ["## Consents cited", ""]
        for check in det.consent_checks:
            out.append(f"- {check.consent_id}: {'valid' if check.ok else 'not valid'}")
            out += [f"  - {f}" for f in check.failures]
        out.append("")
    if det.remedies:
        out += ["## What would make it lawful", ""]
        out += [f"- {r.description} -> {r.outcome.value}" for r in det.remedies]
        out.append("")
    out += ["---", ""] + [f"*{n}*" for n in det.notices]
    return "\n".join(out) + "\n"
