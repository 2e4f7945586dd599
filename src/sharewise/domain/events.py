"""Audit and disclosure events: what components report so the audit trail can record it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

# Detail values are ids, counts, flags and keyed hashes: never client data values.
DetailValue = str | int | float | bool | None


@dataclass(frozen=True)
class AuditEvent:
    """One action, in the NIST SP 800-53 AU-3 sense: what, when, where, source, outcome, who."""

    action: str  # kebab-case past tense: "decision-recorded", "share-executed", "consent-revoked"
    actor: str  # user id, or "system"
    subject_type: str  # "determination", "consent", "agreement", "share", "package", ...
    subject_id: str
    outcome: str = "success"  # success | failure
    agency: str | None = None
    source: str = "cli"  # cli | api | web | system
    details: Mapping[str, DetailValue] = field(default_factory=dict)
    at: dt.datetime | None = None  # set by the audit trail from its clock when None


@dataclass(frozen=True)
class DisclosureEvent:
    """A disclosure of records actually made (one executed share), for the accounting of disclosures."""

    share_id: str
    recipient: str
    purpose: str
    data_categories: tuple[str, ...]
    legal_basis: tuple[str, ...]  # rule ids (pathways) relied on, with their citations in the determination
    law_version: str
    law_hash: str
    row_count: int
    person_tokens: tuple[str, ...] = ()  # keyed person-index tokens of the people whose records left
    package_sha256: str | None = None
    agreement_id: str | None = None
    at: dt.datetime | None = None
    form: str = "identified"  # identified | limited_data_set | deidentified | aggregate
    source_program: str | None = None


class AuditSink(Protocol):
    """Where components report actions and disclosures; the audit trail implements it."""

    def record(self, event: AuditEvent) -> None: ...

    def record_disclosure(self, event: DisclosureEvent, actor: str) -> None: ...
