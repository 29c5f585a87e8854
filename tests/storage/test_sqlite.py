"""SQLite's set-up (`sqlite_pragmas`, `begin_immediate`) and the members kept while the database is
unchanged (`KnownMembers`). These techniques are SQLite's own: PostgreSQL has none of them."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from coopbot.db import make_engine, make_sessionmaker, transaction, upgrade
from coopbot.models import Identity, Job, Member
from coopbot.states import Role
from coopbot.storage import KnownMembers, begin_immediate, member_by_account, record_receipt, sqlite_pragmas
from coopbot.storage import sqlite as storage_sqlite
from coopbot.storage.visits import write_last_job, write_last_seen
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


def add_job(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as session:
        job = Job(pickup="Shop", dropoff="Home", note="", status="offered", created_at=NOW, updated_at=NOW,
                  policy="broadcast", round=1)  # fmt: skip
        session.add(job)
        session.flush()
        return job.id


@pytest.fixture
def job(loop: Loop, sessions: sessionmaker[Session]) -> int:
    """A job, written elsewhere before the loop's next message (which loads Alice again)."""
    made = add_job(sessions)
    assert loop.loads() == 1
    return made


def test_a_message_that_wrote_other_tables_keeps_the_members_and_lets_go_of_the_rest(loop: Loop, job: int) -> None:
    """A race's winner writes the job, offers and notices: the riders kept are still what their rows hold,
    but the job the session read is not."""
    with loop.known.serving(), loop.session.begin():
        record_receipt(loop.session, "console", "claim", NOW)
        alice = member_by_account(loop.session, "console", "alice")
        read = loop.session.get_one(Job, job)
        loop.session.execute(update(Job).where(Job.id == job).values(note="fragile"))  # past the object read
    assert loop.loads() == 0
    assert read not in loop.session
    assert alice is not None and alice in loop.session and all(i in loop.session for i in alice.identities)
    with loop.session.begin():
        assert loop.session.get_one(Job, job).note == "fragile"


@pytest.mark.parametrize("how", ["core", "orm", "account"])
def test_a_message_that_wrote_a_member_or_an_account_drops_what_was_kept(loop: Loop, job: int, how: str) -> None:
    """Even alongside other tables, as a role changed, a member who leaves or a new account would."""
    with loop.known.serving(), loop.session.begin():
        record_receipt(loop.session, "console", "change", NOW)
        alice = member_by_account(loop.session, "console", "alice")
        assert alice is not None
        loop.session.execute(update(Job).where(Job.id == job).values(note="fragile"))
        if how == "core":
            loop.session.execute(update(Member).values(role="coordinator"))
        elif how == "orm":
            alice.role = Role.COORDINATOR
        else:
            loop.session.execute(update(Identity).values(display_name="Alicia"))
    assert loop.loads() == 1
    found = loop.message()
    assert found is not None
    assert (found.role, found.identities[0].display_name) == (
        ("member", "Alicia") if how == "account" else ("coordinator", "Alice")
    )


def test_when_a_member_was_last_seen_and_last_took_a_job_keeps_them(loop: Loop, job: int) -> None:
    """Written on the row and on the kept member alike: the next message reads nothing, and sees them."""
    later = NOW + timedelta(minutes=5)
    with loop.known.serving(), loop.session.begin():
        record_receipt(loop.session, "console", "won", NOW)
        alice = member_by_account(loop.session, "console", "alice")
        assert alice is not None
        write_last_seen(loop.session, alice, later)
        write_last_job(loop.session, alice, later)
        loop.session.execute(update(Job).where(Job.id == job).values(assignee_id=alice.id))
    assert loop.loads() == 0
    found = loop.message()
    assert found is alice and (found.last_seen_at, found.last_job_at) == (later, later)
    with loop.session.begin():
        stored = loop.session.execute(select(Member.last_seen_at, Member.last_job_at)).one()
    assert tuple(stored) == (later, later)


def test_a_write_nobody_recorded_drops_what_was_kept(loop: Loop) -> None:
    """SQLite's own count of changed rows says so, when the record says nothing was written."""
    with loop.known.serving(), loop.session.begin():
        record_receipt(loop.session, "console", "raw", NOW)
        driver = loop.connection.connection.driver_connection
        assert driver is not None
        driver.execute("UPDATE member SET role = 'admin'")
    assert loop.loads() == 1


def test_a_message_rolled_back_loads_its_member_afresh_and_drops_what_was_kept(loop: Loop) -> None:
    """As the router does for a refusal: the rollback expired every object, the next transaction loads."""
    with loop.known.serving():
        with loop.session.begin():
            member_by_account(loop.session, "console", "alice")
            loop.session.rollback()
        with loop.statements.watching(loop.engine) as sent, loop.session.begin():
            assert member_by_account(loop.session, "console", "alice") is not None
        assert len(sent) == 1
    assert len(loop.known) == 0
