"""customer orders: customers, quoted prices and proof of delivery

Customers (shops, restaurants, people who order deliveries) are accounts of
their own role, `customer`, with a default pickup address. A customer's order
is a job that starts `quoted`: it keeps the customer, how its price was
reached (terms, zones, the rules and the votes that set them) and until when
the quote holds. A delivered job keeps its proof: the recipient's code,
hashed, the wrong tries, and the file name of a photo. Existing jobs are
coordinators' jobs: no customer, no quote, no proof. A governed setting's
value may now be longer than 200 characters: a price rule lists zones.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("setting") as batch:
        batch.alter_column("value", type_=sa.Text(), existing_type=sa.String(length=200), existing_nullable=False)
    with op.batch_alter_table("member") as batch:
        batch.add_column(sa.Column("address", sa.String(length=500), nullable=True))
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("customer_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("quote", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("quote_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("proof_code_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("proof_tries", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("proof_photo", sa.String(length=300), nullable=True))
        batch.create_foreign_key("fk_job_customer_id_member", "member", ["customer_id"], ["id"])
        batch.create_index("ix_job_customer_id", ["customer_id"])


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_index("ix_job_customer_id")
        batch.drop_constraint("fk_job_customer_id_member", type_="foreignkey")
        for column in ("proof_photo", "proof_tries", "proof_code_hash", "quote_expires_at", "quote", "customer_id"):
            batch.drop_column(column)
    with op.batch_alter_table("member") as batch:
        batch.drop_column("address")
    with op.batch_alter_table("setting") as batch:
        batch.alter_column("value", type_=sa.String(length=200), existing_type=sa.Text(), existing_nullable=False)
