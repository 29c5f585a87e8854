"""What the outbox itself spends to deliver a message: CPU and statements per message.

Not a user's path on its own, but a part of several: the notices of an order
(`bench/web.py`), of a lunch rush (`bench/lunch_rush.py`) and of an
announcement (`bench/broadcast.py`) all go through it, and their figures
are explained by this one. A real `CoopBot` (its migrations, its outbox's
delivery loop `Outbox.run`) on a temporary SQLite file or a fresh PostgreSQL
schema; --messages stored messages are queued, either all to one chat (a
shop's webhooks, the console) or each to a chat of its own (an
announcement), to a platform that takes every message at once and whose
limits are lifted, so that nothing but the outbox is measured. Printed: wall
time, the process's CPU time (all threads) and statements per message (every
statement the engine runs from the first pass to the last "sent").

Left out: the platform's own work (HTTP to Telegram or Matrix, about 5 ms of
CPU a message through python-telegram-bot, see `bench/broadcast.py`), its
pacing, messages written when sent (`coopbot.outbox_render`), failures.

    python bench/outbox_delivery.py [--messages 2000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event

from bench.period_close import database
from coopbot.app import CoopBot
from coopbot.chat import Address, Incoming, IncomingHandler, Outgoing, Pacing
from coopbot.clock import SystemClock
from coopbot.config import Config, DatabaseSection
from coopbot.outbox import queue


class Instant:
    """A platform that takes every message at once, with no limit worth the name."""

    platform = "instant"

    def __init__(self, expected: int) -> None:
        self.sent = 0
        self.expected = expected
        self.all_sent = asyncio.Event()

    async def start(self, on_incoming: IncomingHandler) -> None: ...

    async def stop(self) -> None: ...

    async def reply(self, incoming: Incoming, messages: list[Outgoing]) -> None: ...

    def pacing(self) -> Pacing:
        return Pacing(per_second=100_000, private_chat_interval=0.0, group_per_minute=6_000_000)

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        self.sent += 1
        if self.sent == self.expected:
            self.all_sent.set()
        return str(self.sent)


async def deliver(bot: CoopBot, transport: Instant) -> None:
    stop = asyncio.Event()
    loop = asyncio.create_task(bot.outbox.run(stop))
    await transport.all_sent.wait()
    await bot.outbox.recorded()
    stop.set()
    await loop


def run(url: str, messages: int, chats: int) -> str:
    bot = CoopBot(Config(database=DatabaseSection(url=url)), clock=SystemClock())
    transport = Instant(messages)
    bot.add_transport(transport)
    with bot.sessions() as session, session.begin():
        for n in range(messages):
            queue(session, key=f"m{n}", address=Address("instant", f"chat{n % chats}", True),
                  message=Outgoing(f"J-{n} is yours"), now=bot.clock.now())  # fmt: skip
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(bot.engine, "before_cursor_execute", count)
    cpu, wall = time.process_time(), time.perf_counter()
    asyncio.run(deliver(bot, transport))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    bot.dispose()
    per_message = statements[0] / messages
    return (f"{messages:,} messages to {chats:,} chat(s): {wall:5.2f} s, {messages / wall:6,.0f}/s; "
            f"CPU {cpu / messages * 1e6:5.0f} µs a message; {per_message:4.2f} statements a message")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--postgres", help="a PostgreSQL URL to run on, instead of SQLite")
    args = parser.parse_args()
    for chats in (1, args.messages):
        with database("postgres" if args.postgres else "sqlite", args.postgres or "") as url:
            print(f"{'PostgreSQL' if args.postgres else 'SQLite':10} {run(url, args.messages, chats)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
