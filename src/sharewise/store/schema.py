"""Table definitions for every control-plane record (one MetaData, migrated by Alembic)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# The audit trail: an append-only hash chain. seq is assigned under the head row's lock.
audit_records = Table(
    "audit_records",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),  # ISO 8601 UTC, as hashed
    Column("action", String(80), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("agency", String(200), nullable=True),
    Column("source", String(20), nullable=False),
    Column("subject_type", String(40), nullable=False),
    Column("subject_id", String(200), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("details", Text, nullable=False),  # canonical JSON: ids, counts, keyed hashes only
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_subject", audit_records.c.subject_type, audit_records.c.subject_id)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("at", String(32), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", String(200), nullable=False),  # base64 Ed25519
)

# Disclosures actually made, for the accounting of disclosures.
disclosures = Table(
    "disclosures",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("share_id", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("recipient", String(300), nullable=False),
    Column("purpose", String(80), nullable=False),
    Column("data_categories", Text, nullable=False),  # JSON list
    Column("legal_basis", Text, nullable=False),  # JSON list of rule ids
    Column("law_version", String(80), nullable=False),
    Column("law_hash", String(64), nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("package_sha256", String(64), nullable=True),
    Column("agreement_id", String(64), nullable=True),
    Column("form", String(20), nullable=False),
    Column("source_program", String(40), nullable=True),
)

disclosure_persons = Table(
    "disclosure_persons",
    metadata,
    Column("disclosure_id", String(64), ForeignKey("disclosures.id"), primary_key=True),
    Column("person_token", String(64), primary_key=True),
)
Index("ix_disclosure_persons_token", disclosure_persons.c.person_token)

# Consents: the whole record is sealed (AES-256-GCM); the person is found by a keyed token;
# only the scope (programs, kinds, categories, purposes, dates: no names) is stored in clear.
consents = Table(
    "consents",
    metadata,
    Column("id", String(64), primary_key=True),  # a FHIR resource id is at most 64 characters
    Column("person_token", String(64), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("effective", Date, nullable=False),
    Column("expires", Date, nullable=True),
    Column("revoked_on", Date, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("agency", String(200), nullable=True),
)
Index("ix_consents_person_token", consents.c.person_token)

# Agencies, people and roles.
agencies = Table(
    "agencies",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(300), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("agency_id", String(40), ForeignKey("agencies.id"), nullable=False),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", String(80), ForeignKey("users.id"), primary_key=True),
    Column("role", String(40), primary_key=True),
)

# Sharing requests and every step taken on them.
sharing_requests = Table(
    "sharing_requests",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("agency_id", String(40), ForeignKey("agencies.id"), nullable=False),
    Column("recipient_agency_id", String(40), ForeignKey("agencies.id"), nullable=True),
    Column("title", String(300), nullable=False),
    Column("use_case", Text, nullable=False),
    Column("vision", Text, nullable=True),
    Column("request", Text, nullable=False),  # the sharing request of the determination contract (JSON)
    Column("state", String(40), nullable=False),
    Column("created_by", String(80), ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("determination", Text, nullable=True),  # the determination recorded at legal review (JSON)
    Column("agreement_id", String(80), nullable=True),
    Column("version", Integer, nullable=False),  # optimistic concurrency
    Column("initiative_id", String(40), nullable=True),
)
Index("ix_sharing_requests_state", sharing_requests.c.state)

request_steps = Table(
    "request_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(40), ForeignKey("sharing_requests.id"), nullable=False),
    Column("step", String(40), nullable=False),
    Column("decision", String(20), nullable=False),
    Column("actor", String(80), ForeignKey("users.id"), nullable=False),
    Column("agency_id", String(40), nullable=False),
    Column("comments", Text, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("ix_request_steps_request", request_steps.c.request_id)

# Initiatives: umbrella efforts grouping related requests, with stakeholders and the toolkit's steps.
initiatives = Table(
    "initiatives",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("vision", Text, nullable=False),
    Column("agencies", Text, nullable=False),  # JSON list of agency ids
    Column("sponsors", Text, nullable=False),  # JSON list of {name, agency, title}
    Column("created_by", String(80), ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

initiative_stakeholders = Table(
    "initiative_stakeholders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("initiative_id", String(40), ForeignKey("initiatives.id"), nullable=False),
    Column("group", String(40), nullable=False),
    Column("name", String(300), nullable=False),
    Column("organization", String(300), nullable=True),
)

initiative_steps = Table(
    "initiative_steps",
    metadata,
    Column("initiative_id", String(40), ForeignKey("initiatives.id"), primary_key=True),
    Column("step", String(40), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("owner", String(200), nullable=True),
    Column("due", Date, nullable=True),
    Column("status", String(20), nullable=False),
    Column("done_on", Date, nullable=True),
)

# Agreements: the registry of drafted and executed agreements, and every event in their life.
agreements = Table(
    "agreements",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("doc_type", String(60), nullable=False),
    Column("title", String(300), nullable=False),
    Column("reference", String(120), nullable=True),
    Column("request_id", String(40), nullable=True),
    Column("agency_id", String(40), nullable=True),
    Column("discloser", String(300), nullable=False),
    Column("recipient", String(300), nullable=False),
    Column("law_version", String(80), nullable=False),
    Column("law_hash", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("effective", Date, nullable=False),
    Column("term_end", Date, nullable=False),
    Column("renewals_used", Integer, nullable=False),
    Column("max_renewals", Integer, nullable=True),
    Column("renewal_months", Integer, nullable=True),
    Column("authorized_users", Text, nullable=False),  # JSON list of {role, name, organization}
    Column("consent_ids", Text, nullable=False),  # JSON list
    Column("document_sha256", String(64), nullable=True),
    Column("created_by", String(80), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
)
Index("ix_agreements_state_end", agreements.c.state, agreements.c.term_end)

agreement_events = Table(
    "agreement_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agreement_id", String(40), ForeignKey("agreements.id"), nullable=False),
    Column("event", String(30), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("party", String(20), nullable=True),  # discloser | recipient, for signatures
    Column("at", DateTime(timezone=True), nullable=False),
    Column("details", Text, nullable=False),  # JSON: amendment before/after, reasons
)
Index("ix_agreement_events_agreement", agreement_events.c.agreement_id)
