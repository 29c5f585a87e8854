"""A roster lived through the real Matrix transport: published, signed up for with a reaction and
by typing, a seat handed on with a reaction, then reminded, started, checked on and ended, and a
Sunday night filled in turn by the fairness rule.

Against the real homeserver, in encrypted direct chats, and every assertion is on what the
members' own Matrix clients received. The bot's date is the test's (`MovableClock`, as in the
Telegram journey): the scheduler's own ticks are stopped and the test runs one after each move
of the clock, so the roster's clock (`rosters.remind`) sees exactly the moment meant.

Alice coordinates; Bob and Dana ride. It is Thursday 3 December 2026, 10:00 in Paris; S-1 is
Monday 7 December 11:30–14:30 in Paris (10:30–13:30 UTC) with two seats, S-2 the Tuesday's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from coopbot.db import transaction
from coopbot.models import OutboxMessage
from tests.conftest import MovableClock
from tests.matrix.members import MatrixCoop, NioMember, Seen
from tests.telegram.test_telegram_rosters import THURSDAY

MakeMember = Callable[[str], Awaitable[NioMember]]
S1 = "S-1 Mon 7 Dec 11:30–14:30"
S1_STARTS = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)


@dataclass
class Roster:
    """The co-op's bot on Matrix, its clock, and each member's client with their direct chat."""

    coop: MatrixCoop
    clock: MovableClock
    people: dict[str, NioMember]
    dms: dict[str, str]
    ids: dict[str, int]

    async def says(self, name: str, text: str, expect: str) -> Seen:
        """`name` types `text` in their direct chat; the bot's answer that says `expect`."""
        member = self.people[name]
        mark = member.mark()
        await member.say(self.dms[name], text)
        return await self.told(name, expect, after=mark)

    async def told(self, name: str, expect: str, after: int = 0) -> Seen:
        """Until `name`'s direct chat shows a message from the bot saying `expect`."""
        member = self.people[name]
        return await member.next_message(after=after, sender=self.coop.user_id, room_id=self.dms[name], contains=expect)

    async def reacts(self, name: str, message: Seen, key: str, expect: str) -> Seen:
        """`name` taps the reaction `key` the bot put under `message`; the answer saying `expect`."""
        member = self.people[name]
        await member.wait_for(
            lambda: any(r.reacts_to == message.event_id and r.key == key and r.sender == self.coop.user_id
                        for r in member.reactions),
            f"the bot's {key} under its message",
        )  # fmt: skip
        mark = member.mark()
        await member.react(message.room_id, message.event_id, key)
        return await self.told(name, expect, after=mark)

    async def at(self, when: datetime) -> None:
        """The co-op's clock shows `when`, and the scheduler ticks as it would then."""
        self.clock.set(when)
        await self.coop.bot.scheduler.tick()

    def queued(self, key_part: str) -> list[str]:
        """The outbox keys naming `key_part`: what the bot meant to send, sent or not."""
        with transaction(self.coop.bot.sessions) as session:
            keys = session.scalars(select(OutboxMessage.key).where(OutboxMessage.key.contains(key_part)))
            return list(keys)


def keycap_for(message: Seen, command: str) -> str:
    """The reaction the message offers for `command`: its hint line is `<emoji> <label> · <command>`."""
    found = [line.split()[0] for line in message.body.splitlines() if line.endswith(f"· {command}")]
    assert len(found) == 1, f"no single hint for {command}: {message.body!r}"
    return found[0]


@pytest.fixture
async def roster(matrix_coop: MatrixCoop, make_member: MakeMember) -> Roster:
    clock = MovableClock(THURSDAY)
    matrix_coop.clock = clock
    bot = await matrix_coop.start()
    bot.scheduler.shutdown()  # the test ticks, at the moments it sets
    people, dms, ids = {}, {}, {}
    for name, role in (("Alice", "coordinator"), ("Bob", "member"), ("Dana", "member")):
        people[name] = member = await make_member(name)
        ids[name] = matrix_coop.add_member(name, role, member.user_id)
        dms[name] = await member.create_room([matrix_coop.user_id], direct=True, encrypted=True)
    for name, member in people.items():
        await member.wait_joined(dms[name], matrix_coop.user_id)
    return Roster(matrix_coop, clock, people, dms, ids)


