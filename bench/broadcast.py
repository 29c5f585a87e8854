"""How fast an announcement reaches a large co-op without tripping Telegram's flood limits.

A coordinator types `/announce ...` to the real bot (python-telegram-bot, the
router, the outbox, the scheduler) talking to the fake Bot API of the tests,
whose overall flood limit is set to a known rate and counted exactly as
named: at most that many requests in any full second (`check_flood`). The
fake runs in its own process, as Telegram would, so that it does not eat the
bot's event loop. Two runs, reported side by side:

- clean: every send succeeds;
- rough: 20% of sendMessage requests fail with a 500 (and are retried by the
  outbox), while members type commands to the bot (`--typing` a second,
  `/whoami`, `/jobs`, `/help` in turn), whose answers share the same limit.

Printed for each: the rate, counted from the moment the server hands the
`/announce` update to the bot to the last announcement request it receives:
requests the limit counts (every sendMessage, failed ones included) and
announcements delivered, each as a fraction of the limit; members who never
got the announcement (lost), those who got it twice (duplicates), 429s
received, and typed commands left unanswered (members stop typing once every
announcement is in, and their last commands are given 15 s to be answered).
Target: requests at least 90% of the limit in both runs, nothing lost, no
duplicate, no 429, every command answered.

The bot is configured with the limit itself (`telegram.per_second`), as an
operator would. Replies and announcements share one pacer, which counts each
request from its start until a second after its answer, and so holds the
limit as the server counts it, on arrival, with no margin
(`coopbot.transports.pacing`). The default limit, 100/s, is three times
Telegram's real one and keeps a run near 20 s; the bot then needs most of a
CPU core (PTB, httpx and two small database transactions a send), so a busy
machine shows as a lower rate, never as a 429 (try `--limit 300`).

Left out: Telegram's real network (the fake answers on 127.0.0.1 at once),
the per-chat and group limits (one message per member), and Matrix.

    python bench/broadcast.py --members 2000 --limit 100 [--runs clean rough]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coopbot.app import CoopBot
from coopbot.config import Config
from coopbot.models import Identity, Member
from coopbot.transports.telegram.transport import build_telegram_transport

TOKEN_ENV = "COOPBOT_BENCH_TELEGRAM_TOKEN"
GROUP_ID = -1001000000001
FIRST_USER = 20_000_000
TEXT = "Assemblée générale jeudi 19h au local. Ordre du jour : budget, rotation, nouveaux vélos."
HEADER = "📣 Announcement A-1 from"
TYPED = ("/whoami", "/jobs", "/help")
FAILING = 0.2
TARGET = 0.9


# --- the fake Telegram, in its own process --------------------------------------------------


def telegram_process(conn: Connection, members: int, limit: int) -> None:
    asyncio.run(_serve(conn, members, limit))


async def _serve(conn: Connection, members: int, limit: int) -> None:
    from tests.telegram.fake_bot_api import FakeBotApi, FloodLimits

    api = FakeBotApi()
    api.limits = FloodLimits(per_second=limit)
    await api.start()
    users = [api.user(FIRST_USER + n, f"Courier {n}", started=True) for n in range(members)]
    api.group(GROUP_ID, "Coop Vélo")
    coordinator = users[0]
    typed: list[tuple[int, int]] = []  # (chat, update id) of every command members typed
    typing: asyncio.Task[None] | None = None

    def unanswered_commands() -> int:
        """Typed commands with no answer yet: each member's answers count against their commands."""
        answers = Counter(m["chat"]["id"] for m in api.delivered if not m["text"].startswith(HEADER))
        asked = Counter(chat for chat, _ in typed)
        return sum(max(0, count - answers[chat]) for chat, count in asked.items())

    async def type_commands(per_second: float) -> None:
        """Members other than the coordinator type commands, one every 1/per_second seconds."""
        n = 0
        while True:
            user = users[1 + n * 7919 % (members - 1)]
            typed.append((user.id, api.say(user, TYPED[n % len(TYPED)])["update_id"]))
            n += 1
            await asyncio.sleep(1 / per_second)

    conn.send((api.port, api.token))
    loop = asyncio.get_running_loop()
    while True:
        command, arg = await loop.run_in_executor(None, conn.recv)
        if command == "say":
            conn.send(api.say(coordinator, arg)["update_id"])
        elif command == "fail":
            api.fail("sendMessage", arg, kinds=("500",))
            conn.send(None)
        elif command == "type":
            typing = asyncio.create_task(type_commands(arg))
            conn.send(None)
        elif command == "quiet":
            if typing is not None:
                typing.cancel()
            conn.send(None)
        elif command == "unanswered":
            conn.send(unanswered_commands())
        elif command == "texts_to":
            conn.send([m["text"] for m in api.sent_to(arg)])
        elif command == "announced":
            conn.send(len({m["chat"]["id"] for m in api.delivered if m["text"].startswith(HEADER)}))
        elif command == "results":
            if typing is not None:
                typing.cancel()
            calls = [
                (c.chat_id, c.outcome, c.at, str(c.params.get("text", ""))[: len(HEADER)])
                for c in api.calls
                if c.method == "sendMessage"
            ]
            delivered = [m["chat"]["id"] for m in api.delivered if m["text"].startswith(HEADER)]
            unanswered = unanswered_commands()
            conn.send((calls, delivered, list(api.violations), dict(api.handed_at), len(typed), unanswered))
        elif command == "stop":
            await api.stop()
            conn.send(None)
            return


