"""`coopbot run` as one of several processes: lead when elected, follow otherwise.

Every process serves what may land on any of them: the Telegram webhook (behind
one load balancer; the router's receipts make each update handled once, whichever
process gets it) and the web door. Only the leader (`coopbot.ops.leadership`)
polls Telegram, syncs Matrix, runs the sweeps and delivers the outbox. When the
leader's lock connection fails, it stops that work, gives the work lock back and
follows again; another process, waiting on the lock, takes over.

The outbox is shared by leadership alone, not by row claims: only the leader
delivers, and the next one starts only after the previous one's last send has
been recorded (or its process is gone). Row claims (`FOR UPDATE SKIP LOCKED`)
would let several processes send at once, which nothing needs (one process
keeps up with Telegram's 30 messages a second) and which would split one
platform's rate limits between processes that cannot see each other's pacing.

What a kill can send twice is the outbox's own crash bound: `MAX_IN_FLIGHT`
messages per platform, sent but not yet recorded when the process died.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import TYPE_CHECKING, TextIO

from sqlalchemy import make_url, text

from coopbot import metrics, platforms
from coopbot.db import make_sessionmaker
from coopbot.ops.leadership import LOCK_CLASS, FileLock, Holder, PgLeadership, lock_engine, lock_key
from coopbot.ops.state import SweepRecorder, record_leader

if TYPE_CHECKING:
    from pathlib import Path

    from coopbot.app import CoopBot
    from coopbot.chat import Transport
    from coopbot.config import Config

log = logging.getLogger(__name__)


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def sqlite_file(url: str) -> Path | None:
    from pathlib import Path

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


def hold_sqlite(config: Config) -> FileLock | None:
    """The SQLite file's lock, taken before anything else (AlreadyRunning if held)."""
    database = sqlite_file(config.database.url)
    if database is None:
        return None
    database.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(database)
    lock.acquire()
    return lock


def upgrade_under_lock(url: str, upgrade: functools.partial[bool]) -> bool:
    """Two processes starting together must not run the migrations at once: the second
    waits for the first, then finds nothing to do."""
    engine = lock_engine(url)
    try:
        with engine.connect() as connection:
            database, schema = connection.execute(text("SELECT current_database(), current_schema()")).one()
            key = lock_key(database, schema or "public", "migrate")
            connection.execute(text("SELECT pg_advisory_lock(:c, :k)"), {"c": LOCK_CLASS, "k": key})
            try:
                return upgrade()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:c, :k)"), {"c": LOCK_CLASS, "k": key})
    finally:
        engine.dispose()


def watch_operations(bot: CoopBot) -> None:
    """What `coopbot run` adds to a bot: the sweeps' last runs kept for `coopbot status`,
    and the outbox in `/metrics`. The operator's rows are written through sessions of their
    own, not the bot's, whose commits tell caches built from the co-op's data to rebuild."""
    bot.scheduler.after_sweeps = SweepRecorder(make_sessionmaker(bot.engine))
    metrics.watch_outbox(bot.sessions)


def became_leader(bot: CoopBot, out: TextIO, how: str) -> Holder:
    me = Holder.this_process()
    record_leader(make_sessionmaker(bot.engine), me)
    metrics.set_leader(True)
    log.info("this process leads (%s)", how)
    out.write(f"This process ({me.host}, pid {me.pid}) now leads: {how}.\n")
    out.flush()
    return me


def leader_only(config: Config, platform: platforms.Platform) -> bool:
    """Telegram in webhook mode is served by every process; polling and Matrix by the leader."""
    return not (platform.name == "telegram" and config.telegram.mode == "webhook")


class LeaderWork:
    """Start and stop what only the leader does. Leader-only transports are built anew at
    each start: a client library's application is never restarted after a stop."""

    def __init__(self, bot: CoopBot, chat: list[platforms.Platform]) -> None:
        self.bot = bot
        self.chat = chat
        self.started: list[Transport] = []

    async def start(self) -> None:
        for platform in self.chat:
            transport = platform.build(self.bot.config, self.bot)
            self.bot.add_transport(transport)
            self.started.append(transport)
            await transport.start(self.bot.on_incoming)
        await self.bot.start_leading()

    async def stop(self) -> None:
        """The outbox and sweeps first (their sends need the transports), then the intake."""
        with contextlib.suppress(Exception):
            await self.bot.stop_leading()
        for transport in reversed(self.started):
            try:
                await transport.stop()
            except Exception:
                log.exception("stopping %s failed", transport.platform)
            if self.bot.transports.get(transport.platform) is transport:
                del self.bot.transports[transport.platform]
        self.started.clear()


async def lead_or_follow(bot: CoopBot, leadership: PgLeadership, stop: asyncio.Event, out: TextIO) -> None:
    """Until `stop`: wait to lead, lead until the lock is lost, step down, wait again."""
    chat = [p for p in platforms.chat_platforms() if p.enabled(bot.config) and leader_only(bot.config, p)]
    work = LeaderWork(bot, chat)
    metrics.set_leader(False)
    while not stop.is_set():
        if not await leadership.acquire(stop):
            break
        kept = True
        try:
            await work.start()
            became_leader(bot, out, "polling, sweeps and the outbox")
            kept = await leadership.watch(stop)
        finally:
            await work.stop()
            metrics.set_leader(False)
            if not kept:  # said before the locks go: no other process can lead before this line
                log.warning("lost the leadership (its database connection failed): following again")
                out.write("This process lost the lead (its database connection failed) and stopped leading; "
                          "it follows again.\n")
                out.flush()
            await leadership.step_down()
        if not kept:
            await leadership.rest(stop)
