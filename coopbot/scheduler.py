"""Time-driven work: closing periods and polls, expiring offers, reminders.

Each area declares a *sweep* with `@sweep("name")`: a function that looks in
the database for what is due at `now` and does it, idempotently (conditional
UPDATEs). APScheduler 3 calls every sweep on a short interval and once at
start, so a close or an expiry missed while the bot was down happens at the
next start, and two processes racing do the work once. A sweep hands its due
items to `ctx.each`, which handles each in its own transaction so that one
failing item never stops the others (see `coopbot.sweep_items`). Tests call
`run_due()` with a fake clock instead of waiting. The bot collects the declared
sweeps once, at start (`collect_sweeps`), and hands them to its `Scheduler`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from coopbot import metrics, services
from coopbot.clock import Clock
from coopbot.config import Config
from coopbot.db import transaction
from coopbot.declared import Mark, Named, Registry
from coopbot.ops.state import SweepRun
from coopbot.sweep_items import Failures, resting, run_each

log = logging.getLogger(__name__)

TICK_SECONDS = 5

Item = TypeVar("Item", bound=Hashable)


@dataclass(frozen=True)
class SweepContext:
    sessions: sessionmaker[Session]
    config: Config
    now: datetime
    #: The sweep being run, and the items that failed at earlier ticks (kept by the Scheduler).
    name: str = "sweep"
    failures: Failures = field(default_factory=Failures)

    def each(
        self, items: Iterable[Item], code: Callable[[Item], str], handle: Callable[[Session, Item], object]
    ) -> int:
        """Handle every due item in its own transaction; a failing one rests, the others go on.

        `code` names an item as members read it (P-3, J-12): in the log, and in
        the one notice to the coordinators. Returns how many went through.
        """

        def in_transaction(item: Item) -> None:
            with transaction(self.sessions) as session:
                handle(session, item)

        return run_each(self, items, code, in_transaction)

    def each_alone(self, items: Iterable[Item], code: Callable[[Item], str], handle: Callable[[Item], object]) -> int:
        """Like `each`, for handling that opens its own transaction (a period close)."""
        return run_each(self, items, code, handle)

    def resting(self) -> set[Any]:
        """Items pausing after a failure: a query with a LIMIT leaves them out, so they cannot fill it."""
        return resting(self)


SweepFn = Callable[[SweepContext], None]
Sweep = Named[SweepFn]
SWEEP: Mark[Sweep] = Mark("sweep", Named)


def sweep(name: str) -> Callable[[SweepFn], SweepFn]:
    """Declare a function as the sweep `name`; the bot that collects it (`Sweeps`) runs it."""

    def declare(fn: SweepFn) -> SweepFn:
        return SWEEP.put(fn, Named(name, fn))

    return declare


class Sweeps(Registry[Sweep]):
    """The sweeps one bot runs at every tick."""

    def __init__(self, functions: Iterable[SweepFn] = ()) -> None:
        super().__init__(SWEEP, functions)


def collect_sweeps() -> Sweeps:
    """Every sweep the service modules declare (they are the only ones that do)."""
    return Sweeps(SWEEP.declared_in(services))


class Scheduler:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: Config,
        clock: Clock,
        *,
        sweeps: Sweeps,
        on_queued: Callable[[], None] = lambda: None,
        tick_seconds: float = TICK_SECONDS,
        after_sweeps: Callable[[list[SweepRun]], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.clock = clock
        self.sweeps = sweeps
        self.on_queued = on_queued
        self.tick_seconds = tick_seconds
        #: Told each tick's runs (`coopbot run` records them for `coopbot status`).
        self.after_sweeps = after_sweeps
        self._aps: object | None = None
        self._lock = asyncio.Lock()
        self._running: asyncio.Future[list[str]] | None = None
        #: Failing items and their pauses, from tick to tick (why in memory: `coopbot.sweep_items`).
        self.failures = Failures()

    def run_due(self, now: datetime | None = None) -> list[str]:
        """Run every sweep once; a failing sweep is logged and does not stop the others."""
        ctx = SweepContext(self.sessions, self.config, now or self.clock.now(), failures=self.failures)
        failed = []
        runs = []
        for due in sorted(self.sweeps, key=lambda declared: declared.name):
            began = time.perf_counter()
            try:
                due.fn(replace(ctx, name=due.name))
            except Exception:
                log.exception("sweep %s failed; it will run again at the next tick", due.name)
                failed.append(due.name)
            seconds = time.perf_counter() - began
            metrics.observe_sweep(due.name, seconds, due.name not in failed)
            runs.append(SweepRun(due.name, ctx.now, seconds, due.name not in failed))
        self.on_queued()
        if self.after_sweeps is not None:
            self.after_sweeps(runs)
        return failed

    async def tick(self) -> None:
        if self._lock.locked():
            return
        async with self._lock:
            # Shielded: APScheduler cancels a running job when it shuts down, but the sweeps go
            # on in their worker thread all the same, and `stop` must wait for them.
            self._running = asyncio.ensure_future(asyncio.to_thread(self.run_due))
            await asyncio.shield(self._running)

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

    async def stop(self) -> None:
        """No more ticks, and the one running (in its worker thread) has ended: what a
        leader stepping down waits for before the next leader may sweep."""
        self.shutdown()
        running = self._running
        if running is not None and not running.done():
            await asyncio.wait({running})

    def shutdown(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)  # type: ignore[attr-defined]
            self._aps = None
