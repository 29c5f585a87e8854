"""One pacer per platform for every request: counted as the platform counts it, replies first;
and a request that stumbles while the others go through is tried again soon."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from coopbot.chat import Address, Outgoing, Pacing, TransientSendError
from coopbot.clock import FakeClock
from coopbot.models import OutboxMessage
from coopbot.outbox import BASE_BACKOFF, Outbox, Pacer, queue
from tests.conftest import Coop
from tests.outbox_sender import SendOnly


async def test_a_request_counts_in_the_limit_until_a_second_after_its_answer() -> None:
    """It reaches the platform some time between its start and its answer: counted from its start
    only, a slow answer would let the next second's requests arrive with it."""
    clock = FakeClock()
    pacer = Pacer(Pacing(per_second=2), clock=clock)
    began = clock.monotonic()
    async with pacer.slot("ana", True):
        await clock.sleep(0.5)  # Telegram takes half a second to answer
    async with pacer.slot("bo", True):
        pass
    async with pacer.slot("cy", True):
        started = clock.monotonic()
    assert started - began >= 1.5


class SteppedClock:
    """Moves only when the test says, and wakes sleepers in the order they fell asleep: two
    requests waiting for the same instant, as on a busy platform (a fake clock that jumps at
    each sleep never has two)."""

    def __init__(self) -> None:
        self.at = 0.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.at

    async def sleep(self, seconds: float) -> None:
        woken = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.at + seconds, woken))
        await woken

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        waits = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(self.sleep(timeout))}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for waiting in waits:
            waiting.cancel()
        return event.is_set()

    def advance(self, seconds: float) -> None:
        self.at += seconds
        due = [woken for when, woken in self.sleepers if when <= self.at]
        self.sleepers = [(when, woken) for when, woken in self.sleepers if when > self.at]
        for woken in due:
            if not woken.done():
                woken.set_result(None)


async def test_a_reply_takes_the_next_slot_before_the_deliveries_waiting() -> None:
    """A member typing does not wait behind an announcement to everyone."""
    clock = SteppedClock()
    pacer = Pacer(Pacing(per_second=1), clock=clock)
    went: list[str] = []

    async def send(who: str, reply: bool) -> None:
        async with pacer.slot(who, True, reply=reply):
            went.append(who)

    await send("first", reply=False)  # the second is full
    delivery = asyncio.create_task(send("delivery", reply=False))
    await asyncio.sleep(0)  # a turn of the loop: the delivery waits for the next second, first in line
    reply = asyncio.create_task(send("reply", reply=True))
    await asyncio.sleep(0)
    clock.advance(1.0)
    done, _ = await asyncio.wait({delivery, reply}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    assert done == {reply} and went == ["first", "reply"]
    clock.advance(1.0)
    await asyncio.wait_for(delivery, timeout=5)
    assert went == ["first", "reply", "delivery"]


async def test_a_reply_told_to_wait_holds_no_delivery_back() -> None:
    """Its chat's "retry after" is the member's alone: the announcement goes on meanwhile."""
    clock = SteppedClock()
    pacer = Pacer(Pacing(per_second=1), clock=clock)
    pacer.hold_chat("ana", 30.0)
    went: list[str] = []

    async def send(who: str, reply: bool) -> None:
        async with pacer.slot(who, True, reply=reply):
            went.append(who)

    reply = asyncio.create_task(send("ana", reply=True))
    await asyncio.sleep(0)
    await asyncio.wait_for(send("bo", reply=False), timeout=5)
    assert went == ["bo"]
    clock.advance(30.0)
    await asyncio.wait_for(reply, timeout=5)
    assert went == ["bo", "ana"]


@dataclass
class OneChatStumbles(SendOnly):
    """Telegram's 500 to every send to Ana; the others go through when `healthy`."""

    healthy: bool = True
    platform: str = "stumbling"

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        if address.chat_id == "ana" or not self.healthy:
            raise TransientSendError("500 Internal Server Error")
        return key


async def waits_after_four_failures(coop: Coop, transport: OneChatStumbles) -> float:
    """Seconds Ana's message waits after its fourth failure, a message to someone else sent between each."""
    coop.bot.add_transport(transport)
    to_ana = Address("stumbling", "ana", True)
    with coop.session() as session:
        queue(session, key="ana", address=to_ana, message=Outgoing("Assembly on Thursday"), now=coop.clock.now())
    for n in range(4):
        with coop.session() as session:
            queue(session, key=f"bo{n}", address=Address("stumbling", f"bo{n}", True), message=Outgoing("hi"),
                  now=coop.clock.now())
        coop.clock.advance(seconds=10)  # Ana's retry is due
        await coop.bot.outbox.drain()
    with coop.session() as session:
        row = session.scalars(select(OutboxMessage).where(OutboxMessage.key == "ana")).one()
        assert row.attempts == 4 and row.status == "pending"
        return (row.next_attempt_at - coop.clock.now()).total_seconds()


async def test_a_5xx_while_the_platform_answers_the_others_is_retried_soon(coop: Coop) -> None:
    """One request's stumble in a broadcast: a wait grown from its own failures alone would leave
    the last member's announcement seconds behind the others."""
    assert await waits_after_four_failures(coop, OneChatStumbles()) == BASE_BACKOFF


async def test_in_an_outage_every_failure_makes_the_wait_grow(coop: Coop) -> None:
    assert await waits_after_four_failures(coop, OneChatStumbles(healthy=False)) == BASE_BACKOFF * 2**3


@dataclass
class Unspaced(SendOnly):
    """A platform that lets one chat take message after message (the console, a shop's webhooks)."""

    platform: str = "unspaced"

    def __post_init__(self) -> None:
        self.sent: list[str] = []

    def pacing(self) -> Pacing:
        return Pacing(per_second=1000.0, private_chat_interval=0.0, group_per_minute=60000)

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        self.sent.append(key)
        return key


async def test_a_chat_free_to_take_messages_back_to_back_is_not_held_to_one_a_pass(coop: Coop) -> None:
    """Passes are a tenth of a second apart at least; a chat's next message follows its last one
    at once instead of waiting for the next pass (this clock never reaches the next pass)."""
    clock, transport = SteppedClock(), Unspaced()
    outbox = Outbox(coop.bot.sessions, clock, coop.bot.config, {transport.platform: transport})  # type: ignore[arg-type]
    with coop.session() as session:
        for n in range(5):
            queue(session, key=f"order{n}", address=Address(transport.platform, "shop", True),
                  message=Outgoing(f"J-{n} picked up"), now=coop.clock.now())  # fmt: skip
    stop = asyncio.Event()
    running = asyncio.create_task(outbox.run(stop))
    try:
        for _ in range(500):  # half of PASS_GAP on this clock in all: only the first pass runs
            if len(transport.sent) == 5:
                break
            clock.advance(0.0001)
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        clock.advance(1.0)
        await asyncio.wait_for(running, 10)
    assert transport.sent == [f"order{n}" for n in range(5)]
