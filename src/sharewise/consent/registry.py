"""The consent registry: consents stored with the person sealed and found by keyed token."""

from __future__ import annotations

import datetime as dt
import json
import secrets

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.exc import IntegrityError as DuplicateRowError

from sharewise.domain.consent import (
    CONSENT_ID_RULE,
    STORED,
    ConsentRecord,
    PersonIdentifiers,
    Revocation,
    is_consent_id,
)
from sharewise.domain.errors import InvalidDataError, InvalidStateError, NotFoundError, Problem
from sharewise.security.secrets import FileSecrets, keyed_token, seal, unseal
from sharewise.store.schema import consents

PERSON_INDEX_KEY = "person-index"
CONSENT_SEAL_KEY = "consent-seal"


class SqlConsentStore:
    """Consents in the store. Identifiers are sealed with AES-256-GCM; lookups use an HMAC token."""

    def __init__(self, keys: FileSecrets) -> None:
        self.keys = keys

    def person_token(self, person: PersonIdentifiers) -> str:
        return keyed_token(self.keys.key(PERSON_INDEX_KEY), person.lookup_key())

    def new_id(self, today: dt.date) -> str:
        return f"c-{today.year}-{secrets.token_hex(5)}"

    def add(self, conn: Connection, consent: ConsentRecord, now: dt.datetime) -> str:
        """Store a consent (with its person) and return its id.

        A consent that brings its own id (a consent file or a FHIR import) is refused if that id is
        already in the registry: a consent is recorded once, and a re-import replaces nothing.
        """
        if consent.person is None:
            raise InvalidStateError("a consent must name the person it is about")
        consent_id = consent.id or self.new_id(now.date())
        if not is_consent_id(consent_id):  # a record copied with a new id skips validation: checked before the store
            raise InvalidDataError("invalid consent id; nothing was stored", [Problem("id", CONSENT_ID_RULE)])
        if conn.execute(select(consents.c.id).where(consents.c.id == consent_id)).first() is not None:
            raise _already_recorded(consent_id)
        full = consent.model_copy(update={"id": consent_id})
        sealed = seal(self.keys.key(CONSENT_SEAL_KEY), full.model_dump_json().encode(), consent_id.encode())
        try:
            conn.execute(
                consents.insert().values(
                    id=consent_id,
                    person_token=self.person_token(consent.person),
                    sealed=sealed,
                    key_id=self.keys.key_id(CONSENT_SEAL_KEY),
                    scope=json.dumps(scope_of(full)),
                    effective=consent.effective,
                    expires=consent.expiration.date,
                    revoked_on=consent.revocation.revoked_on if consent.revocation else None,  # e.g. a FHIR import
                    created_at=now,
                    agency=consent.agency,
                )
            )
        except DuplicateRowError as exc:  # the id is the only unique key: recorded meanwhile by another transaction
            raise _already_recorded(consent_id) from exc
        return consent_id

    def get(self, conn: Connection, consent_id: str, reveal: bool = False) -> ConsentRecord:
        """A consent by id; its person's identifiers only when reveal is asked for."""
        row = conn.execute(select(consents).where(consents.c.id == consent_id)).first()
        if row is None:
            raise NotFoundError(f"no consent '{consent_id}'")
        return self._open(row.id, row.sealed, reveal)

    def _open(self, consent_id: str, sealed: bytes, reveal: bool) -> ConsentRecord:
        plain = unseal(self.keys.key(CONSENT_SEAL_KEY), sealed, consent_id.encode())
        record = ConsentRecord.model_validate_json(plain, context=STORED)
        return record if reveal else redact(record)

    def recent(
        self, conn: Connection, agency: str | None = None, limit: int = 200, unassigned_too: bool = False
    ) -> list[ConsentRecord]:
        """The newest consents, of one agency when given (and then, if asked, those recorded for no agency)."""
        query = select(consents.c.id, consents.c.sealed).order_by(consents.c.created_at.desc()).limit(limit)
        if agency:
            mine = consents.c.agency == agency
            query = query.where(or_(mine, consents.c.agency.is_(None)) if unassigned_too else mine)
        return [self._open(r.id, r.sealed, reveal=False) for r in conn.execute(query)]

    def names_agency(self, conn: Connection, agency: str) -> bool:
        """Whether any consent is recorded for the agency (before users are registered, a file may name it)."""
        return conn.execute(select(consents.c.id).where(consents.c.agency == agency).limit(1)).first() is not None

    def alike_in_force(self, conn: Connection, consent: ConsentRecord, on: dt.date, agency: str | None) -> list[str]:
        """Ids of the consents not revoked or expired on the date that record the same consent again.

        The same consent: the same person (by keyed token), disclosing programs, recipients, data
        categories, purposes, effective date and end (date, event or condition). Signatures and their
        dates may differ: a person who signs again gives the same consent. With an agency, only that
        agency's consents are compared (another agency's are not for this recorder to know of).
        """
        if consent.person is None:
            return []
        query = select(consents.c.id, consents.c.sealed).where(
            consents.c.person_token == self.person_token(consent.person)
        )
        if agency is not None:
            query = query.where(consents.c.agency == agency)
        terms = _terms(consent)
        alike = []
        for row in conn.execute(query.order_by(consents.c.created_at)):
            other = self._open(row.id, row.sealed, reveal=False)
            revoked = other.revocation is not None and other.revocation.revoked_on <= on
            expired = other.expiration.date is not None and other.expiration.date < on
            if not (revoked or expired) and _terms(other) == terms:
                alike.append(row.id)
        return alike

    def for_person(self, conn: Connection, person: PersonIdentifiers) -> list[ConsentRecord]:
        """Every consent about one person (by keyed token); identifiers not revealed."""
        rows = conn.execute(
            select(consents.c.id, consents.c.sealed).where(consents.c.person_token == self.person_token(person))
        )
        return [self._open(r.id, r.sealed, reveal=False) for r in rows]

    def revoke(self, conn: Connection, consent_id: str, revocation: Revocation) -> ConsentRecord:
        record = self.get(conn, consent_id)
        if record.revocation is not None:
            raise InvalidStateError(f"consent '{consent_id}' was already revoked on {record.revocation.revoked_on}")
        if revocation.revoked_on < record.effective:
            raise InvalidStateError("a consent cannot be revoked before it takes effect")
        full = self.get(conn, consent_id, reveal=True).model_copy(update={"revocation": revocation})
        sealed = seal(self.keys.key(CONSENT_SEAL_KEY), full.model_dump_json().encode(), consent_id.encode())
        conn.execute(
            update(consents)
            .where(consents.c.id == consent_id)
            .values(sealed=sealed, scope=json.dumps(scope_of(full)), revoked_on=revocation.revoked_on)
        )
        return redact(full)


