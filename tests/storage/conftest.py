"""What the storage tests share: a migrated database (SQLite, and PostgreSQL when it answers),
members to find, and a record of the statements SQLAlchemy itself sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from coopbot.db import make_engine, make_sessionmaker, transaction, upgrade
from coopbot.services.members import accounts
from tests.conftest import postgres_schema

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database: SQLite, then PostgreSQL (skipped with the reason when it is absent)."""
    made = make_engine(db_url)
    upgrade(made)
    yield made
    made.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def pg_sessions() -> Iterator[sessionmaker[Session]]:
    """A migrated PostgreSQL schema alone, for what only PostgreSQL does (skipped without it)."""
    with postgres_schema() as url:
        made = make_engine(url)
        upgrade(made)
        yield make_sessionmaker(made)
        made.dispose()


def add_member(sessions: sessionmaker[Session], name: str, *accounts_: tuple[str, str]) -> int:
    """A member with these (platform, user id) accounts, by default one console account named
    after them; returns their id."""
    with transaction(sessions) as session:
        member = accounts.create_member(session, name, "member", NOW)
        for platform, user in accounts_ or [("console", name.lower())]:
            accounts.add_identity(session, member, platform, user, NOW, name)
        return member.id


@dataclass
class Sent:
    """One statement as SQLAlchemy handed it to the driver."""

    sql: str
    executemany: bool
    compiled: bool


@dataclass
class Statements:
    """The statements SQLAlchemy sent while `watching` (none for what goes to the driver directly)."""

    seen: list[Sent] = field(default_factory=list)

    @contextmanager
    def watching(self, engine: Engine) -> Iterator[list[Sent]]:
        self.seen.clear()

        def note(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
            self.seen.append(Sent(statement, executemany, context is not None and context.compiled is not None))

        event.listen(engine, "before_cursor_execute", note)
        try:
            yield self.seen
        finally:
            event.remove(engine, "before_cursor_execute", note)

    @contextmanager
    def in_transaction(self, sessions: sessionmaker[Session], engine: Engine) -> Iterator[tuple[Session, list[Sent]]]:
        """A transaction, already begun, and what SQLAlchemy sends in it from then on."""
        with transaction(sessions) as session:
            session.connection()
            with self.watching(engine) as sent:
                yield session, sent


@pytest.fixture
def statements() -> Statements:
    return Statements()


@contextmanager
def driver_statements() -> Iterator[list[str]]:
    """Every statement psycopg's cursors send (SQLAlchemy's and those run past it alike), but for the
    pool's ping when a connection is checked out."""
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def counting(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if str(query) != ";":
            sent.append(str(query))
        return execute(cursor, query, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(psycopg.Cursor, "execute", counting)
        yield sent
