"""Who leads: one process per co-op polls Telegram, syncs Matrix, runs the sweeps and
delivers the outbox.

Why a leader at all: Telegram gives its updates to one `getUpdates` consumer per
token (a second gets 409 Conflict), two Matrix sync loops on one token lose
to-device messages, and APScheduler 3 cannot share a job store. So the work that
must happen once happens in one process, and the others wait to take over.

PostgreSQL (`PgLeadership`): the leader holds a session-level advisory lock on a
connection of its own, which PostgreSQL releases when that connection dies
(process killed, machine gone, backend terminated). A second lock, the *work*
lock, on a second connection, fences the handover: the new leader starts its
work only once the old one has stopped its own (a sweep still running in the old
process holds the work lock until it ends), so no sweep runs in two processes at
once, even when only the old leader's first connection was cut. Both connections
are checked every `check_seconds` with a cheap query; a failure is a lost
leadership, and the runner stops the leader's work at once.

SQLite (`FileLock`): one machine, one process. A second `coopbot run` finds the
lock file next to the database held and refuses to start with one sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from coopbot.errors import CoopError

log = logging.getLogger(__name__)

#: The first half of every coopbot advisory lock key ("coop" in ASCII); the second half
#: is a digest of the database, schema and purpose, so two co-ops sharing one PostgreSQL
#: server (or one database, in two schemas) never wait for each other.
LOCK_CLASS = 0x636F6F70
LEADER, WORK = "leader", "work"
#: PostgreSQL's side of the lock connections: a machine that vanishes without closing them
#: (power cut, network partition) sends no FIN, and without these the server would keep its
#: locks for the kernel's default two hours. With them, about 4 + 2 × 2 = 8 s.
SERVER_KEEPALIVES = ("SET tcp_keepalives_idle = 4", "SET tcp_keepalives_interval = 2", "SET tcp_keepalives_count = 2")
#: Seconds between two checks of the lock connections; also the bound of one check.
CHECK_SECONDS = 1.0
#: Seconds between two attempts of a follower to take the lock.
RETRY_SECONDS = 1.0
#: A leader that lost the lead waits this many followers' tries before trying again itself.
REST_TRIES = 3


class AlreadyRunning(CoopError):
    """A second `coopbot run` on one SQLite database."""


@dataclass(frozen=True)
class Holder:
    """A process as the operator knows it: which machine, which pid, since when."""

    host: str
    pid: int
    since: datetime

    @classmethod
    def this_process(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), datetime.now(UTC).replace(microsecond=0))

    def line(self) -> str:
        return f"{self.host} {self.pid} {self.since.isoformat(timespec='seconds')}"

    @classmethod
    def parse(cls, line: str) -> Holder | None:
        parts = line.split()
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        try:
            return cls(parts[0], int(parts[1]), datetime.fromisoformat(parts[2]))
        except ValueError:
            return None


# --- SQLite: one process ---------------------------------------------------------------


def lock_path(database: Path) -> Path:
    """`coop.sqlite3` → `coop.sqlite3.lock`, beside it (SQLite's own -wal and -shm are there too)."""
    return database.with_name(database.name + ".lock")


class FileLock:
    """An exclusive `flock` on `<database>.lock`, held for the life of the process.

    flock, not a pid file: the kernel drops it when the process dies however it
    dies, so a kill -9 never leaves a stale lock behind. The file says who holds
    it, for the refusal and for `coopbot status`; it is never deleted (deleting a
    lock file races with the next process opening it).
    """

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = lock_path(database)
        self._fd: int | None = None

    def acquire(self) -> Holder:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(self.path)
            os.close(fd)
            said = f"{holder.host}, pid {holder.pid}" if holder else "another process"
            raise AlreadyRunning("ops.already_running", database=str(self.database), holder=said) from None
        me = Holder.this_process()
        os.ftruncate(fd, 0)
        os.pwrite(fd, (me.line() + "\n").encode(), 0)
        self._fd = fd
        return me

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def read_holder(path: Path) -> Holder | None:
    try:
        return Holder.parse(path.read_text(encoding="utf-8"))
    except OSError:
        return None


def file_lock_held(path: Path) -> Holder | None:
    """Who holds the SQLite lock now, or None. Read from the file, checked against the
    process table on this machine: `coopbot status` never takes the lock itself, so it
    can never make a `coopbot run` starting at that instant refuse."""
    holder = read_holder(path)
    if holder is None or holder.host != socket.gethostname():
        return holder
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return holder
    return holder


# --- PostgreSQL: many processes, one leader ------------------------------------------------


def lock_key(database: str, schema: str, purpose: str) -> int:
    """A non-negative int4, so it reads the same in `pg_locks.objid` (an oid)."""
    return zlib.crc32(f"{database}/{schema}/{purpose}".encode()) & 0x7FFFFFFF


def lock_engine(url: str) -> Engine:
    """Connections of their own, never pooled: a lock belongs to one connection's life.

    Keepalives make a connection to a machine that vanished fail within seconds
    rather than the kernel's two hours; the checks' own timeout covers the rest.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    args: dict[str, Any] = {"connect_timeout": 5, "application_name": "coopbot-leadership"}
    if make_url(url).get_driver_name() == "psycopg":
        args.update(keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=2)
    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=args)


@dataclass(frozen=True)
class LockKeys:
    leader: int
    work: int


def keys_of(connection: Connection) -> LockKeys:
    database, schema = connection.execute(text("SELECT current_database(), current_schema()")).one()
    return LockKeys(lock_key(database, schema or "public", LEADER), lock_key(database, schema or "public", WORK))


def leader_backend(connection: Connection) -> int | None:
    """The backend pid holding this co-op's leader lock now, if any (for `coopbot status`)."""
    keys = keys_of(connection)
    pid = connection.execute(
        text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = CAST(:c AS oid) "
            "AND objid = CAST(:k AS oid) AND objsubid = 2 AND granted"
        ),
        {"c": LOCK_CLASS, "k": keys.leader},
    ).scalar()
    return int(pid) if pid is not None else None


