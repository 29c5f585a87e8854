"""The outbox's promises: paced, retried, never lost, unreachable people handled once."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from coopbot.chat import (
    Address,
    Button,
    Outgoing,
    Pacing,
    TransientSendError,
    UnreachableError,
)
from coopbot.clock import FakeClock
from coopbot.config import Config
from coopbot.models import Identity, Member, OutboxMessage
from coopbot.outbox import Notice, Pacer, queue, queue_many, queue_rendered, queue_to_member, recipients, renderer
from coopbot.services.members.accounts import add_identity, member_of
from tests.conftest import Coop
from tests.outbox_sender import SendOnly


def test_pacer_spaces_sends_overall_and_per_chat() -> None:
    pacer = Pacer(Pacing(per_second=10, private_chat_interval=1.0, group_per_minute=20))
    slots = [pacer.reserve(f"chat{n}", True, now=0.0) for n in range(5)]
    assert slots == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert pacer.reserve("chat0", True, now=0.0) == pytest.approx(1.0)
    assert pacer.reserve("group", False, now=0.0) == pytest.approx(1.1)
    assert pacer.reserve("group", False, now=0.0) == pytest.approx(4.1)


def test_a_chat_asked_to_wait_holds_only_its_own_messages() -> None:
    pacer = Pacer(Pacing(per_second=100))
    pacer.hold_chat("slow", 50.0)
    assert pacer.ready_at("slow") == 50.0
    assert pacer.ready_at("other") == 0.0
    pacer.pause(60.0)
    assert pacer.ready_at("other") == 60.0


@dataclass
class TimedTransport(SendOnly):
    """Notes the clock's seconds at each send."""

    clock: FakeClock
    paced: Pacing
    sent: list[tuple[str, float]] = field(default_factory=list)
    platform: str = "timed"

    def pacing(self) -> Pacing:
        return self.paced

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        self.sent.append((address.chat_id, self.clock.monotonic()))
        return str(len(self.sent))


async def test_pacing_counts_the_clocks_seconds_so_a_fake_clock_paces_without_waiting(coop: Coop) -> None:
    paced = Pacing(per_second=2, private_chat_interval=1.0, group_per_minute=20)
    transport, start = TimedTransport(coop.clock, paced), coop.clock.now()
    coop.bot.add_transport(transport)
    with coop.session() as session:
        for n in range(3):
            for chat, private in (("ana", True), ("bo", True), ("room", False)):
                message = Outgoing("x", buttons=(Button("Take", "/take", "✅"),))  # a room's lines alone are joined
                queue(session, key=f"{chat}{n}", address=Address("timed", chat, private), message=message,
                      now=coop.clock.now())
    started, moved = time.monotonic(), 0
    await coop.bot.outbox.drain()
    while len(transport.sent) < 9 and moved < 10:  # a message paced past the next second waits for the clock
        coop.clock.advance(seconds=1)
        moved += 1
        await coop.bot.outbox.drain()
    assert time.monotonic() - started < 2.0, "seconds of pacing took no real time"
    assert len(transport.sent) == 9
    times = [at for _, at in transport.sent]
    assert times == sorted(times)
    assert all(sum(1 for t in times if at - 1.0 < t <= at) <= 2 for at in times), "2 a second at most"
    for chat, gap in (("ana", 1.0), ("bo", 1.0), ("room", 3.0)):
        mine = [at for to, at in transport.sent if to == chat]
        assert all(later - earlier >= gap for earlier, later in itertools.pairwise(mine)), chat
    assert times[-1] - times[0] >= 6.0, "three group messages, 3 s apart"
    assert coop.clock.now() == start + timedelta(seconds=moved), "pacing leaves the date alone"


async def test_a_room_with_a_long_queue_holds_back_no_other_chat(coop: Coop) -> None:
    """The coordinators' room, 20 lines a minute at most, with hundreds queued in a rush: a
    rider's offer queued after them still goes out in the first pass."""
    paced = Pacing(per_second=30, private_chat_interval=1.0, group_per_minute=20)
    transport = TimedTransport(coop.clock, paced)
    coop.bot.add_transport(transport)
    lines = coop.bot.outbox.batch + 10
    with coop.session() as session:
        for n in range(lines):
            queue(session, key=f"room{n}", address=Address("timed", "room", False), message=Outgoing(f"J-{n}"),
                  now=coop.clock.now())
        queue(session, key="offer", address=Address("timed", "bob", True), message=Outgoing("J-1 for you?"),
              now=coop.clock.now())
    await coop.bot.outbox.drain(timeout=5)
    assert [chat for chat, _ in transport.sent] == ["room", "bob"]


