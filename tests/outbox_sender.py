"""The sending side of `tests/test_outbox_kill.py`, in a process of its own so the
test can kill it with SIGKILL as an operator's `kill -9` or a power cut would.

It is the real delivery loop (`Outbox.run`) on the real database, and a platform
as thin as can be: each send is one HTTP POST of the message's key to the test's
receiver, whose "ok" is the platform's answer. It runs until nothing is pending.

    python -m tests.outbox_sender DATABASE_URL RECEIVER_URL RUN
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import httpx
from sqlalchemy import func, select

from coopbot.chat import Address, Incoming, IncomingHandler, Outgoing, Pacing, TransientSendError
from coopbot.clock import SystemClock
from coopbot.config import Config, DatabaseSection
from coopbot.db import make_engine, make_sessionmaker
from coopbot.models import OutboxMessage
from coopbot.outbox import Outbox

PLATFORM = "posted"


class SendOnly:
    """A platform that only sends: nobody talks to the bot on it, and it is barely paced.
    The outbox tests' platforms are this with their own `send`."""

    async def start(self, on_incoming: IncomingHandler) -> None: ...

    async def stop(self) -> None: ...

    async def reply(self, incoming: Incoming, messages: list[Outgoing]) -> None: ...

    def pacing(self) -> Pacing:
        return Pacing(per_second=1000, private_chat_interval=0, group_per_minute=60000)


class Posting(SendOnly):
    """A platform that takes every message and answers at once; `run` tags each POST with
    the process that sent it, so the test knows which kill a duplicate came from."""

    platform = PLATFORM

    def __init__(self, receiver: str, run: int) -> None:
        self.client = httpx.AsyncClient(base_url=receiver, limits=httpx.Limits(max_connections=64))
        self.run = run

    def pacing(self) -> Pacing:
        return Pacing(per_second=100_000, private_chat_interval=0.0, group_per_minute=6_000_000)

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        try:
            answer = await self.client.post("/send", content=f"{self.run} {key}".encode())
        except httpx.TransportError as exc:  # as the real transports say a network error
            raise TransientSendError(repr(exc)) from exc
        answer.raise_for_status()
        return answer.text


async def deliver(url: str, receiver: str, run: int) -> int:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    config = Config.model_validate({"database": DatabaseSection(url=url).model_dump()})
    outbox = Outbox(sessions, SystemClock(), config, {PLATFORM: Posting(receiver, run)})
    stop = asyncio.Event()

    def pending() -> int:
        with sessions() as session:
            return session.scalar(select(func.count()).where(OutboxMessage.status == "pending")) or 0

    async def until_done() -> None:
        while await asyncio.to_thread(pending):
            await asyncio.sleep(0.05)
        stop.set()

    watcher = asyncio.create_task(until_done())
    await outbox.run(stop, idle=0.05)
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    engine.dispose()
    return 0


if __name__ == "__main__":
    database_url, receiver_url, run_number = sys.argv[1:4]
    raise SystemExit(asyncio.run(deliver(database_url, receiver_url, int(run_number))))
