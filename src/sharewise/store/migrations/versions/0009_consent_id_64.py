"""consent ids of up to 64 characters, as FHIR allows a resource id

Revision ID: 0009
Revises: 0008

A consent keeps the id it comes with (a consent file, a FHIR import), and a FHIR R4 resource id
is 1 to 64 letters, digits, '-' or '.'; the column held 40, so PostgreSQL refused a longer id
with a storage error. Widening keeps every row. Narrowing back fails on PostgreSQL
while an id longer than 40 is stored, rather than cutting ids short.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode, so that SQLite (which cannot ALTER a column's type) rebuilds the table instead.
    with op.batch_alter_table("consents") as batch:
        batch.alter_column(
            "id", existing_type=sa.String(length=40), type_=sa.String(length=64), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.alter_column(
            "id", existing_type=sa.String(length=64), type_=sa.String(length=40), existing_nullable=False
        )