def _terms(consent: ConsentRecord) -> tuple[object, ...]:
    """What a consent permits and when, whatever the order it was written in (see alike_in_force)."""
    return (
        frozenset(d.program for d in consent.disclosers),
        frozenset((r.kind, r.program, " ".join((r.name or "").casefold().split())) for r in consent.recipients),
        frozenset(consent.data),
        frozenset(consent.purposes),
        consent.effective,
        consent.expiration,
    )


def _already_recorded(consent_id: str) -> InvalidStateError:
    return InvalidStateError(f"consent '{consent_id}' is already in the registry; nothing was stored")


def redact(consent: ConsentRecord) -> ConsentRecord:
    """The consent without anyone's name or identifiers (the person, signers, who revoked)."""
    signatures = tuple(s.model_copy(update={"name": "(sealed)"}) for s in consent.signatures)
    revocation = consent.revocation.model_copy(update={"by": "(sealed)"}) if consent.revocation else None
    return consent.model_copy(update={"person": None, "signatures": signatures, "revocation": revocation})


def scope_of(consent: ConsentRecord) -> dict[str, object]:
    """What may be stored in clear: programs, recipient kinds, categories, purposes, dates."""
    return {
        "disclosers": [d.program for d in consent.disclosers],
        "recipients": [[r.kind, r.program] for r in consent.recipients],
        "data": list(consent.data),
        "purposes": list(consent.purposes),
        "effective": consent.effective.isoformat(),
    }
