"""Two weeks of rosters lived through the real Telegram transport: published, read, signed up
for, handed on, reminded, started, ended and paid into the ledger, and a night slot shared by
the fairness rule.

python-telegram-bot's real Application talks to the fake Bot API on loopback, and every
assertion is on what a member's Telegram chat received (texts, buttons, the answer to a press)
or on the database. The date on the bot's clock is the test's: `MovableClock` keeps the wall
clock's seconds (the outbox paces Telegram chats in them) from a date the test sets. The test is
also the scheduler: the scheduler's own ticks (every few seconds of wall time) are stopped and
the test runs one after each move of the clock, so the roster's clock (`rosters.remind`) sees
exactly the moment meant, and a tick is never skipped for one already running.

The journey is one test calling its stages in order, each an async function of `Roster` that
ends when what it asserts has reached Telegram. Alice coordinates; Bob, Chloé, Dan and Emma
ride. It is Thursday 3 December 2026, 10:00 in Paris; the roster covers the two weeks from
Monday the 7th, plus a Sunday evening. After the first slot, Tuesday's rider turns up late
(asked 15 minutes in, her hours waiting for a coordinator), and a Sunday night is filled by the
fairness rule, its offers explained by `/why S-12`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from coopbot.app import CoopBot
from coopbot.models import Member, OutboxMessage
from coopbot.models_rosters import SlotSignup
from coopbot.runner import add_configured_transports
from coopbot.services.members import accounts as members_svc
from tests.conftest import MovableClock
from tests.telegram.conftest import COORDINATORS_ID, GROUP_ID, TOKEN_ENV, TelegramCoop, telegram_config
from tests.telegram.fake_bot_api import FakeBotApi, FakeUser, FloodLimits

THURSDAY = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
#: The coming week's plan is posted to the co-op's group from Sunday 18:00 in Paris.
SUNDAY_EVENING = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
#: S-1, Monday 7 December 11:30–14:30 in Paris, is 10:30–13:30 UTC.
S1_STARTS = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
CREW = (("Alice", "coordinator"), ("Bob", "member"), ("Chloé", "member"), ("Dan", "member"), ("Emma", "member"))
#: A notice goes through the outbox, which paces each Telegram chat: a few seconds is plenty.
WAIT = 15.0
#: Telegram lets a bot send one message a second to a private chat; the journey sends a member
#: a score of messages one after the other. The bot's configured limit and the fake Telegram's
#: are both this instead, so the pacing still holds and is still checked, ten times faster.
CHAT_INTERVAL = 0.1


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [str(m.get("text", m.get("caption", ""))) for m in messages]


def caption_or_text(message: dict[str, Any]) -> str:
    """What a message says: a photo's caption, or the text of a message without one."""
    return str(message.get("caption", message.get("text", "")))


def labels(message: dict[str, Any]) -> list[str]:
    """The inline keyboard's labels, as the member sees them."""
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [str(button["text"]) for row in rows for button in row]


def signup_label(message: dict[str, Any], slot: str) -> str:
    """The button that signs up for `slot`, however it is decorated."""
    found = [label for label in labels(message) if label.endswith(f"Sign up {slot}")]
    assert len(found) == 1, f"no single sign-up button for {slot}: {labels(message)}"
    return found[0]


