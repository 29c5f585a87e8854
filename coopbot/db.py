"""Engines and sessions, on SQLite (embedded default) or PostgreSQL.

A SQLite engine's connections are set up by `coopbot.storage` (`sqlite_pragmas`)
and begin every transaction with BEGIN IMMEDIATE (`begin_immediate`): a read
followed by a write (claim a job, redeem an invite) then cannot interleave
with another writer, and the busy timeout makes the second writer wait
instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from coopbot.errors import CoopError
from coopbot.storage.sqlite import begin_immediate, sqlite_pragmas

#: What a handler holds and hands to the services: the message's one open transaction.
#: Handlers name it by this, not by the ORM's class, as they never query through it.
UnitOfWork: TypeAlias = Session

MIGRATIONS = Path(__file__).parent / "migrations"


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
    sqlite_pragmas(engine, busy_timeout=busy_timeout, wal=":memory:" not in url and url != "sqlite://")
    begin_immediate(engine)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: committed whole, or rolled back whole."""
    with factory() as session, session.begin():
        yield session


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
