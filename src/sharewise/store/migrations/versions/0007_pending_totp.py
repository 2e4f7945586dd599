"""a pending TOTP secret: an authenticator enrolment begun and not yet confirmed

Revision ID: 0007
Revises: 0006

An existing account enrols (or replaces) its authenticator in two steps: a new secret is kept
here, server-side, until a code from the app proves it was added; only then does it replace
`totp_secret`, which sign-in checks. One nullable column: a new enrolment overwrites it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("pending_totp_secret", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # Batch mode, so that SQLite versions without ALTER TABLE ... DROP COLUMN rebuild the table instead.
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("pending_totp_secret")