@dataclass
class Roster:
    """The co-op's bot on Telegram, its clock, and its members' Telegram accounts by name."""

    coop: TelegramCoop
    clock: MovableClock
    people: dict[str, FakeUser]

    @property
    def api(self) -> FakeBotApi:
        return self.coop.api

    def chat(self, name: str) -> list[str]:
        """`name`'s private chat with the bot as it stands, oldest first."""
        return texts(self.api.sent_to(self.people[name].id))

    async def says(self, name: str, text: str, expect: str) -> dict[str, Any]:
        """`name` types `text` in their private chat; the bot's answer that says `expect`."""
        user = self.people[name]
        before = len(self.api.sent_to(user.id))
        self.api.say(user, text)
        return await self.told(name, expect, after=before)

    async def told(self, name: str, expect: str, after: int = 0) -> dict[str, Any]:
        """Until a message in `name`'s private chat says `expect`; that message as Telegram holds it."""
        return await self.shown(self.people[name].id, expect, after, who=name)

    async def shown(self, chat_id: int, expect: str, after: int = 0, who: str = "") -> dict[str, Any]:
        try:
            message = await self.api.wait_message(chat_id, expect, after=after, timeout=WAIT)
        except TimeoutError:
            chat = texts(self.api.sent_to(chat_id))
            raise AssertionError(f"{who or chat_id} was never shown {expect!r}; the chat: {chat}") from None
        return self.api.current(message)

    async def presses(self, name: str, message: dict[str, Any], label: str) -> dict[str, Any]:
        """`name` presses `label` on `message`; Telegram's answer to the press (its toast, if any).

        The bot answers a press after editing the message it was on, so the message as Telegram
        holds it once the press is answered is the member's answer."""
        query_id = self.api.press(self.people[name], message, label=label)["callback_query"]["id"]
        answer: dict[str, Any] = await self.api.wait_for(lambda: self.api.callback_answers.get(query_id), WAIT)
        return answer

    async def at(self, when: datetime) -> None:
        """The co-op's clock shows `when`, and the scheduler ticks as it would then."""
        self.clock.set(when)
        await self.coop.bot.scheduler.tick()

    async def settled(self) -> None:
        """Until every notice queued so far has reached Telegram (or failed): an absence is then real."""

        def nothing_pending() -> bool:
            with self.coop.session() as session:
                pending = select(func.count(OutboxMessage.id)).where(OutboxMessage.status == "pending")
                return session.scalar(pending) == 0

        await self.api.wait_for(nothing_pending, WAIT)

    def seats(self, slot_id: int) -> set[str]:
        """Who holds a seat on the slot, by the database."""
        with self.coop.session() as session:
            return set(session.scalars(
                select(Member.name).join(SlotSignup, SlotSignup.member_id == Member.id)
                .where(SlotSignup.slot_id == slot_id)
            ))  # fmt: skip

    def available(self, name: str) -> bool:
        with self.coop.session() as session:
            member = session.scalars(select(Member).where(Member.name == name)).one()
            return member.available


@pytest.fixture
async def roster(fake_api: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Roster]:
    """The co-op's bot, as `coopbot run` builds it, on the test's clock, with its five members."""
    monkeypatch.setenv(TOKEN_ENV, fake_api.token)
    fake_api.limits = FloodLimits(private_interval=CHAT_INTERVAL)
    clock = MovableClock(THURSDAY)
    config = telegram_config(fake_api, tmp_path / "coop.sqlite3", private_chat_interval=CHAT_INTERVAL)
    bot = CoopBot(config, clock=clock)
    add_configured_transports(bot)
    await bot.start()
    bot.scheduler.shutdown()  # the test ticks, at the moments it sets
    coop = TelegramCoop(bot, fake_api, fake_api.group(GROUP_ID, "Coop Vélo"),
                        fake_api.group(COORDINATORS_ID, "Coordination"))  # fmt: skip
    people = {}
    for number, (name, role) in enumerate(CREW, start=3001):
        people[name] = user = fake_api.user(number, name, started=True)
        with coop.session() as session:
            member = members_svc.create_member(session, name, role, clock.now())
            members_svc.add_identity(session, member, "telegram", str(user.id), clock.now(), name)
    try:
        yield Roster(coop, clock, people)
    finally:
        await bot.stop()
        bot.dispose()


# --- the stages ------------------------------------------------------------------------------------


async def publishes_two_weeks(r: Roster) -> None:
    """Weekday lunches for two weeks, two riders each (S-1 to S-10), and a Sunday evening (S-11)."""
    lunches = await r.says("Alice", "/slots add mon-fri 11:30-14:30 x2 from 2026-12-07 to 2026-12-18", "Published")
    assert lunches["text"] == (
        "Published 10 slots, S-1 to S-10, each needing 2 riders. "
        "Members take a seat with /signup S-1 or the buttons under /slots."
    )
    sunday = await r.says("Alice", "/slots add sun 19:00-23:00 x1 from 2026-12-13 to 2026-12-13", "Published")
    assert sunday["text"].startswith("Published 1 slot, S-11, needing 1 rider.")


