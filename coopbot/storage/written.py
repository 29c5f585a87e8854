"""Which tables a transaction wrote, and which a read read: what a copy built from the database depends on.

The public page is built from a dozen tables and kept (`coopbot.web.public`);
it used to be dropped by every commit, and most commits (the outbox marking a
message sent, a scheduler sweep, an order) write tables the page never reads.
So each transaction notes the tables it writes, and each build the tables it
reads: `coopbot.db.Commits` counts commits per table written, and a copy is
good while none of the tables it was read from has moved.

What is noted, and from where:

- statements run through the session (`Session.execute`, the ORM's own loads,
  Core INSERT, UPDATE and DELETE): by the session's `do_orm_execute` event,
  from the statement itself (`statement_tables`);
- objects the ORM flushes: by `after_flush`, from their mappers' tables
  (`flushed_tables`);
- SQL handed past the session to the connection or the driver (this
  package's receipts and bulk inserts): by the function that does it, calling
  `note_written`. A write that none of these sees is a bug that leaves a copy
  stale until its age bound (`KEPT_FOR`); text SQL that is not a SELECT counts
  as writing everything (`EVERYTHING`), and text read as reading everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import find_tables

#: A table name that stands for all of them: a write or a read whose tables cannot be named.
EVERYTHING = "*"
#: `Session.info` key: the tables the session's current transaction has written so far.
_WRITTEN = "coopbot.storage.written"
#: Statements read as reading, when given as text.
_READING_WORDS = ("SELECT", "PRAGMA", "WITH", "EXPLAIN")


def note_written(session: Session, *tables: str) -> None:
    """`tables` are written in the session's current transaction (counted when it commits)."""
    written: set[str] | None = session.info.get(_WRITTEN)
    if written is None:
        written = session.info[_WRITTEN] = set()
    written.update(tables)


def written_so_far(session: Session) -> set[str]:
    """The tables the session's current transaction has written so far."""
    written: set[str] | None = session.info.get(_WRITTEN)
    return set(written) if written is not None else set()


def forget_written(session: Session) -> None:
    """The transaction has ended: what it wrote is counted already, or was rolled back."""
    session.info.pop(_WRITTEN, None)


def statement_tables(statement: Any) -> set[str]:
    """The tables a statement reads or writes; `EVERYTHING` for text, whose tables are unknown."""
    if getattr(statement, "_is_textual", False) or not hasattr(statement, "get_children"):
        return {EVERYTHING}
    return {found.name for found in find_tables(statement, include_joins=True, include_aliases=True)
            if isinstance(found, Table)}  # fmt: skip


def written_by(statement: Any, *, is_select: bool) -> set[str]:
    """The tables a statement run through the session writes: none for a read."""
    if getattr(statement, "_is_textual", False):
        reads = str(statement).lstrip().upper().startswith(_READING_WORDS)
        return set() if reads else {EVERYTHING}
    if is_select:
        return set()
    table = getattr(statement, "table", None)
    return {table.name} if isinstance(table, Table) else {EVERYTHING}


def flushed_tables(session: Session) -> set[str]:
    """The tables of the objects a flush wrote (called from `after_flush`, while they are still listed)."""
    tables: set[str] = set()
    for objects in (session.new, session.dirty, session.deleted):
        tables.update(_mapped_tables(objects))
    return tables


def _mapped_tables(objects: Iterable[object]) -> set[str]:
    names: set[str] = set()
    for cls in {type(obj) for obj in objects}:
        table = getattr(cls, "__table__", None)
        names.add(table.name if isinstance(table, Table) else EVERYTHING)
    return names
