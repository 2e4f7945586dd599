"""initiatives with stakeholders and steps

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "initiatives",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("vision", sa.Text(), nullable=False),
        sa.Column("agencies", sa.Text(), nullable=False),
        sa.Column("sponsors", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_initiatives_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_initiatives")),
    )
    op.create_table(
        "initiative_stakeholders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("initiative_id", sa.String(length=40), nullable=False),
        sa.Column("group", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("organization", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["initiative_id"], ["initiatives.id"], name=op.f("fk_initiative_stakeholders_initiative_id_initiatives")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_initiative_stakeholders")),
    )
    op.create_table(
        "initiative_steps",
        sa.Column("initiative_id", sa.String(length=40), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("done_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["initiative_id"], ["initiatives.id"], name=op.f("fk_initiative_steps_initiative_id_initiatives")
        ),
        sa.PrimaryKeyConstraint("initiative_id", "step", name=op.f("pk_initiative_steps")),
    )
    with op.batch_alter_table("sharing_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("initiative_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sharing_requests", schema=None) as batch_op:
        batch_op.drop_column("initiative_id")

    op.drop_table("initiative_steps")
    op.drop_table("initiative_stakeholders")
    op.drop_table("initiatives")
