"""rosters: offers by the fairness rule, calendar feeds, and the hours a slot was worked

`slot_offer` is one seat on a short, unpopular slot offered to one member in
turn, with their place in the ranking and the ranking as it stood.
`calendar_feed` holds the hash of each member's private iCalendar address.
`slot_signup` gains when a missing rider was asked, when the slot's work
ended, the minutes worked and the shift contribution they became. Existing
seats keep NULL in each: nothing was asked or counted before.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slot_signup") as batch:
        batch.add_column(sa.Column("noshow_asked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("worked_minutes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("contribution_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_slot_signup_contribution_id_contribution", "contribution", ["contribution_id"], ["id"]
        )
    op.create_table(
        "slot_offer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.String(length=20), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["slot_id"], ["slot.id"], name="fk_slot_offer_slot_id_slot"),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"], name="fk_slot_offer_member_id_member"),
        sa.PrimaryKeyConstraint("id", name="pk_slot_offer"),
    )
    op.create_index("ix_slot_offer_slot_id", "slot_offer", ["slot_id"], unique=False)
    op.create_table(
        "calendar_feed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"], name="fk_calendar_feed_member_id_member"),
        sa.PrimaryKeyConstraint("id", name="pk_calendar_feed"),
        sa.UniqueConstraint("member_id", "scope", name="uq_calendar_feed_member_id"),
        sa.UniqueConstraint("token_hash", name="uq_calendar_feed_token_hash"),
    )


def downgrade() -> None:
    op.drop_table("calendar_feed")
    op.drop_index("ix_slot_offer_slot_id", table_name="slot_offer")
    op.drop_table("slot_offer")
    with op.batch_alter_table("slot_signup") as batch:
        batch.drop_constraint("fk_slot_signup_contribution_id_contribution", type_="foreignkey")
        batch.drop_column("contribution_id")
        batch.drop_column("worked_minutes")
        batch.drop_column("ended_at")
        batch.drop_column("noshow_asked_at")
