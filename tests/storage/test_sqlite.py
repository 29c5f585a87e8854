"""SQLite's set-up (`sqlite_pragmas`, `begin_immediate`) and the members kept while the database is
unchanged (`KnownMembers`). These techniques are SQLite's own: PostgreSQL has none of them."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text, update
from sqlalchemy.orm import Session, sessionmaker

from coopbot.db import make_engine, make_sessionmaker, transaction, upgrade
from coopbot.models import Member
from coopbot.storage import KnownMembers, begin_immediate, member_by_account, record_receipt, sqlite_pragmas
from coopbot.storage import sqlite as storage_sqlite
from tests.storage.conftest import NOW, Statements, add_member


def test_every_connection_gets_the_pragmas(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'coop.sqlite3'}")
    sqlite_pragmas(engine, busy_timeout=2.5, wal=True)
    with engine.connect() as connection:
        pragma = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")}
        driver = connection.connection.driver_connection
        assert driver is not None
        assert driver.isolation_level is None  # SQLAlchemy, not pysqlite, begins transactions
    assert pragma == {"journal_mode": "wal", "busy_timeout": 2500, "foreign_keys": 1, "synchronous": 1}
    engine.dispose()


def locked_out(path: Path) -> bool:
    """Whether another connection is refused the write lock at once."""
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return True
    finally:
        other.close()
    return False


def test_a_transaction_holds_the_write_lock_from_its_begin(tmp_path: Path) -> None:
    path = tmp_path / "coop.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    sqlite_pragmas(engine, busy_timeout=0, wal=True)
    begin_immediate(engine)
    with engine.begin() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1  # a read alone takes the lock
        assert locked_out(path)
    assert not locked_out(path)
    # A dialect's begin, not an event: with any connection event SQLAlchemy runs its event
    # machinery around every statement.
    assert not engine._has_events
    engine.dispose()


def test_a_writer_waits_for_its_turn_in_python_and_gets_it_when_the_holder_ends(tmp_path: Path) -> None:
    """The turn is handed over by commit, by rollback, and by a connection closed in a transaction."""
    engine = make_engine(f"sqlite:///{tmp_path / 'coop.sqlite3'}", busy_timeout=5)
    upgrade(engine)
    turns: storage_sqlite.WriteTurns = engine.dialect.do_begin.__self__  # type: ignore[attr-defined]
    waiting, done = threading.Event(), threading.Event()

    def second_writer() -> None:
        waiting.set()
        with engine.begin() as connection:  # waits for the turn, not in SQLite's busy handler
            connection.exec_driver_sql("SELECT 1")
        done.set()

    with engine.connect() as first:
        first.begin()
        first.exec_driver_sql("SELECT 1")
        writer = threading.Thread(target=second_writer)
        writer.start()
        waiting.wait()
        assert turns._lock.locked() and not done.is_set()
        first.commit()
        writer.join()
    assert done.is_set() and not turns._lock.locked()
    with engine.connect() as connection:
        connection.begin()
        connection.exec_driver_sql("SELECT 1")
        connection.rollback()
    assert not turns._lock.locked()
    connection = engine.connect()
    connection.begin()
    connection.exec_driver_sql("SELECT 1")
    connection.invalidate()  # the pool drops it without a rollback
    assert not turns._lock.locked()
    engine.dispose()


# --- KnownMembers ----------------------------------------------------------------------------


class Loop:
    """A long-lived session as the event loop's, with the members it keeps."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, busy_timeout=0)
        self.connection: Connection = self.engine.connect()
        self.session = Session(self.connection, expire_on_commit=False)
        self.known = KnownMembers(self.session, self.connection)
        self.statements = Statements()
        self._event = 0

    def message(self, user: str = "alice") -> Member | None:
        """One message from `user`: its receipt, then who sent it. Returns the member found."""
        self._event += 1
        with self.known.serving(), self.session.begin():
            record_receipt(self.session, "console", f"u{self._event}", NOW)
            return member_by_account(self.session, "console", user)

    def loads(self, user: str = "alice") -> int:
        """How many statements one message from `user` sent besides its receipt."""
        with self.statements.watching(self.engine) as sent:
            self.message(user)
        return len([s for s in sent if "seen_event" not in s.sql])

    def close(self) -> None:
        self.session.close()
        self.connection.close()
        self.engine.dispose()


@pytest.fixture
def sessions(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def loop(sqlite_url: str, sessions: sessionmaker[Session]) -> Iterator[Loop]:
    add_member(sessions, "Alice")
    made = Loop(sqlite_url)
    assert made.loads() == 1  # loaded once, and kept from here on
    yield made
    made.close()


def test_a_member_is_kept_from_one_message_to_the_next(loop: Loop) -> None:
    assert [loop.loads() for _ in range(3)] == [0, 0, 0]
    assert len(loop.known) == 1


def test_a_commit_elsewhere_drops_what_was_kept(loop: Loop, sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        session.execute(update(Member).values(name="Alicia"))
    assert loop.loads() == 1
    found = loop.message()
    assert found is not None
    assert found.name == "Alicia"


def test_a_message_that_wrote_more_than_its_receipts_drops_what_was_kept(loop: Loop) -> None:
    with loop.known.serving(), loop.session.begin():
        record_receipt(loop.session, "console", "raw", NOW)
        loop.session.execute(text("UPDATE member SET role = 'admin'"))
    assert loop.loads() == 1
    found = loop.message()
    assert found is not None
    assert found.role == "admin"


def test_a_message_that_failed_drops_what_was_kept(loop: Loop) -> None:
    with pytest.raises(RuntimeError), loop.known.serving(), loop.session.begin():
        member_by_account(loop.session, "console", "alice")
        raise RuntimeError("the handler failed")
    assert len(loop.known) == 0
    assert loop.loads() == 1


def test_past_the_bound_the_next_message_starts_afresh(
    loop: Loop, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_member(sessions, "Bruno")
    loop.message("bruno")  # a commit elsewhere came first: only Bruno is kept
    assert loop.loads("alice") == 1
    assert len(loop.known) == 2
    monkeypatch.setattr(storage_sqlite, "MOST_KEPT", 1)
    assert loop.loads("bruno") == 1  # two kept, past the bound of one: all dropped as it began
    assert len(loop.known) == 1


def test_the_engines_coopbot_makes_for_sqlite_are_set_up(sqlite_url: str) -> None:
    engine: Engine = make_engine(sqlite_url, busy_timeout=1)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1000
    assert isinstance(engine.dialect.do_begin.__self__, storage_sqlite.WriteTurns)  # type: ignore[attr-defined]
    engine.dispose()
