"""The handover when the leader's connection is cut while it sweeps: the new leader's first
sweep starts only after the old leader's last one has ended. Two bots on one PostgreSQL in
one event loop, each leading or following as `coopbot run` does; one slow sweep records
when each bot ran it."""

from __future__ import annotations

import asyncio
import io
import threading
import time

import pytest
from sqlalchemy import text

from coopbot.app import CoopBot
from coopbot.ops import leadership
from coopbot.ops.leadership import PgLeadership
from coopbot.ops.running import lead_or_follow
from coopbot.scheduler import SweepContext, Sweeps, sweep
from tests.conftest import make_config

pytestmark = pytest.mark.postgres

#: Long enough that the cut lands inside it, and that the other bot would run its own sweep
#: meanwhile if nothing held it back.
SWEEP_SECONDS = 1.5


class Runs:
    """(bot, start, end) of every sweep run, and an event per bot for "sweeping now"."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: list[tuple[str, float, float]] = []
        self.sweeping = {"old": threading.Event(), "new": threading.Event()}

    def sweep_for(self, who: str) -> Sweeps:
        @sweep("slow")
        def slow(ctx: SweepContext) -> None:
            start = time.monotonic()
            self.sweeping[who].set()
            time.sleep(SWEEP_SECONDS)  # the sweep's own work, in its worker thread
            with self.lock:
                self.runs.append((who, start, time.monotonic()))

        return Sweeps([slow])

    def overlapping(self) -> list[tuple[tuple[str, float, float], tuple[str, float, float]]]:
        with self.lock:
            runs = list(self.runs)
        return [(a, b) for a in runs for b in runs if a[0] < b[0] and a[1] < b[2] and b[1] < a[2]]


def terminate_leader_backend(url: str) -> None:
    engine = leadership.lock_engine(url)
    with engine.connect() as connection:
        backend = leadership.leader_backend(connection)
        assert backend is not None
        assert connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend}).scalar()
    engine.dispose()


async def test_no_sweep_runs_in_two_processes_at_once_across_a_cut_connection(pg_url: str) -> None:
    runs = Runs()
    bots: dict[str, CoopBot] = {}
    outs = {who: io.StringIO() for who in ("old", "new")}
    tasks, elections = [], []
    stop = asyncio.Event()
    for who in ("old", "new"):
        bot = CoopBot(make_config(pg_url))
        bot.scheduler.sweeps = runs.sweep_for(who)
        bot.scheduler.tick_seconds = 0.2
        bots[who] = bot
    try:
        for who in ("old", "new"):
            election = PgLeadership(pg_url, check_seconds=0.2, retry_seconds=0.2)
            elections.append(election)
            tasks.append(asyncio.create_task(lead_or_follow(bots[who], election, stop, outs[who])))
            if who == "old":
                assert await asyncio.to_thread(runs.sweeping["old"].wait, 30)
        runs.sweeping["old"].clear()
        assert await asyncio.to_thread(runs.sweeping["old"].wait, 30)  # a sweep is under way: cut now
        await asyncio.to_thread(terminate_leader_backend, pg_url)
        took_over = await asyncio.to_thread(runs.sweeping["new"].wait, 30)
        assert took_over, f"the other bot never took over: {outs['old'].getvalue()}{outs['new'].getvalue()}"
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for election in elections:
            election.dispose()
        for bot in bots.values():
            bot.dispose()
    with runs.lock:
        old_ends = [end for who, _, end in runs.runs if who == "old"]
        new_starts = [start for who, start, _ in runs.runs if who == "new"]
    assert old_ends and new_starts
    assert runs.overlapping() == [], runs.runs
    assert min(new_starts) >= max(old_ends), runs.runs
    assert "stopped leading" in outs["old"].getvalue()
