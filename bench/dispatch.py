"""How fast riders' taps on an offer are answered in a race, next to the bare claim.

For each database (SQLite, then PostgreSQL if reachable), and for 20 and then
200 riders racing for each job:

(a) every rider presses ✅ on a broadcast offer, as a Telegram update does:
    an `Incoming` button press with its own update id handed to
    `CoopBot.handle`, the entry point the Telegram and Matrix transports call.
    That is the router (the update's exactly-once receipt, loading the member
    and their accounts, the last-seen write, the handler, the reply with its
    buttons) around `dispatch.jobs.claim` (the read, the conditional claim,
    closing the others' offers with a queued notice each, the job event, the
    coordinators' line). On SQLite the bot runs it in its event loop on its
    own connection (`LoopSessions`), on PostgreSQL in worker threads, exactly
    as `coopbot run` does; up to 32 updates in flight, as the Telegram
    transport allows. The bot's clock moves one minute from one job to the
    next, so every tap pays the last-seen write, as in a rush where a rider
    taps every few minutes.
(b) the floor: one bare conditional `UPDATE job ... WHERE status IN (...)` per
    transaction for each of as many taps on as many other jobs, through
    SQLAlchemy Core, `--threads` at a time (on SQLite, one connection after
    another, which is its fastest: SQLite writes one at a time anyway).

The two alternate in rounds of a few jobs each, so that the machine's drift
falls on both alike. Afterwards the database must show, for every raced job,
one assignee, one accepted offer (the assignee's), one `accepted` event,
and a receipt for every update; for every floor job, one assignee. Replies
are counted too: one "it's yours" per job, "already taken" for every other
tap. Printed: both rates, their ratio per database and per race size, and
the spread of the per-round ratios. Target: the taps at least half the bare
UPDATE's rate everywhere.

Left out: the transport (HTTP to Telegram, parsing its update, sending the
reply); the outbox delivering the queued "taken by" notices while the race
goes on; the coordinators' and the customer's notices being sent.

    python bench/dispatch.py [--riders 20 200] [--taps 10000] [--rounds 10] [--only sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, create_engine, func, insert, select, text

from coopbot.app import CoopBot
from coopbot.chat import Incoming, Outgoing
from coopbot.clock import FakeClock
from coopbot.config import Config, DatabaseSection
from coopbot.i18n import t
from coopbot.models import Identity, Job, JobEvent, Member, Offer, SeenEvent

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
FIRST_USER = 30_000_000
TARGET = 0.5
IN_FLIGHT = 32
BARE = text("UPDATE job SET status='assigned', assignee_id=:m WHERE id=:j AND status IN ('open','offered')")
YOURS = t("en", "dispatch.yours", job="")[:10]
TAKEN = t("en", "dispatch.already_taken", job="", name="\0").split("\0")[0]


def seed(engine: Engine, riders: int, raced: int, floor: int) -> tuple[list[int], list[int], list[int]]:
    """Riders on Telegram (last seen ten minutes ago), jobs offered to all, and jobs for the floor."""
    with engine.begin() as c:
        c.execute(insert(Member), [
            {"name": f"Rider {i}", "role": "member", "active": True, "joined_at": NOW, "notify": "both",
             "mute_announcements": False, "hide_in_charts": False, "available": True, "available_since": NOW,
             "last_seen_at": NOW - timedelta(minutes=10)}
            for i in range(riders)
        ])  # fmt: skip
        members = [row[0] for row in c.execute(text("SELECT id FROM member ORDER BY id"))]
        c.execute(insert(Identity), [
            {"member_id": m, "platform": "telegram", "external_id": str(FIRST_USER + m), "display_name": f"Rider {m}",
             "reachable": True, "created_at": NOW}
            for m in members
        ])  # fmt: skip
        c.execute(insert(Job), [
            {"pickup": f"Shop {n}", "dropoff": f"Home {n}", "note": "", "status": "offered", "created_at": NOW,
             "updated_at": NOW, "policy": "broadcast", "round": 1}
            for n in range(raced + floor)
        ])  # fmt: skip
        ids = [row[0] for row in c.execute(text("SELECT id FROM job ORDER BY id"))]
        ours, bare = ids[:raced], ids[raced:]
        rows = [{"job_id": j, "member_id": m, "status": "open", "offered_at": NOW, "rank": 1, "details": {}}
                for j in ours for m in members]  # fmt: skip
        for start in range(0, len(rows), 20_000):
            c.execute(insert(Offer), rows[start : start + 20_000])
    return members, ours, bare


@dataclass
class Tally:
    seconds: float = 0.0
    taps: int = 0
    replies: dict[str, int] = field(default_factory=dict)
    rounds: list[float] = field(default_factory=list)

    def count(self, replies: list[Outgoing]) -> None:
        said = replies[0].text if len(replies) == 1 else f"{len(replies)} replies"
        kind = "yours" if said.startswith(YOURS) and replies[0].buttons else "taken" if TAKEN in said else said
        self.replies[kind] = self.replies.get(kind, 0) + 1


class Race:
    """Riders tapping ✅ through the bot, job after job, up to 32 updates in flight."""

    def __init__(self, bot: CoopBot, clock: FakeClock, members: list[int], rng: random.Random) -> None:
        self.bot, self.clock, self.members, self.rng = bot, clock, members, rng
        self.update_id = 0
        self.tally = Tally()

    def taps(self, job: int) -> list[Incoming]:
        riders = self.members[:]
        self.rng.shuffle(riders)
        taps = []
        for m in riders:
            self.update_id += 1
            user = str(FIRST_USER + m)
            taps.append(Incoming("telegram", user, user, True, "", display_name=f"Rider {m}", language="en",
                                 button=f"/accept J-{job}", event_id=f"cb{self.update_id}", message_ref=f"m{job}"))
        return taps

    async def run(self, jobs: list[int]) -> float:
        batches = [self.taps(job) for job in jobs]
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(incoming: Incoming) -> None:
            async with gate:
                self.tally.count(await self.bot.handle(incoming))

        started = time.perf_counter()
        for batch in batches:
            self.clock.advance(minutes=1)
            await asyncio.gather(*(one(incoming) for incoming in batch))
        return time.perf_counter() - started


class Floor:
    """The bare conditional UPDATE, one per transaction, as many as the race's taps."""

    def __init__(self, engine: Engine, members: list[int], rng: random.Random, threads: int) -> None:
        self.engine, self.members, self.rng, self.threads = engine, members, rng, threads
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def claim(self, pair: tuple[int, int]) -> None:
        with self.engine.begin() as c:
            c.execute(BARE, {"m": pair[1], "j": pair[0]})

    def run(self, jobs: list[int]) -> float:
        work = []
        for job in jobs:
            riders = self.members[:]
            self.rng.shuffle(riders)
            work += [(job, m) for m in riders]
        started = time.perf_counter()
        if self.pool is None:
            for pair in work:
                self.claim(pair)
        else:
            list(self.pool.map(self.claim, work))
        return time.perf_counter() - started


