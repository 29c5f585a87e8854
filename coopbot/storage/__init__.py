"""Where coopbot talks to its database in ways the ORM would not: every such technique, by name.

The co-op's rules (`coopbot/services`, `handlers`) use the ORM and SQLAlchemy
Core only. Whatever is specific to a database or a driver, and was worth it
when measured, is one named operation here, whose docstring says why it is
done that way and what it was measured to save:

Every message (`arrival`, `statements`)
    `arrive`           the receipt, the sender, their last-seen time: on PostgreSQL one statement
    `as_loaded`        a row given back by the driver made the session's object, as if the ORM loaded it
    `record_receipt`   the exactly-once receipt, as the driver's own SQL per dialect
    `member_by_account` who sent it: one prebuilt query, or the member kept on SQLite
    `claim_read`       one row read on the DBAPI cursor (every tap of a race for a job)
    `rows_read`        every row of one read on the DBAPI cursor (the share messages a pass writes)
    `claim_write`      the race's claim, its offer taken, its row back: on PostgreSQL one statement
    `write_on_driver`  one write on the DBAPI cursor (the receipt, the member's times in `visits`)

The member's own times (`visits`)
    `write_last_seen`, `write_last_job`  on the row and on the object the session holds alike

SQLite (`sqlite`)
    `sqlite_pragmas`   WAL, busy timeout, foreign keys, `synchronous=NORMAL`
    `begin_immediate`  BEGIN IMMEDIATE as the dialect's own begin, not an event; the
                       engine's writers take turns in Python (`WriteTurns`), not in SQLite's sleeps
    `read_only_engine` reads that never write begin DEFERRED, so no writer queues them
    `KnownMembers`     the members kept between messages while their rows are unchanged

Thousands of rows (`bulk`)
    `bulk_insert`      COPY on PostgreSQL, one executemany elsewhere
    `present_keys`     which keys are stored already: one array parameter, or chunks
    `insert_new_from_select`  INSERT ... SELECT ... ON CONFLICT DO NOTHING, counted
    `without_cycle_collection`  the garbage collector rests during a big write

What a transaction wrote (`written`)
    `note_written`     the tables written past the session, for `coopbot.db.Commits`, which counts
                       commits per table: the public page is dropped only by those to tables it read;
                       and for `KnownMembers`, which drops its members only for `member`/`identity`
    `note_written_in_place`  written on the row and on the object held alike: nothing kept is stale

`coopbot.db` makes engines and sessions (and calls `sqlite_pragmas`,
`begin_immediate` and `read_only_engine` for SQLite; `read_only` is its
read-only session); `coopbot.loop_sessions` is the event loop's
session, which uses `KnownMembers`.
"""

from __future__ import annotations

from coopbot.storage.arrival import Arrival, arrive, as_loaded
from coopbot.storage.bulk import bulk_insert, insert_new_from_select, present_keys, without_cycle_collection
from coopbot.storage.sqlite import KnownMembers, WriteTurns, begin_immediate, read_only_engine, sqlite_pragmas
from coopbot.storage.statements import (
    claim_read,
    claim_write,
    member_by_account,
    record_receipt,
    rows_read,
    write_on_driver,
)
from coopbot.storage.visits import write_last_job, write_last_seen
from coopbot.storage.written import note_written, note_written_in_place

__all__ = [
    "Arrival",
    "KnownMembers",
    "WriteTurns",
    "arrive",
    "as_loaded",
    "begin_immediate",
    "bulk_insert",
    "claim_read",
    "claim_write",
    "insert_new_from_select",
    "member_by_account",
    "note_written",
    "note_written_in_place",
    "present_keys",
    "read_only_engine",
    "record_receipt",
    "rows_read",
    "sqlite_pragmas",
    "without_cycle_collection",
    "write_last_job",
    "write_last_seen",
    "write_on_driver",
]
