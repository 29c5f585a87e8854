"""A lunch rush, start to finish: one `coopbot run` process, a fake Telegram, and the whole co-op at once.

The co-op: `--couriers` couriers (200), all riding, 40 customers (shops with
an address), a coordinator and an admin, a coordinators' room and the co-op's
room, price zones so every order is quoted. Members are written straight into
the database (as `bench/broadcast.py` does); everything after that goes
through the bot. The bot is the real `coopbot run` in a process of its own
(SQLite, then PostgreSQL with `--postgres URL` or COOPBOT_TEST_DATABASE_URL,
in a fresh schema), polling the fake Bot API of the tests
(`tests/telegram/fake_bot_api.py`), which runs in a thread of this process.
The bot's pacing is switched off (`per_second` 10,000, no per-chat interval)
and so are the fake's flood limits: what is measured is the bot, not
Telegram's 30 messages a second.

The script (`bench/lunch_rush_script.py`), as Telegram users, every update
with its own id and every press on a button the bot actually sent:
`--orders` (300) orders arrive evenly over `--seconds` (120): a quarter of an
hour compressed 7.5 times. Each: the customer types `/order DROPOFF`, presses
Confirm on the quote, and reads the delivery code. Rotation offers (the
co-op's rule) go to one courier, who accepts (every fifth declines first and
the next one accepts). For a stretch of `--broadcast` (4) orders a quarter of
the way in, the rule is broadcast (written as a vote that set it for those
minutes and back): every courier gets the offer, and the first `--racers`
(20) to see it press Accept at once; one is told "It's yours", the others
"already taken". The winner presses Picked up, then types `/deliver J-n CODE`
with the customer's code. Halfway through the coordinator `/announce`s to
everyone; three quarters in they `/propose` a poll, every member votes by
button as their ballot lands, and they `/closepoll` it.

Measured: the reply latency of every command and press, from the moment
getUpdates hands the update to the bot to the arrival at the server of its
answer (the message or edit, and for a press the button's answer too),
grouped by kind; p50/p95/p99 of each. The baseline: the bare
python-telegram-bot echo bot of `bench/telegram_roundtrip.py`, on a fake
server of the same kind of its own, 100 rounds before and 100 after the
rush (its p50); for reference, coopbot's own `/whoami` before the rush.
Outbox lag: for every notification the outbox sent, from the row's creation
(written in the transaction of the state change) to the message's arrival
at the server (matched by the `sent_ref` the outbox recorded), per kind of
notification, for private chats alone, and for all. Lost: outbox rows not
sent, sent but never arrived, and notifications the script expects
(customers' three per delivered order, each offer and closed offer, the
announcement and the ballot to every member) that never arrived.
Duplicates: the same text arriving twice in one chat during the rush. CPU
seconds and peak RSS (VmHWM) of the bot's process, read from /proc.

To tell what holds the figures back, also printed: the replies grouped by
how many notifications were waiting to be sent when their update was
handed over; the outbox queue, read each second from another connection
(its length, and whether one chat filled the rows one pass reads); and with
`--profile FILE`, the bot runs under cProfile counting CPU time.

Targets (issue 20): p99 reply latency at most 5x the echo bot's p50 and
under 50 ms, outbox lag p99 under 2 s, nothing lost or duplicated, and
every step answered (a step waits 60 s at most, then the order is dropped
and the step printed).

Left out: Telegram's real network and rate limits (so no lag here is
Telegram's); Matrix; the web door; photos as proof; offers that expire
(the script answers each within a second, unless the outbox is late with
it); people who type slowly (each step follows the last after a random
pause of up to `--think` seconds). A run takes the rush, the outbox's
drain (at most 2 minutes more) and about 20 s of setting up.

    python bench/lunch_rush.py [--orders 300] [--couriers 200] [--seconds 120] [--postgres URL] [--only sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.orm import Session

from bench.lunch_rush_script import (
    Rush,
    RushServer,
    Tally,
    behind_the_outbox,
    duplicates_of,
    expected_missing,
    monotonic_to_wall,
    outbox_kind,
)
from bench.telegram_roundtrip import ECHO_BOT, BotProcess, percentile, serve, text_round
from coopbot.app import CoopBot
from coopbot.config import load_config
from coopbot.models import Announcement, Identity, Job, Member, Offer, OutboxMessage, Poll, Setting
from tests.telegram.fake_bot_api import FakeUser, FloodLimits

ROOT = Path(__file__).resolve().parents[1]
TOKEN_ENV = "COOPBOT_BENCH_TELEGRAM_TOKEN"
PG_ENV = "COOPBOT_TEST_DATABASE_URL"
ROOM, COORDINATORS_ROOM = -1001000000001, -1001000000002
FIRST_COURIER, FIRST_CUSTOMER, COORDINATOR, ADMIN = 40_000_000, 41_000_000, 42_000_000, 42_000_001
ZONES = "A: 75001, 75002; B: 75011; C: 93100"
RATIO_TARGET, P99_TARGET, LAG_TARGET = 5.0, 0.050, 2.0
ECHO_ROUNDS = 100
#: `/whoami` rounds to the bot before the rush, for reference: what an answer costs it when idle.
IDLE_ROUNDS = 50
DRAIN = 120.0
#: Rows of the queue one outbox pass reads (`Outbox.batch`).
HEAD = 500
PRIVATE = "(private chats only)"
ANNOUNCEMENT = "Lunch rush: the depot on rue Oberkampf is closed from 14:00, bring the bikes to Belleville."
#: `coopbot run` under cProfile counting CPU time, not wall time: on a shared machine, waiting for
#: a core would otherwise be charged to whatever function was running.
PROFILED = """
import cProfile, runpy, sys, time
out = sys.argv.pop(1)
profiler = cProfile.Profile(time.process_time)
try:
    profiler.runcall(runpy.run_module, "coopbot", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    profiler.dump_stats(out)
"""


@dataclass
class Figures:
    """One rush's outcome."""

    where: str
    tally: Tally
    echo: list[float]
    idle: list[float]
    lag: dict[str, list[float]]
    lost: dict[str, int]
    duplicates: int
    cpu: float
    cpu_rush: float
    peak_mb: float
    wall: float
    load: tuple[float, float]
    jobs: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


# --- the co-op -------------------------------------------------------------------------------


def write_config(workdir: Path, url: str, base_url: str) -> Path:
    path = workdir / "coopbot.toml"
    path.write_text(
        f'[database]\nurl = "{url}"\n'
        f'[telegram]\nenabled = true\ntoken_env = "{TOKEN_ENV}"\napi_base_url = "{base_url}"\n'
        f"group_chat_ids = [{ROOM}]\ncoordinator_chat_ids = [{COORDINATORS_ROOM}]\n"
        "per_second = 10000.0\nprivate_chat_interval = 0.0\ngroup_per_minute = 1000000\n"
        '[dispatch]\npolicy = "rotation"\n'
        f'[prices]\nbase = 4.0\ncrossing = 2.5\nzones = "{ZONES}"\n'
        '[orders]\nquote_valid_minutes = 15\nproof = "code"\n',
        encoding="utf-8",
    )
    return path


def seed(config_path: Path, couriers: int, customers: int) -> None:
    """The co-op's people, written as `bench/broadcast.py` writes them: all couriers riding."""
    bot = CoopBot(load_config(config_path))
    now = datetime.now(UTC)
    people: list[tuple[str, str, int, str | None]] = [
        ("Cora Coordinator", "coordinator", COORDINATOR, None),
        ("Ada Admin", "admin", ADMIN, None),
    ]
    people += [(f"Courier{n} Rider", "member", FIRST_COURIER + n, None) for n in range(couriers)]
    people += [(f"Shop {n}", "customer", FIRST_CUSTOMER + n, f"{3 + n} rue Paul Bert, 75011") for n in range(customers)]
    try:
        with bot.engine.begin() as connection:
            for name, role, _, address in people:
                riding = role == "member"
                connection.execute(insert(Member).values(
                    name=name, role=role, joined_at=now - timedelta(days=30), address=address, language="en",
                    available=riding, available_since=now - timedelta(minutes=30) if riding else None,
                    last_seen_at=now))  # fmt: skip
            ids = connection.scalars(select(Member.id).order_by(Member.id)).all()
            connection.execute(insert(Identity), [
                {"member_id": member_id, "platform": "telegram", "external_id": str(person[2]),
                 "display_name": person[0], "created_at": now}
                for member_id, person in zip(ids, people, strict=True)
            ])  # fmt: skip
    finally:
        bot.dispose()


def broadcast_window(url: str, start: datetime, end: datetime) -> None:
    """As if a vote had set the offer rule to broadcast from `start` to `end`, then back."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(insert(Setting), [
            {"key": "offer_policy", "value": "broadcast", "effective_at": start},
            {"key": "offer_policy", "value": "rotation", "effective_at": end},
        ])  # fmt: skip
    engine.dispose()


# --- the bot's process --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


async def whoami_rounds(api: object, member: FakeUser, rounds: int) -> list[float]:
    return [await text_round(api, member, f"/whoami {n}") for n in range(rounds)]  # type: ignore[arg-type]


class QueueWatch:
    """The outbox's queue, read each second from another connection: how long, and how much of the
    head that one pass reads (`HEAD` rows, in queue order) belongs to a single chat."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.samples: list[tuple[int, int, str]] = []

    def sample(self) -> tuple[int, int, str]:
        with self.engine.connect() as connection:
            pending = connection.scalar(select(func.count()).where(OutboxMessage.status == "pending")) or 0
            head = select(OutboxMessage.chat_id).where(OutboxMessage.status == "pending")
            chats = Counter(connection.scalars(head.order_by(OutboxMessage.id).limit(HEAD)))
        chat, most = chats.most_common(1)[0] if chats else ("", 0)
        return pending, most, chat

    async def run(self) -> None:
        try:
            while True:
                self.samples.append(await asyncio.to_thread(self.sample))
                await asyncio.sleep(1.0)
        finally:
            self.engine.dispose()

    def summary(self) -> str:
        if not self.samples:
            return "outbox queue: not sampled"
        longest = max(pending for pending, _, _ in self.samples)
        blocked = [chat for _, most, chat in self.samples if most >= HEAD * 0.9]
        where = f" (chat {Counter(blocked).most_common(1)[0][0]})" if blocked else ""
        return (
            f"outbox queue, sampled each second during the rush: at most {longest} waiting; one chat held "
            f"90%+ of the first {HEAD} in {len(blocked)} of {len(self.samples)} samples{where}"
        )


# --- the rush ------------------------------------------------------------------------------------------


async def rush(args: argparse.Namespace, url: str, where: str, workdir: Path) -> Figures:
    load_before = os.getloadavg()[0]
    api = RushServer()
    api.limits = FloodLimits(per_second=10**9, private_burst=10**9, group_per_minute=10**9)
    api.driver = asyncio.get_running_loop()
    await api.start()
    couriers = [api.user(FIRST_COURIER + n, f"Courier{n}", started=True) for n in range(args.couriers)]
    customers = [api.user(FIRST_CUSTOMER + n, f"Shop{n}", started=True) for n in range(args.customers)]
    coordinator = api.user(COORDINATOR, "Cora", started=True)
    admin = api.user(ADMIN, "Ada", started=True)
    api.group(ROOM, "Coop Vélo")
    api.group(COORDINATORS_ROOM, "Coordinators")
    config_path = write_config(workdir, url, api.base_url)
    seed(config_path, args.couriers, args.customers)
    echo = await serve("echo")
    env = {**os.environ, TOKEN_ENV: api.token, "PYTHONPATH": str(ROOT)}
    log = workdir / "bots.log"
    start = ["-c", PROFILED, args.profile] if args.profile else ["-m", "coopbot"]
    run = [sys.executable, *start, "--config", str(config_path), "run"]
    ours = BotProcess(api, run, env, log)
    echoing = BotProcess(echo.api, [sys.executable, "-c", ECHO_BOT, echo.api.token, echo.api.base_url], env, log)
    script = Rush(api, couriers, customers, coordinator, args.racers)
    async with ours, echoing:
        assert ours.process is not None
        pid = ours.process.pid
        echo_times = await whoami_rounds(echo.api, echo.member, ECHO_ROUNDS)
        idle = await whoami_rounds(api, admin, IDLE_ROUNDS)
        gap = args.seconds / args.orders
        started = time.monotonic()
        start_wall = datetime.now(UTC)
        first = args.orders // 4
        broadcast_window(
            url,
            start_wall + timedelta(seconds=(first - 0.5) * gap),
            start_wall + timedelta(seconds=(first + args.broadcast - 0.5) * gap),
        )
        cpu_before = cpu_seconds(pid)
        queue = QueueWatch(url)
        watching = asyncio.create_task(queue.run())
        await play(script, args, started, [*couriers, coordinator, admin])
        rush_wall = time.monotonic() - started
        watching.cancel()
        lag, lost, duplicates, notes = await settle(api, url, script, couriers, [coordinator, admin], started)
        cpu_rush = cpu_seconds(pid) - cpu_before
        cpu, peak = cpu_seconds(pid), peak_rss_mb(pid)
        echo_times += await whoami_rounds(echo.api, echo.member, ECHO_ROUNDS)
    await api.stop()
    await echo.api.stop()
    jobs = Counter(
        str(job.get("policy", "never offered")) + (" delivered" if job.get("delivered") else " not delivered")
        for job in script.jobs.values()
    )
    notes.append(queue.summary())
    return Figures(where, script.tally, echo_times, idle, lag, lost, duplicates, cpu, cpu_rush, peak, rush_wall,
                   (load_before, os.getloadavg()[0]), jobs, notes)  # fmt: skip


async def play(script: Rush, args: argparse.Namespace, started: float, members: list[FakeUser]) -> None:
    """The rush's timeline: orders evenly spaced, the announcement halfway, the poll three quarters in."""
    gap = args.seconds / args.orders
    tasks: list[asyncio.Task[None]] = []
    for number in range(args.orders):
        await asyncio.sleep(max(0.0, started + number * gap - time.monotonic()))
        tasks.append(asyncio.create_task(script.order(number, args.think)))
        if number == args.orders // 2:
            tasks.append(asyncio.create_task(script.announce(ANNOUNCEMENT)))
        if number == args.orders * 3 // 4:
            tasks.append(asyncio.create_task(script.poll(members, args.think * 4)))
    await asyncio.gather(*tasks)


async def settle(api: RushServer, url: str, script: Rush, couriers: list[FakeUser], staff: list[FakeUser],
                 since: float) -> tuple[dict[str, list[float]], dict[str, int], int, list[str]]:  # fmt: skip
    """Wait for the outbox to empty, then read what it owed and match it with what arrived."""
    engine = create_engine(url)
    deadline = time.monotonic() + DRAIN
    with Session(engine) as session:
        while time.monotonic() < deadline:
            pending = session.scalar(select(OutboxMessage.id).where(OutboxMessage.status == "pending").limit(1))
            session.rollback()
            if pending is None:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)  # a straggler, a duplicate, would arrive now
        rows = session.execute(select(OutboxMessage.key, OutboxMessage.status, OutboxMessage.created_at,
                                      OutboxMessage.sent_ref, OutboxMessage.private)).all()  # fmt: skip
        offers = [(job, member, str(status)) for job, member, status in session.execute(
            select(Offer.job_id, Offer.member_id, Offer.status))]  # fmt: skip
        identities = dict(session.execute(select(Identity.member_id, Identity.external_id)).all())
        announced = session.scalar(select(Announcement.id).limit(1))
        polled = session.scalar(select(Poll.id).limit(1))
        jobs = Counter(f"{policy} {status}" for policy, status in session.execute(select(Job.policy, Job.status)))
    engine.dispose()
    shift = monotonic_to_wall()
    lag: dict[str, list[float]] = {}
    arrivals: list[tuple[datetime, tuple[int, int]]] = []
    lost: Counter[str] = Counter()
    for key, status, queued, ref, private in rows:
        kind = outbox_kind(key)
        if status != "sent":
            lost[f"outbox rows {status}"] += 1
            continue
        chat, _, message_id = str(ref).partition(":")
        seen = api.sends.get((int(chat), int(message_id))) if message_id.isdigit() else None
        if seen is None:
            lost["sent but never arrived"] += 1
            continue
        created = queued.replace(tzinfo=queued.tzinfo or UTC)
        arrivals.append((created, (seen.chat, seen.message_id)))
        lag.setdefault(kind, []).append(seen.at + shift - created.timestamp())
        if private:
            lag.setdefault(PRIVATE, []).append(seen.at + shift - created.timestamp())
    lost.update(expected_missing(api, script, offers, identities, couriers + staff, announced, polled))
    notes = [f"jobs in the database, by offer rule and state: {dict(sorted(jobs.items()))}"]
    sent = [(created.timestamp(), api.sends[ref].at + shift) for created, ref in arrivals]
    if sent:
        span = max(at for _, at in sent) - min(created for created, _ in sent)
        notes.append(
            f"outbox: {len(sent)} messages, from the first queued to the last arrived {span:.1f} s: "
            f"{len(sent) / span:.0f}/s on average"
        )
    notes += behind_the_outbox(script.tally, [(c.timestamp(), api.sends[ref].at + shift) for c, ref in arrivals], shift)
    return lag, dict(lost), duplicates_of(api, since), notes