class Telegram:
    """The parent's handle on the fake Telegram process."""

    def __init__(self, members: int, limit: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=telegram_process, args=(child, members, limit), daemon=True)
        self.process.start()
        self.port, self.token = self._answer()

    def _answer(self) -> Any:
        while not self.conn.poll(1.0):
            if not self.process.is_alive():
                raise RuntimeError("the fake Telegram process died; see its traceback above")
        return self.conn.recv()

    async def ask(self, command: str, arg: Any = None) -> Any:
        def call() -> Any:
            self.conn.send((command, arg))
            return self._answer()

        return await asyncio.to_thread(call)


# --- the co-op ----------------------------------------------------------------------------


def add_members(bot: CoopBot, count: int) -> None:
    """`count` members on Telegram, each of whom once said /start to the bot; the first coordinates."""
    now = datetime.now(UTC)
    with bot.engine.begin() as connection:
        connection.execute(
            insert(Member),
            [
                {"name": f"Courier {n}", "role": "coordinator" if n == 0 else "member", "joined_at": now}
                for n in range(count)
            ],
        )
        ids = connection.scalars(select(Member.id).order_by(Member.id)).all()
        connection.execute(
            insert(Identity),
            [
                {"member_id": member_id, "platform": "telegram", "external_id": str(FIRST_USER + n), "created_at": now}
                for n, member_id in enumerate(ids)
            ],
        )


