"""outbox failures: a bounded number of attempts per kind of failure

A send that failed in a way nobody expected (an answer that could not be
read, a transport bug) used to be retried forever, and as the platform may
have taken the message before its answer was lost, each retry could show
the member one more copy. A message now gets a bounded number of attempts
per kind of failure and is then set aside as `failed`, for the operator to
list and retry: the counter of unexpected failures, when the platform first
said "try later", and which bound ran out when.

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
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("unexpected_failures", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("failure_kind", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("failed_at")
        batch.drop_column("failure_kind")
        batch.drop_column("unexpected_failures")
        batch.drop_column("failing_since")
