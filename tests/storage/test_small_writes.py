"""The few rows an order writes, on the driver's cursor: `insert_new`, `insert_returning_id` and
`insert_loaded`, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Engine, Table, select
from sqlalchemy.orm import Session, sessionmaker

from coopbot.chat import Address, Button, Outgoing
from coopbot.db import transaction
from coopbot.models import Job, JobEvent, OutboxMessage
from coopbot.outbox_rows import outbox_row
from coopbot.states import JobStatus
from coopbot.storage.small_writes import insert_loaded, insert_new, insert_returning_id
from coopbot.storage.written import written_so_far
from tests.storage.conftest import NOW, Statements

OUTBOX = cast(Table, OutboxMessage.__table__)
EVENTS = cast(Table, JobEvent.__table__)
BUTTONS = (Button("Accept", "/accept J-1", "✅"),)


def notice(key: str, chat: str = "7") -> dict[str, object]:
    return outbox_row(key, Address("telegram", chat, True), Outgoing("J-1 is offered", buttons=BUTTONS), NOW,
                      None, None, None)  # fmt: skip


def job_values(**changed: object) -> dict[str, object]:
    values: dict[str, object] = {
        "pickup": "3 rue Paul Bert, 75011", "dropoff": "12 rue de Paris, 93100", "deadline": None,
        "price_cents": 650, "note": "", "status": JobStatus.QUOTED, "assignee_id": None, "created_by": None,
        "customer_id": None, "created_at": NOW, "updated_at": NOW, "policy": "broadcast", "round": 0,
        "quote": {"total": 650, "terms": []}, "quote_expires_at": NOW, "proof_code_hash": None, "proof_tries": 0,
        "proof_photo": None, "external_ref": "A-12",
    }  # fmt: skip
    return {**values, **changed}


def test_new_keys_are_stored_and_counted_stored_ones_skipped_in_one_statement_past_sqlalchemy(
    engine: Engine, sessions: sessionmaker[Session], statements: Statements
) -> None:
    with transaction(sessions) as session:
        assert insert_new(session, OUTBOX, [notice("offer:1")], "key") == 1
    with statements.in_transaction(sessions, engine) as (session, sent):
        stored = insert_new(session, OUTBOX, [notice("offer:1", "8"), notice("offer:2"), notice("offer:3")], "key")
        assert written_so_far(session) == {"outbox"}
    assert stored == 2
    assert sent == []  # the driver's cursor: SQLAlchemy sent nothing
    with transaction(sessions) as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [(row.key, row.chat_id) for row in rows] == [("offer:1", "7"), ("offer:2", "7"), ("offer:3", "7")]
    assert {(row.created_at, row.next_attempt_at, row.status) for row in rows} == {(NOW, NOW, "pending")}
    assert {tuple(map(tuple, row.buttons)) for row in rows} == {(("Accept", "/accept J-1", "✅"),)}


def test_an_event_gets_its_id_back_in_the_order_written_its_details_as_json(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        job = insert_loaded(session, Job, job_values())
        ids = [insert_returning_id(session, EVENTS, {"job_id": job.id, "at": NOW, "actor_id": None, "kind": kind,
                                                     "member_id": None, "details": {"price": 650, "kind": kind}})
               for kind in ("quoted", "confirmed")]  # fmt: skip
    assert ids[0] < ids[1]
    with transaction(sessions) as session:
        read = session.scalars(select(JobEvent).order_by(JobEvent.id)).all()
    assert [(event.id, event.kind, event.at, event.details) for event in read] == [
        (ids[0], "quoted", NOW, {"price": 650, "kind": "quoted"}),
        (ids[1], "confirmed", NOW, {"price": 650, "kind": "confirmed"}),
    ]


def test_a_row_inserted_loaded_is_the_sessions_unchanged_object_and_later_changes_are_flushed(
    engine: Engine, sessions: sessionmaker[Session], statements: Statements
) -> None:
    with statements.in_transaction(sessions, engine) as (session, sent):
        job = insert_loaded(session, Job, job_values())
        assert session.get(Job, job.id) is job
        assert not session.new and not session.dirty
        assert (job.status, job.quote, job.external_ref, job.proof_tries) == (
            JobStatus.QUOTED,
            {"total": 650, "terms": []},
            "A-12",
            0,
        )
        assert sent == []  # nothing read back, nothing flushed
        job.status = JobStatus.OPEN
    with transaction(sessions) as session:
        again = session.get_one(Job, job.id)
        assert (again.status, again.pickup, again.quote, again.external_ref) == (
            JobStatus.OPEN,
            "3 rue Paul Bert, 75011",
            {"total": 650, "terms": []},
            "A-12",
        )
