"""fund spending: money the members vote to take out of the development fund

What each close puts into the legal reserve and the development fund is
already in the period's totals; a spending decided by a binding poll is a row
of its own (the fund, the amount in cents, what for, to whom, the poll), one
per poll at most. Nothing has been spent yet.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fund_spending",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fund", sa.String(length=30), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=500), nullable=False),
        sa.Column("payee", sa.String(length=100), nullable=True),
        sa.Column("poll_id", sa.Integer(), nullable=True),
        sa.Column("spent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["poll_id"], ["poll.id"], name="fk_fund_spending_poll_id_poll"),
        sa.PrimaryKeyConstraint("id", name="pk_fund_spending"),
        sa.UniqueConstraint("poll_id", name="uq_fund_spending_poll_id"),
    )
    op.create_index("ix_fund_spending_spent_at", "fund_spending", ["spent_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_fund_spending_spent_at", table_name="fund_spending")
    op.drop_table("fund_spending")
