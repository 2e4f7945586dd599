"""The audit trail as the AuditSink that components report to, each report its own transaction."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from sqlalchemy import insert

from sharewise.audit.trail import AuditTrail
from sharewise.domain.events import AuditEvent, DisclosureEvent
from sharewise.store.database import Store
from sharewise.store.schema import disclosure_persons, disclosures


class StoreAuditSink:
    """Records events (and disclosures with their audit record) in the store, atomically."""

    def __init__(self, store: Store, trail: AuditTrail) -> None:
        self.store = store
        self.trail = trail

    def record(self, event: AuditEvent) -> None:
        with self.store.transaction() as conn:
            self.trail.append(conn, event)

    def record_disclosure(self, event: DisclosureEvent, actor: str) -> None:
        disclosure_id = f"d-{uuid.uuid4().hex[:16]}"
        at = event.at or self.trail.clock()
        with self.store.transaction() as conn:
            conn.execute(
                insert(disclosures).values(
                    id=disclosure_id,
                    share_id=event.share_id,
                    at=at,
                    recipient=event.recipient,
                    purpose=event.purpose,
                    data_categories=json.dumps(list(event.data_categories)),
                    legal_basis=json.dumps(list(event.legal_basis)),
                    law_version=event.law_version,
                    law_hash=event.law_hash,
                    row_count=event.row_count,
                    package_sha256=event.package_sha256,
                    agreement_id=event.agreement_id,
                    form=event.form,
                    source_program=event.source_program,
                )
            )
            tokens = sorted(set(event.person_tokens))
            for start in range(0, len(tokens), 10_000):
                conn.execute(
                    insert(disclosure_persons),
                    [{"disclosure_id": disclosure_id, "person_token": t} for t in tokens[start : start + 10_000]],
                )
            self.trail.append(
                conn,
                AuditEvent(
                    action="disclosure-recorded",
                    actor=actor,
                    subject_type="share",
                    subject_id=event.share_id,
                    source="system",
                    at=at if at.tzinfo else at.replace(tzinfo=dt.UTC),
                    details={
                        "disclosure_id": disclosure_id,
                        "purpose": event.purpose,
                        "rows": event.row_count,
                        "persons": len(tokens),
                        "law_hash": event.law_hash,
                        "package_sha256": event.package_sha256,
                    },
                ),
            )


class MemoryAuditSink:
    """An in-memory sink for tests and dry runs."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self.disclosures: list[tuple[DisclosureEvent, str]] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)

    def record_disclosure(self, event: DisclosureEvent, actor: str) -> None:
        self.disclosures.append((event, actor))
