"""Engines and sessions, on SQLite (embedded default) or PostgreSQL.

A SQLite engine's connections are set up by `coopbot.storage` (`sqlite_pragmas`)
and begin every transaction with BEGIN IMMEDIATE (`begin_immediate`): a read
followed by a write (claim a job, redeem an invite) then cannot interleave
with another writer, and the busy timeout makes the second writer wait
instead of failing. Reads that never write take `read_only(sessions)`
instead, which on SQLite begins DEFERRED and so queues behind no writer.
`Commits` counts the transactions committed through the bot's sessions, per
table written, for whoever keeps something built from the database (the
public page's cache).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from coopbot.errors import CoopError
from coopbot.storage.sqlite import begin_immediate, read_only_engine, sqlite_pragmas
from coopbot.storage.written import EVERYTHING, statement_tables, watch_writes, written_so_far

#: What a handler holds and hands to the services: the message's one open transaction.
#: Handlers name it by this, not by the ORM's class, as they never query through it.
UnitOfWork: TypeAlias = Session

MIGRATIONS = Path(__file__).parent / "migrations"
#: Each SQLite file engine's read-only twin (`read_only`); an in-memory database has none,
#: as a second engine would open another, empty, database.
_READERS: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


class DriverMissing(CoopError):
    """The configured database needs a driver this installation lacks."""


def make_engine(url: str, *, busy_timeout: float = 30.0, **kwargs: Any) -> Engine:
    """`busy_timeout`: how long a SQLite writer waits for another's lock, in seconds."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, busy_timeout, **kwargs)
    url = _with_driver(url)
    check_driver(url)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _with_driver(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def check_driver(url: str) -> None:
    """Refuse a PostgreSQL URL when its driver is not installed, saying what to install.

    PostgreSQL is an optional extra, so a plain install meets a PostgreSQL URL
    with no driver: without this, the first command to open the database
    ends in an import traceback (and `check-config` calls the file fine).
    """
    if url.startswith("sqlite"):
        return
    try:
        make_url(_with_driver(url)).get_dialect().import_dbapi()
    except ImportError as exc:
        raise DriverMissing("cli.postgres_driver_missing") from exc


def _sqlite_engine(url: str, busy_timeout: float, **kwargs: Any) -> Engine:
    connect_args = {"check_same_thread": False, "timeout": busy_timeout}
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    on_file = ":memory:" not in url and url != "sqlite://"
    sqlite_pragmas(engine, busy_timeout=busy_timeout, wal=on_file)
    begin_immediate(engine, busy_timeout=busy_timeout)
    if on_file:
        _READERS[engine] = read_only_engine(url, busy_timeout=busy_timeout)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: committed whole, or rolled back whole."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def read_only(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that only reads: it never commits, and on SQLite it waits for no writer.

    On a SQLite file it is bound to the engine's read-only twin
    (`coopbot.storage.read_only_engine`, which says why and what it saves):
    BEGIN DEFERRED in WAL mode, where readers and the writer do not wait for
    each other, instead of the BEGIN IMMEDIATE every other transaction takes.
    On PostgreSQL (and an in-memory SQLite) it is an ordinary session of
    `factory`, as reads there never wait for writers. Either way it ends with a
    rollback, never a commit, so it counts in no `Commits`.
    """
    bind = factory.kw.get("bind")
    reader = _READERS.get(bind) if isinstance(bind, Engine) else None
    with Session(reader, expire_on_commit=False) if reader is not None else factory() as session:
        yield session


@dataclass(frozen=True)
class Stamp:
    """The counts of `Commits` at one moment, noted before reading what a copy is built from."""

    generation: int
    unnamed: int
    tables: Mapping[str, int]


class Commits:
    """How many transactions have committed through the sessions it watches, in all and per table written.

    Whoever keeps something built from the database (the public page's
    cache) notes a `Stamp` before reading, and the tables it read
    (`tables_read`); its copy is stale once a commit has written one of them
    (`unchanged`). Reason: counted as one generation, the page was dropped by
    every commit, and under load most commits (the outbox marking a message
    sent, a sweep, an order) write tables the page never reads, so most
    views built it again (figures in `coopbot.web.public.Built`). Which
    tables a transaction wrote is noted by `coopbot.storage.written`, from
    the session's statements, its flushes, and the storage functions that
    write past the session; a commit whose tables cannot be named counts
    against every table. Commits by another process (a CLI command) are not
    seen: a keeper bounds its copy's age for them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._unnamed = 0
        self._tables: dict[str, int] = {}

    @property
    def generation(self) -> int:
        """Commits in all, whatever they wrote."""
        return self._generation

    def stamp(self) -> Stamp:
        with self._lock:
            return Stamp(self._generation, self._unnamed, dict(self._tables))

    def unchanged(self, stamp: Stamp, tables: Collection[str]) -> bool:
        """No commit since `stamp` wrote any of `tables` (`EVERYTHING` among them: no commit at all)."""
        if EVERYTHING in tables:
            return self._generation == stamp.generation
        if self._unnamed != stamp.unnamed:
            return False
        counts, before = self._tables, stamp.tables
        return all(counts.get(table, 0) == before.get(table, 0) for table in tables)

    def watch(self, target: sessionmaker[Session] | Session) -> None:
        """Count the commits of `target`'s sessions (a sessionmaker) or of `target` itself."""
        watch_writes(target)
        if not event.contains(target, "after_commit", self._committed):
            event.listen(target, "after_commit", self._committed)

    def _committed(self, session: Session | None) -> None:
        """After a commit (a savepoint's release too, which is not one: its tables wait for the real one)."""
        if session is not None and session.in_nested_transaction():
            return
        written = written_so_far(session) if session is not None else {EVERYTHING}
        with self._lock:  # commits end in worker threads as well as in the event loop
            self._generation += 1
            if EVERYTHING in written:
                self._unnamed += 1
            for table in written:
                self._tables[table] = self._tables.get(table, 0) + 1


@contextmanager
def tables_read(session: Session) -> Iterator[set[str]]:
    """The tables `session` reads while the block runs, filled in as it reads them."""
    read: set[str] = set()

    def noted(state: ORMExecuteState) -> None:
        read.update(statement_tables(state.statement))

    event.listen(session, "do_orm_execute", noted)
    try:
        yield read
    finally:
        event.remove(session, "do_orm_execute", noted)


_COMMITS: WeakKeyDictionary[sessionmaker[Session], Commits] = WeakKeyDictionary()


def commits(factory: sessionmaker[Session], *sessions: Session) -> Commits:
    """The one `Commits` of `factory` (made on first call), watching it and `sessions` too
    (a long-lived session not made by `factory`, such as the event loop's)."""
    counter = _COMMITS.get(factory)
    if counter is None:
        counter = _COMMITS[factory] = Commits()
        counter.watch(factory)
    for session in sessions:
        counter.watch(session)
    return counter


def alembic_config(url: str) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
