"""The few rows an order writes at a time, on the driver's own cursor: an event with its id back,
notices whose keys are new.

A shop's order (`POST /api/v1/orders`, then its confirmation) writes a handful
of rows in each of its two transactions: the job's events (`job_event`: the
quote, the confirmation, the offer) and its notices (`outbox`: the courier's
offer, the coordinators' line). Each went through SQLAlchemy's unit of work
or its per-statement bookkeeping (building and compiling the statement,
processing parameters and results, the session's events), which cost many
times the database's own work on rows this small; and each notice cost two
statements, a SELECT of its key, then the INSERT. Here each statement is
compiled once per dialect, as `bulk_insert` does, and runs on the DBAPI
cursor of the session's connection, inside its transaction:

- `insert_returning_id`: one row, its new id read back (`RETURNING id`, which
  SQLite has had since 3.35 and PostgreSQL always); `insert_loaded` makes it
  the session's object as well, as if read back;
- `insert_new`: rows skipped where their unique column holds a stored value
  (`ON CONFLICT (…) DO NOTHING`), counted: one statement for the check and
  the write. A concurrent transaction's row with the same key is waited for
  and skipped, never an error.

Values go through each column type's own bind processor (the conversion an ORM
insert does), and the table is noted as written (`note_written`), as the
session does not see these statements. Figure: the services' part of one
order (create and confirm as `bench/web.py` sends them, one client, SQLite),
counted in instructions under valgrind so that a busy machine does not blur
it: 20.4 million before these and the statements built once in
`services.dispatch.events`, `orders` and `polls.settings`, 13.0 million
after; 20 statements an order, then 17.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Dialect, Table
from sqlalchemy.orm import Session, make_transient_to_detached

from coopbot.models import Base
from coopbot.storage.written import note_written

#: A statement in a dialect's SQL, the columns in the order its parameters take, and the
#: bind processor of each column that has one (by place).
Prepared = tuple[str, tuple[str, ...], tuple[tuple[int, Callable[[Any], Any]], ...]]
_PREPARED: dict[tuple[str, str, tuple[str, ...], str], Prepared] = {}
_Mapped = TypeVar("_Mapped", bound=Base)
#: The dialects whose INSERT has `ON CONFLICT … DO NOTHING` and `RETURNING` (all coopbot runs on).
UPSERTS = ("sqlite", "postgresql")


def upsert_of(dialect: str) -> Callable[[Table], Any]:
    """The dialect's own INSERT, which has `ON CONFLICT`. Its module is imported when first
    used: PostgreSQL's dialect is 2.2 MiB a bot on SQLite never needs (`bench/startup.py`)."""
    insert_of: Callable[[Table], Any] = importlib.import_module(f"sqlalchemy.dialects.{dialect}").insert
    return insert_of


def supported(session: Session) -> bool:
    """Whether the session's database takes these statements (SQLite and PostgreSQL do)."""
    return session.get_bind().dialect.name in UPSERTS


def insert_returning_id(session: Session, table: Table, row: dict[str, Any]) -> int:
    """Insert one row in the session's transaction; returns its new primary key (`id`)."""
    note_written(session, table.name)
    connection = session.connection()
    sql, names, processors = _prepared("returning", table, tuple(row), connection.dialect)
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, _params(row, names, processors, connection.dialect))
        found = cursor.fetchone()
    finally:
        cursor.close()
    if found is None:  # pragma: no cover - RETURNING gives back the row it wrote
        raise RuntimeError(f"INSERT INTO {table.name} gave no id back")
    return int(found[0])


def insert_loaded(session: Session, mapped: type[_Mapped], values: dict[str, Any]) -> _Mapped:
    """Insert one row (`values`: every column but `id`), and return it as the session's object,
    persistent and unchanged, as if just loaded: no flush, and no query to read it back.

    Reason: the ORM's flush of one new object (a quoted job) cost several times
    the INSERT itself. Every column must be given: one left out would be read
    from the database when first used (the ORM marks it expired).
    """
    table = cast(Table, mapped.__table__)
    loaded = mapped(id=insert_returning_id(session, table, values), **values)
    make_transient_to_detached(loaded)
    session.add(loaded)
    return loaded


def insert_new(session: Session, table: Table, rows: Sequence[dict[str, Any]], unique: str) -> int:
    """Insert the rows whose `unique` column holds no stored value yet; returns how many were stored.

    All rows give the same columns. Rows repeating a value among themselves are the
    caller's to drop (the first would be stored, the others skipped).
    """
    if not rows:
        return 0
    note_written(session, table.name)
    connection = session.connection()
    dialect = connection.dialect
    sql, names, processors = _prepared(f"new:{unique}", table, tuple(rows[0]), dialect)
    params = [_params(row, names, processors, dialect) for row in rows]
    cursor = connection.connection.cursor()
    try:
        if len(params) == 1:
            cursor.execute(sql, params[0])
        else:
            cursor.executemany(sql, params)  # both drivers sum the rows written
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _params(row: dict[str, Any], names: tuple[str, ...], processors: tuple[tuple[int, Callable[[Any], Any]], ...],
            dialect: Dialect) -> Any:  # fmt: skip
    value = [row[name] for name in names]
    for place, change in processors:
        value[place] = change(value[place])
    return tuple(value) if dialect.positional else dict(zip(names, value, strict=True))


def _prepared(kind: str, table: Table, columns: tuple[str, ...], dialect: Dialect) -> Prepared:
    """The statement of `kind` for these columns, compiled once per process and dialect."""
    key = (kind, table.name, columns, dialect.name)
    found = _PREPARED.get(key)
    if found is None:
        upsert = upsert_of(dialect.name)(table)
        if kind == "returning":
            statement: Any = upsert.returning(table.c.id)
        else:
            statement = upsert.on_conflict_do_nothing(index_elements=[kind.removeprefix("new:")])
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        names = tuple(compiled.positiontup or ()) if dialect.positional else columns
        processors = tuple(
            (place, change)
            for place, name in enumerate(names)
            if (change := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
        )
        found = _PREPARED[key] = (str(compiled), names, processors)
    return found