@dataclass
class FlakyTransport(SendOnly):
    """Fails the first `failures` sends to each chat, then delivers."""

    failures: int = 0
    unreachable: set[str] = field(default_factory=set)
    delivered: list[tuple[str, str]] = field(default_factory=list)
    tries: dict[str, int] = field(default_factory=dict)
    platform: str = "flaky"

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        if address.chat_id in self.unreachable:
            raise UnreachableError("blocked")
        self.tries[address.chat_id] = self.tries.get(address.chat_id, 0) + 1
        if self.tries[address.chat_id] <= self.failures:
            raise TransientSendError("502 Bad Gateway")
        self.delivered.append((address.chat_id, message.text))
        return str(len(self.delivered))


def flaky_member(coop: Coop, name: str, chat: str) -> None:
    coop.member(name)
    with coop.session() as session:
        member = member_of(session, "console", name.lower())
        assert member is not None
        session.add(Identity(member_id=member.id, platform="flaky", external_id=chat,
                             created_at=coop.clock.now()))


async def test_a_transport_error_means_a_retry_not_a_loss(coop: Coop) -> None:
    transport = FlakyTransport(failures=2)
    coop.bot.add_transport(transport)
    with coop.session() as session:
        queue(session, key="hello", address=Address("flaky", "c1", True), message=Outgoing("hi"),
              now=coop.clock.now())
    for _ in range(3):
        await coop.bot.outbox.drain()
        coop.clock.advance(seconds=60)
    assert transport.delivered == [("c1", "hi")]
    with coop.session() as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert (row.status, row.attempts) == ("sent", 3)


async def test_queueing_the_same_key_twice_sends_once(coop: Coop) -> None:
    transport = FlakyTransport()
    coop.bot.add_transport(transport)
    flaky_member(coop, "Bob", "b1")
    for _ in range(2):
        with coop.session() as session:
            bob = member_of(session, "console", "bob")
            assert bob is not None
            queue_to_member(session, bob, "notice:1", Outgoing("once"), coop.clock.now())
    await coop.bot.outbox.drain()
    assert transport.delivered == [("b1", "once")]


async def test_a_message_queued_before_a_crash_is_sent_once_after_restart(coop: Coop) -> None:
    with coop.session() as session:
        queue(session, key="before-crash", address=Address("flaky", "c1", True),
              message=Outgoing("still here"), now=coop.clock.now())
    coop.bot.dispose()  # the process dies: nothing was sent, no transport was running

    from coopbot.app import CoopBot

    restarted = CoopBot(coop.bot.config, clock=coop.clock)
    transport = FlakyTransport()
    restarted.add_transport(transport)
    await restarted.outbox.drain()
    await restarted.outbox.drain()
    assert transport.delivered == [("c1", "still here")]
    restarted.dispose()


async def test_a_member_who_blocked_the_bot_is_marked_and_coordinators_told_once(coop: Coop) -> None:
    transport = FlakyTransport(unreachable={"b1"})
    coop.bot.add_transport(transport)
    alice = coop.member("Alice", "coordinator")
    flaky_member(coop, "Bob", "b1")
    for n in range(3):
        with coop.session() as session:
            bob = member_of(session, "console", "bob")
            assert bob is not None
            queue(session, key=f"n{n}", address=Address("flaky", "b1", True), message=Outgoing("x"),
                  now=coop.clock.now(), member_id=bob.id,
                  identity_id=next(i.id for i in bob.identities if i.platform == "flaky"))
        await coop.bot.outbox.drain()
    notices = [m.text for m in coop.room("coordinators")]
    assert len(notices) == 1 and "Bob can no longer be reached" in notices[0]
    with coop.session() as session:
        assert session.scalars(select(Identity.reachable).where(Identity.platform == "flaky")).one() is False
    assert alice


async def test_a_chats_messages_arrive_in_the_order_they_were_queued(coop: Coop) -> None:
    transport = FlakyTransport(failures=1)
    coop.bot.add_transport(transport)
    with coop.session() as session:
        for n in range(4):
            queue(session, key=f"n{n}", address=Address("flaky", "c1", True), message=Outgoing(f"notice {n}"),
                  now=coop.clock.now())
    for _ in range(3):
        await coop.bot.outbox.drain()
        coop.clock.advance(seconds=60)
    assert [text for _, text in transport.delivered] == [f"notice {n}" for n in range(4)]


#: (name, /notify choice, Telegram account: None, "reachable" or "blocked", still a member)
CREW = [
    ("Ana", "both", "reachable", True),
    ("Bea", "telegram", "reachable", True),
    ("Cy", "telegram", "blocked", True),
    ("Dan", "matrix", None, True),
    ("Eve", "both", "reachable", False),
]
#: Where each one's private notices go.
EXPECTED = {"Ana": {"console", "telegram"}, "Bea": {"telegram"}, "Cy": {"console"}, "Dan": {"console"}, "Eve": set()}


