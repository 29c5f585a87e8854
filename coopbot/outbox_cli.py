"""`coopbot outbox failed` and `coopbot outbox retry ID`: the messages the outbox set aside.

A message whose attempts ran out (`coopbot.outbox`: a day of "try later", or
a few failures nobody expected) is not dropped: it waits here for a person,
who can see to whom it was and why it failed, fix the cause, and put it back
in the queue. The listing never shows a message's text: a share or a data
export is the member's business, not the operator's.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from coopbot.errors import NotFound, UsageError

if TYPE_CHECKING:  # imported when a command runs: `coopbot --help` stays quick
    from sqlalchemy.orm import Session

    from coopbot.models import OutboxMessage

#: The largest id an outbox row can have (a 32-bit INTEGER on PostgreSQL).
MAX_ID = 2**31 - 1
#: How much of the last error a listing line shows.
ERROR_WIDTH = 200


def add_outbox_commands(sub: Any) -> None:
    outbox = sub.add_parser("outbox", help="messages the bot could not deliver").add_subparsers(
        required=True, metavar="ACTION"
    )
    failed = outbox.add_parser("failed", help="list the messages set aside after their attempts ran out")
    failed.set_defaults(action=cmd_outbox_failed)
    retry = outbox.add_parser("retry", help="put a failed message back in the queue, its attempts reset")
    retry.add_argument("id", metavar="ID", help="the message's ID, as `coopbot outbox failed` lists it")
    retry.set_defaults(action=cmd_outbox_retry)


@dataclass(frozen=True)
class Failed:
    """One set-aside message as the operator sees it: never its text."""

    id: int
    failed_at: datetime | None
    to: str
    kind: str
    attempts: int
    error: str


def failed_messages(session: Session) -> list[Failed]:
    from sqlalchemy import select

    from coopbot.models import OutboxMessage

    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "failed").order_by(OutboxMessage.id))
    return [described(session, row) for row in rows]


def described(session: Session, row: OutboxMessage) -> Failed:
    """On one line: an error may span several (a traceback's repr)."""
    from coopbot.outbox import recipient_of

    error = " ".join((row.last_error or "").split())[:ERROR_WIDTH]
    return Failed(row.id, row.failed_at, recipient_of(session, row), row.failure_kind or "-", row.attempts, error)


def message_id(given: str) -> int:
    """The ID typed, checked: a whole number an outbox row can have."""
    digits = given.strip().removeprefix("#")
    if not digits.isdecimal() or not 1 <= int(digits) <= MAX_ID:
        raise UsageError("outbox.retry_not_a_number", given=given)
    return int(digits)


def retry(session: Session, row_id: int, now: datetime) -> Failed:
    """Back to the queue with every attempt forgotten, as if just queued; only a failed message
    (one sent, dead or still pending must not be sent again by hand)."""
    from sqlalchemy import update

    from coopbot.models import OutboxMessage

    row = session.get(OutboxMessage, row_id)
    if row is None:
        raise NotFound("outbox.retry_not_found", id=row_id)
    if row.status != "failed":
        raise UsageError("outbox.retry_not_failed", id=row_id, status=row.status)
    before = described(session, row)
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.status == "failed")
        .values(status="pending", attempts=0, unexpected_failures=0, failing_since=None, failure_kind=None,
                failed_at=None, next_attempt_at=now)
    )
    return before


def cmd_outbox_failed(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.app import CoopBot
    from coopbot.config import load_config

    bot = CoopBot(load_config(args.config))
    try:
        tz = bot.config.coop.tz
        with bot.sessions() as session:
            failed = failed_messages(session)
        if not failed:
            out.write("no failed messages\n")
            return 0
        out.write("id\tfailed at\tto\tkind\tattempts\tlast error\n")
        for one in failed:
            when = one.failed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if one.failed_at else "-"
            out.write(f"{one.id}\t{when}\t{one.to}\t{one.kind}\t{one.attempts}\t{one.error}\n")
        out.write(f"{len(failed)} failed; `coopbot outbox retry ID` puts one back in the queue\n")
        return 0
    finally:
        bot.dispose()


def cmd_outbox_retry(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.app import CoopBot
    from coopbot.config import load_config

    row_id = message_id(args.id)
    bot = CoopBot(load_config(args.config))
    try:
        with bot.sessions() as session, session.begin():
            again = retry(session, row_id, bot.clock.now())
        out.write(f"message {again.id} to {again.to} is queued again; the running bot sends it within seconds\n")
        return 0
    finally:
        bot.dispose()
