"""What every message does first, before any command runs: its receipt, who sent it, when they were
last seen; on PostgreSQL as one statement.

Every update the bot is handed writes its exactly-once receipt
(`record_receipt`), loads its sender with all their accounts
(`member_by_account`), and, when the sender is an active member whose
command they may use and they were last seen over a minute ago, writes when
they were last seen (`write_last_seen`). On SQLite, in the process, those
stay three statements (the member mostly kept, `KnownMembers`). On
PostgreSQL each was a round trip to the server, and in a rush nearly every
tap on an offer pays all three: `arrive` sends them as one statement
(`INSERT … RETURNING` and `UPDATE … RETURNING` in a `WITH`, then the member
and their accounts), in the same transaction as whatever the command then
does. The member and their accounts are made the session's objects from the
rows the driver gives back, each column through its type's own result
processor, as the ORM's own load would leave them: persistent, unchanged, the
accounts as the member's loaded `identities` in id order (`as_loaded`, which
`dispatch.jobs.claim` uses too for the job its claim gives back).

Figure: see `arrive`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Dialect, inspect
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from coopbot.models import Base, Identity, Member, SeenEvent
from coopbot.storage.sqlite import count_receipt
from coopbot.storage.statements import member_by_account, record_receipt, write_on_driver_rows
from coopbot.storage.visits import TOUCH_EVERY, stale, stamp, write_last_seen
from coopbot.storage.written import note_written_in_place

_Mapped = TypeVar("_Mapped", bound=Base)
#: A mapped class's columns as (attribute key, column name), in table order.
Columns = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Arrival:
    """A message's start: whether it is new, and who sent it (None: nobody we know of)."""

    fresh: bool
    member: Member | None


def arrive(session: Session, platform: str, event_id: str | None, user_id: str, now: datetime,
           touching: Collection[str]) -> Arrival:  # fmt: skip
    """Receive one update in the session's transaction (beginning it): its receipt, its sender, and
    their last-seen time, written if they are active, their role is in `touching` (the roles that
    may use the message's command; empty when it carries none) and they were last seen over a
    minute ago (`visits.stale`).

    A replay (`fresh` False) writes nothing: its sender is still read, and when they were last
    seen is left alone.

    Reason: on PostgreSQL the three were three round trips of every message,
    and loading the member through the ORM the larger part of a lost tap's
    own work. Figures, `bench/dispatch.py`'s race on PostgreSQL with this and
    `statements.claim_write`, against the code before: a tap that finds the
    job taken 7 round trips → 5 (the pool's ping, BEGIN, this, the claim's
    read, COMMIT); the bot's instructions a tap (valgrind, taps one after the
    other, a job of 200 riders) 2.31 million → 1.66 million, of 20 riders
    2.74 million → 1.82 million; the worker
    threads' CPU a tap in the race, 200 riders, 1,010–1,135 µs → 695–1,010 µs
    (three runs each, load 5–7).
    """
    if event_id is not None and session.get_bind().dialect.name == "postgresql":
        return _arrive_in_one(session, platform, event_id, user_id, now, touching)
    fresh = event_id is None or record_receipt(session, platform, event_id, now)
    if event_id is None:
        session.connection()  # begins the transaction, as a receipt would
    member = member_by_account(session, platform, user_id)
    if fresh and member is not None and member.active and member.role in touching and stale(member, now):
        write_last_seen(session, member, now)
    return Arrival(fresh, member)


# --- PostgreSQL: one statement --------------------------------------------------------------


def _columns(mapped: type[Base]) -> Columns:
    """In the table's order, which is the order of a `RETURNING` of the table's columns too."""
    mapper: Mapper[Any] = inspect(mapped)
    return tuple((mapper.get_property_by_column(column).key, column.name) for column in mapped.__table__.c)


MEMBER_COLUMNS = _columns(Member)
IDENTITY_COLUMNS = _columns(Identity)
#: The receipt, the sender's last-seen write and the sender with their accounts, in one statement.
#: A statement's parts all see the database as it was when it began: the member's row comes
#: back as it was before the UPDATE, and `seen` says whether it was written.
ARRIVE = f"""
WITH receipt AS (
    INSERT INTO {SeenEvent.__tablename__} (platform, event_id, at) VALUES (%(platform)s, %(event_id)s, %(at)s)
    ON CONFLICT (platform, event_id) DO NOTHING RETURNING 1
), sender AS (
    SELECT member_id FROM identity WHERE platform = %(platform)s AND external_id = %(user)s
), seen AS (
    UPDATE member SET last_seen_at = %(at)s
    WHERE id = (SELECT member_id FROM sender) AND EXISTS (SELECT FROM receipt) AND active
      AND role = ANY(%(roles)s)
      AND (last_seen_at IS NULL OR idle_asked_at IS NOT NULL OR last_seen_at <= %(stale)s)
    RETURNING 1
)
SELECT (SELECT count(*) FROM receipt), (SELECT count(*) FROM seen),
       {", ".join(f"m.{name}" for _, name in MEMBER_COLUMNS)},
       {", ".join(f"i.{name}" for _, name in IDENTITY_COLUMNS)}
FROM (SELECT 1) AS one
LEFT JOIN member AS m ON m.id = (SELECT member_id FROM sender)
LEFT JOIN identity AS i ON i.member_id = m.id
ORDER BY i.id
"""
_PROCESSORS: dict[tuple[str, str], tuple[Callable[[Any], Any] | None, ...]] = {}


