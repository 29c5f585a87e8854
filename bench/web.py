"""How many requests a second the web door answers, next to aiohttp's bare "hello" handler.

The real co-op's web server (`coopbot.web.server.WebServer`, the routes of
`coopbot.runner.web_routes()`) is started on 127.0.0.1, port 0, in this
process's event loop, after `await bot.start()` with the console transport,
as `coopbot run` does: the scheduler and the outbox run beside it. One route
is added to the application built here, not to the product: `GET
/bench-hello`, aiohttp's "hello, world" handler, served by the same server
with the same middlewares and the same security headers. It is the baseline.

The co-op behind it is real, on a temporary SQLite file (or PostgreSQL with
--postgres): price zones `A: 75001, 75002; B: 75011; C: 93100`, members who
logged and got approved hours, income and an expense, a closed vote, a
delivered job, the previous month closed (so the page shows a period), a
courier available, and one shop (a customer with an address and an API key)
per client. `[web] api_rate_per_minute` is set to its highest allowed value
(100,000 a minute per key, 1,667 a second): far above what one client sends
here, so no request is refused with 429 and the limiter's bookkeeping is
measured but never its refusal.

Three kinds of request, 20 clients (--clients) each sending one request,
waiting for its answer, then the next, over keep-alive connections:

- hello: `GET /bench-hello`;
- page: `GET /en`, the public page (read from the database and rendered in a
  worker thread, as in production);
- order: `POST /api/v1/orders` (a quote: zones, price rules, citations), then
  `POST /api/v1/orders/{code}/confirm` (dispatch: the job is offered to the
  couriers and their notifications are queued in the outbox). Both requests
  count as one order: orders/s is judged against hello requests/s, and p50
  and p99 are those of the pair (the single requests are printed too).

Rounds alternate between the three kinds (hello, page, order, hello, ...;
--rounds of --seconds each), so that this machine's drift in speed, a third
from one minute to the next, hits all three alike. Targets: the page at
least 0.3x hello's requests/s, orders at least 0.2x, and p99 of each under
50 ms on SQLite. After each round the server waits until its outbox has
sent every message due (`outbox_settled`), and that wait counts in the
round's length: an order round's rate is of orders queued and delivered, and
no round pays for the messages of the one before it. Orders pile up as the
run goes on (each round adds a few thousand jobs), which the page's fairness
section and the dispatch then read: later rounds are a slightly bigger co-op
than the first.

The clients run in a process of their own (`--drive`, started by this
script), so the server's process spends its CPU on serving alone; on this
2-core machine the client process takes most of one core, leaving the server
one core plus whatever its worker threads get. Run in the server's process,
the clients would share its interpreter lock and event loop, and every
figure would be charged with their work (the hello baseline most of all,
which would make the ratios look better than they are).

Left out: TLS and the reverse proxy in front (Caddy or nginx), the network
(all on 127.0.0.1), a browser's fetching of the stylesheet and Chromium's
rendering, the share chart PNG (drawn by matplotlib, cached an hour by
browsers), GET, DELETE and list requests of the API, Idempotency-Key
replays, and the outbox actually sending the notifications the orders queue
to Telegram or Matrix (here it hands them to the console transport, which
keeps them in memory). Not a test: timings depend on the machine.

    python bench/web.py                           # 3 rounds of each, 5 s each, 20 clients, SQLite
    python bench/web.py --rounds 5 --seconds 3 --check
    python bench/web.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web
from sqlalchemy import Engine, bindparam, create_engine

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("hello", "page", "order")
TARGETS = {"page": 0.3, "order": 0.2}
P99_TARGET_MS = 50.0
HELLO = "/bench-hello"
PAGE = "/en"
ORDERS = "/api/v1/orders"
ZONES = "A: 75001, 75002; B: 75011; C: 93100"
ORDER = {"dropoff": "12 rue de Paris, 93100 Montreuil", "note": "two crates"}
RATE_PER_MINUTE = 100_000  # the highest `[web] api_rate_per_minute` allows
WARM_UP_SECONDS = 1.0
#: How often, and how long at most, to wait for the outbox after a round (`outbox_settled`).
SETTLE_POLL = 0.02
SETTLE_LIMIT = 120.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else float("nan")


# --- The load: a process of its own -------------------------------------------------------------


async def client_loop(
    session: aiohttp.ClientSession, base: str, kind: str, key: str, until: float, out: dict[str, list[float]]
) -> None:
    """One client: a request, its answer, the next, until `until`."""
    auth = {"Authorization": f"Bearer {key}"}
    while time.perf_counter() < until:
        start = time.perf_counter()
        if kind == "order":
            async with session.post(base + ORDERS, json=ORDER, headers=auth) as response:
                body = await response.read()
                if response.status != 201:
                    raise SystemExit(f"POST {ORDERS}: {response.status} {body[:300]!r}")
                code = json.loads(body)["code"]
            between = time.perf_counter()
            async with session.post(f"{base}{ORDERS}/{code}/confirm", headers=auth) as response:
                body = await response.read()
                if response.status != 200:
                    raise SystemExit(f"confirm {code}: {response.status} {body[:300]!r}")
            end = time.perf_counter()
            out["create"].append(between - start)
            out["confirm"].append(end - between)
        else:
            async with session.get(base + (HELLO if kind == "hello" else PAGE)) as response:
                body = await response.read()
                if response.status != 200:
                    raise SystemExit(f"{kind}: {response.status} {body[:300]!r}")
            end = time.perf_counter()
        out["latency"].append(end - start)


async def drive() -> None:
    """Read `{base, keys}`, then one `{kind, seconds}` a line; answer each with its latencies."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    setup = json.loads(await reader.readline())
    base, keys = setup["base"], setup["keys"]
    async with contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)))
            for _ in keys
        ]
        while line := await reader.readline():
            order = json.loads(line)
            out: dict[str, list[float]] = {"latency": [], "create": [], "confirm": []}
            started = time.perf_counter()
            until = started + order["seconds"]
            await asyncio.gather(
                *(client_loop(s, base, order["kind"], key, until, out) for s, key in zip(sessions, keys, strict=True))
            )
            out["elapsed"] = [time.perf_counter() - started]
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()


