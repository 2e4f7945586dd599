"""Tables for sign-in: local accounts (password hashes, TOTP), API tokens and idempotency keys."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer, String, Table, Text

from sharewise.store.schema import metadata

# One local account per user of the workflow directory (users.id).
accounts = Table(
    "accounts",
    metadata,
    Column("user_id", String(80), ForeignKey("users.id"), primary_key=True),
    Column("password_hash", String(200), nullable=False),  # argon2id, PHC string
    Column("totp_secret", String(64), nullable=True),  # base32; set when MFA is enrolled
    # base32; an enrolment begun and not yet confirmed with a code (never used to sign in)
    Column("pending_totp_secret", String(64), nullable=True),
    # the 30-second time step of the last one-time code accepted: a code is accepted once (SP 800-63B)
    Column("totp_last_step", BigInteger, nullable=True),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("password_changed_at", DateTime(timezone=True), nullable=False),
)

# API tokens for machine clients: only the SHA-256 of the token is kept; scoped by agency and roles.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("user_id", String(80), ForeignKey("users.id"), nullable=False),
    Column("agency_id", String(40), nullable=False),
    Column("roles", Text, nullable=False),  # comma-separated subset of the user's roles
    Column("label", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# Responses to creates sent with an Idempotency-Key, replayed when the same key comes again.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(80), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of method, path and body
    Column("status_code", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