# --- the table ------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def report(f: Figures) -> bool:
    echo_p50 = statistics.median(f.echo)
    ceiling = min(RATIO_TARGET * echo_p50, P99_TARGET)
    print(f"\n== {f.where}: rush {f.wall:.1f} s, load average {f.load[0]:.2f} before, {f.load[1]:.2f} after")
    print(f"orders, as the script saw them: {dict(f.jobs)}")
    for note in f.notes:
        print(note)
    print(
        f"echo bot /whoami p50 {echo_p50 * 1000:.2f} ms over {len(f.echo)} rounds "
        f"-> p99 ceiling min({RATIO_TARGET:g}x = {RATIO_TARGET * echo_p50 * 1000:.1f} ms, {P99_TARGET * 1000:g} ms)"
    )
    print(
        f"coopbot /whoami before the rush, idle: p50 {statistics.median(f.idle) * 1000:.2f} ms over {len(f.idle)} "
        "rounds (for reference)"
    )
    print(f"{'reply latency':24} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p99/echo':>8}  target")
    ok = True
    for kind, values in sorted(f.tally.latency.items()):
        p50, p95, p99 = (percentile(values, q) for q in (0.5, 0.95, 0.99))
        met = p99 <= ceiling
        ok &= met
        print(
            f"{kind:24} {len(values):>5} {p50 * 1000:>8.1f} {p95 * 1000:>8.1f} {p99 * 1000:>8.1f} "
            f"{p99 / echo_p50:>7.1f}x  p99 <= {ceiling * 1000:.1f} ms {verdict(met)}"
        )
    every = [v for kind, values in f.lag.items() if kind != PRIVATE for v in values]
    print(f"{'outbox lag':24} {'n':>5} {'p50 s':>8} {'p95 s':>8} {'p99 s':>8}")
    kinds = sorted(kind for kind in f.lag if kind != PRIVATE)
    for kind, values in [*((k, f.lag[k]) for k in kinds), (PRIVATE, f.lag.get(PRIVATE, [])), ("all", every)]:
        p50, p95, p99 = (percentile(values, q) for q in (0.5, 0.95, 0.99))
        line = f"{kind:24} {len(values):>5} {p50:>8.3f} {p95:>8.3f} {p99:>8.3f}"
        if kind == "all":
            met = p99 < LAG_TARGET
            ok &= met
            line += f"  p99 < {LAG_TARGET:g} s {verdict(met)}"
        print(line)
    lost = sum(f.lost.values())
    print(f"lost: {lost} {dict(f.lost) if lost else ''} (target 0) {verdict(lost == 0)}")
    print(f"duplicates: {f.duplicates} (target 0) {verdict(f.duplicates == 0)}")
    stuck = f.tally.stuck
    print(f"steps without an answer: {len(stuck)} (target 0) {verdict(not stuck)}")
    for line in stuck[:10]:
        print(f"    {line}")
    print(
        f"bot process: {f.cpu_rush:.1f} CPU s during the rush and drain ({f.cpu:.1f} s in all), "
        f"peak RSS {f.peak_mb:.0f} MB (no target)"
    )
    return ok and lost == 0 and f.duplicates == 0 and not stuck


