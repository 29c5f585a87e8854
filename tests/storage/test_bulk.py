"""Writing thousands of rows: `bulk_insert`, `present_keys`, `insert_new_from_select` on SQLite and
PostgreSQL, and `without_cycle_collection`."""

from __future__ import annotations

import gc
import math
from typing import cast

import pytest
from sqlalchemy import Engine, Table, func, insert, literal, select
from sqlalchemy.orm import Session, sessionmaker

from coopbot.chat import Address, Button, Outgoing
from coopbot.db import transaction
from coopbot.models import Member, OutboxMessage, SeenEvent
from coopbot.outbox_rows import outbox_row
from coopbot.storage import bulk_insert, insert_new_from_select, present_keys, without_cycle_collection
from coopbot.storage.bulk import KEY_CHUNK
from tests.storage.conftest import NOW, Statements, add_member

OUTBOX = cast(Table, OutboxMessage.__table__)
SEEN = cast(Table, SeenEvent.__table__)
BUTTONS = (Button("Accept", "/accept J-1", "✅"), Button("Decline", "/decline J-1", "❌"))


def rows(count: int) -> list[dict[str, object]]:
    """Outbox rows sharing one message (as a broadcast does), one with an attachment."""
    message = Outgoing("J-1 is offered", buttons=BUTTONS)
    made = [outbox_row(f"offer:{n}", Address("telegram", str(n), True), message, NOW, None, None, None)
            for n in range(count)]
    made[0].update(attachment_name="a.png", attachment=b"\x89PNG", attachment_mime="image/png")
    return made


def test_many_rows_go_in_one_go_each_value_converted_by_its_column_type(
    engine: Engine, sessions: sessionmaker[Session], statements: Statements
) -> None:
    with statements.in_transaction(sessions, engine) as (session, sent):
        bulk_insert(session, OUTBOX, rows(200))
    with transaction(sessions) as session:
        stored = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [m.key for m in stored] == [f"offer:{n}" for n in range(200)]
    assert {(m.created_at, m.next_attempt_at) for m in stored} == {(NOW, NOW)}
    assert {tuple(map(tuple, m.buttons)) for m in stored} == {tuple((b.label, b.command, b.emoji) for b in BUTTONS)}
    assert (stored[0].attachment, stored[1].attachment) == (b"\x89PNG", None)
    if engine.dialect.name == "postgresql":
        assert sent == []  # COPY, on the driver's own cursor
    else:
        assert [(s.executemany, s.compiled) for s in sent] == [(True, False)]  # one executemany of driver SQL


def test_one_row_goes_through_sqlalchemy_and_none_writes_nothing(
    engine: Engine, sessions: sessionmaker[Session], statements: Statements
) -> None:
    with statements.in_transaction(sessions, engine) as (session, sent):
        bulk_insert(session, OUTBOX, [])
        bulk_insert(session, OUTBOX, rows(1))
    assert [s.sql.split("(")[0].strip() for s in sent] == ["INSERT INTO outbox"]
    with transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(OUTBOX)) == 1


def test_present_keys_finds_stored_keys_among_more_than_any_statement_could_bind(
    engine: Engine, sessions: sessionmaker[Session], statements: Statements
) -> None:
    # More than PostgreSQL's 65,535 parameters, and SQLite's default bound of 32,766 (a build may allow more).
    keys = [f"u{n}" for n in range(70_000)]
    stored = keys[::7]
    with transaction(sessions) as session:
        session.execute(insert(SEEN), [{"platform": "console", "event_id": key, "at": NOW} for key in stored])
    with statements.in_transaction(sessions, engine) as (session, sent):
        found = present_keys(session, SEEN.c.event_id, keys)
    assert sorted(found) == sorted(stored)
    assert len(sent) == (1 if engine.dialect.name == "postgresql" else math.ceil(len(keys) / KEY_CHUNK))


def test_insert_new_from_select_writes_only_new_rows_and_counts_them(sessions: sessionmaker[Session]) -> None:
    for name in ("Alice", "Bruno", "Chloé"):
        add_member(sessions, name)
    every_name = select(literal("roll-call"), Member.name, literal(NOW, SEEN.c.at.type)).order_by(Member.id)
    columns = ["platform", "event_id", "at"]
    with transaction(sessions) as session:
        assert insert_new_from_select(session, SEEN, columns, every_name, ["platform", "event_id"]) == 3
    add_member(sessions, "Dan")
    with transaction(sessions) as session:
        assert insert_new_from_select(session, SEEN, columns, every_name, ["platform", "event_id"]) == 1
        stored = session.execute(select(SEEN.c.event_id, SEEN.c.at).order_by(SEEN.c.id)).all()
    assert [tuple(row) for row in stored] == [(name, NOW) for name in ("Alice", "Bruno", "Chloé", "Dan")]


def test_the_collector_rests_for_the_length_of_the_block_and_no_longer() -> None:
    assert gc.isenabled()
    with without_cycle_collection():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), without_cycle_collection():
        raise RuntimeError("the close failed")
    assert gc.isenabled()


def test_a_collector_already_resting_is_left_resting() -> None:
    gc.disable()
    try:
        with without_cycle_collection():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
