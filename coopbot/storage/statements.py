"""The statements every message or every tap runs: built once, and run past SQLAlchemy's bookkeeping.

A message's own cost is a handful of statements: its exactly-once receipt
(`record_receipt`), who sent it (`member_by_account`), and, for a rider
racing for a job, how the job stands (`claim_read`). At that size
SQLAlchemy's per-statement work (compiling, processing parameters, building
result rows) costs as much as the database's, so each is built once and,
where it pays, handed to the driver as the driver's own SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Select, Table, Update, bindparam, exists, func, literal, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, joinedload

from coopbot.models import Identity, Member, SeenEvent
from coopbot.storage.sqlite import count_receipt, kept_members
from coopbot.storage.written import note_written_in_place

# --- claim_read -----------------------------------------------------------------------------

#: A SELECT of any columns.
AnySelect = Select[*tuple[Any, ...]]
#: A SELECT in a dialect's SQL, and its parameters' names in order when the driver's are positional.
Compiled = tuple[str, tuple[str, ...] | None]
_COMPILED: dict[tuple[AnySelect, str], Compiled] = {}


def claim_read(connection: Connection, statement: AnySelect, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The first row of `statement`, read on the driver's own cursor, inside the caller's transaction.

    Reason: every tap of a race for a job runs this read (how does the job
    stand, and my offer?) and most taps stop after it, the job being taken
    already. SQLAlchemy's per-statement bookkeeping costs about as much as the
    query itself, so the statement is compiled once per dialect and runs on the
    DBAPI cursor of the same connection, its parameters put in the driver's
    order when they are positional (SQLite). Figure: `bench/dispatch.py`, 200
    riders racing for each of 500 jobs, 0.58× the bare conditional UPDATE on
    SQLite (4,273 claims/s) and 0.59× on PostgreSQL (1,396 claims/s) on a quiet
    machine, target ≥ 0.5× (README, commit 96837ca). Values come back as the
    driver gives them: no column type's result processing.
    """
    with _executed(connection, statement, params) as cursor:
        row = cursor.fetchone()
    return None if row is None else tuple(row)


