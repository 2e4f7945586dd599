"""The terminal guided interview: program, recipient, purpose, data; then only needed facts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.prompt import Prompt

from sharewise.cli import render
from sharewise.domain.outcome import Outcome
from sharewise.policy.evaluate import evaluate
from sharewise.policy.model import LawPack
from sharewise.policy.request_parse import parse_request


def _choose(console: Console, title: str, options: dict[str, str], optional: bool = False) -> str | None:
    keys = list(options)
    console.print(f"\n[bold]{title}[/]")
    for i, key in enumerate(keys, 1):
        console.print(f"  {i:2}. {render._esc(options[key])} [dim]({key})[/]")
    hint = " (number or id; Enter to skip)" if optional else " (number or id)"
    while True:
        answer = Prompt.ask("Choose" + hint, console=console, default="" if optional else None, show_default=False)
        answer = (answer or "").strip()
        if not answer and optional:
            return None
        if answer.isdigit() and 1 <= int(answer) <= len(keys):
            return keys[int(answer) - 1]
        if answer in options:
            return answer
        console.print("[red]Please choose one of the listed numbers or ids.[/]")


def _choose_many(console: Console, title: str, options: dict[str, str]) -> list[str]:
    keys = list(options)
    console.print(f"\n[bold]{title}[/]")
    for i, key in enumerate(keys, 1):
        console.print(f"  {i:2}. {render._esc(options[key])} [dim]({key})[/]")
    while True:
        answer = Prompt.ask("Choose one or more (comma-separated numbers or ids)", console=console)
        picked: list[str] = []
        ok = True
        for part in (p.strip() for p in answer.split(",") if p.strip()):
            if part.isdigit() and 1 <= int(part) <= len(keys):
                picked.append(keys[int(part) - 1])
            elif part in options:
                picked.append(part)
            else:
                ok = False
        if ok and picked:
            return list(dict.fromkeys(picked))
        console.print("[red]Please list numbers or ids from the list.[/]")


def run_interview(law: LawPack, console: Console, today: dt.date, save: Path | None) -> None:
    """Ask for the request, then ask the questions the engine needs, then show the answer."""
    v = law.vocabulary
    console.print("[bold]Can we share?[/] Answer a few questions; sharewise asks only what the law needs.")
    raw: dict[str, Any] = {"as_of": today.isoformat()}
    raw["source"] = {"program": _choose(console, "Whose records are these? (the program that holds them)", v.programs)}
    recipient: dict[str, Any] = {"kind": _choose(console, "Who would receive them?", v.recipient_kinds)}
    program = _choose(console, "Does the recipient administer one of these programs?", v.programs, optional=True)
    if program:
        recipient["program"] = program
    raw["recipient"] = recipient
    raw["purpose"] = _choose(console, "For what purpose?", v.purposes)
    raw["data"] = _choose_many(console, "Which information?", v.data_categories)
    raw["form"] = _choose(console, "In what form?", v.forms)
    raw["facts"] = {}
    asked: set[str] = set()
    while True:
        request = parse_request(raw, v, label="interview")
        det = evaluate(law, request, today)
        pending = [q for q in det.questions if q.fact not in asked]
        if det.outcome is not Outcome.NEEDS_FACTS or not pending:
            break
        question = pending[0]
        asked.add(question.fact)
        if not question.fact.startswith("facts."):
            console.print(f"\n[bold]{render._esc(question.ask)}[/]")
            chosen = _choose(console, "Recipient program", v.programs, optional=True)
            if chosen:
                raw["recipient"]["program"] = chosen
            continue
        answer = Prompt.ask(
            f"\n[bold]{render._esc(question.ask)}[/]",
            console=console,
            choices=["yes", "no", "unknown"],
            default="unknown",
        )
        if answer != "unknown":
            raw["facts"][question.fact[6:]] = answer == "yes"
    console.print("")
    console.print(render.text(det))
    if save is not None:
        save.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        console.print(f"\nRequest saved to {save}")