class Load:
    """The client process, told what to send and for how long, round by round."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    @contextlib.asynccontextmanager
    async def started(cls, base: str, keys: list[str]) -> AsyncIterator[Load]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--drive",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 30,  # a round's latencies come back as one line of JSON
        )
        load = cls(process)
        try:
            await load.send({"base": base, "keys": keys})
            yield load
        finally:
            assert process.stdin is not None
            process.stdin.close()
            await process.wait()

    async def send(self, message: dict[str, object]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await self.process.stdin.drain()

    async def round(self, kind: str, seconds: float) -> dict[str, list[float]]:
        await self.send({"kind": kind, "seconds": seconds})
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the client process stopped during a {kind} round (exit {await self.process.wait()})")
        return json.loads(line)  # type: ignore[no-any-return]


# --- The co-op and its server -------------------------------------------------------------------


@contextlib.contextmanager
def database(workdir: Path, pg_url: str | None) -> Iterator[str]:
    """SQLite in `workdir`, or a schema of its own on PostgreSQL (period_close's, dropped after)."""
    if pg_url is None:
        yield f"sqlite:///{workdir / 'bench.sqlite3'}"
        return
    from bench.period_close import database as postgres_schema

    with postgres_schema("postgres", pg_url) as url:
        yield url


def bench_config(url: str):  # type: ignore[no-untyped-def]
    from tests.conftest import make_config

    return make_config(
        url,
        prices={"base": 4.0, "crossing": 2.5, "zones": ZONES},
        orders={"quote_valid_minutes": 15, "proof": "code"},
        web={"enabled": True, "listen": "127.0.0.1", "port": 0, "api_rate_per_minute": RATE_PER_MINUTE},
    )


async def seed(url: str, shops: int) -> list[str]:
    """Last month of a co-op's life, closed; a courier available; `shops` customers with API keys."""
    from coopbot.app import CoopBot
    from coopbot.clock import FakeClock
    from coopbot.models import Job, Member
    from coopbot.services.members import api_keys
    from tests.conftest import Coop

    config = bench_config(url)
    this_month = datetime.now(config.coop.tz).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=2, hour=9)
    clock = FakeClock(last_month.astimezone(UTC))
    bot = CoopBot(config, clock=clock)
    try:
        coop = Coop(bot, clock)
        coop.member("Alice Wexford", "admin", handle="alice")
        coop.member("Bruno Kessler", "coordinator", handle="bruno")
        coop.member("Chloé Varenne", handle="chloé")
        coop.member("Dmitri Hollis", handle="dmitri")
        coop.member("Ana Lopez", handle="ana")
        handles = [coop.member(f"Shop {n}", "customer", handle=f"shop{n}") for n in range(shops)]
        poll = (await coop.say("bruno", "/propose Buy a cargo bike? --closes 1d")).split(" ", 1)[0]
        for handle in ("alice", "bruno", "chloé", "dmitri"):
            await coop.say(handle, f"/vote {poll} agree")
        for handle, hours, kind in (("bruno", "10h", "admin"), ("chloé", "20h", "training"), ("dmitri", "5h", "admin")):
            await coop.say(handle, f"/log {hours} {kind} for the co-op")
        for code in ("C-1", "C-2", "C-3"):
            await coop.say("alice", f"/approve {code}")
        await coop.say("bruno", "/income 1000 restaurant contracts")
        await coop.say("bruno", "/expense 100 bike repairs")
        now = clock.now()
        with coop.session() as session:
            session.add(Job(pickup="17 rue Oberkampf, 75011", dropoff="8 impasse des Lilas, 93100", price_cents=650,
                            status="delivered", assignee_id=coop.member_id("chloé"), created_at=now,
                            updated_at=now))  # fmt: skip
        clock.set(this_month.astimezone(UTC))
        await coop.tick(timedelta(minutes=1))
        await coop.say("ana", "/available")
        keys = []
        numbers = [coop.member_id(handle) for handle in handles]
        with coop.session() as session:
            for n, number in enumerate(numbers):
                shop = session.get_one(Member, number)
                shop.address = f"{3 + n} rue Paul Bert, 75011"
                keys.append(api_keys.issue(session, shop, clock.now()))
        return keys
    finally:
        bot.dispose()


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello, world")