async def members_take_seats(r: Roster) -> None:
    """Bob reads next week's plan and taps a seat; the others type `/signup`; a full slot says so."""
    empty = await r.says("Bob", "/slots", "week of")
    assert empty["text"] == (
        "No slots are planned for the week of Monday 30 November. Coordinators publish them with /slots add."
    )
    plan = await r.says("Bob", "/slots next", "Slots, week of")
    lines = plan["text"].splitlines()
    assert lines[0] == "Slots, week of Monday 7 December:"
    assert lines[1] == "• S-1 Mon 7 Dec 11:30–14:30 · 0/2 taken, 2 free"
    assert lines[-1] == "• S-11 Sun 13 Dec 19:00–23:00 · 0/1 taken, 1 free"
    assert labels(plan) == [f"🙋 Sign up S-{n}" for n in (1, 2, 3, 4, 5, 11)]

    await r.presses("Bob", plan, "🙋 Sign up S-1")
    assert r.api.current(plan)["text"] == "You ride S-1 Mon 7 Dec 11:30–14:30. Type /myslots to see your slots."
    await r.says("Dan", "/signup S-1", "You ride S-1 Mon 7 Dec 11:30–14:30.")
    await r.says("Bob", "/signup S-2", "You ride S-2 Tue 8 Dec 11:30–14:30.")
    await r.says("Dan", "/signup S-6", "You ride S-6 Mon 14 Dec 11:30–14:30.")
    await r.says("Emma", "/signup S-3", "You ride S-3 Wed 9 Dec 11:30–14:30.")
    full = await r.says("Chloé", "/signup S-1", "is full")
    assert full["text"] == "S-1 is full. Type /slots to find a slot with seats free."

    seen = await r.says("Chloé", "/slots next", "Slots, week of")
    assert "• S-1 Mon 7 Dec 11:30–14:30 · 2/2 taken, 0 free" in seen["text"].splitlines()
    assert labels(seen) == [f"🙋 Sign up S-{n}" for n in (2, 3, 4, 5, 11)]
    mine = await r.says("Bob", "/myslots", "Your slots")
    assert mine["text"] == "Your slots:\n• S-1 Mon 7 Dec 11:30–14:30\n• S-2 Tue 8 Dec 11:30–14:30"
    assert r.seats(1) == {"Bob", "Dan"} and r.seats(2) == {"Bob"}


async def seats_change_hands(r: Roster) -> None:
    """A swap Chloé accepts, one she declines, and a seat given away to whoever taps first."""
    asked = await r.says("Bob", "/swap S-2 Chloé", "I asked")
    assert asked["text"] == "I asked Chloé to take your seat on S-2. It stays yours until they accept."
    question = await r.told("Chloé", "Bob asks you to take their seat")
    assert question["text"].startswith("🔁 Bob asks you to take their seat on S-2 Tue 8 Dec 11:30–14:30.")
    assert labels(question) == ["👍 Accept", "👎 Decline"]
    assert r.seats(2) == {"Bob"}
    await r.presses("Chloé", question, "👍 Accept")
    assert r.api.current(question)["text"] == "You ride S-2 Tue 8 Dec 11:30–14:30 instead of Bob."
    await r.told("Bob", "🔁 Chloé took your seat on S-2 Tue 8 Dec 11:30–14:30: you are free.")
    assert r.seats(2) == {"Chloé"}

    await r.says("Dan", "/swap S-6 Chloé", "I asked Chloé")
    question = await r.told("Chloé", "Dan asks you to take their seat on S-6 Mon 14 Dec 11:30–14:30.")
    await r.presses("Chloé", question, "👎 Decline")
    assert r.api.current(question)["text"] == "You declined; S-6 stays with Dan."
    await r.told("Dan", "Chloé declined your seat on S-6 Mon 14 Dec 11:30–14:30: it is still yours.")
    assert r.seats(6) == {"Dan"}

    given = await r.says("Dan", "/giveaway S-1", "Your seat on S-1")
    assert given["text"] == "Your seat on S-1 is offered to 3 members. It stays yours until someone takes it."
    offer = "🙋 Dan offers their seat on S-1 Mon 7 Dec 11:30–14:30. The first to sign up takes it."
    emmas, chloes = [await r.told(name, offer) for name in ("Emma", "Chloé")]
    await r.told("Alice", offer)
    assert not [text for text in r.chat("Bob") if "offers their seat" in text]  # he rides S-1 already
    await r.presses("Emma", emmas, signup_label(emmas, "S-1"))
    assert r.api.current(emmas)["text"] == (
        "You ride S-1 Mon 7 Dec 11:30–14:30. Type /myslots to see your slots. "
        "You took the seat Dan gave away: they are free."
    )
    await r.told("Dan", "🔁 Emma took your seat on S-1 Mon 7 Dec 11:30–14:30: you are free.")
    await r.presses("Chloé", chloes, signup_label(chloes, "S-1"))
    assert r.api.current(chloes)["text"] == "S-1 is full. Type /slots to find a slot with seats free."
    assert r.seats(1) == {"Bob", "Emma"}
    dans = await r.says("Dan", "/myslots", "Your slots")
    assert dans["text"] == "Your slots:\n• S-6 Mon 14 Dec 11:30–14:30"