def crew(coop: Coop, teams: int) -> None:
    """`teams` copies of CREW (Ana0, Bea0, ... Ana1, ...), enough rows for PostgreSQL's COPY."""
    for team in range(teams):
        for name, notify, telegram, active in CREW:
            handle = coop.member(f"{name}{team}")
            with coop.session() as session:
                member = member_of(session, "console", handle)
                assert member is not None
                member.notify, member.active = notify, active
                if telegram is not None:
                    account = add_identity(session, member, "telegram", f"tg-{handle}", coop.clock.now())
                    account.reachable = telegram == "reachable"


def queued(coop: Coop, prefix: str) -> dict[str, set[str]]:
    """Who got a row under `prefix`, on which platforms, checking each row on the way."""
    found: dict[str, set[str]] = {}
    with coop.session() as session:
        for row in session.scalars(select(OutboxMessage).where(OutboxMessage.key.startswith(prefix))):
            member = session.get_one(Member, row.member_id)
            identity = session.get_one(Identity, row.identity_id)
            assert row.key == f"{prefix}{member.name}:{row.platform}"
            assert (identity.member_id, identity.platform, identity.external_id) == (member.id, row.platform,
                                                                                     row.chat_id)
            assert (row.private, row.status, row.attempts, row.next_attempt_at) == (True, "pending", 0,
                                                                                    coop.clock.now())
            assert (row.text, row.buttons) == (f"Hello {member.name}", [["Yes", "/yes", "✅"]])
            found.setdefault(member.name[:-1], set()).add(row.platform)
    return found


def hello(who: Member) -> Outgoing:
    return Outgoing(f"Hello {who.name}", buttons=(Button("Yes", "/yes", "✅"),))


async def test_queueing_many_follows_each_members_notify_choice_and_skips_who_left(any_coop: Coop) -> None:
    crew(any_coop, 5)
    with any_coop.session() as session:
        everyone = list(session.scalars(select(Member).order_by(Member.id)))
        notices: list[Notice] = [(m, f"many:{m.name}", hello(m)) for m in everyone]
        assert queue_many(session, notices, any_coop.clock.now()) == 5 * 5
    assert queued(any_coop, "many:") == {name: platforms for name, platforms in EXPECTED.items() if platforms}
    await any_coop.bot.outbox.drain()
    assert [m.text for m in any_coop.inbox("ana0")] == ["Hello Ana0"]
    assert [m.buttons for m in any_coop.inbox("cy3")] == [(Button("Yes", "/yes", "✅"),)]
    assert any_coop.inbox("bea0") == [] and any_coop.inbox("eve0") == []


async def test_members_read_as_plain_rows_are_queued_like_members(any_coop: Coop) -> None:
    crew(any_coop, 5)
    with any_coop.session() as session:
        told = recipients(session, Member.id.is_not(None))
        assert {r.member_id for r in told.values()} == set(session.scalars(select(Member.id).where(Member.active)))
        members = {m.id: m for m in session.scalars(select(Member))}
        notices: list[Notice] = [(r, f"rows:{members[r.member_id].name}", hello(members[r.member_id]))
                                 for r in told.values()]
        assert queue_many(session, notices, any_coop.clock.now()) == 5 * 5
    assert queued(any_coop, "rows:") == {name: platforms for name, platforms in EXPECTED.items() if platforms}


async def test_a_batch_skips_keys_already_queued_and_repeated_keys(any_coop: Coop) -> None:
    crew(any_coop, 5)
    now = any_coop.clock.now()
    with any_coop.session() as session:
        everyone = list(session.scalars(select(Member).order_by(Member.id)))
        ana = everyone[0]
        assert queue_to_member(session, ana, f"again:{ana.name}", hello(ana), now) == 2
    with any_coop.session() as session:
        everyone = list(session.scalars(select(Member).order_by(Member.id)))
        notices: list[Notice] = [(m, f"again:{m.name}", hello(m)) for m in everyone]
        assert queue_many(session, notices + notices, now) == 5 * 5 - 2
        assert queue_many(session, notices, now) == 0
    assert queued(any_coop, "again:") == {name: platforms for name, platforms in EXPECTED.items() if platforms}


#: How many more times the "flaky-hello" renderer fails.
RENDER_FAILURES = [0]


@renderer("hello")
def _hello_when_sent(session: Session, config: Config, argument: str, row: OutboxMessage) -> Outgoing:
    return Outgoing(f"{argument} {session.get_one(Member, row.member_id).name}")


