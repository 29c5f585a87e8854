"""Loading the messages the outbox is about to send: many rows in one transaction.

Reason: each message used to be loaded in a transaction of its own right
before its send (a worker thread, a BEGIN, the row, its text, a COMMIT), and a
chat whose platform takes messages back to back read its next row in one more.
That was most of what the bot spent delivering a message to a platform that
answers at once. A delivery pass now loads every row it starts in one
transaction, and such a chat its next few rows at once (`Outbox._chat_run`),
sending the next while the last one's "sent" commits: `bench/outbox_delivery.py`,
2.1–3.1 ms of CPU a message → 0.24–0.34 ms on SQLite, 3.2–4.4 → 0.38–0.65 ms
on PostgreSQL, 2.4–3.1 statements a message → 0.13–0.25.

A loaded message is sent at most a second later (the pass's horizon), or after
the few sent before it in its chat: a member who leaves in between may still get
it, and a message written when sent (`coopbot.outbox_render`) is as old as that.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coopbot.chat import Outgoing
from coopbot.clock import Clock
from coopbot.config import Config
from coopbot.models import Member, OutboxMessage
from coopbot.outbox_failures import UNEXPECTED, Failures
from coopbot.outbox_render import Renderers
from coopbot.platforms import find

log = logging.getLogger(__name__)

#: A room's lines sent as one message at most (`Loader.joined`).
JOIN_MAX = 50

#: Keys of the messages a leaving member is still owed (coopbot.services.data.leaving).
LEAVE_PREFIX = "leave:"


@dataclass(frozen=True)
class Loaded:
    """A row to send, detached from its session, and its message; in a room, the rows of
    the lines queued after it that its message carries too (`Loader.joined`)."""

    row: OutboxMessage
    message: Outgoing
    joined: tuple[int, ...] = ()

    @property
    def row_ids(self) -> tuple[int, ...]:
        return (self.row.id, *self.joined)


class Head(NamedTuple):
    """A chat's first pending row, as a pass sees it."""

    row_id: int
    chat: tuple[str, str]
    private: bool
    due: bool
    #: Whether more of the chat's messages wait behind it.
    more: bool


@dataclass(frozen=True)
class Next:
    """One of a chat's next pending rows: whether it is due, and, if it is, its message
    (None when it turned out not to be sent: its member left, or its text failed)."""

    row_id: int
    due: bool
    loaded: Loaded | None