async def the_day_before(r: Roster) -> None:
    """Sunday: S-1's riders are reminded, then at 18:00 the week's plan is posted to the group,
    with its picture (the plan captions the photo when it fits in a caption)."""
    await r.at(datetime(2026, 12, 6, 10, 30, tzinfo=UTC))  # 24 hours before S-1
    eve = "🗓 Reminder: you ride S-1 Mon 7 Dec 11:30–14:30. Type /swap or /giveaway if you cannot."
    for name in ("Bob", "Emma"):
        await r.told(name, eve)
    await r.at(SUNDAY_EVENING)
    plan = await r.shown(r.coop.group.id, "Slots, week of", who="the co-op's group")
    assert plan.get("photo"), "the week's plan comes with its picture"
    lines = caption_or_text(plan).splitlines()
    assert lines[:3] == ["Slots, week of Monday 7 December:", "• S-1 Mon 7 Dec 11:30–14:30 · 2/2 taken, 0 free",
                         "• S-2 Tue 8 Dec 11:30–14:30 · 1/2 taken, 1 free"]  # fmt: skip
    assert labels(plan) == [f"🙋 Sign up S-{n}" for n in (2, 3, 4, 5, 11)]
    await r.says("Dan", "/signup S-11", "You ride S-11 Sun 13 Dec 19:00–23:00.")
    await r.settled()
    assert [text for name in ("Dan", "Chloé") for text in r.chat(name) if text.startswith("🗓")] == []


async def the_slot_starts(r: Roster) -> None:
    """Reminded just before, S-1's riders are set available when it starts; Emma then goes away."""
    await r.at(datetime(2026, 12, 7, 9, 35, tzinfo=UTC))  # 55 minutes before
    for name in ("Bob", "Emma"):
        await r.told(name, "⏰ You ride soon: S-1 Mon 7 Dec 11:30–14:30 starts at 11:30.")
    assert not r.available("Bob") and not r.available("Emma")

    await r.at(S1_STARTS)
    started = "🚲 S-1 has started: you are available for jobs until 14:30. Type /away when you stop."
    for name in ("Bob", "Emma"):
        await r.told(name, started)
    assert r.available("Bob") and r.available("Emma")
    still = await r.says("Bob", "/available", "still available")
    assert still["text"] == "Noted, you are still available. Your place in the rotation is kept."
    await r.says("Emma", "/away", "You are away: no job offers until you type /available again.")
    await r.at(datetime(2026, 12, 7, 10, 31, tzinfo=UTC))  # the roster clock, every few seconds, sees her go
    # Tuesday's S-2 is a day away and a rider short: the members free then are asked, the coordinators told.
    await r.shown(COORDINATORS_ID, "🆘 S-2 Tue 8 Dec 11:30–14:30 is still short of 1 rider; 4 members were asked.")
    with r.coop.session() as session:
        started_at = set(session.scalars(select(SlotSignup.started_at).where(SlotSignup.slot_id == 1)))
    assert len(started_at) == 1 and None not in started_at


