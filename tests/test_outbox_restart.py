"""The outbox's promise, tested by breaking things: a crash in the middle of an
announcement to 1,000 members loses nobody and repeats nobody; a message
queued before a crash goes out once after the restart; a failed send is
retried, never dropped."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from sqlalchemy import func, insert, select

from coopbot.app import CoopBot
from coopbot.chat import (
    Address,
    Incoming,
    IncomingHandler,
    Outgoing,
    Pacing,
    TransientSendError,
    UnreachableError,
)
from coopbot.clock import FakeClock
from coopbot.db import transaction
from coopbot.models import Identity, Member, OutboxMessage
from coopbot.outbox import queue_to_member
from coopbot.services.members import accounts as members_svc
from tests.conftest import make_config

COURIERS = 1000


@dataclass
class RecordingTransport:
    """A platform that remembers every message it was given, and can misbehave on cue.

    `hang_after`: after that many deliveries every send hangs (the network died);
    `transient`: that many sends fail with a retryable error first;
    `blocked`: chats that blocked the bot;
    `lose_answer_after`: after that many deliveries, the next one reaches the member
    but the answer never comes back (the crash window between send and commit).
    """

    platform: str = "console"
    per_second: float = 5000.0
    hang_after: int | None = None
    lose_answer_after: int | None = None
    transient: int = 0
    blocked: set[str] = field(default_factory=set)
    deliveries: list[tuple[str, str, str]] = field(default_factory=list)
    attempts: int = 0
    hung: list[asyncio.Task[object]] = field(default_factory=list)
    dead: bool = False
    #: The outbox tasks whose send went through, in order.
    senders: list[asyncio.Task[object]] = field(default_factory=list)
    #: Told of every delivery and every send that hangs.
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self, on_incoming: IncomingHandler) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def reply(self, incoming: Incoming, messages: list[Outgoing]) -> None:
        for message in messages:
            self.deliveries.append((incoming.chat_id, "reply", message.text))

    def pacing(self) -> Pacing:
        return Pacing(per_second=self.per_second, private_chat_interval=0.0, group_per_minute=600000)

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        if self.dead:
            raise asyncio.CancelledError  # the process is gone: nothing leaves any more
        self.attempts += 1
        if address.chat_id in self.blocked:
            raise UnreachableError("Forbidden: bot was blocked by the user")
        if self.transient > 0:
            self.transient -= 1
            raise TransientSendError("502 Bad Gateway")
        task = asyncio.current_task()
        assert task is not None
        if self.hang_after is not None and len(self.deliveries) >= self.hang_after:
            await self._hang(task)
        self.deliveries.append((address.chat_id, key, message.text))
        if self.lose_answer_after is not None and len(self.deliveries) > self.lose_answer_after:
            await self._hang(task)
        self.senders.append(task)
        await self._tell()
        return str(len(self.deliveries))

    async def _hang(self, task: asyncio.Task[object]) -> None:
        self.hung.append(task)
        await self._tell()
        await asyncio.Event().wait()

    async def _tell(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        """Until `condition` holds, checked at each delivery or hang."""
        try:
            async with asyncio.timeout(timeout), self.changed:
                await self.changed.wait_for(condition)
        except TimeoutError:
            pytest.fail(f"gave up waiting: {what}")

    def per_chat(self, keyed: Callable[[str], bool] = lambda key: key.startswith("announce:")) -> Counter[str]:
        return Counter(chat for chat, key, _ in self.deliveries if keyed(key))

    def kill(self) -> None:
        """The process dies: whatever was stuck in a send never finishes."""
        self.dead = True
        for task in self.hung:
            task.cancel()


def add_couriers(bot: CoopBot, count: int, now: datetime) -> list[str]:
    """Bulk-insert `count` members with a console account each; returns their handles."""
    handles = [f"courier-{n}" for n in range(count)]
    with bot.engine.begin() as connection:
        connection.execute(
            insert(Member),
            [{"name": f"Courier {n}", "role": "member", "joined_at": now} for n in range(count)],
        )
        ids = connection.scalars(select(Member.id).where(Member.name.like("Courier %")).order_by(Member.id)).all()
        connection.execute(
            insert(Identity),
            [
                {"member_id": member_id, "platform": "console", "external_id": handle, "created_at": now}
                for member_id, handle in zip(ids, handles, strict=True)
            ],
        )
    return handles


def add_member(bot: CoopBot, name: str, role: str, now: datetime) -> str:
    handle = name.lower()
    with transaction(bot.sessions) as session:
        member = members_svc.create_member(session, name, role, now)
        members_svc.add_identity(session, member, "console", handle, now, name)
    return handle


def bob_with_a_message(bot: CoopBot, key: str, text: str, now: datetime) -> str:
    """Bob joins, and one message to him waits in the outbox; returns his handle."""
    bob = add_member(bot, "Bob", "member", now)
    with transaction(bot.sessions) as session:
        member = members_svc.member_of(session, "console", bob)
        assert member is not None
        queue_to_member(session, member, key, Outgoing(text), now)
    return bob


async def say(bot: CoopBot, who: str, text: str, event: str) -> str:
    incoming = Incoming("console", who, who, True, text, who, event_id=event)
    return "\n".join(m.text for m in await bot.handle(incoming))


def statuses(bot: CoopBot) -> Counter[str]:
    with bot.sessions() as session:
        rows = session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
        return Counter(dict(rows.all()))


async def kill(task: asyncio.Task[None], transport: RecordingTransport) -> None:
    """Stop the delivery loop abruptly. On Python 3.11 `wait_for` can swallow a
    cancellation that races with its wake-up, so cancel until it is gone."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=1)
    transport.kill()
    await asyncio.gather(task, *transport.hung, return_exceptions=True)


