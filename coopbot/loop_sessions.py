"""The session a command uses when it runs in the event loop, on SQLite.

Two things make it fast enough to run there. Its connection never waits for
the write lock: if another writer holds it, BEGIN fails at once, nothing is
written, and the caller hands the message to a worker thread instead. And it
stays open from one message to the next, keeping the members it has loaded
(`coopbot.storage.KnownMembers`, which says why, what it saves, and how what
it keeps is never older than the database).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from coopbot.db import make_engine
from coopbot.storage import KnownMembers


class LoopSessions:
    """Call it for a session (`with loop_sessions() as session`); only ever from the event loop."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, busy_timeout=0)
        self._connection = self.engine.connect()
        self.session = Session(self._connection, expire_on_commit=False)
        self.known = KnownMembers(self.session, self._connection)

    @contextmanager
    def __call__(self) -> Iterator[Session]:
        """Each message starts as a new session would, but for the members kept."""
        self.session.info.clear()
        with self.known.serving():
            yield self.session

    def close(self) -> None:
        self.session.close()
        self._connection.close()
        self.engine.dispose()
