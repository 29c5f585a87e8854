"""Benchmark: closing a period for 1,000 and 10,000 members (50 contributions each).

Prints, for SQLite and PostgreSQL, the close time next to the time of one bare
`GROUP BY` over the same contribution rows (the floor: no close can read the
points faster), and their ratio. Target: the 10,000-member close under 5 s on
SQLite, at most 3x the floor, growing linearly with the members.

    python bench/period_close.py                   # both sizes, SQLite (+ PostgreSQL if reachable)
    python bench/period_close.py --members 1000 --db sqlite
    COOPBOT_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/period_close.py

The close writes the allocations and one outbox row per member; each share
message is written when the outbox sends it. So the run also prints what
writing one message costs at delivery, next to the 33 ms a message waits
anyway at Telegram's 30 messages a second.

Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, insert, select, text

from coopbot.app import CoopBot
from coopbot.clock import FakeClock
from coopbot.config import Config, DatabaseSection
from coopbot.models import Contribution, Identity, LedgerEntry, Member, OutboxMessage
from coopbot.services.money import periods
from coopbot.services.money.close import close_period

KINDS = ("delivery", "shift", "admin", "training", "meeting")
FLOOR_SQL = (
    "SELECT member_id, SUM(points_milli) FROM contribution "
    "WHERE period_id = :p AND status = 'approved' GROUP BY member_id"
)


@contextmanager
def database(kind: str, pg_url: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="coopbot-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in pg_url else "?"
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def seed(bot: CoopBot, config: Config, clock: FakeClock, members: int, per_member: int) -> int:
    now = clock.now()
    with bot.sessions() as session, session.begin():
        period = periods.current_period(session, config, now)
        period_id = period.id
        session.execute(
            insert(Member),
            [
                {"name": f"Rider {n}", "role": "member", "joined_at": now, "language": ("en", "fr")[n % 2]}
                for n in range(members)
            ],
        )
        ids = [row[0] for row in session.execute(text("SELECT id FROM member ORDER BY id"))]
        session.execute(
            insert(Identity),
            [
                {
                    "member_id": m,
                    "platform": "console",
                    "external_id": f"r{m}",
                    "display_name": f"Rider {m}",
                    "created_at": now,
                }
                for m in ids
            ],
        )
        batch = []
        for m in ids:
            for c in range(per_member):
                kind = KINDS[c % len(KINDS)]
                batch.append(
                    {
                        "member_id": m,
                        "period_id": period_id,
                        "kind": kind,
                        "quantity_milli": 1000 + (m * 7 + c * 13) % 2000,
                        "points_milli": 1000 + (m * 11 + c * 17) % 3000,
                        "status": "approved" if c % 10 else "pending",
                        "source": "manual",
                        "unit": "hour" if kind == "shift" else "item",
                        "note": "",
                        "created_at": now,
                    }
                )
                if len(batch) >= 20_000:
                    session.execute(insert(Contribution), batch)
                    batch = []
        if batch:
            session.execute(insert(Contribution), batch)
        session.execute(
            insert(LedgerEntry),
            [
                {
                    "period_id": period_id,
                    "kind": "income",
                    "amount_cents": members * 150_00,
                    "note": "contracts",
                    "created_at": now,
                },
                {
                    "period_id": period_id,
                    "kind": "expense",
                    "amount_cents": members * 20_00,
                    "note": "repairs",
                    "created_at": now,
                },
            ],
        )
    if bot.engine.dialect.name == "sqlite":
        with bot.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    else:
        with bot.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    return period_id


def floor(bot: CoopBot, period_id: int, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        with bot.engine.connect() as connection:
            started = time.perf_counter()
            rows = connection.execute(text(FLOOR_SQL), {"p": period_id}).all()
            times.append(time.perf_counter() - started)
        assert rows
    return statistics.median(times)


def render_time(bot: CoopBot, config: Config, sample: int = 200) -> float:
    """Seconds to write one queued share message, as the outbox does when it sends it."""
    with bot.sessions() as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.render.is_not(None)).order_by(OutboxMessage.id).limit(sample)
        ).all()
        started = time.perf_counter()
        for row in rows:
            assert bot.renderers.render(session, config, row).text
        return (time.perf_counter() - started) / len(rows)


def run(kind: str, members: int, per_member: int, pg_url: str) -> tuple[float, float]:
    with database(kind, pg_url) as url:
        config = Config(
            database=DatabaseSection(url=url),
            shares={"base_pay_per_hour": 12.5, "base_pay_per_delivery": 3},
        )
        clock = FakeClock(datetime(2026, 11, 10, 9, 0, tzinfo=UTC))
        bot = CoopBot(config, clock=clock)
        try:
            started = time.perf_counter()
            period_id = seed(bot, config, clock, members, per_member)
            seeding = time.perf_counter() - started
            base = floor(bot, period_id)
            clock.set(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
            started = time.perf_counter()
            plan = close_period(bot.sessions, config, period_id, clock.now())
            closing = time.perf_counter() - started
            assert plan is not None
            per_message = render_time(bot, config)
            print(
                f"{kind:10} {members:>6} members × {per_member} contributions: "
                f"close {closing:7.3f} s | floor GROUP BY {base:7.3f} s | ratio {closing / base:5.1f}x "
                f"| {closing / members * 1e6:6.0f} µs/member | {per_message * 1e3:4.1f} ms to write a share "
                f"when sent (seeded in {seeding:.1f} s)",
                flush=True,
            )
            return closing, base
        finally:
            bot.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--contributions", type=int, default=50)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--pg-url", default=os.environ.get("COOPBOT_TEST_DATABASE_URL", ""))
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    if "postgres" in kinds and not args.pg_url:
        print("postgres: skipped (set COOPBOT_TEST_DATABASE_URL or --pg-url)")
        kinds.remove("postgres")
    for kind in kinds:
        for members in args.members:
            run(kind, members, args.contributions, args.pg_url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