async def test_a_crash_half_way_through_an_announcement_loses_nobody_and_repeats_nobody(
    db_url: str, clock: FakeClock
) -> None:
    config = make_config(db_url)
    first = CoopBot(config, clock=clock)
    dying = RecordingTransport(hang_after=400)
    first.add_transport(dying)
    alice = add_member(first, "Alice", "coordinator", clock.now())
    handles = add_couriers(first, COURIERS, clock.now())

    receipt = await say(first, alice, "/announce Assemblée générale jeudi 19h au local", "e1")
    assert f"queued for {COURIERS + 1:,} members" in receipt

    stop = asyncio.Event()
    loop_task = asyncio.create_task(first.outbox.run(stop, idle=0.05))
    await dying.wait_until(lambda: len(dying.deliveries) >= 400, "400 deliveries before the crash")
    await asyncio.wait(dying.senders, timeout=120)
    await first.outbox.recorded()
    assert statuses(first)["sent"] == 400, "the 400 deliveries recorded"
    await kill(loop_task, dying)
    first.dispose()
    assert statuses(first)["pending"] == COURIERS + 2 - 400, "the crash left the rest pending"

    second = CoopBot(config, clock=clock)
    fresh = RecordingTransport()
    second.add_transport(fresh)
    await second.outbox.drain(timeout=120)

    everyone = dying.per_chat() + fresh.per_chat()
    assert all(everyone[handle] == 1 for handle in [*handles, alice]), "each member exactly once"
    assert everyone["coop"] == 1, "the co-op room once"
    assert len(everyone) == COURIERS + 2
    assert statuses(second) == Counter({"sent": COURIERS + 2})

    second.scheduler.run_due()
    await second.outbox.drain()
    receipts = [text for chat, key, text in fresh.deliveries if key.startswith("announce:1:receipt")]
    assert receipts == [f"✅ Announcement A-1 delivered to all {COURIERS + 1:,} members."]
    second.dispose()


async def test_a_message_queued_before_a_crash_is_delivered_once_after_the_restart(
    sqlite_url: str, clock: FakeClock
) -> None:
    config = make_config(sqlite_url)
    first = CoopBot(config, clock=clock)
    bob = bob_with_a_message(first, "period:2026-10:share", "Your share: 312.40 EUR", clock.now())
    first.dispose()  # down before the delivery loop ever ran

    second = CoopBot(config, clock=clock)
    transport = RecordingTransport()
    second.add_transport(transport)
    await second.outbox.drain()
    await second.outbox.drain()
    assert transport.deliveries == [(bob, "period:2026-10:share:console", "Your share: 312.40 EUR")]
    second.dispose()


async def test_a_send_lost_between_delivery_and_commit_is_sent_again_under_the_same_key(
    sqlite_url: str, clock: FakeClock
) -> None:
    """At-least-once towards the platform: the same key comes back, which is what
    lets Matrix (transaction ids) show it once; the member still has one row."""
    config = make_config(sqlite_url)
    first = CoopBot(config, clock=clock)
    bob_with_a_message(first, "notice:1", "Van keys are at the shop", clock.now())
    lossy = RecordingTransport(lose_answer_after=0)
    first.add_transport(lossy)
    stop = asyncio.Event()
    loop_task = asyncio.create_task(first.outbox.run(stop, idle=0.05))
    await lossy.wait_until(lambda: bool(lossy.hung), "the send that never answers")
    await kill(loop_task, lossy)
    first.dispose()

    second = CoopBot(config, clock=clock)
    transport = RecordingTransport()
    second.add_transport(transport)
    await second.outbox.drain()
    keys = [key for _, key, _ in lossy.deliveries + transport.deliveries]
    assert keys == ["notice:1:console", "notice:1:console"]
    assert statuses(second) == Counter({"sent": 1})
    second.dispose()


async def test_a_transport_error_leads_to_a_retry_not_a_loss(sqlite_url: str, clock: FakeClock) -> None:
    bot = CoopBot(make_config(sqlite_url), clock=clock)
    transport = RecordingTransport(transient=2)
    bot.add_transport(transport)
    bob = bob_with_a_message(bot, "notice:2", "Shift swap approved", clock.now())

    await bot.outbox.drain()
    assert transport.deliveries == []
    with bot.sessions() as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "502 Bad Gateway")
        first_wait = row.next_attempt_at - clock.now()

    clock.advance(seconds=first_wait.total_seconds())
    await bot.outbox.drain()
    with bot.sessions() as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert (row.status, row.attempts) == ("pending", 2)
        assert row.next_attempt_at - clock.now() > first_wait, "backs off further"

    clock.advance(minutes=5)
    await bot.outbox.drain()
    assert [chat for chat, _, _ in transport.deliveries] == [bob]
    assert statuses(bot) == Counter({"sent": 1})
    bot.dispose()