async def the_slot_ends(r: Roster) -> None:
    """At the end, Bob (still available) is asked whether he rides on and says no; Emma, away, is not asked."""
    await r.at(datetime(2026, 12, 7, 12, 5, tzinfo=UTC))  # a quiet lunch: the usual idle question
    idle = await r.told("Bob", "Are you still riding?")
    await r.presses("Bob", idle, "👍 Yes, still riding")
    assert r.api.current(idle)["text"] == "Noted, you are still available. Your place in the rotation is kept."

    await r.at(datetime(2026, 12, 7, 13, 30, tzinfo=UTC))  # S-1 ends, 14:30 in Paris
    ended = await r.told("Bob", "🏁")
    assert ended["text"] == "🏁 S-1 has ended. Are you still riding? Jobs keep coming until you type /away."
    assert labels(ended) == ["👍 Yes, still riding", "🛑 No, set me away"]
    await r.presses("Bob", ended, "🛑 No, set me away")
    assert r.api.current(ended)["text"] == "You are away: no job offers until you type /available again."
    assert not r.available("Bob")
    await r.at(datetime(2026, 12, 7, 13, 40, tzinfo=UTC))  # later ticks ask nobody again
    await r.settled()
    assert not r.available("Emma")
    assert [text for text in r.chat("Emma") if text.startswith(("🚲", "🏁"))] == [
        "🚲 S-1 has started: you are available for jobs until 14:30. Type /away when you stop."
    ]
    assert [text for text in r.chat("Bob") if text.startswith(("🗓", "⏰", "🚲", "🏁"))] == [
        "🗓 Reminder: you ride S-1 Mon 7 Dec 11:30–14:30. Type /swap or /giveaway if you cannot.",
        "⏰ You ride soon: S-1 Mon 7 Dec 11:30–14:30 starts at 11:30.",
        "🚲 S-1 has started: you are available for jobs until 14:30. Type /away when you stop.",
    ]


async def a_late_rider_and_her_hours(r: Roster) -> None:
    """Tuesday's S-2: Chloé gives no sign 15 minutes in, is asked, turns up; her hours, short of
    the plan by more than the tolerance, wait for a coordinator, who approves them."""
    await r.at(datetime(2026, 12, 8, 10, 30, tzinfo=UTC))  # S-2 starts, 11:30 in Paris
    await r.told("Chloé", "🚲 S-2 has started")
    await r.at(datetime(2026, 12, 8, 10, 46, tzinfo=UTC))
    asked = await r.told("Chloé", "I have not heard from you")
    assert asked["text"].startswith("⏰ S-2 Tue 8 Dec 11:30–14:30 started at 11:30 and I have not heard from you.")
    assert labels(asked) == ["🚲 I’m riding", "❌ I can’t come"]
    await r.shown(COORDINATORS_ID, "⏰ No sign of Chloé 15 minutes into S-2 Tue 8 Dec 11:30–14:30 (started 11:30)")
    r.clock.set(datetime(2026, 12, 8, 10, 52, tzinfo=UTC))
    await r.presses("Chloé", asked, "🚲 I’m riding")
    await r.at(datetime(2026, 12, 8, 10, 53, tzinfo=UTC))
    await r.shown(COORDINATORS_ID, "🚲 Chloé is riding S-2 since 11:52.")

    await r.at(datetime(2026, 12, 8, 13, 30, tzinfo=UTC))  # S-2 ends
    ended = await r.told("Chloé", "🏁 S-2 has ended.")
    await r.presses("Chloé", ended, "🛑 No, set me away")
    await r.at(datetime(2026, 12, 8, 13, 31, tzinfo=UTC))
    waiting = await r.shown(COORDINATORS_ID, "⏱ Chloé worked")
    assert "on S-2 Tue 8 Dec 11:30–14:30, 3h planned:" in waiting["text"], waiting["text"]
    entry = waiting["text"].split(": ", 1)[1].split()[0]
    await r.says("Alice", f"/approve {entry}", entry)
    contrib = await r.says("Chloé", "/contrib", "Planned:")
    assert "Planned: 3h in 1 slot · Worked: 2.6" in contrib["text"], contrib["text"]  # from 11:52 or so
    bobs = await r.says("Bob", "/contrib", "Planned:")
    assert "Planned: 3h in 1 slot · Worked: 3h" in bobs["text"], bobs["text"]


