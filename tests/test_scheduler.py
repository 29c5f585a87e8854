"""Time-driven work runs from APScheduler, at start and then on every tick."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from coopbot.chat import Incoming
from coopbot.models import SeenEvent
from coopbot.scheduler import SWEEPS, Scheduler, SweepContext, sweep
from tests.conftest import Coop


async def test_apscheduler_runs_the_sweeps_at_start_and_on_each_tick(coop: Coop) -> None:
    calls: list[SweepContext] = []
    ticked = asyncio.Event()

    @sweep("test-probe")
    def probe(ctx: SweepContext) -> None:
        calls.append(ctx)
        if len(calls) >= 3:
            ticked.set()

    try:
        scheduler = Scheduler(coop.bot.sessions, coop.bot.config, coop.clock, tick_seconds=0.05)
        await scheduler.start()
        assert len(calls) >= 1, "sweeps run once at start, to catch up"
        await asyncio.wait_for(ticked.wait(), timeout=30)
        scheduler.shutdown()
    finally:
        del SWEEPS["test-probe"]
    assert calls[0].now == coop.clock.now()


async def test_a_failing_sweep_does_not_stop_the_others(coop: Coop) -> None:
    ran: list[str] = []

    @sweep("test-broken")
    def broken(ctx: SweepContext) -> None:
        raise RuntimeError("boom")

    @sweep("test-fine")
    def fine(ctx: SweepContext) -> None:
        ran.append("fine")

    try:
        assert coop.bot.scheduler.run_due() == ["test-broken"]
    finally:
        del SWEEPS["test-broken"], SWEEPS["test-fine"]
    assert ran == ["fine"]


async def test_old_update_ids_are_forgotten_after_a_week(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    await coop.bot.handle(Incoming("console", alice, alice, True, "/whoami", event_id="e1"))
    await coop.tick(timedelta(days=6))
    with coop.session() as session:
        assert session.scalar(select(func.count(SeenEvent.id))) == 1
    await coop.tick(timedelta(days=2))
    with coop.session() as session:
        assert session.scalar(select(func.count(SeenEvent.id))) == 0
