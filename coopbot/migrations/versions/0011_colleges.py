"""colleges: the college a member votes in, in a multi-stakeholder co-op

A co-op with `[colleges]` in its config weighs each college's votes as its
statutes say; a member's college is set with `/college` or `coopbot member
college`. Nobody has one yet: everyone is in the default college, and a co-op
without colleges is unchanged (one member, one vote).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("member", sa.Column("college", sa.String(length=30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("member") as batch:
        batch.drop_column("college")
