"""Time-driven work: closing periods and polls, expiring offers, reminders.

Each area registers a *sweep* with `@sweep("name")`: a function that looks in
the database for what is due at `now` and does it, idempotently (conditional
UPDATEs), in its own transactions. APScheduler 3 calls every sweep on a short
interval and once at start, so a close or an expiry missed while the bot was
down happens at the next start, and two processes racing do the work once.
Tests call `run_due()` with a fake clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from coopbot.clock import Clock
from coopbot.config import Config
from coopbot.services import load_services

log = logging.getLogger(__name__)

TICK_SECONDS = 5


@dataclass(frozen=True)
class SweepContext:
    sessions: sessionmaker[Session]
    config: Config
    now: datetime


SweepFn = Callable[[SweepContext], None]
SWEEPS: dict[str, SweepFn] = {}


def sweep(name: str) -> Callable[[SweepFn], SweepFn]:
    def register(fn: SweepFn) -> SweepFn:
        SWEEPS[name] = fn
        return fn

    return register


class Scheduler:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: Config,
        clock: Clock,
        *,
        on_queued: Callable[[], None] = lambda: None,
        tick_seconds: float = TICK_SECONDS,
    ) -> None:
        load_services()
        self.sessions = sessions
        self.config = config
        self.clock = clock
        self.on_queued = on_queued
        self.tick_seconds = tick_seconds
        self._aps: object | None = None
        self._lock = asyncio.Lock()

    def run_due(self, now: datetime | None = None) -> list[str]:
        """Run every sweep once; a failing sweep is logged and does not stop the others."""
        ctx = SweepContext(self.sessions, self.config, now or self.clock.now())
        failed = []
        for name, fn in sorted(SWEEPS.items()):
            try:
                fn(ctx)
            except Exception:
                log.exception("sweep %s failed; it will run again at the next tick", name)
                failed.append(name)
        self.on_queued()
        return failed

    async def tick(self) -> None:
        if self._lock.locked():
            return
        async with self._lock:
            await asyncio.to_thread(self.run_due)

    async def start(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        await self.tick()
        aps = AsyncIOScheduler(timezone=self.config.coop.tz)
        aps.add_job(
            self.tick,
            IntervalTrigger(seconds=self.tick_seconds, timezone=self.config.coop.tz),
            id="sweeps",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
        )
        aps.start()
        self._aps = aps

    def shutdown(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)  # type: ignore[attr-defined]
            self._aps = None
