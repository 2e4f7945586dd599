"""the time step of the last one-time code accepted, so that no code is accepted twice

Revision ID: 0008
Revises: 0007

NIST SP 800-63B (5.1.4.2) requires a time-based one-time code to be accepted only once: sign-in
and enrolment record the 30-second step of the code they accept, and refuse a code whose step
is not later. One nullable column (null: no code accepted yet).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # Batch mode, so that SQLite versions without ALTER TABLE ... DROP COLUMN rebuild the table instead.
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("totp_last_step")