async def an_unpopular_slot_filled_in_turn(r: Roster) -> None:
    """A Sunday night still empty two days before is offered to one member at a time, fewest
    unpopular slots first, then fewest hours of slots; Alice declines, Bob lets it pass, Chloé
    takes it, and /why shows why, to anyone."""
    await r.says("Alice", "/slots add sun 21:00-01:00 x1 from 2026-12-13 to 2026-12-13", "Published 1 slot, S-12")
    await r.at(datetime(2026, 12, 11, 20, 0, tzinfo=UTC))  # 48 hours before, Friday 21:00 in Paris
    first = await r.told("Alice", "🌙 S-12")
    assert labels(first) == ["✅ Take it", "❌ Decline"]
    await r.presses("Alice", first, "❌ Decline")
    second = await r.told("Bob", "🌙 S-12")
    await r.at(datetime(2026, 12, 11, 21, 1, tzinfo=UTC))  # his hour is up
    await r.told("Bob", "Time is up for S-12")
    third = await r.told("Chloé", "🌙 S-12")
    await r.presses("Chloé", third, "✅ Take it")
    assert r.seats(12) == {"Chloé"}
    assert labels(second) == ["✅ Take it", "❌ Decline"]
    why = await r.says("Dan", "/why S-12", "S-12")
    lines = why["text"].splitlines()
    offers = [line for line in lines if line.startswith("• ") and "offered to" in line]
    assert [line.split(" offered to ")[1].split(" (")[0] for line in offers] == ["Alice", "Bob", "Chloé"]
    assert "Ranking for 2026-12: 1. Alice 0 unpopular slots" in offers[0], offers[0]
    assert "Dan" not in offers[0]  # he rides S-11 until 23:00 that Sunday: never asked
    assert any("Chloé took it." in line for line in lines), lines


@pytest.fixture
async def published(roster: Roster) -> Roster:
    """The co-op with its two weeks published and nobody signed up yet."""
    await publishes_two_weeks(roster)
    return roster


async def test_a_two_week_roster_from_publishing_to_the_end_of_a_slot(published: Roster) -> None:
    await members_take_seats(published)
    await seats_change_hands(published)
    await the_day_before(published)
    await the_slot_starts(published)
    await the_slot_ends(published)
    await a_late_rider_and_her_hours(published)
    await an_unpopular_slot_filled_in_turn(published)
    assert published.api.violations == []  # and the bot kept to Telegram's limits throughout


async def test_a_seat_offered_to_everyone_carries_one_sign_up_button(published: Roster) -> None:
    await published.says("Bob", "/signup S-1", "You ride S-1")
    await published.says("Bob", "/giveaway S-1", "Your seat on S-1")
    offer = await published.told("Emma", "🙋 Bob offers their seat on S-1")
    assert labels(offer) == ["🙋 Sign up S-1"]


async def test_a_seat_taken_under_the_groups_plan_leaves_the_plan_to_everyone(published: Roster) -> None:
    await published.at(SUNDAY_EVENING)
    posted = await published.shown(GROUP_ID, "Slots, week of", who="the co-op's group")
    plan, buttons = caption_or_text(posted), labels(posted)
    answer = await published.presses("Dan", posted, "🙋 Sign up S-11")
    assert published.seats(11) == {"Dan"}
    assert answer.get("text") == "You ride S-11 Sun 13 Dec 19:00–23:00. Type /myslots to see your slots."
    now = published.api.current(posted)
    assert (caption_or_text(now), labels(now)) == (plan, buttons)
