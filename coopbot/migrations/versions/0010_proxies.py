"""proxies: a member's vote given to another member, for one poll or until revoked

`proxy` records who gave their vote to whom, for which poll (none: every
poll until revoked), when, and when it was revoked. `proxy_vote` records
that a giver's ballot in a poll was cast by the holder (never the choice),
and whether the giver then voted themselves, which cancels it for that poll.
Nobody has given a proxy yet.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proxy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("giver_id", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("poll_id", sa.Integer(), nullable=True),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["giver_id"], ["member.id"], name="fk_proxy_giver_id_member"),
        sa.ForeignKeyConstraint(["holder_id"], ["member.id"], name="fk_proxy_holder_id_member"),
        sa.ForeignKeyConstraint(["poll_id"], ["poll.id"], name="fk_proxy_poll_id_poll"),
        sa.PrimaryKeyConstraint("id", name="pk_proxy"),
    )
    op.create_index("ix_proxy_giver_id", "proxy", ["giver_id"], unique=False)
    op.create_index("ix_proxy_holder_id", "proxy", ["holder_id"], unique=False)
    op.create_table(
        "proxy_vote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("giver_id", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["giver_id"], ["member.id"], name="fk_proxy_vote_giver_id_member"),
        sa.ForeignKeyConstraint(["holder_id"], ["member.id"], name="fk_proxy_vote_holder_id_member"),
        sa.ForeignKeyConstraint(["poll_id"], ["poll.id"], name="fk_proxy_vote_poll_id_poll"),
        sa.PrimaryKeyConstraint("id", name="pk_proxy_vote"),
        sa.UniqueConstraint("poll_id", "giver_id", name="uq_proxy_vote_poll_id"),
    )


def downgrade() -> None:
    op.drop_table("proxy_vote")
    op.drop_index("ix_proxy_holder_id", table_name="proxy")
    op.drop_index("ix_proxy_giver_id", table_name="proxy")
    op.drop_table("proxy")
