"""SQLite: how its connections are set up, and the members kept while it is unchanged.

Every SQLite connection coopbot opens gets the same pragmas (`sqlite_pragmas`)
and begins each transaction with BEGIN IMMEDIATE (`begin_immediate`), but for
the reads that never write, which have an engine of their own beginning
DEFERRED (`read_only_engine`, used by `coopbot.db.read_only`). The
event loop's long-lived session keeps the members it loaded from one message
to the next (`KnownMembers`), trusting SQLite's own counters to say when
anything changed: `PRAGMA data_version` for other connections' commits, and
for this one's the tables each transaction wrote (`coopbot.storage.written`),
checked against the driver's `total_changes`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import NullPool

from coopbot.models import Member
from coopbot.storage.written import EVERYTHING, moved_so_far, watch_writes

#: Past this many members kept, the next message starts afresh (a bound on memory).
MOST_KEPT = 1000
#: `Session.info` keys, private to the storage package: the members kept for a session
#: (`kept_members`), and how many rows its current message wrote that leave them as they are:
#: receipts and in-place writes (`count_receipt`).
_KEPT = "coopbot.storage.known_members"
_RECEIPTS = "coopbot.storage.receipts"

#: The key a member is kept under: (platform, user id on that platform).
Account = tuple[str, str]


def sqlite_pragmas(engine: Engine, *, busy_timeout: float, wal: bool) -> None:
    """Set up every connection the engine opens: WAL, busy timeout, foreign keys, `synchronous=NORMAL`.

    Reason: WAL lets readers (the outbox, `/why`) read while a command writes, and
    with it `synchronous=NORMAL` syncs at checkpoints instead of at every commit;
    the busy timeout makes a second writer wait its turn instead of failing.
    pysqlite's own transaction handling is switched off (`isolation_level =
    None`) so that SQLAlchemy, through `begin_immediate`, decides when a
    transaction begins. Figure: none of its own; every SQLite figure in the
    README's benchmark table is measured with these settings.
    """
    milliseconds = int(busy_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={milliseconds}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def begin_immediate(engine: Engine, *, busy_timeout: float = 0.0) -> None:
    """Begin every transaction of a SQLite engine with BEGIN IMMEDIATE, its writers taking turns.

    Reason: a read followed by a write (claim a job, redeem an invite) then
    cannot interleave with another writer, and the busy timeout makes the
    second writer wait instead of failing. It replaces the dialect's own begin
    rather than listening to a "begin" event: any connection event makes
    SQLAlchemy run its event machinery around every statement, which cost a
    third of a short command (part of hot `/whoami` in the router going from
    0.47 ms to 0.09 ms, commit 30fb803).

    The engine's writers in this process also wait for each other in Python
    (`WriteTurns`), not in SQLite: see there why, and what it saves.
    """
    turns = WriteTurns(busy_timeout)
    engine.dialect.do_begin = turns.begin  # type: ignore[method-assign]
    engine.dialect.do_commit = turns.commit  # type: ignore[method-assign]
    engine.dialect.do_rollback = turns.rollback  # type: ignore[method-assign]
    engine.dialect.do_close = turns.close  # type: ignore[method-assign]


def _begin_immediate(dbapi_connection: Any) -> None:
    dbapi_connection.execute("BEGIN IMMEDIATE")


def _raw(dbapi_connection: Any) -> Any:
    """The driver's connection itself: SQLAlchemy hands the dialect its pool's proxy or the connection."""
    return getattr(dbapi_connection, "dbapi_connection", dbapi_connection)


class WriteTurns:
    """One engine's writers in this process, handed SQLite's write lock one after the other.

    Reason: SQLite makes a writer that finds the lock taken sleep and try
    again (its busy handler sleeps 1, 2, 5, 10 … up to 100 ms a try), so
    under load the lock is often free while every waiter sleeps, and the
    unlucky ones wait the longest. The shops' API (20 clients ordering at
    once in `bench/web.py`) ran its transactions in worker threads that way,
    each one's turn a matter of luck. Here a writer first waits for this engine's turn
    (a `threading.Lock`, which wakes the next waiter the moment the last one
    commits or rolls back) and only then asks SQLite, which finds the lock
    free unless another process or another engine holds it; SQLite's busy
    timeout still covers those. A turn not had within `busy_timeout` is not
    waited for longer: the writer goes on to BEGIN and SQLite's own waiting,
    as before, so a stuck holder fails the others as it did (after waiting
    up to twice the busy timeout). Figure:
    `bench/web.py --rounds 2 --seconds 4` on a busy machine, orders p99
    1.5–2.3 s waiting in SQLite (seven runs: five before this and the public
    page's per-table counting, two with only this undone), 0.39–1.24 s taking
    turns (seven runs, five under 0.83 s); orders a second unchanged (41–64
    against 42–76): they are bound by the CPU, not by the lock.
    """

    def __init__(self, busy_timeout: float) -> None:
        self._lock = threading.Lock()
        self._wait = busy_timeout
        #: The DBAPI connection whose transaction holds the turn.
        self._holder: Any = None

    def begin(self, dbapi_connection: Any) -> None:
        got = self._lock.acquire(timeout=self._wait) if self._wait > 0 else self._lock.acquire(blocking=False)
        try:
            _begin_immediate(dbapi_connection)
        except BaseException:
            if got:
                self._lock.release()
            raise
        if got:
            self._holder = _raw(dbapi_connection)

    def commit(self, dbapi_connection: Any) -> None:
        dbapi_connection.commit()
        self._give_back(dbapi_connection)

    def rollback(self, dbapi_connection: Any) -> None:
        """Also what the pool calls on a connection given back, in a transaction or not."""
        try:
            dbapi_connection.rollback()
        finally:
            self._give_back(dbapi_connection)

    def close(self, dbapi_connection: Any) -> None:
        """A connection closed (or dropped by the pool) in a transaction gives back its turn too."""
        try:
            dbapi_connection.close()
        finally:
            self._give_back(dbapi_connection)

    def _give_back(self, dbapi_connection: Any) -> None:
        if self._holder is not None and self._holder is _raw(dbapi_connection):
            self._holder = None
            self._lock.release()


def read_only_engine(url: str, *, busy_timeout: float) -> Engine:
    """A second engine on the same SQLite file, for reads only: BEGIN DEFERRED, `query_only`.

    Reason: BEGIN IMMEDIATE takes the write lock even for a read, so a page
    view queued behind every order being written, and behind every other page
    view, each waiter retrying on the busy timeout with growing sleeps (SQLite's
    busy handler sleeps up to 100 ms a try). In WAL mode a DEFERRED read takes
    no lock that a writer waits for, nor waits for one: it reads the last
    committed state, while a writer goes on. Its transaction still spans all
    its statements, so a page is read from one snapshot. `PRAGMA query_only`
    makes a write through it fail instead of slipping past the write lock's
    rule. No pool (`NullPool`): its users are rare (the public page, once its
    cache expires), a connection costs a fraction of a millisecond against the
    page's milliseconds, and none is left open when the bot's engine is disposed.

    Figure: `bench/web.py --rounds 2 --seconds 4`, SQLite, 20 clients, with the
    public page's cache switched off so that every request reads: page p99
    1,992 ms with its reads under BEGIN IMMEDIATE, 383 ms read DEFERRED here
    (p50 about 200 ms both ways: the rendering's CPU time, shared by 20
    requests on one core). With the cache on, the page is read afresh after a
    commit or every few seconds, and this keeps those reads from queueing
    behind writers.
    """
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout}, poolclass=NullPool)
    milliseconds = int(busy_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={milliseconds}")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    engine.dialect.do_begin = _begin_deferred  # type: ignore[method-assign]
    return engine


def _begin_deferred(dbapi_connection: Any) -> None:
    dbapi_connection.execute("BEGIN DEFERRED")


class KnownMembers:
    """The members a long-lived SQLite session has loaded, kept from one message to the next.

    Reason: loading a member and their accounts through the ORM cost half of a
    short command, and most messages come from someone who wrote a moment
    before. Figure: hot `/whoami` in the router 0.09 ms with the member kept
    against 0.35 ms loaded afresh (commit 30fb803); `bench/telegram_roundtrip.py`
    `/whoami` 1.34–1.40× a bare echo bot, 1.61–1.74× when another connection
    wrote just before (the member loaded afresh every time).

    What it keeps is never older than the database. Each transaction of the
    session, once it holds the write lock, asks SQLite whether any other
    connection has committed since the last one (`PRAGMA data_version`); if so,
    everything kept is dropped. A message that failed or rolled back drops
    everything too, and so does one that wrote the `member` or `identity`
    table (or a table it cannot name), as `coopbot.storage.written` records
    each transaction's writes: a role changed, `/lang`, a member leaving, a
    new account. But for the writes made on the kept object as well as on
    its row (`coopbot.storage.visits`: last seen, last job), which leave
    object and row alike. A message that wrote other tables only (a job
    claimed, its offers closed, notices queued) keeps the members and their
    accounts and lets go of every other object the session holds, as those
    may be older than their rows now. A message whose rows changed, by
    SQLite's own count (`total_changes`), beyond its receipts and in-place
    writes, while none was recorded, wrote past the record: everything is
    dropped. `member_by_account` finds and keeps the members; nothing else
    needs to know where they are kept.

    Figure: `bench/dispatch.py`, SQLite, 200 riders racing per job: a race's
    winner wrote `last_job_at`, its job, offers and notices, so each winner's
    commit dropped every kept member and each rider's next tap loaded them
    again (about 45% of a refused tap in a profile). Kept across those
    commits, on a machine at load 8–11: the bot's CPU time per tap of the
    race 565–598 µs before, 387–444 µs with this alone (the receipt and the
    last-seen write still through `exec_driver_sql`), and the benchmark's
    ratio 0.06–0.12× the bare UPDATE before, 0.12–0.19× with this and
    `write_on_driver` (README's benchmark table: runs alternating old and new).
    """

    #: Tables whose rows the kept objects are: a write to one drops them all.
    THEIR_TABLES = frozenset({"member", "identity", EVERYTHING})

    def __init__(self, session: Session, connection: Connection) -> None:
        """`connection`: the one connection `session` is bound to, for the whole of its life."""
        self._session = session
        self._connection = connection
        self._members: dict[Account, Member] = {}
        self._version: int | None = None
        #: What the current message's committed transactions wrote other than in place.
        self._moved: set[str] = set()
        self._rolled_back = False
        watch_writes(session)
        event.listen(session, "after_begin", self._after_begin)
        event.listen(session, "after_commit", self._after_commit)
        event.listen(session, "after_rollback", self._after_rollback)

    def __len__(self) -> int:
        return len(self._members)

    @contextmanager
    def serving(self) -> Iterator[None]:
        """One message: the kept members are offered to `member_by_account` for its length."""
        info = self._session.info
        info[_KEPT] = self._members
        info[_RECEIPTS] = 0
        self._moved.clear()
        self._rolled_back = False
        changes = self._driver().total_changes
        try:
            yield
        except BaseException:
            self.forget()
            raise
        unrecorded = self._driver().total_changes - changes > info[_RECEIPTS] and not self._moved
        if self._rolled_back or unrecorded or not self._moved.isdisjoint(self.THEIR_TABLES):
            self.forget()
        elif self._moved:
            self._keep_members_only()

    def forget(self) -> None:
        self._session.expunge_all()
        self._members.clear()

    def _keep_members_only(self) -> None:
        """Let go of every object but the kept members and their accounts."""
        kept: set[int] = set()
        for member in self._members.values():
            kept.add(id(member))
            # Past the attribute: an unloaded one would load, beginning a transaction after the message.
            kept.update(id(identity) for identity in member.__dict__.get("identities", ()))
        session = self._session
        for obj in list(session.identity_map.values()):
            if id(obj) not in kept and obj in session:
                session.expunge(obj)

    def _after_begin(self, session: Session, transaction: SessionTransaction, connection: Connection) -> None:
        """Under the write lock: nobody else can commit until this transaction ends."""
        version = self._driver().execute("PRAGMA data_version").fetchone()[0]
        if version != self._version or len(self._members) > MOST_KEPT:
            self.forget()
            self._version = version

    def _after_commit(self, session: Session) -> None:
        """Before `watch_writes` forgets what the transaction wrote, at its end."""
        self._moved |= moved_so_far(session)

    def _after_rollback(self, session: Session) -> None:
        """The rollback expired every object: the message's next transaction loads its member afresh."""
        self._rolled_back = True
        self._members.clear()

    def _driver(self) -> Any:
        return self._connection.connection.driver_connection


def kept_members(session: Session) -> dict[Account, Member] | None:
    """The members kept for this session's current message; None when it keeps none."""
    kept: dict[Account, Member] | None = session.info.get(_KEPT)
    return kept


def count_receipt(session: Session) -> None:
    """One more row written by this message that leaves the kept members as they are (a receipt,
    an in-place write)."""
    session.info[_RECEIPTS] = session.info.get(_RECEIPTS, 0) + 1
