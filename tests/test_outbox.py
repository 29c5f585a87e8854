"""The outbox's promises: paced, retried, never lost, unreachable people handled once."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from coopbot.chat import Address, Incoming, IncomingHandler, Outgoing, Pacing, TransientSendError, UnreachableError
from coopbot.models import Identity, OutboxMessage
from coopbot.outbox import Pacer, queue, queue_to_member
from coopbot.services.members import member_of
from tests.conftest import Coop


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
class FlakyTransport:
    """Fails the first `failures` sends to each chat, then delivers."""

    failures: int = 0
    unreachable: set[str] = field(default_factory=set)
    delivered: list[tuple[str, str]] = field(default_factory=list)
    tries: dict[str, int] = field(default_factory=dict)
    platform: str = "flaky"

    async def start(self, on_incoming: IncomingHandler) -> None: ...

    async def stop(self) -> None: ...

    async def reply(self, incoming: Incoming, messages: list[Outgoing]) -> None: ...

    def pacing(self) -> Pacing:
        return Pacing(per_second=1000, private_chat_interval=0, group_per_minute=60000)

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