@contextlib.contextmanager
def database(kind: str, pg_url: str | None, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'rush.sqlite3'}"
        return
    from bench.period_close import database as postgres_schema

    assert pg_url is not None
    with postgres_schema("postgres", pg_url) as url:
        yield url


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--couriers", type=int, default=200)
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=120.0, help="over which the orders arrive (default 120)")
    parser.add_argument("--broadcast", type=int, default=4, help="orders offered to everyone (default 4)")
    parser.add_argument("--racers", type=int, default=20, help="couriers pressing Accept on a broadcast offer")
    parser.add_argument("--think", type=float, default=0.5, help="most seconds a person pauses between steps")
    parser.add_argument("--postgres", metavar="URL", default=os.environ.get(PG_ENV))
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    parser.add_argument(
        "--profile", metavar="FILE", help="run the bot under cProfile (CPU time), its stats written to FILE"
    )
    args = parser.parse_args()
    args.racers = min(args.racers, args.couriers)
    kinds = [k for k in ("sqlite", "postgres") if args.only in (None, k) and (k == "sqlite" or args.postgres)]
    print(
        f"{args.orders} orders over {args.seconds:g} s, {args.orders / args.seconds * 60:.0f} a minute (the issue's "
        f"rush, 300 in a quarter of an hour, is 20 a minute), {args.couriers} couriers, {args.customers} customers, "
        f"{args.broadcast} broadcast orders raced by {args.racers}"
    )
    ok = True
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="coopbot-rush-") as workdir, \
                database(kind, args.postgres, Path(workdir)) as url:  # fmt: skip
            figures = asyncio.run(rush(args, url, "SQLite" if kind == "sqlite" else "PostgreSQL", Path(workdir)))
        ok &= report(figures)
    print("\nevery target met" if ok else "\nTARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
