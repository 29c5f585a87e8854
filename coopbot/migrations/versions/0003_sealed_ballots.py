"""sealed ballots

A secret poll's ballots were rows of their own (`secret_ballot`), filed under
a keyed hash and rewritten in a shuffled order at every vote; the database's
write-ahead log still showed which ballot appeared with which voter. They now
live in one sealed box per open poll (`ballot_box`, see
`coopbot.services.polls.ballot_box`).

Sealing needs the server key, which a migration does not have: the ballots
of each poll still open are copied into its box as they were (format 0: JSON
under their keyed hashes), and that poll's next vote or its close reads them
with the server key and seals or counts them. Closed polls keep their stored
tally; their ballots are deleted. A downgrade gives back the ballots of polls
not yet resealed; those already sealed cannot be turned back into rows and
are lost (their tally, after the close, is not).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FORMAT_LEGACY = b"\x00"

poll = sa.table("poll", sa.column("id", sa.Integer), sa.column("secret", sa.Boolean), sa.column("status", sa.String))
secret_ballot = sa.table(
    "secret_ballot",
    sa.column("poll_id", sa.Integer),
    sa.column("ballot_key", sa.String),
    sa.column("choices", sa.JSON),
)
ballot_box = sa.table("ballot_box", sa.column("poll_id", sa.Integer), sa.column("sealed", sa.LargeBinary))


def upgrade() -> None:
    op.create_table(
        "ballot_box",
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["poll_id"], ["poll.id"], name=op.f("fk_ballot_box_poll_id_poll")),
        sa.PrimaryKeyConstraint("poll_id", name=op.f("pk_ballot_box")),
    )
    connection = op.get_bind()
    still_open = (
        sa.select(secret_ballot.c.poll_id, secret_ballot.c.ballot_key, secret_ballot.c.choices)
        .join(poll, poll.c.id == secret_ballot.c.poll_id)
        .where(poll.c.status == "open")
    )
    boxes: dict[int, dict[str, Any]] = defaultdict(dict)
    for poll_id, key, choices in connection.execute(still_open):
        boxes[poll_id][key] = choices
    if boxes:
        connection.execute(
            ballot_box.insert(),
            [{"poll_id": p, "sealed": FORMAT_LEGACY + json.dumps(b).encode()} for p, b in boxes.items()],
        )
    with op.batch_alter_table("secret_ballot") as batch:
        batch.drop_index("ix_secret_ballot_poll_id")
    op.drop_table("secret_ballot")


def downgrade() -> None:
    op.create_table(
        "secret_ballot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("ballot_key", sa.String(length=64), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["poll_id"], ["poll.id"], name=op.f("fk_secret_ballot_poll_id_poll")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret_ballot")),
        sa.UniqueConstraint("poll_id", "ballot_key", name=op.f("uq_secret_ballot_poll_id")),
    )
    with op.batch_alter_table("secret_ballot") as batch:
        batch.create_index("ix_secret_ballot_poll_id", ["poll_id"], unique=False)
    connection = op.get_bind()
    rows = [
        {"poll_id": poll_id, "ballot_key": key, "choices": choices}
        for poll_id, sealed in connection.execute(sa.select(ballot_box.c.poll_id, ballot_box.c.sealed))
        if bytes(sealed[:1]) == FORMAT_LEGACY
        for key, choices in json.loads(bytes(sealed[1:])).items()
    ]
    if rows:
        connection.execute(secret_ballot.insert(), rows)
    op.drop_table("ballot_box")
