"""payouts: members' IBANs, and when and how each share was paid

A member may register the account their share is paid to (`/iban`); it is
stored sealed with a key derived from the server key and bound to the member,
never in clear, and erased when they leave. An allocation records the day it
was paid and how (sepa, cash or other), beside the `paid` flag it always had.
Nobody has an IBAN yet and no allocation is marked paid.

Plain `add_column` on both tables: nullable columns need no table rebuild,
and a rebuild of `member` fails on SQLite because other tables reference it.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("member", sa.Column("iban_sealed", sa.String(length=200), nullable=True))
    op.add_column("allocation", sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("allocation", sa.Column("paid_method", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("allocation") as batch:
        batch.drop_column("paid_method")
        batch.drop_column("paid_at")
    with op.batch_alter_table("member") as batch:
        batch.drop_column("iban_sealed")
