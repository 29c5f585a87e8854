"""The outbox loads what it is about to send in few transactions, and loses nothing by it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event, select

from coopbot.chat import Address, Button, Outgoing, Pacing
from coopbot.models import Member, OutboxMessage
from coopbot.outbox import CHAT_BATCH, queue, queue_rendered
from coopbot.platforms import find
from coopbot.services.members.accounts import member_of
from tests.conftest import Coop
from tests.outbox_sender import SendOnly
from tests.test_outbox import RENDER_FAILURES, learn_test_renderers

#: A statement that reads whole outbox rows to send them (not the pass's look at the chats' heads).
READS_ROWS = re.compile(r"SELECT outbox\.id, outbox\.\"?key\"?, .*\sFROM outbox\b", re.S)


@dataclass
class Instant(SendOnly):
    """Takes every message at once; a chat may take them back to back (a shop's webhooks)."""

    platform: str = "instant"
    delivered: list[tuple[str, str]] = field(default_factory=list)

    def pacing(self) -> Pacing:
        return Pacing(per_second=100_000, private_chat_interval=0.0, group_per_minute=6_000_000)

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        self.delivered.append((address.chat_id, message.text))
        return str(len(self.delivered))


@pytest.fixture
def instant(coop: Coop) -> Instant:
    transport = Instant()
    coop.bot.add_transport(transport)
    return transport


@pytest.fixture
def row_reads(coop: Coop) -> Iterator[list[str]]:
    """Each statement the bot runs that loads outbox rows to send."""
    reads: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if READS_ROWS.search(statement):
            reads.append(statement)

    event.listen(coop.bot.engine, "before_cursor_execute", seen)
    yield reads
    event.remove(coop.bot.engine, "before_cursor_execute", seen)


def queue_to(coop: Coop, chats: list[str], prefix: str = "m") -> None:
    with coop.session() as session:
        for n, chat in enumerate(chats):
            queue(session, key=f"{prefix}{n}", address=Address("instant", chat, True), message=Outgoing(f"{prefix}{n}"),
                  now=coop.clock.now())  # fmt: skip


async def test_a_pass_loads_every_message_it_starts_in_one_statement(
    coop: Coop, instant: Instant, row_reads: list[str]
) -> None:
    queue_to(coop, [f"rider{n}" for n in range(40)])
    assert await coop.bot.outbox.deliver_due() == 40
    await coop.bot.outbox.drain()
    assert sorted(text for _, text in instant.delivered) == sorted(f"m{n}" for n in range(40))
    assert len(row_reads) == 1  # and none looks for a chat's next: the pass saw each had one


async def test_a_chat_taking_messages_back_to_back_loads_them_a_batch_at_a_time_in_order(
    coop: Coop, instant: Instant, row_reads: list[str]
) -> None:
    count = 3 * CHAT_BATCH
    queue_to(coop, ["shop"] * count)
    await coop.bot.outbox.drain()
    assert [text for _, text in instant.delivered] == [f"m{n}" for n in range(count)]
    assert len(row_reads) <= 1 + count // CHAT_BATCH + 1


async def test_a_message_whose_text_fails_holds_back_its_chat_and_then_goes_first(coop: Coop, instant: Instant) -> None:
    """Loaded with the chat's next ones, a message whose text failed still keeps its place."""
    learn_test_renderers(coop)
    alice = coop.member("Alice")
    with coop.session() as session:
        member = member_of(session, "console", alice)
        assert member is not None
        member_id = member.id
    queue_to(coop, ["shop"] * 2, prefix="before")
    with coop.session() as session:
        queue_rendered(session, select(Member.id).where(Member.id == member_id), "drawn", "flaky-hello:Hi",
                       coop.clock.now())  # fmt: skip
        session.execute(OutboxMessage.__table__.update().values(platform="instant", chat_id="shop")
                        .where(OutboxMessage.key.startswith("drawn")))  # fmt: skip
    queue_to(coop, ["shop"] * 2, prefix="after")
    RENDER_FAILURES[0] = 1
    await coop.bot.outbox.drain()
    assert [text for _, text in instant.delivered] == ["before0", "before1"]
    coop.clock.advance(seconds=60)
    await coop.bot.outbox.drain()
    assert [text for _, text in instant.delivered] == ["before0", "before1", "Hi Alice", "after0", "after1"]


async def test_a_member_who_left_between_queueing_and_loading_gets_nothing(coop: Coop, instant: Instant) -> None:
    alice, bob = coop.member("Alice"), coop.member("Bob")
    with coop.session() as session:
        members = [member_of(session, "console", handle) for handle in (alice, bob)]
        for member in members:
            assert member is not None
            queue(session, key=f"hi{member.id}", address=Address("instant", member.name, True),
                  message=Outgoing(f"hi {member.name}"), now=coop.clock.now(), member_id=member.id)  # fmt: skip
        assert members[1] is not None
        members[1].active = False
    await coop.bot.outbox.drain()
    assert instant.delivered == [("Alice", "hi Alice")]
    with coop.session() as session:
        statuses = {row.chat_id: row.status for row in session.scalars(
            select(OutboxMessage).where(OutboxMessage.platform == "instant"))}  # fmt: skip
    assert statuses == {"Alice": "sent", "Bob": "dead"}


@dataclass
class Rooms(Instant):
    """Paced as Telegram paces a group (3 s between two messages), so passes send to it."""

    platform: str = "rooms"

    def pacing(self) -> Pacing:
        return Pacing(per_second=30, private_chat_interval=1.0, group_per_minute=20)


@pytest.fixture
def rooms(coop: Coop) -> Rooms:
    transport = Rooms()
    coop.bot.add_transport(transport)
    return transport


def say_in(coop: Coop, chat: str, lines: list[str], *, private: bool = False, buttons: bool = False) -> None:
    with coop.session() as session:
        for text in lines:
            message = Outgoing(text, buttons=(Button("Take", "/take", "✅"),) if buttons else ())
            queue(session, key=f"{chat}:{text}", address=Address("rooms", chat, private), message=message,
                  now=coop.clock.now())  # fmt: skip


def said_in(transport: Instant, chat: str) -> list[str]:
    return [text for where, text in transport.delivered if where == chat]


async def test_a_rooms_waiting_lines_go_as_one_message_and_a_line_with_buttons_keeps_its_place(
    coop: Coop, rooms: Rooms
) -> None:
    say_in(coop, "coordinators", ["📦 J-1 ordered", "🛵 J-1 accepted by Bob", "📦 J-2 ordered"])
    say_in(coop, "coordinators", ["J-3 needs a rider"], buttons=True)
    say_in(coop, "coordinators", ["✅ J-1 delivered"])
    say_in(coop, "bob", ["J-2 for you?", "J-4 for you?"], private=True)
    for _ in range(3):
        await coop.bot.outbox.drain()
        coop.clock.advance(seconds=5)
    assert said_in(rooms, "coordinators") == [
        "📦 J-1 ordered\n🛵 J-1 accepted by Bob\n📦 J-2 ordered", "J-3 needs a rider", "✅ J-1 delivered"]
    assert said_in(rooms, "bob") == ["J-2 for you?", "J-4 for you?"]
    with coop.session() as session:
        assert set(session.scalars(select(OutboxMessage.status))) == {"sent"}


async def test_a_rooms_lines_are_joined_only_up_to_the_platforms_length(coop: Coop, rooms: Rooms) -> None:
    line = "x" * 1500
    say_in(coop, "coordinators", [f"{n} {line}" for n in range(5)])
    for _ in range(3):
        await coop.bot.outbox.drain()
        coop.clock.advance(seconds=5)
    assert [text.count(line) for text in said_in(rooms, "coordinators")] == [2, 2, 1]
    assert all(len(text) <= find("rooms").max_length for text in said_in(rooms, "coordinators"))