def add_hello(app: web.Application, bot: object) -> None:
    app.router.add_get(HELLO, hello)


@contextlib.asynccontextmanager
async def serving(url: str) -> AsyncIterator[tuple[str, Callable[[], Awaitable[float]]]]:
    """The bot started as `coopbot run` starts it (console transport), then the web door; yields its
    address, and how to wait until its outbox has sent all that is due (`settled`)."""
    from coopbot.app import CoopBot
    from coopbot.runner import web_routes
    from coopbot.transports.console import ConsoleTransport
    from coopbot.web.server import WebServer

    bot = CoopBot(bench_config(url))
    bot.add_transport(ConsoleTransport(out=None))
    await bot.start()
    server = WebServer(bot, [*web_routes(), add_hello], listen="127.0.0.1", port=0)

    probe = create_engine(url)

    async def settled() -> float:
        return await outbox_settled(probe, bot.clock)

    try:
        await server.start()
        yield server.url.rstrip("/"), settled
    finally:
        await server.stop()
        await bot.stop()
        bot.dispose()
        probe.dispose()


async def outbox_settled(probe: Engine, clock: Any) -> float:
    """Wait until the outbox has sent every message due; returns the seconds it took.

    Reason: an order round queues two messages an order (the courier's offer, the
    coordinators' line), and under load the outbox sends them far slower than
    they are queued: at the end of a 4-second round most were still pending, and
    sending them took seconds more. Left to the next round, that work was charged
    to it (a hello round after an order round ran at half the rate of the
    others), which made the ratios of orders to hello look better than they are,
    and the orders' own rate left out their delivery. So every round is followed
    by this wait, which the round's rate counts (`settle`): orders a second are
    orders queued and delivered. `probe` is an engine of its own, kept open and
    beginning no transaction of SQLite's (pysqlite's default), so that asking
    costs the server a fraction of a millisecond and takes no turn of its writers.
    """
    from sqlalchemy import func, select

    from coopbot.models import OutboxMessage

    query = select(func.count()).where(
        OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= bindparam("now")
    )

    def due() -> int:
        with probe.connect() as connection:
            return int(connection.scalar(query, {"now": clock.now()}) or 0)

    started = time.perf_counter()
    while await asyncio.to_thread(due):
        if time.perf_counter() - started > SETTLE_LIMIT:
            raise SystemExit(f"the outbox still had messages due after {SETTLE_LIMIT:g} s")
        await asyncio.sleep(SETTLE_POLL)
    return time.perf_counter() - started


