"""The agreement registry: lifecycle, signatures, amendments with history, law-imposed term limits."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from sharewise.agreements.parties import add_months
from sharewise.domain.errors import InvalidStateError, NotFoundError
from sharewise.store.schema import agreement_events, agreements

STATES = ("draft", "in_review", "signed", "active", "expired", "terminated")
PARTIES = ("discloser", "recipient")


@dataclass(frozen=True)
class AgreementEvent:
    event: str
    actor: str
    party: str | None
    at: dt.datetime
    details: dict[str, Any]


@dataclass(frozen=True)
class AgreementRecord:
    """An agreement as registered, with its history."""

    id: str
    doc_type: str
    title: str
    reference: str | None
    request_id: str | None
    discloser: str
    recipient: str
    law_version: str
    law_hash: str
    state: str
    effective: dt.date
    term_end: dt.date
    renewals_used: int
    max_renewals: int | None
    renewal_months: int | None
    authorized_users: list[dict[str, Any]]
    consent_ids: list[str]
    document_sha256: str | None
    version: int
    events: tuple[AgreementEvent, ...]

    def state_on(self, day: dt.date) -> str:
        """The state as of a day: an active agreement past its term has expired."""
        if self.state == "active" and day > self.term_end:
            return "expired"
        return self.state

    @property
    def signed_by(self) -> set[str]:
        return {e.party for e in self.events if e.event == "signed" and e.party}


class SqlAgreementStore:
    """Agreements in the store, read and written inside the caller's transaction."""

    def add(self, conn: Connection, record: AgreementRecord, created_by: str, at: dt.datetime) -> None:
        conn.execute(
            insert(agreements).values(
                id=record.id,
                doc_type=record.doc_type,
                title=record.title,
                reference=record.reference,
                request_id=record.request_id,
                agency_id=None,
                discloser=record.discloser,
                recipient=record.recipient,
                law_version=record.law_version,
                law_hash=record.law_hash,
                state=record.state,
                effective=record.effective,
                term_end=record.term_end,
                renewals_used=0,
                max_renewals=record.max_renewals,
                renewal_months=record.renewal_months,
                authorized_users=json.dumps(record.authorized_users),
                consent_ids=json.dumps(record.consent_ids),
                document_sha256=record.document_sha256,
                created_by=created_by,
                created_at=at,
                version=1,
            )
        )
        self.event(conn, record.id, "drafted", created_by, None, at, {"doc_type": record.doc_type})

    def event(
        self,
        conn: Connection,
        agreement_id: str,
        event: str,
        actor: str,
        party: str | None,
        at: dt.datetime,
        details: dict[str, Any],
    ) -> None:
        conn.execute(
            insert(agreement_events).values(
                agreement_id=agreement_id,
                event=event,
                actor=actor,
                party=party,
                at=at,
                details=json.dumps(details, default=str),
            )
        )

    def get(self, conn: Connection, agreement_id: str, for_update: bool = False) -> AgreementRecord:
        query = select(agreements).where(agreements.c.id == agreement_id)
        row = conn.execute(query.with_for_update() if for_update else query).first()
        if row is None:
            raise NotFoundError(f"no agreement '{agreement_id}'")
        events = tuple(
            AgreementEvent(
                e.event, e.actor, e.party, e.at if e.at.tzinfo else e.at.replace(tzinfo=dt.UTC), json.loads(e.details)
            )
            for e in conn.execute(
                select(agreement_events)
                .where(agreement_events.c.agreement_id == agreement_id)
                .order_by(agreement_events.c.id)
            )
        )
        return AgreementRecord(
            id=row.id,
            doc_type=row.doc_type,
            title=row.title,
            reference=row.reference,
            request_id=row.request_id,
            discloser=row.discloser,
            recipient=row.recipient,
            law_version=row.law_version,
            law_hash=row.law_hash,
            state=row.state,
            effective=row.effective,
            term_end=row.term_end,
            renewals_used=int(row.renewals_used),
            max_renewals=row.max_renewals,
            renewal_months=row.renewal_months,
            authorized_users=json.loads(row.authorized_users),
            consent_ids=json.loads(row.consent_ids),
            document_sha256=row.document_sha256,
            version=int(row.version),
            events=events,
        )

    def ids(self, conn: Connection) -> list[str]:
        return [r.id for r in conn.execute(select(agreements.c.id).order_by(agreements.c.created_at))]

    def change(self, conn: Connection, record: AgreementRecord, **values: Any) -> None:
        """Update fields, failing if someone else changed the agreement meanwhile."""
        if "authorized_users" in values:
            values["authorized_users"] = json.dumps(values["authorized_users"])
        result = conn.execute(
            update(agreements)
            .where(agreements.c.id == record.id, agreements.c.version == record.version)
            .values(version=record.version + 1, **values)
        )
        if result.rowcount != 1:
            raise InvalidStateError(f"agreement '{record.id}' was changed by someone else; reload and try again")


def renewal_end(record: AgreementRecord) -> dt.date:
    """The new end of term after one more renewal, or refuse if the law allows no more."""
    if record.max_renewals is not None and record.renewals_used >= record.max_renewals:
        raise InvalidStateError(
            f"a {record.doc_type.replace('_', ' ')} may be renewed at most {record.max_renewals} time(s); "
            "draft a new agreement instead"
        )
    months = record.renewal_months or 12
    return add_months(record.term_end, months)
