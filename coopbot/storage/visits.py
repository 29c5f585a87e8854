"""The member's own times written in a rush: when they were last seen, when they last took a job.

Dispatch's idle check needs to know when each rider last wrote to the bot,
to the minute (`TOUCH_EVERY`); in a lunch rush almost every
tap on an offer is a rider's first message in over a minute, so almost every
tap writes it, the 199 taps that lose a race as much as the one that wins.
The one that wins also writes when its rider last took a job (the rotation
ranks riders by it). Both are written on the row and on the member object
the session holds alike, so that the members the event loop keeps
(`KnownMembers`) stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from coopbot.models import Member
from coopbot.storage.sqlite import count_receipt
from coopbot.storage.statements import write_on_driver
from coopbot.storage.written import note_written_in_place

_SQL = {
    "sqlite": "UPDATE member SET {} = :at WHERE id = :id",
    "postgresql": "UPDATE member SET {} = %(at)s WHERE id = %(id)s",
}
_STAMPS: dict[str, Callable[[Any], Any]] = {}
#: How often a member's last-seen time is written: dispatch's idle check needs minutes, not
#: every message.
TOUCH_EVERY = timedelta(minutes=1)


def stale(member: Member, now: datetime) -> bool:
    """Whether a message from `member` at `now` writes when they were last seen: not yet seen, asked
    whether they are still there (the answer is any message), or last seen `TOUCH_EVERY` ago."""
    seen = member.last_seen_at
    return seen is None or member.idle_asked_at is not None or now - seen >= TOUCH_EVERY


def write_last_seen(session: Session, member: Member, now: datetime) -> None:
    """Write `member.last_seen_at = now` at once, in the session's transaction, past the ORM's flush.

    Reason: set on the ORM object, the change waits for the commit's flush,
    a unit of work that was a quarter of a refused tap's time (profile of the
    200-rider race, before this and `dispatch.jobs.claim`), and the write made the event
    loop's SQLite session drop the members it keeps (`KnownMembers`), so the
    rider's next tap loaded them again. Here it is one UPDATE in the driver's
    own SQL, the object is given the same value as committed state (so the
    ORM has nothing to flush and the object matches the row), and the row
    counts, like a receipt, as one that leaves the kept members in place: the
    kept member is the object written. If the transaction rolls back, the
    session expires every object, this one included, and reloads it.

    Figure: `bench/dispatch.py`, SQLite, 200 riders racing per job, runs
    alternating with and without it on a loaded machine (another test suite
    running): 343–350 taps/s with it (0.06–0.08× the bare UPDATE), 163–236
    taps/s with the attribute set on the ORM object (0.04–0.05×).
    """
    _write_in_place(session, member, "last_seen_at", now)


def stamp(dialect: Dialect, now: datetime) -> Any:
    """`now` as the member's time columns hand it to this dialect's driver."""
    return (_STAMPS.get(dialect.name) or _stamp(dialect))(now)


def write_last_job(session: Session, member: Member, now: datetime) -> None:
    """Write `member.last_job_at = now` at once, on the row and on the object, as `write_last_seen` does.

    Reason: the winner of every race writes it. As a Core UPDATE through the
    session it counted as a write to the member table that the objects kept
    did not see, so every winner's commit dropped every member the event
    loop's SQLite session kept (`KnownMembers`), and each rider's next tap
    loaded them and their accounts again: about 45% of a refused tap (profile
    of the 200-rider race). Written on both, the kept members stay. Figure:
    see `KnownMembers`, which keeps them across such commits.
    """
    _write_in_place(session, member, "last_job_at", now)


def _write_in_place(session: Session, member: Member, column: str, now: datetime) -> None:
    note_written_in_place(session, "member")  # past the session: `coopbot.storage.written`
    connection = session.connection()
    dialect = connection.dialect
    convert = _STAMPS.get(dialect.name) or _stamp(dialect)
    sql = _SQL[dialect.name].format(column)
    write_on_driver(connection, sql, {"at": convert(now), "id": member.id})
    set_committed_value(member, column, now)
    count_receipt(session)


def _stamp(dialect: Dialect) -> Callable[[Any], Any]:
    """How the member's time columns hand a datetime to this dialect's driver."""
    processor = Member.__table__.c.last_seen_at.type.bind_processor(dialect)
    _STAMPS[dialect.name] = processor or (lambda value: value)
    return _STAMPS[dialect.name]
