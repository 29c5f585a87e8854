"""The statements every message or tap runs: `claim_read`, `record_receipt`, `member_by_account`,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from coopbot.db import transaction
from coopbot.models import Identity, Member, SeenEvent
from coopbot.storage import claim_read, member_by_account, record_receipt
from coopbot.storage.statements import claim_write, write_on_driver
from tests.storage.conftest import NOW, Statements, add_member, driver_statements

#: Its parameters are named in the opposite order to their places in the SQL, as a caller may.
NAME_AND_ACCOUNT = (
    select(Member.name, Identity.external_id, Member.active)
    .join(Identity, Identity.member_id == Member.id)
    .where(Identity.external_id == bindparam("user"), Member.id == bindparam("member"))
)


def test_claim_read_reads_the_row_within_the_callers_transaction(sessions: sessionmaker[Session]) -> None:
    alice = add_member(sessions, "Alice")
    with transaction(sessions) as session:
        connection = session.connection()
        assert claim_read(connection, NAME_AND_ACCOUNT, {"member": alice, "user": "alice"}) == ("Alice", "alice", True)
        assert claim_read(connection, NAME_AND_ACCOUNT, {"member": alice, "user": "bruno"}) is None
        session.execute(update(Member).where(Member.id == alice).values(name="Alicia"))  # not committed
        assert claim_read(connection, NAME_AND_ACCOUNT, {"member": alice, "user": "alice"}) == ("Alicia", "alice", True)


def test_claim_read_goes_past_sqlalchemys_statement_machinery(
    engine: Engine, sessions: sessionmaker[Session], statements: Statements
) -> None:
    alice = add_member(sessions, "Alice")
    with statements.in_transaction(sessions, engine) as (session, sent):
        for _ in range(3):
            assert claim_read(session.connection(), NAME_AND_ACCOUNT, {"member": alice, "user": "alice"}) is not None
    assert sent == []


def test_a_receipt_is_written_once_per_update_and_platform(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        assert record_receipt(session, "telegram", "u1", NOW)
        assert not record_receipt(session, "telegram", "u1", NOW + timedelta(seconds=1))
        assert record_receipt(session, "matrix", "u1", NOW)
    with transaction(sessions) as session:
        assert not record_receipt(session, "telegram", "u1", NOW)
        stored = session.execute(select(SeenEvent.platform, SeenEvent.at).order_by(SeenEvent.id)).all()
    # The time goes through the column's own type: it reads back as the aware time written.
    assert [tuple(row) for row in stored] == [("telegram", NOW), ("matrix", NOW)]


def test_a_receipt_goes_past_sqlalchemys_statement_machinery(
    engine: Engine, sessions: sessionmaker[Session], statements: Statements
) -> None:
    with statements.in_transaction(sessions, engine) as (session, sent):
        assert record_receipt(session, "telegram", "u1", NOW)
        assert not record_receipt(session, "telegram", "u1", NOW)
    assert sent == []


def test_a_write_on_the_driver_fails_as_sqlalchemys_own_errors(sessions: sessionmaker[Session]) -> None:
    """The router tells a held SQLite lock by SQLAlchemy's `OperationalError`, whichever way it came."""
    with pytest.raises(DBAPIError) as raised, transaction(sessions) as session:
        write_on_driver(session.connection(), "UPDATE no_such_table SET x = 1", {})
    dbapi = session.get_bind().dialect.loaded_dbapi
    assert isinstance(raised.value.orig, dbapi.Error)
    if dbapi.__name__ == "sqlite3":
        assert isinstance(raised.value, OperationalError)


def test_member_by_account_loads_the_member_with_every_account_in_one_statement(
    engine: Engine, sessions: sessionmaker[Session], statements: Statements
) -> None:
    add_member(sessions, "Alice", ("console", "alice"), ("matrix", "@alice:example.org"))
    with statements.in_transaction(sessions, engine) as (session, sent):
        found = member_by_account(session, "matrix", "@alice:example.org")
        assert found is not None
        assert sorted(i.platform for i in found.identities) == ["console", "matrix"]
        assert member_by_account(session, "console", "nobody") is None
    assert len(sent) == 2  # one per call: the accounts came with the member


def test_member_by_account_finds_members_who_left_too(sessions: sessionmaker[Session]) -> None:
    alice = add_member(sessions, "Alice")
    with transaction(sessions) as session:
        session.execute(update(Member).where(Member.id == alice).values(active=False))
    with transaction(sessions) as session:
        found = member_by_account(session, "console", "alice")
        assert found is not None
        assert not found.active  # whether they may still talk is the router's to say



#: A claim and what follows it, as `dispatch.jobs` has them: here, a member renamed only if their
#: name is still the one read, and then their accounts' shown names.
RENAME = (
    update(Member.__table__)
    .where(Member.id == bindparam("member"), Member.name == bindparam("old"))
    .values(name=bindparam("new"))
)
SHOWN_NAMES = update(Identity.__table__).where(Identity.member_id == bindparam("member")).values(
    display_name=bindparam("new")
)


def test_a_claim_gives_its_row_back_and_what_follows_runs_only_if_it_matched(sessions: sessionmaker[Session]) -> None:
    alice = add_member(sessions, "Alice", ("console", "alice"), ("matrix", "@alice:x"))
    columns = [column.name for column in Member.__table__.columns]
    with transaction(sessions) as session:
        missed = claim_write(session.connection(), RENAME, SHOWN_NAMES, {"member": alice, "old": "Bob", "new": "Z"})
        assert missed == (None, 0)
        row, taken = claim_write(session.connection(), RENAME, SHOWN_NAMES, {"member": alice, "old": "Alice",
                                                                             "new": "Alicia"})  # fmt: skip
        assert row is not None and taken == 2
        claimed = dict(zip(columns, row, strict=True))
        assert claimed["id"] == alice and claimed["name"] == "Alicia" and claimed["joined_at"] == NOW  # processed
    with transaction(sessions) as session:
        assert session.scalars(select(Identity.display_name)).all() == ["Alicia", "Alicia"]


def test_on_postgresql_a_claim_and_what_follows_are_one_statement(pg_sessions: sessionmaker[Session]) -> None:
    """SQLite has no UPDATE in a WITH: there the two statements run in the process."""
    sessions = pg_sessions
    alice = add_member(sessions, "Alice")
    with transaction(sessions) as session:
        connection = session.connection()
        with driver_statements() as sent:
            row, taken = claim_write(connection, RENAME, SHOWN_NAMES, {"member": alice, "old": "Alice", "new": "Al"})
            assert row is not None and taken == 1
            again = claim_write(connection, RENAME, SHOWN_NAMES, {"member": alice, "old": "Alice", "new": "X"})
            assert again == (None, 0)
    assert len(sent) == 2
    with transaction(sessions) as session:
        assert session.scalars(select(Identity.display_name)).all() == ["Al"]
