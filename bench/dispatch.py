"""How fast can riders claim jobs, and is every job still claimed once?

For each database (SQLite, then PostgreSQL if reachable), in one run and
through one engine:

(a) `--workers` riders race for each of `--jobs` broadcast jobs through the
    real `dispatch.jobs.accept`, each tap in its own transaction (read, conditional
    claim, closing the others' offers with a queued notice each, the job
    event, the coordinators' line), `--threads` at a time; winners per job
    must be 1;
(b) the same number of bare conditional UPDATEs, one per transaction, on as
    many fresh jobs: the floor any claim pays.

It prints both rates and their ratio (target: claims at least half the bare
rate). Not a test: numbers depend on the machine.

    python bench/dispatch.py [--workers 200] [--jobs 500] [--threads 8] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.orm import selectinload

from coopbot.config import Config, DatabaseSection
from coopbot.db import make_engine, make_sessionmaker, transaction, upgrade
from coopbot.errors import Conflict
from coopbot.models import Identity, Job, Member, Offer
from coopbot.services.dispatch import jobs as dispatch_jobs

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
BARE = text("UPDATE job SET status='assigned', assignee_id=:m WHERE id=:j AND status IN ('open','offered')")


def seed(engine: Engine, workers: int, jobs: int) -> tuple[list[int], list[int], list[int]]:
    """Riders, jobs offered to all of them (for accept), and as many jobs for bare UPDATEs."""
    with engine.begin() as c:
        c.execute(
            insert(Member),
            [
                {
                    "name": f"Rider {i}",
                    "role": "member",
                    "active": True,
                    "joined_at": NOW,
                    "notify": "both",
                    "mute_announcements": False,
                    "hide_in_charts": False,
                    "available": True,
                    "available_since": NOW,
                }
                for i in range(workers)
            ],
        )
        members = [row[0] for row in c.execute(text("SELECT id FROM member ORDER BY id"))]
        c.execute(
            insert(Identity),
            [
                {
                    "member_id": m,
                    "platform": "console",
                    "external_id": f"rider{m}",
                    "display_name": f"Rider {m}",
                    "reachable": True,
                    "created_at": NOW,
                }
                for m in members
            ],
        )
        c.execute(
            insert(Job),
            [
                {
                    "pickup": f"Shop {n}",
                    "dropoff": f"Home {n}",
                    "note": "",
                    "status": "offered",
                    "created_at": NOW,
                    "updated_at": NOW,
                    "policy": "broadcast",
                    "round": 1,
                }
                for n in range(2 * jobs)
            ],
        )
        ids = [row[0] for row in c.execute(text("SELECT id FROM job ORDER BY id"))]
        ours, bare = ids[:jobs], ids[jobs:]
        rows = [
            {"job_id": j, "member_id": m, "status": "open", "offered_at": NOW, "rank": 1, "details": {}}
            for j in ours
            for m in members
        ]
        for start in range(0, len(rows), 20_000):
            c.execute(insert(Offer), rows[start : start + 20_000])
    return members, ours, bare


def attempts(jobs: list[int], members: list[int], rng: random.Random) -> list[tuple[int, int]]:
    """Job after job, every rider once, in a shuffled order: the threads race on each job."""
    order = []
    for job in jobs:
        riders = members[:]
        rng.shuffle(riders)
        order += [(job, m) for m in riders]
    return order


def run(threads: int, work: list[tuple[int, int]], fn: Callable[[int, int], bool]) -> tuple[float, Counter[int]]:
    winners: Counter[int] = Counter()
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for (job, _), won in zip(work, pool.map(lambda pair: fn(*pair), work), strict=True):
            winners[job] += won
    return time.perf_counter() - started, winners


def bench(label: str, url: str, args: argparse.Namespace) -> None:
    engine = make_engine(url, pool_size=args.threads, max_overflow=0)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    config = Config(database=DatabaseSection(url=url.split("?", maxsplit=1)[0]))
    members, ours, bare = seed(engine, args.workers, args.jobs)
    with sessions() as session:
        # The router has the member in hand when a tap arrives; loading it is not part of the claim.
        riders = {m.id: m for m in session.scalars(select(Member).options(selectinload(Member.identities)))}
        session.expunge_all()
    rng = random.Random(7)

    def accept(job: int, member_id: int) -> bool:
        try:
            with transaction(sessions) as session:
                dispatch_jobs.accept(session, config, riders[member_id], job, NOW)
            return True
        except Conflict:
            return False

    def update(job: int, member_id: int) -> bool:
        with engine.begin() as c:
            return c.execute(BARE, {"m": member_id, "j": job}).rowcount == 1

    ours_time, ours_winners = run(args.threads, attempts(ours, members, rng), accept)
    bare_time, bare_winners = run(args.threads, attempts(bare, members, rng), update)
    count = args.workers * args.jobs
    ours_rate, bare_rate = count / ours_time, count / bare_time
    print(f"{label}: {args.workers} riders x {args.jobs} jobs = {count} claim attempts, {args.threads} threads")
    print(
        f"  dispatch.accept : {ours_rate:9.0f} claims/s ({ours_time:6.1f} s); winners per job: "
        f"{sorted(Counter(ours_winners.values()).items())}"
    )
    print(
        f"  bare UPDATE     : {bare_rate:9.0f} updates/s ({bare_time:6.1f} s); winners per job: "
        f"{sorted(Counter(bare_winners.values()).items())}"
    )
    print(f"  ratio accept/bare: {ours_rate / bare_rate:.2f} (target >= 0.50)")
    if set(ours_winners.values()) != {1} or set(bare_winners.values()) != {1}:
        print("  FAILED: a job did not have exactly one winner")
    engine.dispose()


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--postgres", default=os.environ.get("COOPBOT_TEST_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    if args.only != "postgres":
        with tempfile.TemporaryDirectory(prefix="coopbot-bench-") as tmp:
            bench("SQLite", f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", args)
    if args.only != "sqlite":
        with postgres(args.postgres) as url:
            if url is not None:
                bench("PostgreSQL", url, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