def check(engine: Engine, ours: list[int], bare: list[int], taps: int) -> list[str]:
    """What the database says: one winner per job, every update received once."""
    problems = []
    with engine.connect() as c:
        jobs = {row.id: row for row in c.execute(select(Job.id, Job.status, Job.assignee_id))}
        accepted = dict(c.execute(select(Offer.job_id, func.count()).where(Offer.status == "accepted")
                                  .group_by(Offer.job_id)).all())  # fmt: skip
        winners = dict(c.execute(select(Offer.job_id, Offer.member_id).where(Offer.status == "accepted")).all())
        events = dict(c.execute(select(JobEvent.job_id, func.count()).where(JobEvent.kind == "accepted")
                                .group_by(JobEvent.job_id)).all())  # fmt: skip
        receipts = c.scalar(select(func.count()).select_from(SeenEvent))
    for job in ours:
        row = jobs[job]
        one = accepted.get(job) == events.get(job) == 1 and winners[job] == row.assignee_id
        if row.status != "assigned" or not one:
            problems.append(f"J-{job}: {row.status}, {accepted.get(job)} accepted offers, {events.get(job)} events")
    problems += [f"floor J-{job} not claimed" for job in bare if jobs[job].assignee_id is None]
    if receipts != taps:
        problems.append(f"{receipts} receipts for {taps} updates")
    return problems