class Loader:
    """Reads rows to send and writes their messages, setting aside those that must not go."""

    def __init__(self, renderers: Renderers, config: Config, clock: Clock, failures: Failures) -> None:
        self.renderers = renderers
        self.config = config
        self.clock = clock
        self.failures = failures

    def heads(self, session: Session, platforms: list[str], limit: int) -> list[Head]:
        """The first pending row of each chat, in queue order, with whether it is due yet and
        whether more wait behind it.

        Only a chat's first row can be sent (a chat's messages leave one at a time, in order),
        so a pass reads no other. Reason: read as the first `batch` rows of the whole queue, a
        chat with a long queue of its own (the coordinators' room in a lunch rush gets four
        lines an order, and Telegram lets a group have 20 a minute) filled the batch, and no
        other chat's message could start until that room had caught up (`bench/lunch_rush.py`:
        the room's rows were over 90% of the batch in a third of its seconds).
        """
        first = (
            select(func.min(OutboxMessage.id).label("id"), func.count().label("waiting"))
            .where(OutboxMessage.status == "pending", OutboxMessage.platform.in_(platforms))
            .group_by(OutboxMessage.platform, OutboxMessage.chat_id)
            .order_by(func.min(OutboxMessage.id))
            .limit(limit)
            .subquery()
        )
        rows = session.execute(
            select(OutboxMessage.id, OutboxMessage.platform, OutboxMessage.chat_id, OutboxMessage.private,
                   OutboxMessage.next_attempt_at <= self.clock.now(), first.c.waiting)
            .join(first, first.c.id == OutboxMessage.id)
            .order_by(OutboxMessage.id)
        ).all()  # fmt: skip
        return [Head(r[0], (r[1], r[2]), r[3], bool(r[4]), r[5] > 1) for r in rows]

    def rows(self, session: Session, heads: Sequence[Head], spaced: Sequence[bool]) -> list[Loaded | None]:
        """The messages of these chats' first rows, in their order; None for a row no longer
        to be sent. In a room whose platform spaces its messages (`spaced`), a line carries
        the lines queued after it (`joined`)."""
        ids = [head.row_id for head in heads]
        found = {row.id: row for row in session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)))}
        pending = [row for row in found.values() if row.status == "pending"]
        written = dict(zip((row.id for row in pending), self._messages(session, pending), strict=True))
        loaded = [written.get(head.row_id) for head in heads]
        return [self.joined(session, message) if message and head.more and joins else message
                for head, message, joins in zip(heads, loaded, spaced, strict=True)]  # fmt: skip

    def joined(self, session: Session, loaded: Loaded) -> Loaded:
        """A room's line and the plain lines queued after it, as one message.

        Reason: Telegram lets a group have 20 messages a minute, and in a lunch rush the
        coordinators' room is told four lines an order (`bench/lunch_rush.py`: 1,200 in a
        quarter of an hour): sent one a message, the room fell an hour behind. A line with
        buttons, a picture or its own writer keeps its own message, and so its place.
        """
        row = loaded.row
        if not _plain(row):
            return loaded
        following = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.platform == row.platform,
                   OutboxMessage.chat_id == row.chat_id, OutboxMessage.id > row.id)
            .order_by(OutboxMessage.id).limit(JOIN_MAX)
        ).all()  # fmt: skip
        platform, now = find(row.platform), self.clock.now()
        texts, joined, size = [loaded.message.text], list[int](), platform.measure(loaded.message.text)
        for line in following:
            size += platform.measure(line.text) + 2
            if not _plain(line) or line.next_attempt_at > now or size > platform.max_length:
                break
            texts.append(line.text)
            joined.append(line.id)
        if not joined:
            return loaded
        separator = "\n\n" if any("\n" in text for text in texts) else "\n"
        return Loaded(row, Outgoing(separator.join(texts)), tuple(joined))

    def chat_next(self, session: Session, platform: str, chat_id: str, limit: int) -> list[Next]:
        """A chat's first pending rows, up to the first that is not due, the due ones loaded."""
        now = self.clock.now()
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.platform == platform,
                   OutboxMessage.chat_id == chat_id)
            .order_by(OutboxMessage.id).limit(limit)
        ).all()  # fmt: skip
        due = []
        for row in rows:
            if row.next_attempt_at > now:
                break
            due.append(row)
        heads: list[Next] = []
        for row, loaded in zip(due, self._messages(session, due), strict=True):
            if loaded is None and row.status == "pending":  # its text failed: it waits, and so do the next
                return [*heads, Next(row.id, False, None)]
            heads.append(Next(row.id, True, loaded))
        if len(due) < len(rows):
            heads.append(Next(rows[len(due)].id, False, None))
        return heads

    def _messages(self, session: Session, rows: Sequence[OutboxMessage]) -> list[Loaded | None]:
        """Each row's message; a row whose member left is dead, one whose text failed counts a failure."""
        gone = self._members_left(session, rows)
        for row in rows:
            if row.id in gone:
                row.status = "dead"
                row.last_error = "the member has left the co-op"
        to_write = [row for row in rows if row.id not in gone]
        messages = self.renderers.render_all(session, self.config, to_write)
        loaded: dict[int, Loaded] = {}
        for row, message in zip(to_write, messages, strict=True):
            if isinstance(message, Exception):  # a renderer bug must not lose the message either
                log.error("writing outbox message %s failed", row.id, exc_info=message)
                self.failures.count_failure(session, row, UNEXPECTED, repr(message), None)
            else:
                session.expunge(row)
                loaded[row.id] = Loaded(row, message)
        return [loaded.get(row.id) for row in rows]

    @staticmethod
    def _members_left(session: Session, rows: Sequence[OutboxMessage]) -> set[int]:
        """After /leave nothing more reaches a member, except their own data export."""
        owed = {row.id: row.member_id for row in rows
                if row.private and row.member_id is not None and not row.key.startswith(LEAVE_PREFIX)}  # fmt: skip
        if not owed:
            return set()
        left = set(session.scalars(
            select(Member.id).where(Member.id.in_(set(owed.values())), Member.active.is_(False))
        ))  # fmt: skip
        return {row_id for row_id, member_id in owed.items() if member_id in left}



def _plain(row: OutboxMessage) -> bool:
    """A room's line of text alone."""
    return not row.private and row.render is None and not row.buttons and row.attachment is None
