"""agreement registry

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agreements",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("doc_type", sa.String(length=60), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=True),
        sa.Column("request_id", sa.String(length=40), nullable=True),
        sa.Column("agency_id", sa.String(length=40), nullable=True),
        sa.Column("discloser", sa.String(length=300), nullable=False),
        sa.Column("recipient", sa.String(length=300), nullable=False),
        sa.Column("law_version", sa.String(length=80), nullable=False),
        sa.Column("law_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("effective", sa.Date(), nullable=False),
        sa.Column("term_end", sa.Date(), nullable=False),
        sa.Column("renewals_used", sa.Integer(), nullable=False),
        sa.Column("max_renewals", sa.Integer(), nullable=True),
        sa.Column("renewal_months", sa.Integer(), nullable=True),
        sa.Column("authorized_users", sa.Text(), nullable=False),
        sa.Column("consent_ids", sa.Text(), nullable=False),
        sa.Column("document_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreements")),
    )
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.create_index("ix_agreements_state_end", ["state", "term_end"], unique=False)

    op.create_table(
        "agreement_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agreement_id", sa.String(length=40), nullable=False),
        sa.Column("event", sa.String(length=30), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("party", sa.String(length=20), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"], ["agreements.id"], name=op.f("fk_agreement_events_agreement_id_agreements")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreement_events")),
    )
    with op.batch_alter_table("agreement_events", schema=None) as batch_op:
        batch_op.create_index("ix_agreement_events_agreement", ["agreement_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("agreement_events", schema=None) as batch_op:
        batch_op.drop_index("ix_agreement_events_agreement")

    op.drop_table("agreement_events")
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.drop_index("ix_agreements_state_end")

    op.drop_table("agreements")