async def race_size(label: str, url: str, riders: int, args: argparse.Namespace) -> float:
    """One database, one race size: the rounds, the database's check, the figures; the ratio (0 if wrong)."""
    jobs = max(args.rounds, args.taps // riders)
    clock = FakeClock(NOW)
    bot = CoopBot(Config(database=DatabaseSection(url=url)), clock=clock)
    members, ours, bare = seed(bot.engine, riders, jobs, jobs)
    sqlite = bot.engine.dialect.name == "sqlite"
    floor_engine = bot.engine if sqlite else create_engine(bot.engine.url, pool_size=args.threads, max_overflow=0)
    race = Race(bot, clock, members, random.Random(7))
    floor = Floor(floor_engine, members, random.Random(8), 1 if sqlite else args.threads)
    try:
        floor_tally = await alternate(race, floor, ours, bare, max(1, jobs // args.rounds), riders)
        problems = check(bot.engine, ours, bare, jobs * riders)
    finally:
        if floor_engine is not bot.engine:
            floor_engine.dispose()
        if floor.pool is not None:
            floor.pool.shutdown()
        bot.dispose()
    return report(label, riders, race.tally, floor_tally, problems)


async def alternate(race: Race, floor: Floor, ours: list[int], bare: list[int], per_round: int, riders: int) -> Tally:
    """Rounds of taps through the bot and of bare UPDATEs, in turn, after one job of each to warm up."""
    await race.run(ours[:1])
    floor.run(bare[:1])
    race.tally, floor_tally = Tally(), Tally()
    for start in range(1, len(ours), per_round):
        ours_time = await race.run(ours[start : start + per_round])
        bare_time = floor.run(bare[start : start + per_round])
        n = len(ours[start : start + per_round]) * riders
        race.tally.seconds += ours_time
        race.tally.taps += n
        floor_tally.seconds += bare_time
        floor_tally.taps += n
        race.tally.rounds.append(bare_time / ours_time)
    return floor_tally


def report(label: str, riders: int, ours: Tally, floor: Tally, problems: list[str]) -> float:
    """Print one race size's figures and target; the ratio, or 0 when something was wrong."""
    ours_rate, bare_rate = ours.taps / ours.seconds, floor.taps / floor.seconds
    ratio = ours_rate / bare_rate
    replies = ", ".join(f"{kind} {count}" for kind, count in sorted(ours.replies.items()))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{label}, {riders} riders racing per job, {ours.taps} taps in {len(ours.rounds)} rounds (load {load}):")
    print(f"  taps through the bot : {ours_rate:8.0f}/s  ({ours.seconds:5.1f} s)  replies: {replies}")
    print(f"  bare UPDATE (floor)  : {bare_rate:8.0f}/s  ({floor.seconds:5.1f} s)")
    verdict = "met" if ratio >= TARGET else "MISSED"
    print(f"  ratio {ratio:.2f} (rounds {min(ours.rounds):.2f}–{max(ours.rounds):.2f}); target >= {TARGET} {verdict}")
    measured = ours.taps // riders
    if ours.replies.get("yours") != measured or ours.replies.get("taken") != measured * (riders - 1):
        problems.append(f"replies {ours.replies}")
    for problem in problems[:10]:
        print(f"  FAILED: {problem}")
    return ratio if not problems else 0.0


@contextmanager
def postgres(base: str) -> Iterator[str | None]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        print(f"PostgreSQL at {base} does not answer ({type(exc).__name__}); skipped.")
        yield None
        return
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def database(kind: str, pg: str) -> Iterator[str | None]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="coopbot-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
    else:
        with postgres(pg) as url:
            yield url


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--riders", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--taps", type=int, default=10_000, help="taps per database and race size")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=8, help="the floor's threads on PostgreSQL")
    parser.add_argument("--postgres", default=os.environ.get("COOPBOT_TEST_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    ratios = []
    for kind, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        if args.only not in (None, kind):
            continue
        for riders in args.riders:
            with database(kind, args.postgres) as url:
                if url is not None:
                    ratios.append(asyncio.run(race_size(label, url, riders, args)))
    met = all(ratio >= TARGET for ratio in ratios)
    print(f"target (every ratio >= {TARGET}): {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
