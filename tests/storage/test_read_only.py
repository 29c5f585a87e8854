"""Reads that never write (`coopbot.db.read_only`, on SQLite `read_only_engine`): they proceed
while another connection holds the write lock, see only what is committed, and commit nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from coopbot.db import commits, make_engine, make_sessionmaker, read_only, transaction, upgrade
from coopbot.models import Member
from coopbot.services.members import accounts
from tests.storage.conftest import NOW, add_member


def test_a_read_proceeds_while_another_connection_holds_the_write_lock(db_url: str) -> None:
    # No busy timeout: a read that queued for the write lock would fail at once, not wait.
    engine = make_engine(db_url, busy_timeout=0)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    add_member(sessions, "Ana")
    with transaction(sessions) as writer:
        accounts.create_member(writer, "Bruno", "member", NOW)
        writer.flush()  # SQLite: the write lock is held since BEGIN IMMEDIATE; PostgreSQL: the new row's
        with read_only(sessions) as reader:
            assert reader.scalars(select(Member.name)).all() == ["Ana"]
    with read_only(sessions) as reader:
        assert sorted(reader.scalars(select(Member.name))) == ["Ana", "Bruno"]
    engine.dispose()


def test_a_read_only_session_commits_nothing_and_on_sqlite_cannot_write(db_url: str) -> None:
    engine = make_engine(db_url, busy_timeout=0)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    counted = commits(sessions)
    add_member(sessions, "Ana")
    assert counted.generation == 1
    with read_only(sessions) as reader:
        assert reader.scalars(select(Member.name)).all() == ["Ana"]
    assert counted.generation == 1, "a read is not a change"
    if engine.dialect.name == "sqlite":
        with read_only(sessions) as reader, pytest.raises(OperationalError, match="readonly"):
            accounts.create_member(reader, "Bruno", "member", NOW)
            reader.flush()
    engine.dispose()
