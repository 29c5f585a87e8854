"""The session a command uses when it runs in the event loop, on SQLite.

Two things make it fast enough to run there. Its connection never waits for
the write lock: if another writer holds it, BEGIN fails at once, nothing is
written, and the caller hands the message to a worker thread instead. And it
stays open from one message to the next, keeping the members it has loaded:
loading a member and their accounts through the ORM cost half of a short
command, and most messages come from someone who wrote a moment before.

What it keeps is never older than the database. Each message's transaction,
once it holds the write lock, asks SQLite whether any other connection has
committed since the last one (`PRAGMA data_version`); if so, everything kept
is dropped. A message that wrote anything besides its own receipt, or that
failed, drops everything too. So a kept member is only ever used while the
database holds exactly what was loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.orm import Session, SessionTransaction

from coopbot.db import make_engine
from coopbot.models import Member

#: Where the router finds the members kept: `session.info[KNOWN_MEMBERS][(platform, user id)]`.
KNOWN_MEMBERS = "known_members"
#: Where the router counts the receipts (`seen_event` rows) it wrote: the only rows a message may
#: write and still leave what was kept in place.
RECEIPTS = "receipts"
#: Past this many members kept, the next message starts afresh (a bound on memory).
MOST_KEPT = 1000


class LoopSessions:
    """Call it for a session (`with loop_sessions() as session`); only ever from the event loop."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, busy_timeout=0)
        self._connection = self.engine.connect()
        self.session = Session(self._connection, expire_on_commit=False)
        self.known: dict[tuple[str, str], Member] = {}
        self._version: int | None = None
        event.listen(self.session, "after_begin", self._after_begin)

    @contextmanager
    def __call__(self) -> Iterator[Session]:
        """Each message starts as a new session would, but for the members kept."""
        info = self.session.info
        info.clear()
        info.update({KNOWN_MEMBERS: self.known, RECEIPTS: 0})
        changes = self._driver().total_changes
        try:
            yield self.session
        except BaseException:
            self.forget()
            raise
        if self._driver().total_changes - changes > info[RECEIPTS]:
            self.forget()

    def forget(self) -> None:
        self.session.expunge_all()
        self.known.clear()

    def close(self) -> None:
        self.session.close()
        self._connection.close()
        self.engine.dispose()

    def _after_begin(self, session: Session, transaction: SessionTransaction, connection: Connection) -> None:
        """Under the write lock: nobody else can commit until this transaction ends."""
        version = self._driver().execute("PRAGMA data_version").fetchone()[0]
        if version != self._version or len(self.known) > MOST_KEPT:
            self.forget()
            self._version = version

    def _driver(self) -> Any:
        return self._connection.connection.driver_connection