class _Lock:
    """One advisory lock on one connection, with its check."""

    def __init__(self, engine: Engine, purpose: str) -> None:
        self.engine = engine
        self.purpose = purpose
        self.connection: Connection | None = None
        self.key: int | None = None

    def try_take(self) -> bool:
        if self.connection is None:
            self.connection = self.engine.connect()
            for setting in SERVER_KEEPALIVES:
                self.connection.execute(text(setting))
        connection = self.connection
        if self.key is None:
            keys = keys_of(connection)
            self.key = keys.leader if self.purpose == LEADER else keys.work
        key = self.key
        taken = connection.execute(text("SELECT pg_try_advisory_lock(:c, :k)"), {"c": LOCK_CLASS, "k": key}).scalar()
        return bool(taken)

    def check(self) -> None:
        """Raises if the connection (and so the lock) is gone."""
        if self.connection is None:
            raise ConnectionError(f"the {self.purpose} lock connection is closed")
        self.connection.execute(text("SELECT 1")).scalar()

    def drop(self) -> None:
        """Close the connection, which releases the lock (an unlock first, for a clean log)."""
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()


class PgLeadership:
    """`await acquire(stop)`, then `await watch(stop)` returns when leadership is lost or
    `stop` is set; `release()` gives it back. One instance per process."""

    def __init__(self, url: str, *, check_seconds: float = CHECK_SECONDS, retry_seconds: float = RETRY_SECONDS) -> None:
        self.engine = lock_engine(url)
        self.check_seconds = check_seconds
        self.retry_seconds = retry_seconds
        self._leader = _Lock(self.engine, LEADER)
        self._work = _Lock(self.engine, WORK)
        self.leading = False

    async def _attempt(self, lock: _Lock) -> bool:
        try:
            return await asyncio.wait_for(asyncio.to_thread(lock.try_take), timeout=max(5.0, 3 * self.check_seconds))
        except Exception as exc:
            log.warning("leadership: taking the %s lock failed (%s); trying again", lock.purpose, type(exc).__name__)
            await asyncio.to_thread(lock.drop)
            return False

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this process leads (True), or `stop` is set (False).

        First the leader lock, then the work lock, which the previous leader holds
        until its last sweep and send have ended; the leader lock is checked while
        waiting for it, so a leader that loses it meanwhile starts over.
        """
        while not stop.is_set():
            if await self._attempt(self._leader):
                while not stop.is_set():
                    if await self._attempt(self._work):
                        self.leading = True
                        return True
                    if not await self._alive(self._leader):
                        break
                    await _wait(stop, self.retry_seconds)
                await asyncio.to_thread(self._leader.drop)
                continue
            await _wait(stop, self.retry_seconds)
        await self.release()
        return False

    async def _alive(self, lock: _Lock) -> bool:
        try:
            await asyncio.wait_for(asyncio.to_thread(lock.check), timeout=max(2.0, 2 * self.check_seconds))
        except Exception as exc:
            log.warning("leadership: the %s lock connection failed (%s)", lock.purpose, type(exc).__name__)
            return False
        return True

    async def watch(self, stop: asyncio.Event) -> bool:
        """Check both lock connections every `check_seconds`; False once either has failed
        (this process no longer leads), True when `stop` was set first."""
        while not stop.is_set():
            for lock in (self._leader, self._work):
                if not await self._alive(lock):
                    self.leading = False
                    return False
            await _wait(stop, self.check_seconds)
        return True

    async def step_down(self) -> None:
        """After the leader's work has stopped: give the work lock back, so the next leader
        starts now rather than when PostgreSQL notices this connection's end."""
        self.leading = False
        await asyncio.to_thread(self._work.drop)
        await asyncio.to_thread(self._leader.drop)

    async def release(self) -> None:
        await self.step_down()

    async def rest(self, stop: asyncio.Event) -> None:
        """After losing the lead: wait a few of the followers' tries before competing again, so
        that one of them (whose connection did not fail) takes over rather than this one."""
        await _wait(stop, REST_TRIES * self.retry_seconds)

    def dispose(self) -> None:
        self._leader.drop()
        self._work.drop()
        self.engine.dispose()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
