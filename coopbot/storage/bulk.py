"""Writing thousands of rows in one go: a claim tells 200 riders, a close 10,000 members.

One round trip, or one trip through SQLAlchemy's per-row machinery, per row
would dominate each of them. So rows are written in one statement
(`bulk_insert`: COPY on PostgreSQL, one executemany elsewhere), the keys
already stored are looked up in one go (`present_keys`), rows that never need
to pass through Python go straight from a SELECT (`insert_new_from_select`),
and the garbage collector rests while a close builds its rows
(`without_cycle_collection`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import ARRAY, Column, CursorResult, Dialect, String, Table, any_, bindparam, insert, select
from sqlalchemy.orm import Session

from coopbot.storage.small_writes import upsert_of
from coopbot.storage.statements import AnySelect
from coopbot.storage.written import note_written

#: Keys looked up per SELECT on SQLite: well under its bound-parameter limit.
KEY_CHUNK = 5000
#: From how many rows PostgreSQL gets COPY: a single row costs the same either way (figures
#: in `bulk_insert`) and goes through SQLAlchemy, whose errors callers know.
COPY_FROM = 2


def bulk_insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows in the session's transaction, as fast as the database allows.

    Reason: a claim tells 200 riders, an announcement every member, and a
    10,000-member close writes an allocation per member: SQLAlchemy's generic
    per-row parameter handling would cost more than the database's own work.
    Each value goes once through the column type's own bind processor (the
    conversion an ORM insert does), then PostgreSQL gets COPY and SQLite one
    executemany of the compiled INSERT. Every row gives the same columns and
    all of them that matter: COPY applies no column defaults. Figure: on
    PostgreSQL one row costs the same as an INSERT (0.28 ms against 0.30 ms),
    20 rows half the time, 200 rows 0.4 times (commit 429d59c);
    `bench/period_close.py`, 10,000 members on SQLite, 0.23–0.29 s, 2.5–2.9×
    one bare `GROUP BY` (README).
    """
    if not rows:
        return
    note_written(session, table.name)  # past the session: `coopbot.storage.written`
    connection = session.connection()
    dialect = connection.dialect
    sql, names = _insert_sql(table, tuple(rows[0]), dialect)
    changes = [
        (place, change)
        for place, name in enumerate(names)
        if (change := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    # Converted values are remembered while the same object comes again (`now`, a shared
    # message's buttons): most of a batch's conversions are repeats.
    last: dict[int, tuple[Any, Any]] = {}
    values = []
    for row in rows:
        value = list(map(row.__getitem__, names))
        for place, change in changes:
            given = value[place]
            seen = last.get(place)
            if seen is None or seen[0] is not given:
                seen = last[place] = (given, change(given))
            value[place] = seen[1]
        values.append(tuple(value))
    if dialect.name == "postgresql" and len(rows) >= COPY_FROM:
        columns = ", ".join(f'"{name}"' for name in names)
        raw: Any = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
            for written in values:
                copy.write_row(written)
    elif dialect.positional:
        connection.exec_driver_sql(sql, values)
    else:
        connection.exec_driver_sql(sql, [dict(zip(names, value, strict=True)) for value in values])


_INSERTS: dict[tuple[str, tuple[str, ...], str], tuple[str, tuple[str, ...]]] = {}


def _insert_sql(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """The INSERT of these columns in the dialect's SQL, and the columns in the order
    its parameters take; compiled once per process."""
    key = (table.name, columns, dialect.name)
    if key not in _INSERTS:
        compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
        names = tuple(compiled.positiontup or ()) if dialect.positional else columns
        _INSERTS[key] = (str(compiled), names)
    return _INSERTS[key]


def present_keys(session: Session, column: Column[str], keys: list[str]) -> list[str]:
    """Which of these keys `column` already holds, in as few statements as the database allows.

    Reason: an announcement to every member, or a claim that closes 200
    offers, checks every message's idempotency key before writing: one
    statement for all of them, not one per message. PostgreSQL takes the keys
    as one array parameter (`= ANY`); SQLite, which has no arrays and a bound
    on parameters (32,766 by default), takes them `KEY_CHUNK` at a time.
    Figure: not measured alone; part of every claim in `bench/dispatch.py`
    (0.58× the bare UPDATE on SQLite, 0.59× on PostgreSQL, README).
    """
    if session.connection().dialect.name == "postgresql":
        wanted = bindparam("keys", keys, type_=ARRAY(String))
        return list(session.scalars(select(column).where(column == any_(wanted))))
    found: list[str] = []
    for start in range(0, len(keys), KEY_CHUNK):
        found += session.scalars(select(column).where(column.in_(keys[start : start + KEY_CHUNK])))
    return found


def insert_new_from_select(
    session: Session, table: Table, columns: Sequence[str], rows: AnySelect, unique: Sequence[str]
) -> int:
    """INSERT ... SELECT of `rows` into `columns`, skipping the rows whose `unique` columns
    clash with a stored row; returns how many were written.

    Reason: the rows never pass through Python, so telling every member of a
    10,000-member co-op costs the database's work alone. `ON CONFLICT DO
    NOTHING` is spelled by each dialect's own INSERT construct, and the count
    is kept (SQLAlchemy drops an INSERT's count otherwise). Figure:
    `bench/period_close.py`, 10,000 members × 50 contributions, 1.1 s → 0.23–
    0.29 s on SQLite (6.6–7.3× → 2.5–2.9× the bare `GROUP BY`), PostgreSQL
    17–18× → 6.4× (commit 3b69c97, with the share written when sent).
    """
    dialect = session.connection().dialect.name
    upsert = upsert_of(dialect)(table)
    statement = (
        upsert.from_select(list(columns), rows)
        .on_conflict_do_nothing(index_elements=list(unique))
        .execution_options(preserve_rowcount=True)
    )
    return cast(CursorResult[Any], session.execute(statement)).rowcount


@contextmanager
def without_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector for the length of a big write, such as a period close.

    Reason: a 10,000-member close holds some 50,000 new objects (rows, shares)
    and makes no reference cycles: reference counting frees them all, while the
    collector would walk the growing heap again and again. It runs again right
    after (unless it was off already). Figure: 0.08 s of a 0.45 s close on
    SQLite (`bench/period_close.py`, 10,000 members, commit 429d59c).
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
