"""How fast an announcement reaches a large co-op without tripping Telegram's flood limits.

A coordinator types `/announce ...` to the real bot (python-telegram-bot, the
router, the outbox, the scheduler) talking to the fake Bot API of the tests,
whose flood limit is set to a known rate. The fake runs in its own process,
as Telegram would, so that it does not eat the bot's event loop. Printed: the
rate achieved as a fraction of that limit, messages lost, duplicates, and
429s received. Target: at least 90% of the limit, nothing lost, no
duplicate, no 429.

The bot is configured with the limit itself (`telegram.per_second`), as an
operator would; the Telegram transport paces a safety margin below it. The
default limit, 100/s, is three times Telegram's real one and keeps the run
near 20 s; from about 200/s on, one bot process runs out of CPU before it
runs out of pacing (try `--limit 300`).

    /tmp/venv/bin/python bench/broadcast.py --members 2000 --limit 100
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


# --- the fake Telegram, in its own process --------------------------------------------------


def telegram_process(conn: Connection, members: int, limit: int) -> None:
    asyncio.run(_serve(conn, members, limit))


async def _serve(conn: Connection, members: int, limit: int) -> None:
    from tests.telegram.fake_bot_api import FakeBotApi, FloodLimits

    api = FakeBotApi()
    api.limits = FloodLimits(per_second=limit)
    await api.start()
    for n in range(members):
        api.user(FIRST_USER + n, f"Courier {n}", started=True)
    api.group(GROUP_ID, "Coop Vélo")
    coordinator = api.user(FIRST_USER, "Courier 0", started=True)
    conn.send((api.port, api.token))
    loop = asyncio.get_running_loop()
    while True:
        command, arg = await loop.run_in_executor(None, conn.recv)
        if command == "say":
            api.say(coordinator, arg)
            conn.send(None)
        elif command == "texts_to":
            conn.send([m["text"] for m in api.sent_to(arg)])
        elif command == "announced":
            conn.send(len({m["chat"]["id"] for m in api.delivered if m["text"].startswith(HEADER)}))
        elif command == "results":
            calls = [
                (c.chat_id, c.outcome, c.at, str(c.params.get("text", ""))[: len(HEADER)])
                for c in api.calls
                if c.method == "sendMessage"
            ]
            delivered = [m["chat"]["id"] for m in api.delivered if m["text"].startswith(HEADER)]
            conn.send((calls, delivered, list(api.violations)))
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


async def run(members: int, limit: int, database_url: str | None, pace: float | None) -> int:
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
        started = time.monotonic()
        await telegram.ask("say", f"/announce {TEXT}")
        await eventually(lambda: answered("📣 Announcement A-1 queued"), timeout=120)
        queued_in = time.monotonic() - started
        queued = (await answered("📣 Announcement A-1 queued"))[0].splitlines()[0]

        async def all_in() -> bool:
            return bool(await telegram.ask("announced") >= members)

        done = await eventually(all_in, timeout=members / limit * 3 + 60)
        receipt = await eventually(lambda: answered("✅"), timeout=30)
        await asyncio.sleep(1.0)  # let any straggler (a duplicate) arrive before counting
        calls, delivered, violations = await telegram.ask("results")
        receipt_text = (await answered("✅"))[:1]
    finally:
        await bot.stop()
        bot.dispose()
        await telegram.ask("stop")
        telegram.process.join(5)

    private = range(FIRST_USER, FIRST_USER + members)
    counts = Counter(delivered)
    sends = sorted(at for chat, outcome, at, head in calls if outcome == "ok" and head == HEADER and chat != GROUP_ID)
    lost = sum(1 for chat in private if counts[chat] == 0)
    duplicates = sum(count - 1 for count in counts.values() if count > 1)
    too_many = sum(1 for _, outcome, _, _ in calls if outcome == "error 429")
    span = sends[-1] - sends[0] if len(sends) > 1 else float("nan")
    rate = (len(sends) - 1) / span if len(sends) > 1 else 0.0
    print(f"members: {members}   flood limit: {limit}/s   telegram.per_second: {pace or limit}/s")
    print(f"the coordinator had an answer after {queued_in:.2f}s: {queued}")
    print(f"private messages delivered: {len(sends)} in {span:.2f}s")
    print(f"achieved rate: {rate:.1f}/s = {rate / limit:.1%} of the limit")
    print(f"lost: {lost}   duplicates: {duplicates}   429s received: {too_many}   violations: {len(violations)}")
    print(f"all delivered: {done}   receipt: {receipt_text[0] if receipt and receipt_text else 'none'}")
    ok = done and receipt and lost == 0 and duplicates == 0 and too_many == 0 and rate >= 0.9 * limit
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=100, help="the fake Telegram's overall limit, per second")
    parser.add_argument("--pace", type=float, default=None, help="telegram.per_second for the bot (default: the limit)")
    parser.add_argument("--database-url", default=None, help="default: a throw-away SQLite file")
    args = parser.parse_args()
    return asyncio.run(run(args.members, args.limit, args.database_url, args.pace))


if __name__ == "__main__":
    raise SystemExit(main())