def _arrive_in_one(session: Session, platform: str, event_id: str, user_id: str, now: datetime,
                   touching: Collection[str]) -> Arrival:  # fmt: skip
    """`arrive` on PostgreSQL."""
    connection = session.connection()
    dialect = connection.dialect
    params = {
        "platform": platform, "event_id": event_id, "user": user_id, "at": stamp(dialect, now),
        "stale": stamp(dialect, now - TOUCH_EVERY), "roles": [str(role) for role in touching],
    }  # fmt: skip
    rows = write_on_driver_rows(connection, ARRIVE, params)
    fresh, seen = rows[0][0] == 1, rows[0][1] == 1
    if fresh:
        count_receipt(session)
        note_written_in_place(session, SeenEvent.__tablename__)  # past the session; no object is held
    if seen:
        count_receipt(session)
        note_written_in_place(session, "member")  # on the row, and below on the object
    if rows[0][2] is None:
        return Arrival(fresh, None)
    member = _member_of(session, rows, dialect)
    if member is None:  # the session holds them already: that object, as the ORM's load keeps it
        member = member_by_account(session, platform, user_id)
        assert member is not None
    if seen:
        set_committed_value(member, "last_seen_at", now)
    return Arrival(fresh, member)


def _member_of(session: Session, rows: Sequence[tuple[Any, ...]], dialect: Dialect) -> Member | None:
    """The member and their accounts from the statement's rows, added to the session; None if the
    session holds any of them already."""
    split = 2 + len(MEMBER_COLUMNS)
    member = as_loaded(session, Member, rows[0][2:split], dialect)
    if member is None:
        return None
    accounts = []
    for row in rows:
        if row[split] is not None:
            account = as_loaded(session, Identity, row[split:], dialect)
            if account is None:
                return None
            accounts.append(account)
    set_committed_value(member, "identities", accounts)
    for account in accounts:
        set_committed_value(account, "member", member)
    session.add(member)  # with its accounts (the relationship's cascade)
    return member


def as_loaded(session: Session, mapped: type[_Mapped], values: Sequence[Any],
              dialect: Dialect | None = None) -> _Mapped | None:  # fmt: skip
    """A row of all of `mapped`'s columns in table order, made the session's object as the ORM's load
    would leave it: persistent, unchanged, each value as the driver gave it through its column
    type's result processor for `dialect` (None: Core's result processed them already). None if the
    session holds that row's object already: the caller then loads it the ORM's way, which keeps
    what the object held.

    The object is not added to the session here: `session.add` does it, with the objects its
    relationships' cascade reaches, once they are set (`set_committed_value`)."""
    mapper, columns = _mapped(mapped)
    if dialect is None:
        state_dict = {key: value for (key, _), value in zip(columns, values, strict=True)}
    else:
        state_dict = {
            key: value if processor is None or value is None else processor(value)
            for (key, _), value, processor in zip(columns, values, _processed(mapped, dialect), strict=True)
        }
    key = mapper.identity_key_from_primary_key((state_dict["id"],))
    if key in session.identity_map:
        return None
    obj: _Mapped = mapper.class_manager.new_instance()
    state = instance_state(obj)
    state.dict.update(state_dict)
    state.key = key  # persistent once added; every value set counts as loaded, as nothing was changed
    return obj


_MAPPED: dict[type[Base], tuple[Mapper[Any], Columns]] = {}


def _mapped(mapped: type[Base]) -> tuple[Mapper[Any], Columns]:
    found = _MAPPED.get(mapped)
    if found is None:
        found = _MAPPED[mapped] = (inspect(mapped), _columns(mapped))
    return found


def _processed(mapped: type[Base], dialect: Dialect) -> tuple[Callable[[Any], Any] | None, ...]:
    """Each column's result processor for this dialect (None where the driver's value is kept)."""
    found = _PROCESSORS.get((mapped.__name__, dialect.name))
    if found is None:
        table = mapped.__table__
        found = _PROCESSORS[(mapped.__name__, dialect.name)] = tuple(
            table.c[name].type.dialect_impl(dialect).result_processor(dialect, None) for _, name in _mapped(mapped)[1]
        )
    return found