def rows_read(connection: Connection, statement: AnySelect, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Every row of `statement`, read on the driver's own cursor as `claim_read` reads its first.

    Reason: after a close, the outbox writes the share messages of each delivery
    pass's rows together, their figures read in one statement
    (`notices.share_figures_many`, about 3 members at a time on Telegram).
    Through SQLAlchemy's execution that statement cost about as much CPU as the
    round trips it saved. Figure (3 members a statement, 10,000 allocations, CPU
    per message read): PostgreSQL 61–67 µs through SQLAlchemy, 33–43 µs here;
    SQLite 43–47 µs, 30–32 µs here (one member a statement on `claim_read`:
    63–78 µs and 29–31 µs). All 10,000 share texts at 3 a transaction
    (`bench/period_close.py`, load 0.6–7.1): PostgreSQL 2.36–5.37 s, 1.68–2.52 s
    of CPU through SQLAlchemy; 2.05–2.59 s, 1.38–1.49 s of CPU here.
    """
    with _executed(connection, statement, params) as cursor:
        return [tuple(row) for row in cursor.fetchall()]


@contextmanager
def _executed(connection: Connection, statement: AnySelect, params: Mapping[str, Any]) -> Iterator[Any]:
    """The DBAPI cursor of `connection` once it ran `statement`; closed afterwards."""
    sql, order = _compiled(statement, connection.dialect)
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, params if order is None else tuple(params[name] for name in order))
        yield cursor
    finally:
        cursor.close()


def _compiled(statement: AnySelect, dialect: Dialect) -> Compiled:
    key = (statement, dialect.name)
    if key not in _COMPILED:
        compiled = statement.compile(dialect=dialect)
        _COMPILED[key] = (str(compiled), tuple(compiled.positiontup or ()) if dialect.positional else None)
    return _COMPILED[key]


def claim_write(connection: Connection, claim: Update, take: Update, params: Mapping[str, Any]
                ) -> tuple[tuple[Any, ...] | None, int]:  # fmt: skip
    """The conditional claim, and only if it matched, the claimant's offer taken: (the row claimed,
    every column of its table in order and processed as Core's results are; how many rows `take`
    changed), or (None, 0) when the claim matched nothing. Both run in the caller's transaction.

    Reason: the winner of every race ran the claim, then took its offer, then read the job back
    through the ORM, three round trips on PostgreSQL while it held the job's row lock, which the
    race's other taps that read the job as still open queue behind. On PostgreSQL the three are
    one statement (`UPDATE … RETURNING` in a `WITH`, the offer's UPDATE reading whether the claim
    matched); on SQLite, where a `WITH` holds no UPDATE, the claim gives its row back
    (`RETURNING`) and the offer is taken after it. Figure: the winner's round trips in
    `bench/dispatch.py`'s race 16 → 12 with this and `arrival.arrive`, 10 of them under the
    job's lock (the winner's tap 22–23 ms in the 20-rider race at load 5, of which some 4 ms of
    CPU: the rest is round trips, and the race's first taps wait on the lock meanwhile).
    """
    table = claim.table
    assert isinstance(table, Table)
    if connection.dialect.name == "postgresql":
        row = connection.execute(_claim_and_take(claim, take), params).first()
        if row is None:
            return None, 0
        return tuple(row[1:]), int(row[0])
    row = connection.execute(_claim_returning(claim), params).first()
    if row is None:
        return None, 0
    return tuple(row), int(connection.execute(take, params).rowcount)


_CLAIMS: dict[tuple[Update, Update | None], Any] = {}


def _claim_returning(claim: Update) -> Any:
    key = (claim, None)
    if key not in _CLAIMS:
        _CLAIMS[key] = claim.returning(*claim.table.c)
    return _CLAIMS[key]


def _claim_and_take(claim: Update, take: Update) -> Any:
    key = (claim, take)
    if key not in _CLAIMS:
        claimed = claim.returning(*claim.table.c).cte("claimed")
        taken = take.where(exists(select(literal(1)).select_from(claimed))).returning(literal(1)).cte("taken")
        _CLAIMS[key] = select(select(func.count()).select_from(taken).scalar_subquery(), *claimed.c)
    return _CLAIMS[key]


def write_on_driver(connection: Connection, sql: str, params: Mapping[str, Any]) -> int:
    """Run one write in the driver's own SQL on the DBAPI cursor of `connection`; its row count.

    Reason: every message writes its receipt, and in a rush nearly every tap
    when its rider was last seen; through `exec_driver_sql` each still went
    through SQLAlchemy's execution context and result set-up, which cost more
    than SQLite's own INSERT. A driver's error is raised as SQLAlchemy's
    (`DBAPIError.instance`), so "database is locked" still reads as
    `OperationalError` to the router, and a connection found dead is not
    given back to the pool. Figure: the SQLite race of `bench/dispatch.py`
    (200 riders, members kept across winners' commits, load 8–11), the
    bot's CPU time per tap 387–444 µs through `exec_driver_sql`, 252–282 µs
    here (the receipt and the last-seen write, two statements of every tap).
    """
    count, _ = _on_driver(connection, sql, params, fetch=False)
    return count


def write_on_driver_rows(connection: Connection, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """`write_on_driver` for a write that gives rows back (`RETURNING`, a `WITH` ending in a SELECT):
    every row, as the driver gives them."""
    _, rows = _on_driver(connection, sql, params, fetch=True)
    return rows


def _on_driver(connection: Connection, sql: str, params: Mapping[str, Any],
               fetch: bool) -> tuple[int, list[tuple[Any, ...]]]:  # fmt: skip
    dbapi = connection.dialect.loaded_dbapi
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, params)
        count: int = cursor.rowcount
        rows = [tuple(row) for row in cursor.fetchall()] if fetch else []
    except dbapi.Error as exc:
        gone = connection.dialect.is_disconnect(exc, connection.connection.dbapi_connection, cursor)
        if gone:
            connection.invalidate(exc)  # not back to the pool
        raise DBAPIError.instance(sql, params, exc, dbapi.Error, connection_invalidated=gone) from exc
    finally:
        cursor.close()
    return count, rows


# --- record_receipt -------------------------------------------------------------------------

_RECEIPT = "INSERT INTO seen_event (platform, event_id, at) VALUES ({}) ON CONFLICT (platform, event_id) DO NOTHING"
_RECEIPT_SQL = {
    "sqlite": _RECEIPT.format(":platform, :event_id, :at"),
    "postgresql": _RECEIPT.format("%(platform)s, %(event_id)s, %(at)s"),
}
_STAMPS: dict[str, Callable[[Any], Any]] = {}
SEEN_EVENT = SeenEvent.__tablename__


def record_receipt(session: Session, platform: str, event_id: str, now: datetime) -> bool:
    """Record that this update was handled, in the session's transaction; False if it was already.

    Reason: each update is handled once, even across a restart, because its id
    is written in the same transaction as whatever the command did. The INSERT
    runs for every update, and through SQLAlchemy's compiler it cost twice as
    much: it is the driver's own SQL for each dialect, with `at` converted by
    the column's own type, as SQLAlchemy would hand it to this driver. It begins
    the transaction, and tells the members kept on SQLite (`KnownMembers`) that
    this row, and only this one, was written. Figure: with the member kept and
    `begin_immediate`, hot `/whoami` in the router 0.47 ms → 0.09 ms (commit
    30fb803); `bench/telegram_roundtrip.py` `/whoami` 1.34–1.40× a bare echo bot.
    """
    connection = session.connection()
    dialect = connection.dialect
    stamp = _STAMPS.get(dialect.name) or _stamp(dialect)
    params = {"platform": platform, "event_id": event_id, "at": stamp(now)}
    if write_on_driver(connection, _RECEIPT_SQL[dialect.name], params) != 1:
        return False
    count_receipt(session)
    note_written_in_place(session, SEEN_EVENT)  # past the session; no session holds a receipt object
    return True


def _stamp(dialect: Dialect) -> Callable[[Any], Any]:
    """How the receipt's time column hands a datetime to this dialect's driver."""
    processor = SeenEvent.__table__.c.at.type.bind_processor(dialect)
    _STAMPS[dialect.name] = processor or (lambda value: value)
    return _STAMPS[dialect.name]


# --- member_by_account ----------------------------------------------------------------------

#: Built once: every update runs it, and building a statement costs more than running it.
#: The member comes with all their accounts (`/whoami`, replies and notices use them); the one
#: that wrote is picked from those, which costs less than loading it as a row of its own.
WHO = (
    select(Member)
    .where(
        Member.id
        == select(Identity.member_id)
        .where(Identity.platform == bindparam("platform"), Identity.external_id == bindparam("user"))
        .scalar_subquery()
    )
    .options(joinedload(Member.identities))
)


def member_by_account(session: Session, platform: str, user_id: str) -> Member | None:
    """The member (active or not) with this account, with all their accounts loaded; None if nobody.

    Reason: every update asks who sent it. One prebuilt query loads the member
    and their accounts together; in the event loop's SQLite session the member
    is then kept (`KnownMembers`) and the next message from them reads nothing,
    while the database holds exactly what was loaded. Figure: hot `/whoami` in
    the router 1.0 → 0.6 ms for the one prebuilt query (commit 4fd2ae7), then
    0.35 ms loaded afresh against 0.09 ms kept (commit 30fb803).
    """
    kept = kept_members(session)
    key = (platform, user_id)
    member = kept.get(key) if kept is not None else None
    if member is None:
        member = session.scalars(WHO, {"platform": platform, "user": user_id}).unique().one_or_none()
        if member is not None and kept is not None:
            kept[key] = member
    return member