async def test_a_roster_is_signed_up_for_swapped_reminded_started_and_ended_in_element(roster: Roster) -> None:
    r = roster
    published = await r.says("Alice", "!slots add mon-tue 11:30-14:30 x2 from 2026-12-07 to 2026-12-08", "Published")
    assert published.body.startswith("Published 2 slots, S-1 to S-2, each needing 2 riders.")

    plan = await r.says("Bob", "!slots next", "Slots, week of")
    assert plan.encrypted
    assert f"• {S1} · 0/2 taken, 2 free" in plan.body.splitlines()
    signed = await r.reacts("Bob", plan, keycap_for(plan, "!signup S-1"), "You ride")
    assert signed.body == f"You ride {S1}. Type !myslots to see your slots."
    await r.says("Dana", "!signup S-1", f"You ride {S1}.")
    await r.says("Bob", "!signup S-2", "You ride S-2 Tue 8 Dec 11:30–14:30.")

    asked = await r.says("Bob", "!swap S-2 Dana", "I asked")
    assert asked.body == "I asked Dana to take your seat on S-2. It stays yours until they accept."
    question = await r.told("Dana", "Bob asks you to take their seat on S-2")
    assert "!swap accept S-2" in question.body and "!swap decline S-2" in question.body
    accepted = await r.reacts("Dana", question, "👍", "instead of Bob")
    assert accepted.body == "You ride S-2 Tue 8 Dec 11:30–14:30 instead of Bob."
    await r.told("Bob", "🔁 Dana took your seat on S-2 Tue 8 Dec 11:30–14:30: you are free.")
    mine = await r.says("Dana", "!myslots", "Your slots")
    assert mine.body == f"Your slots:\n• {S1}\n• S-2 Tue 8 Dec 11:30–14:30"

    await r.at(datetime(2026, 12, 6, 10, 30, tzinfo=UTC))  # 24 hours before S-1
    for name in ("Bob", "Dana"):
        await r.told(name, f"🗓 Reminder: you ride {S1}.")
    await r.at(datetime(2026, 12, 7, 9, 35, tzinfo=UTC))  # 55 minutes before
    for name in ("Bob", "Dana"):
        await r.told(name, f"⏰ You ride soon: {S1} starts at 11:30.")

    await r.at(S1_STARTS)
    for name in ("Bob", "Dana"):
        await r.told(name, "🚲 S-1 has started: you are available for jobs until 14:30.")
    await r.says("Bob", "!available", "still available")  # a sign of life; Dana gives none
    await r.at(datetime(2026, 12, 7, 10, 46, tzinfo=UTC))
    where = await r.told("Dana", "I have not heard from you")
    assert where.body.startswith(f"⏰ {S1} started at 11:30 and I have not heard from you.")
    assert "!available" in where.body and "!away" in where.body
    await r.told("Alice", f"⏰ No sign of Dana 15 minutes into {S1} (started 11:30)")
    assert r.queued(f"slot:1:noshow:m{r.ids['Bob']}:") == []  # seen since the start, he is not asked

    await r.at(datetime(2026, 12, 7, 13, 30, tzinfo=UTC))  # S-1 ends, 14:30 in Paris
    ended = await r.told("Bob", "🏁")
    assert ended.body.startswith("🏁 S-1 has ended. Are you still riding? Jobs keep coming until you type !away.")
    away = await r.reacts("Bob", ended, "🛑", "You are away")
    assert away.body == "You are away: no job offers until you type !available again."
    contrib = await r.says("Bob", "!contrib", "Planned:")
    assert "Planned: 3h in 1 slot · Worked: 3h" in contrib.body, contrib.body  # his hours, in the ledger

    await r.says("Alice", "!slots add sun 21:00-01:00 x1 from 2026-12-13 to 2026-12-13", "Published 1 slot, S-3")
    await r.at(datetime(2026, 12, 11, 20, 0, tzinfo=UTC))  # 48 hours before, Friday 21:00 in Paris
    first = await r.told("Alice", "🌙 S-3")  # no hours of slots yet: her turn first
    await r.reacts("Alice", first, "❌", "You declined S-3")
    second = await r.told("Bob", "🌙 S-3")  # 3 hours of slots, Dana 6
    await r.reacts("Bob", second, "✅", "You ride S-3")
    why = await r.says("Dana", "!why S-3", "S-3")
    offers = [line for line in why.body.splitlines() if line.startswith("• ") and "offered to" in line]
    assert [line.split(" offered to ")[1].split(" (")[0] for line in offers] == ["Alice", "Bob"], why.body
    assert "Bob took it." in why.body, why.body
