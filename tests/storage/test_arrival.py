"""What every message does first (`arrive`): its receipt, its sender, when they were last seen; on
SQLite and PostgreSQL, where the three are one statement."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select, update
from sqlalchemy.orm import Session, sessionmaker

from coopbot.db import transaction
from coopbot.models import Identity, Member, SeenEvent
from coopbot.states import Role
from coopbot.storage.arrival import arrive
from coopbot.storage.visits import TOUCH_EVERY
from tests.storage.conftest import NOW, Statements, add_member, driver_statements

EVERYONE = tuple(Role)


def column_values(obj: Any) -> dict[str, Any]:
    return {prop.key: getattr(obj, prop.key) for prop in inspect(type(obj)).column_attrs}


def stored(sessions: sessionmaker[Session], member_id: int) -> Member:
    with transaction(sessions) as session:
        member = session.get_one(Member, member_id)
        member.identities  # noqa: B018 - loaded while the session is open
        session.expunge_all()
        return member


def test_the_sender_comes_with_every_account_as_the_orm_would_load_them(
    engine: Engine, sessions: sessionmaker[Session], statements: Statements
) -> None:
    alice = add_member(sessions, "Alice", ("telegram", "11"), ("matrix", "@alice:x"), ("console", "alice"))
    with transaction(sessions) as session:
        session.execute(update(Member).where(Member.id == alice).values(last_seen_at=NOW, language="fr"))
    expected = stored(sessions, alice)
    with transaction(sessions) as session:
        arrival = arrive(session, "matrix", "e1", "@alice:x", NOW, ())
        member = arrival.member
        assert arrival.fresh and member is not None
        with statements.watching(engine) as sent:
            accounts = [(i.platform, i.external_id, i.member is member) for i in member.identities]
        assert sent == []  # loaded with the member
        assert accounts == [("telegram", "11", True), ("matrix", "@alice:x", True), ("console", "alice", True)]
        assert column_values(member) == column_values(expected)
        assert type(member.role) is Role and member.last_seen_at is not None
        assert member.last_seen_at.utcoffset() == timedelta(0)
        assert [column_values(i) for i in member.identities] == [column_values(i) for i in expected.identities]
        assert inspect(member).persistent and not session.dirty and session.get(Member, alice) is member


def test_the_sender_is_written_as_seen_on_the_row_and_on_the_object(sessions: sessionmaker[Session]) -> None:
    alice = add_member(sessions, "Alice")
    with transaction(sessions) as session:
        member = arrive(session, "console", "e1", "alice", NOW, EVERYONE).member
        assert member is not None and member.last_seen_at == NOW and not session.dirty
    assert stored(sessions, alice).last_seen_at == NOW


@pytest.mark.parametrize(
    ("seen_before", "idle_asked", "touching", "written"),
    [
        (None, False, EVERYONE, True),
        (TOUCH_EVERY, False, EVERYONE, True),
        (TOUCH_EVERY - timedelta(seconds=1), False, EVERYONE, False),
        (timedelta(seconds=1), True, EVERYONE, True),  # asked whether they are still there
        (None, False, (Role.COORDINATOR, Role.ADMIN), False),  # a command they may not use
        (None, False, (), False),  # no command at all
    ],
)
def test_when_they_were_last_seen_is_written_once_a_minute_for_a_command_they_may_use(
    sessions: sessionmaker[Session], seen_before: timedelta | None, idle_asked: bool, touching: tuple[Role, ...],
    written: bool,
) -> None:  # fmt: skip
    alice = add_member(sessions, "Alice")
    before = None if seen_before is None else NOW - seen_before
    with transaction(sessions) as session:
        session.execute(update(Member).where(Member.id == alice)
                        .values(last_seen_at=before, idle_asked_at=NOW if idle_asked else None))  # fmt: skip
    with transaction(sessions) as session:
        member = arrive(session, "console", "e1", "alice", NOW, touching).member
        assert member is not None and member.last_seen_at == (NOW if written else before)
    assert stored(sessions, alice).last_seen_at == (NOW if written else before)


def test_a_replay_is_not_fresh_and_writes_nothing(sessions: sessionmaker[Session]) -> None:
    alice = add_member(sessions, "Alice")
    with transaction(sessions) as session:
        assert arrive(session, "console", "e1", "alice", NOW, EVERYONE).fresh
    later = NOW + timedelta(hours=1)
    with transaction(sessions) as session:
        arrival = arrive(session, "console", "e1", "alice", later, EVERYONE)
        assert not arrival.fresh and arrival.member is not None and arrival.member.id == alice
        assert arrive(session, "matrix", "e1", "alice", later, ()).fresh  # another platform's id
    assert stored(sessions, alice).last_seen_at == NOW
    with transaction(sessions) as session:
        assert session.scalars(select(SeenEvent.platform).order_by(SeenEvent.id)).all() == ["console", "matrix"]


def test_a_stranger_is_nobody_and_their_update_is_received(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        assert arrive(session, "console", "e1", "zoe", NOW, EVERYONE).member is None
        assert arrive(session, "console", "e1", "zoe", NOW, EVERYONE) == arrive(session, "console", "e1", "x", NOW, ())


def test_a_member_who_left_is_found_but_not_written_as_seen(sessions: sessionmaker[Session]) -> None:
    alice = add_member(sessions, "Alice")
    with transaction(sessions) as session:
        session.execute(update(Member).where(Member.id == alice).values(active=False))
    with transaction(sessions) as session:
        member = arrive(session, "console", "e1", "alice", NOW, EVERYONE).member
        assert member is not None and not member.active and member.last_seen_at is None
    assert stored(sessions, alice).last_seen_at is None


def test_an_update_without_an_id_is_always_fresh(sessions: sessionmaker[Session]) -> None:
    add_member(sessions, "Alice")
    with transaction(sessions) as session:
        assert arrive(session, "console", None, "alice", NOW, EVERYONE).fresh
        assert arrive(session, "console", None, "alice", NOW, EVERYONE).fresh
        assert session.scalars(select(SeenEvent.id)).all() == []


def test_a_sender_the_session_holds_already_is_the_object_held(sessions: sessionmaker[Session]) -> None:
    alice = add_member(sessions, "Alice")
    with transaction(sessions) as session:
        held = session.get_one(Member, alice)
        held.name = "Alicia"  # not flushed: the object held is the one answered
        assert arrive(session, "console", "e1", "alice", NOW, EVERYONE).member is held
        assert held.name == "Alicia" and held.last_seen_at == NOW
    assert stored(sessions, alice).name == "Alicia"


def test_on_postgresql_receipt_sender_and_last_seen_are_one_statement(pg_sessions: sessionmaker[Session]) -> None:
    """SQLite keeps its three statements, in the process, and its members between messages."""
    sessions = pg_sessions
    add_member(sessions, "Alice", ("telegram", "11"), ("console", "alice"))
    with transaction(sessions) as session, driver_statements() as sent:
        member = arrive(session, "telegram", "e1", "11", NOW, EVERYONE).member
        assert member is not None and member.last_seen_at == NOW and len(member.identities) == 2
        assert session.get(Identity, member.identities[0].id) is member.identities[0]
    assert len(sent) == 1