@renderer("flaky-hello")
def _flaky_hello(session: Session, config: Config, argument: str, row: OutboxMessage) -> Outgoing:
    if RENDER_FAILURES[0] > 0:
        RENDER_FAILURES[0] -= 1
        raise RuntimeError("the renderer hit a bug")
    return _hello_when_sent(session, config, argument, row)


def learn_test_renderers(coop: Coop) -> None:
    """This module's renderers, for its own bot only."""
    for declared in (_hello_when_sent, _flaky_hello):
        coop.bot.renderers.add(declared)


def addressed(coop: Coop, prefix: str) -> set[tuple[int | None, int | None, str, str]]:
    with coop.session() as session:
        rows = session.execute(
            select(OutboxMessage.member_id, OutboxMessage.identity_id, OutboxMessage.platform, OutboxMessage.chat_id)
            .where(OutboxMessage.key.startswith(prefix))
        )
        return {tuple(row) for row in rows}


async def test_messages_written_when_sent_go_where_notify_says_like_the_others(any_coop: Coop) -> None:
    learn_test_renderers(any_coop)
    crew(any_coop, 5)
    now = any_coop.clock.now()
    with any_coop.session() as session:
        everyone = list(session.scalars(select(Member).order_by(Member.id)))
        queue_many(session, [(m, f"stored:m{m.id}", hello(m)) for m in everyone], now)
        assert queue_rendered(session, select(Member.id), "drawn", "hello:Hi", now) == 5 * 5
        assert queue_rendered(session, select(Member.id), "drawn", "hello:Hi", now) == 0  # once per key
    assert addressed(any_coop, "drawn:") == addressed(any_coop, "stored:")
    await any_coop.bot.outbox.drain()
    assert [m.text for m in any_coop.inbox("ana0")] == ["Hello Ana0", "Hi Ana0"]
    assert any_coop.inbox("eve0") == []


async def test_a_renderer_that_fails_means_a_retry_not_a_loss(coop: Coop) -> None:
    learn_test_renderers(coop)
    transport = FlakyTransport()
    coop.bot.add_transport(transport)
    flaky_member(coop, "Bob", "b1")
    RENDER_FAILURES[0] = 2
    with coop.session() as session:
        assert queue_rendered(session, select(Member.id), "hi", "flaky-hello:Hello", coop.clock.now()) == 2
    for _ in range(3):
        await coop.bot.outbox.drain()
        coop.clock.advance(seconds=60)
    assert transport.delivered == [("b1", "Hello Bob")]
    assert [m.text for m in coop.inbox("bob")] == ["Hello Bob"]
    with coop.session() as session:
        rows = session.scalars(select(OutboxMessage)).all()
        assert {row.status for row in rows} == {"sent"}
        assert sum(row.attempts for row in rows) == 2 + 2  # two failed writes, two sends
        assert "RuntimeError('the renderer hit a bug')" in {row.last_error for row in rows}



@dataclass
class WatchedTransport(FlakyTransport):
    """Flaky, and tells the test when it is tried and when it delivered, and which outbox task tried."""

    attempts: list[asyncio.Task[object]] = field(default_factory=list)
    tried: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        task = asyncio.current_task()
        assert task is not None
        self.attempts.append(task)
        self.tried.set()
        ref = await super().send(address, message, key)
        self.arrived.set()
        return ref


async def test_the_delivery_loop_retries_when_the_clock_moves_not_after_real_time(
    coop: Coop, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = WatchedTransport(failures=1)
    coop.bot.add_transport(transport)
    outbox = coop.bot.outbox
    passes, passed = [0], asyncio.Condition()
    one_pass = outbox.deliver_due

    async def counted() -> int:
        started = await one_pass()
        async with passed:
            passes[0] += 1
            passed.notify_all()
        return started

    monkeypatch.setattr(outbox, "deliver_due", counted)
    with coop.session() as session:
        queue(session, key="hello", address=Address("flaky", "c1", True), message=Outgoing("hi"),
              now=coop.clock.now())
    stop = asyncio.Event()
    loop = asyncio.create_task(outbox.run(stop, idle=30.0))  # 30 s of the clock, never of the wall
    try:
        async with asyncio.timeout(10):
            await transport.tried.wait()
            await asyncio.wait(transport.attempts)  # the failure is recorded: a retry is due in a moment
            async with passed:
                await passed.wait_for(lambda: passes[0] >= 2)  # the pass that attempt woke saw nothing due
            assert transport.delivered == []
            coop.clock.advance(seconds=60)
            await transport.arrived.wait()
    finally:
        stop.set()
        outbox.poke()
        await loop
    assert transport.delivered == [("c1", "hi")]
