"""Law change impact: which active sharing requests would be decided differently under the current pack."""

from __future__ import annotations

from dataclasses import dataclass, field

from sharewise.policy.evaluate import evaluate
from sharewise.policy.model import LawPack
from sharewise.policy.request_parse import parse_request
from sharewise.wiring import Control
from sharewise.workflow.store import SqlWorkflowStore

ACTIVE = ("agreement_pending", "active")


@dataclass
class Impact:
    """How one request's determination changes."""

    request_id: str
    title: str
    old_version: str
    old_outcome: str
    new_outcome: str
    obligations_added: list[str] = field(default_factory=list)
    obligations_removed: list[str] = field(default_factory=list)
    rules_changed: list[str] = field(default_factory=list)  # "rule: old result -> new result"

    @property
    def changed(self) -> bool:
        return bool(self.old_outcome != self.new_outcome or self.obligations_added or self.obligations_removed)


def impact(control: Control, law: LawPack, from_version: str | None = None) -> list[Impact]:
    """Re-evaluate the determination behind every active request (optionally only those made under one version)."""
    store = SqlWorkflowStore()
    with control.store.transaction() as conn:
        records = store.list(conn, ACTIVE)
    found = []
    for record in records:
        old = record.determination
        if old is None or (from_version and old.get("law_version") != from_version):
            continue
        request = parse_request(record.request, law.vocabulary)
        new = evaluate(law, request, control.trail.clock().date()).to_contract()
        old_obl = {f"{o['source_authority']}:{o['id']}" for o in old.get("obligations", [])}
        new_obl = {f"{o['source_authority']}:{o['id']}" for o in new["obligations"]}
        old_trace = {t["rule"]: t["result"] for t in old.get("trace", [])}
        new_trace = {t["rule"]: t["result"] for t in new["trace"]}
        rules = sorted(
            f"{rule}: {old_trace.get(rule, 'absent')} -> {new_trace.get(rule, 'absent')}"
            for rule in set(old_trace) | set(new_trace)
            if old_trace.get(rule) != new_trace.get(rule)
        )
        item = Impact(
            request_id=record.id,
            title=record.title,
            old_version=str(old.get("law_version")),
            old_outcome=str(old.get("outcome")),
            new_outcome=str(new["outcome"]),
            obligations_added=sorted(new_obl - old_obl),
            obligations_removed=sorted(old_obl - new_obl),
            rules_changed=rules,
        )
        if item.changed:
            found.append(item)
    return found