async def eventually(check: Callable[[], Any], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return False


@dataclass
class Figures:
    """One run's outcome, as the fake server saw it."""

    label: str
    requests_rate: float
    delivered_rate: float
    span: float
    lost: int
    duplicates: int
    too_many: int
    violations: list[str]
    typed: int
    unanswered: int
    done: bool
    receipt: bool

    def met(self, limit: int) -> bool:
        clean = self.lost == self.duplicates == self.too_many == self.unanswered == 0
        return clean and self.done and self.receipt and self.requests_rate >= TARGET * limit

    def show(self, limit: int) -> None:
        print(f"{self.label}: announcement to the last send {self.span:.2f}s")
        share = self.requests_rate / limit
        print(f"  requests the limit counts: {self.requests_rate:6.1f}/s = {share:.1%} of the limit")
        print(f"  announcements delivered:   {self.delivered_rate:6.1f}/s = {self.delivered_rate / limit:.1%}")
        print(f"  lost: {self.lost}   duplicates: {self.duplicates}   429s received: {self.too_many}")
        for violation in self.violations:
            print(f"    e.g. {violation}")
        print(f"  commands typed meanwhile: {self.typed}, unanswered: {self.unanswered}")
        verdict = "target met" if self.met(limit) else "TARGET MISSED"
        print(f"  all delivered: {self.done}   receipt: {self.receipt}   {verdict}")


async def run(label: str, members: int, limit: int, database_url: str | None, pace: float | None,
              typing: float) -> Figures:  # fmt: skip
    telegram = Telegram(members, limit)
    os.environ[TOKEN_ENV] = telegram.token
    workdir = tempfile.mkdtemp(prefix="coopbot-bench-")
    config = Config.model_validate(
        {
            "database": {"url": database_url or f"sqlite:///{workdir}/bench.sqlite3"},
            "telegram": {
                "enabled": True,
                "token_env": TOKEN_ENV,
                "api_base_url": f"http://127.0.0.1:{telegram.port}/bot",
                "group_chat_ids": [GROUP_ID],
                "per_second": pace or limit,
            },
        }
    )
    bot = CoopBot(config)
    bot.add_transport(build_telegram_transport(config, bot))
    add_members(bot, members)
    await bot.start()
    coordinator = FIRST_USER

    async def answered(prefix: str) -> list[str]:
        return [text for text in await telegram.ask("texts_to", coordinator) if text.startswith(prefix)]

    try:
        if typing:
            await telegram.ask("fail", FAILING)
            await telegram.ask("type", typing)
        announce_id = await telegram.ask("say", f"/announce {TEXT}")

        async def all_in() -> bool:
            return bool(await telegram.ask("announced") >= members)

        done = await eventually(all_in, timeout=members / limit * 3 + 60)
        receipt = await eventually(lambda: answered("✅"), timeout=60)
        if typing:  # members stop typing once it is over, and are given the time a reply may take
            await telegram.ask("quiet")

            async def all_answered() -> bool:
                return bool(await telegram.ask("unanswered") == 0)

            await eventually(all_answered, timeout=15)
        await asyncio.sleep(1.0)  # let any straggler (a duplicate) arrive before counting
        calls, delivered, violations, handed_at, typed, unanswered = await telegram.ask("results")
    finally:
        await bot.stop()
        bot.dispose()
        await telegram.ask("stop")
        telegram.process.join(5)

    start = handed_at[announce_id]
    private = range(FIRST_USER, FIRST_USER + members)
    counts = Counter(delivered)
    announcing = [at for chat, _, at, head in calls if head == HEADER and chat != GROUP_ID]
    end = max(announcing)
    requests = sum(1 for _, _, at, _ in calls if start <= at <= end)
    span = end - start
    return Figures(
        label=label,
        requests_rate=requests / span,
        delivered_rate=sum(1 for chat in private if counts[chat]) / span,
        span=span,
        lost=sum(1 for chat in private if counts[chat] == 0),
        duplicates=sum(count - 1 for count in counts.values() if count > 1),
        too_many=sum(1 for _, outcome, _, _ in calls if outcome == "error 429"),
        violations=violations[:3],
        typed=typed,
        unanswered=unanswered,
        done=done,
        receipt=receipt,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=100, help="the fake Telegram's overall limit, per second")
    parser.add_argument("--pace", type=float, default=None, help="telegram.per_second for the bot (default: the limit)")
    parser.add_argument("--typing", type=float, default=5.0, help="commands typed a second in the rough run")
    parser.add_argument("--runs", nargs="+", choices=("clean", "rough"), default=["clean", "rough"])
    parser.add_argument("--database-url", default=None, help="default: a throw-away SQLite file")
    args = parser.parse_args()
    print(f"members: {args.members}   flood limit: {args.limit}/s   telegram.per_second: {args.pace or args.limit}/s")
    print(f"target: requests >= {TARGET:.0%} of the limit, 0 lost, 0 duplicates, 0 x 429, every command answered")
    results = []
    for name in args.runs:
        label = "clean" if name == "clean" else f"rough ({FAILING:.0%} of sends fail, {args.typing:g} commands/s typed)"
        typing = 0.0 if name == "clean" else args.typing
        figures = asyncio.run(run(label, args.members, args.limit, args.database_url, args.pace, typing))
        figures.show(args.limit)
        results.append(figures)
    ok = all(figures.met(args.limit) for figures in results)
    print("target met in every run" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
