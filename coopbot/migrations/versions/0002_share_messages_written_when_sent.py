"""share messages written when sent

The period close queues 10,000 share messages in its transaction; writing
each text there cost more than the rest of the close. An outbox row may now
name a renderer instead (`render`), which writes the text from the period's
allocation when the message is sent. Writing it then reads one member's
entries of one period, hence the index on both. The close writes 10,000
allocations: their index on the period alone, which repeated the unique
(period, member) one, goes; and each member's base pay, which the close also
wrote as a ledger line, is now listed from the allocation alone (the lines
written by earlier closes are removed, or exports would list them twice).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("render", sa.String(length=100), nullable=True))
    with op.batch_alter_table("contribution") as batch:
        batch.create_index("ix_contribution_member_period", ["member_id", "period_id"], unique=False)
        batch.drop_index("ix_contribution_member_id")
    with op.batch_alter_table("allocation") as batch:
        batch.drop_index("ix_allocation_period_id")
    op.execute("DELETE FROM ledger_entry WHERE kind = 'base_pay' AND source_ref LIKE 'base_pay:%'")


def downgrade() -> None:
    with op.batch_alter_table("allocation") as batch:
        batch.create_index("ix_allocation_period_id", ["period_id"], unique=False)
    with op.batch_alter_table("contribution") as batch:
        batch.create_index("ix_contribution_member_id", ["member_id"], unique=False)
        batch.drop_index("ix_contribution_member_period")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("render")
