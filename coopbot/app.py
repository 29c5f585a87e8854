"""The running co-op bot: the database, the router, the outbox, the scheduler
and the transports, wired together once.

Handlers are synchronous (they hold a database transaction). Telegram, Matrix
and the outbox share one event loop, which a handler must never stall: on
PostgreSQL, whose every query is a network round trip and may wait for a row
lock, handlers run in a worker thread. On SQLite a handler's transaction takes
well under a millisecond, less than handing it to a thread and back (which
also competes with the loop for the interpreter lock), so it runs in the loop,
in `LoopSessions`: a connection that does not wait (if another writer holds
the lock, nothing is written and the message goes to a worker thread to wait
its turn), and that keeps the members it loaded while the database does not
change.

The commands, sweeps and renderers the modules declare are collected here,
once, into registries this bot owns (`commands`, `sweeps`, `renderers`) and
hands to its router, scheduler and outbox: two bots in one process (a test and
the next) never share what one of them was taught.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from coopbot.chat import Address, Incoming, Outgoing, Transport, UnreachableError
from coopbot.clock import Clock, SystemClock
from coopbot.config import Config
from coopbot.db import make_engine, make_sessionmaker, upgrade
from coopbot.i18n import t
from coopbot.loop_sessions import LoopSessions
from coopbot.outbox import Outbox
from coopbot.outbox_render import Renderers, collect_renderers
from coopbot.router import Busy, Router
from coopbot.scheduler import Scheduler, Sweeps, collect_sweeps
from coopbot.transports.pacing import PacedTransport
from handlers import collect_commands
from handlers.registry import Commands

log = logging.getLogger(__name__)


class CoopBot:
    def __init__(
        self,
        config: Config,
        engine: Engine | None = None,
        clock: Clock | None = None,
        *,
        migrate: bool = True,
    ) -> None:
        self.config = config
        self.engine = engine or make_engine(config.database.url)
        if migrate:
            upgrade(self.engine)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.loop_sessions: LoopSessions | None = None
        if self.engine.dialect.name == "sqlite" and self.engine.url.database not in (None, "", ":memory:"):
            self.loop_sessions = LoopSessions(self.engine.url.render_as_string(hide_password=False))
        self.clock: Clock = clock or SystemClock()
        self.transports: dict[str, Transport] = {}
        self.commands: Commands = collect_commands()
        self.sweeps: Sweeps = collect_sweeps()
        self.renderers: Renderers = collect_renderers()
        self.outbox = Outbox(self.sessions, self.clock, config, self.transports, renderers=self.renderers)
        self.router = Router(self.sessions, config, self.clock, commands=self.commands, on_queued=self.outbox.poke)
        self.scheduler = Scheduler(self.sessions, config, self.clock, sweeps=self.sweeps, on_queued=self.outbox.poke)
        self._stop = asyncio.Event()
        self._outbox_task: asyncio.Task[None] | None = None

    def add_transport(self, transport: Transport) -> None:
        """A transport that paces its own requests gets the outbox's pacer now, before its
        first reply: replies and deliveries count against one limit (`coopbot.transports.pacing`)."""
        self.transports[transport.platform] = transport
        if isinstance(transport, PacedTransport):
            self.outbox.pacer(transport.platform)

    async def handle(self, incoming: Incoming) -> list[Outgoing]:
        if self.loop_sessions is not None:
            with contextlib.suppress(Busy):
                return self.router.handle(incoming, sessions=self.loop_sessions)
        return await asyncio.to_thread(self.router.handle, incoming)

    async def on_incoming(self, incoming: Incoming) -> None:
        """Answer in the chat it came from; private answers never land in a group."""
        replies = await self.handle(incoming)
        transport = self.transports[incoming.platform]
        public = [r for r in replies if incoming.is_private or not r.private]
        private = [r for r in replies if r.private and not incoming.is_private]
        if private:
            public.append(await self._send_privately(transport, incoming, private))
        if public:
            await transport.reply(incoming, public)

    async def _send_privately(
        self, transport: Transport, incoming: Incoming, messages: list[Outgoing]
    ) -> Outgoing:
        lang = await asyncio.to_thread(self.router.language_of, incoming)
        address = Address(incoming.platform, incoming.user_id, private=True)
        try:
            for number, message in enumerate(messages):
                plain = Outgoing(message.text, message.buttons, True, False, message.attachment)
                await transport.send(address, plain, f"reply:{incoming.event_id}:{number}")
        except UnreachableError:
            return Outgoing(t(lang, "registry.open_private_chat"))
        except Exception:  # a reply is not queued: say in the group that it did not arrive
            log.exception("private reply to %s on %s failed", incoming.user_id, incoming.platform)
            return Outgoing(t(lang, "registry.private_failed"))
        return Outgoing(t(lang, "registry.sent_privately"))

    async def start(self) -> None:
        """Start everything; catch up on closes and expiries missed while down."""
        await self.start_leading()
        for transport in self.transports.values():
            await transport.start(self.on_incoming)

    async def start_leading(self) -> None:
        """What one process of a co-op does for all (`coopbot.ops.running`): the sweeps,
        caught up at once, and the outbox's delivery."""
        self._stop.clear()
        await self.scheduler.start()
        self._outbox_task = asyncio.create_task(self.outbox.run(self._stop))

    async def stop_leading(self) -> None:
        """Stop delivering and sweeping, and wait until the send and the sweep under way
        have ended: the next leader starts only then."""
        self._stop.set()
        self.outbox.poke()
        if self._outbox_task is not None:
            await self._outbox_task
            self._outbox_task = None
        await self.scheduler.stop()

    async def stop(self) -> None:
        for transport in self.transports.values():
            with contextlib.suppress(Exception):
                await transport.stop()
        self._stop.set()
        self.outbox.poke()
        if self._outbox_task is not None:
            await self._outbox_task
            self._outbox_task = None
        self.scheduler.shutdown()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.loop_sessions is not None:
            self.loop_sessions.close()
