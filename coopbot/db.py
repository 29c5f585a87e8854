"""Engines and sessions, on SQLite (embedded default) or PostgreSQL.

A SQLite engine's connections are set up by `coopbot.storage` (`sqlite_pragmas`)
and begin every transaction with BEGIN IMMEDIATE (`begin_immediate`): a read
followed by a write (claim a job, redeem an invite) then cannot interleave
with another writer, and the busy timeout makes the second writer wait
instead of failing. Reads that never write take `read_only(sessions)`
instead, which on SQLite begins DEFERRED and so queues behind no writer.
`Commits` counts the transactions committed through the bot's sessions, for
whoever keeps something built from the database (the public page's cache).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from coopbot.errors import CoopError
from coopbot.storage.sqlite import begin_immediate, read_only_engine, sqlite_pragmas

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
    begin_immediate(engine)
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


class Commits:
    """How many transactions have committed through the sessions it watches: a generation.

    Whoever keeps something built from the database (the public page's
    cache) notes the generation before reading, and knows its copy is stale
    once the generation has moved: exact for every commit made in this
    process through a watched session, whatever it wrote, at the cost of one
    counter step a commit (a commit that wrote nothing counts too: rare, and
    it only makes a copy be built again). Commits by another process (a CLI
    command) are not seen: a keeper bounds its copy's age for them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def watch(self, target: sessionmaker[Session] | Session) -> None:
        """Count the commits of `target`'s sessions (a sessionmaker) or of `target` itself."""
        if not event.contains(target, "after_commit", self._committed):
            event.listen(target, "after_commit", self._committed)

    def _committed(self, _session: Session) -> None:
        with self._lock:  # commits end in worker threads as well as in the event loop
            self._generation += 1


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
