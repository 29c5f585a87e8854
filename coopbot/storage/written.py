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

The same record tells the event loop's SQLite session which of the objects it
keeps from one message to the next (`coopbot.storage.sqlite.KnownMembers`)
may now differ from their rows: every table written (`moved_so_far`), but for
the writes made on the kept object itself as well as on its row, after which
object and row still agree, and the rows of which no object is ever held
(`note_written_in_place`: when a member was last seen, their last job, the
receipts).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker
from sqlalchemy.sql.util import find_tables

#: A table name that stands for all of them: a write or a read whose tables cannot be named.
EVERYTHING = "*"
#: `Session.info` keys: the tables the session's current transaction has written so far, and
#: those among them whose rows may now differ from the objects the session holds.
_WRITTEN = "coopbot.storage.written"
_MOVED = "coopbot.storage.moved"
#: Statements read as reading, when given as text.
_READING_WORDS = ("SELECT", "PRAGMA", "WITH", "EXPLAIN")


def note_written(session: Session, *tables: str) -> None:
    """`tables` are written in the session's current transaction (counted when it commits)."""
    _noted(session, _WRITTEN).update(tables)
    _noted(session, _MOVED).update(tables)


def note_written_in_place(session: Session, *tables: str) -> None:
    """`tables` are written, and no object the session holds differs from its row for it: each row
    written is set to the same value on the object the session holds for it (`set_committed_value`),
    or the session never holds one (the receipts). Counted as written, not as moved."""
    _noted(session, _WRITTEN).update(tables)


def _noted(session: Session, key: str) -> set[str]:
    noted: set[str] | None = session.info.get(key)
    if noted is None:
        noted = session.info[key] = set()
    return noted


def written_so_far(session: Session) -> set[str]:
    """The tables the session's current transaction has written so far."""
    written: set[str] | None = session.info.get(_WRITTEN)
    return set(written) if written is not None else set()


def moved_so_far(session: Session) -> set[str]:
    """The tables written so far in the session's transaction other than in place: the session's
    objects of these tables may differ from their rows."""
    moved: set[str] | None = session.info.get(_MOVED)
    return set(moved) if moved is not None else set()


def forget_written(session: Session) -> None:
    """The transaction has ended: what it wrote is counted already, or was rolled back."""
    session.info.pop(_WRITTEN, None)
    session.info.pop(_MOVED, None)


def watch_writes(target: sessionmaker[Session] | Session) -> None:
    """Note what `target`'s transactions write through the session (its statements, its flushes),
    and forget it once each transaction has ended; whoever reads it listens to `after_commit`,
    which comes before the end. Installed once per target, however many readers ask."""
    for name, listener in (
        ("after_flush", _note_flushed),
        ("do_orm_execute", _note_executed),
        ("after_transaction_end", _forget_at_end),
    ):
        if not event.contains(target, name, listener):
            event.listen(target, name, listener)


def _forget_at_end(session: Session, transaction: SessionTransaction) -> None:
    """Once the outermost transaction ends, committed (and counted) or rolled back; a savepoint
    rolled back keeps what was noted, as what was written before it may still commit."""
    if transaction.parent is None:
        forget_written(session)


def _note_flushed(session: Session, _flush_context: Any) -> None:
    note_written(session, *flushed_tables(session))


def _note_executed(state: ORMExecuteState) -> None:
    tables = written_by(state.statement, is_select=state.is_select)
    if tables:
        note_written(state.session, *tables)


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