async def measure(url: str, clients: int, rounds: int, seconds: float) -> dict[str, list[dict[str, list[float]]]]:
    keys = await seed(url, clients)
    results: dict[str, list[dict[str, list[float]]]] = {kind: [] for kind in KINDS}
    async with serving(url) as (base, settled), Load.started(base, keys) as load:
        for kind in KINDS:
            await load.round(kind, WARM_UP_SECONDS)
            await settled()
        for number in range(rounds):
            # Each round a different kind first, so none is always the one right after another.
            order = KINDS[number % 3 :] + KINDS[: number % 3]
            for kind in order:
                result = await load.round(kind, seconds)
                result["settle"] = [await settled()]
                results[kind].append(result)
    return results


# --- The table ----------------------------------------------------------------------------------


def report(results: dict[str, list[dict[str, list[float]]]], on_sqlite: bool) -> bool:
    def rate(rounds: list[dict[str, list[float]]]) -> float:
        return sum(len(r["latency"]) for r in rounds) / sum(length(r) for r in rounds)

    def length(result: dict[str, list[float]]) -> float:
        """The round's seconds, and those its outbox took to send what it queued (`outbox_settled`)."""
        return result["elapsed"][0] + result["settle"][0]

    def joined(rounds: list[dict[str, list[float]]], field: str) -> list[float]:
        return [value * 1000 for r in rounds for value in r[field]]

    hello_rate = rate(results["hello"])
    ok = True
    print(f"{'':8} {'count':>7} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7}  verdict")
    for kind in KINDS:
        rounds = results[kind]
        latencies = joined(rounds, "latency")
        per_second = rate(rounds)
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        ratio = per_second / hello_rate
        per_round = ", ".join(f"{len(r['latency']) / length(r):.0f}" for r in rounds)
        if kind == "hello":
            verdict = f"baseline (rounds: {per_round}/s)"
        else:
            fast = ratio >= TARGETS[kind]
            quick = p99 < P99_TARGET_MS or not on_sqlite
            ok = ok and fast and quick
            verdict = (
                f"{'PASS' if fast else 'FAIL'} >= {TARGETS[kind]}x, "
                f"{'PASS' if quick else 'FAIL'} p99 < {P99_TARGET_MS:g} ms"
                + ("" if on_sqlite else " (judged on SQLite only)")
                + f" (rounds: {per_round}/s)"
            )
        print(f"{kind:8} {len(latencies):>7} {per_second:>8.0f} {p50:>8.1f} {p99:>8.1f} {ratio:>6.2f}x  {verdict}")
    settling = [r["settle"][0] for r in results["order"]]
    answered = sum(len(r["latency"]) for r in results["order"]) / sum(r["elapsed"][0] for r in results["order"])
    print(
        f"{'':8} the outbox took {', '.join(f'{value:.2f}' for value in settling)} s after the order rounds "
        f"to send what they queued (counted in their rate); orders answered during the rounds: {answered:.0f}/s"
    )
    for step in ("create", "confirm"):
        values = joined(results["order"], step)
        print(
            f"{'  ' + step:8} {len(values):>7} {'':>8} {percentile(values, 0.5):>8.1f} {percentile(values, 0.99):>8.1f}"
            "          (one request of the order)"
        )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds of each kind (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one round (default 5)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients, one shop each (default 20)")
    parser.add_argument(
        "--postgres", metavar="URL", help="run on this PostgreSQL (in a schema of its own) instead of SQLite"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)  # the client process
    args = parser.parse_args()
    if args.drive:
        asyncio.run(drive())
        return 0
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="coopbot-bench-") as workdir, database(Path(workdir), args.postgres) as url:
        results = asyncio.run(measure(url, args.clients, args.rounds, args.seconds))
    where = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{where}, {args.clients} clients, {args.rounds} rounds of {args.seconds:g} s each, alternating")
    ok = report(results, on_sqlite=args.postgres is None)
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
