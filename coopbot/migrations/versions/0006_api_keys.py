"""api keys: shops order through the web door

A customer may hold one key to the shops' API, kept only as a SHA-256 hash
with a public lookup part. A shop's POST sent with an `Idempotency-Key` keeps
its first answer, unique per customer and key, so a retry (or two at once)
gets that answer back and creates nothing new. An order placed through the
API keeps the shop's own reference. Existing jobs have none; no customer has
a key until `coopbot customer key NAME` makes one. A member may choose to be
named on the public page; until they do (`/public on`), nobody is. A
customer may give a webhook URL, where each step of their orders is POSTed,
signed with a secret of their own; nobody has one until the operator sets it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("lookup", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["member.id"], name="fk_api_key_customer_id_member"),
        sa.PrimaryKeyConstraint("id", name="pk_api_key"),
        sa.UniqueConstraint("customer_id", name="uq_api_key_customer_id"),
        sa.UniqueConstraint("lookup", name="uq_api_key_lookup"),
    )
    op.create_table(
        "idempotent_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["member.id"], name="fk_idempotent_request_customer_id_member"),
        sa.PrimaryKeyConstraint("id", name="pk_idempotent_request"),
        sa.UniqueConstraint("customer_id", "key", name="uq_idempotent_request_customer_id"),
    )
    op.create_index("ix_idempotent_request_created_at", "idempotent_request", ["created_at"])
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("external_ref", sa.String(length=100), nullable=True))
    # A plain ADD COLUMN: SQLite takes it as it is, where a batch would copy the member table,
    # which the tables above now refer to.
    op.add_column("member", sa.Column("public_name", sa.Boolean(), server_default=sa.false(), nullable=False))
    # A customer's webhook: where each step of their orders is POSTed, and its signing secret
    # (sealed with the server key). On the member, not the api_key row: a new key replaces that
    # row, and a shop that orders in the chat may want its webhooks all the same.
    op.add_column("member", sa.Column("webhook_url", sa.String(length=2000), nullable=True))
    op.add_column("member", sa.Column("webhook_secret", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("member") as batch:
        batch.drop_column("webhook_secret")
        batch.drop_column("webhook_url")
        batch.drop_column("public_name")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("external_ref")
    op.drop_index("ix_idempotent_request_created_at", table_name="idempotent_request")
    op.drop_table("idempotent_request")
    op.drop_table("api_key")
