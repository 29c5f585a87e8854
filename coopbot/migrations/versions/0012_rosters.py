"""rosters: the slots a co-op plans and who signed up for each

`slot` is a stretch of time (stored in UTC) that needs a number of riders,
optionally in one zone; a cancelled slot keeps its row and its reason.
`slot_signup` is one rider's seat, once per slot and member, with the swap
or giveaway pending on it and when the slot started for that rider. No slot
exists yet.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=30), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("short_told_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["member.id"], name="fk_slot_created_by_member"),
        sa.PrimaryKeyConstraint("id", name="pk_slot"),
    )
    op.create_index("ix_slot_starts_at", "slot", ["starts_at"], unique=False)
    op.create_table(
        "slot_signup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("swap_to_id", sa.Integer(), nullable=True),
        sa.Column("swap_asked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("given_away_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["slot_id"], ["slot.id"], name="fk_slot_signup_slot_id_slot"),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"], name="fk_slot_signup_member_id_member"),
        sa.ForeignKeyConstraint(["swap_to_id"], ["member.id"], name="fk_slot_signup_swap_to_id_member"),
        sa.PrimaryKeyConstraint("id", name="pk_slot_signup"),
        sa.UniqueConstraint("slot_id", "member_id", name="uq_slot_signup_slot_id"),
    )
    op.create_index("ix_slot_signup_member_id", "slot_signup", ["member_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_slot_signup_member_id", table_name="slot_signup")
    op.drop_table("slot_signup")
    op.drop_index("ix_slot_starts_at", table_name="slot")
    op.drop_table("slot")
