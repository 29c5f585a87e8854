"""ranked polls: how many options a ranked poll elects

A ranked poll (`/propose … --ranked "Salle A" "Salle B" "Online" --seats 1`)
stores its members' rankings in the ballots it already has (the choices, in
order); only the number of seats is new. Existing polls are not ranked and
have none.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("poll", sa.Column("seats", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("poll") as batch:
        batch.drop_column("seats")
