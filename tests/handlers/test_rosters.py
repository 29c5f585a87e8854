"""Rosters as a co-op lives them: a week published, seats taken, handed on, reminded, started.

Alice coordinates; Bob, Chloé and Dan ride. The clock starts on Monday
2 November 2026 at 09:00 in Paris; the slots are for the week after.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from coopbot.errors import UsageError
from coopbot.models import Member
from coopbot.models_rosters import Slot
from coopbot.services.data import leaving
from coopbot.services.polls import settings as settings_svc
from tests.conftest import Coop

LUNCHES = "/slots add mon-fri 11:30-14:30 x2 from 2026-11-09 to 2026-11-13"


@pytest.fixture
async def week(coop: Coop) -> Coop:
    """Five weekday lunches next week, two riders each (S-1 is Monday the 9th, 11:30 in Paris)."""
    coop.member("Alice", "coordinator")
    for name in ("Bob", "Chloé", "Dan"):
        coop.member(name)
    published = await coop.say("alice", LUNCHES)
    assert published.startswith("Published 5 slots, S-1 to S-5, each needing 2 riders.")
    return coop


async def answer(coop: Coop, who: str, text: str = "", **kwargs: object) -> str:
    """The bot's answer to `who` alone, without the notices the command queued for others."""
    return (await coop.replies(who, text, **kwargs))[0].text


def slots_count(coop: Coop) -> int:
    with coop.session() as session:
        return session.scalar(select(func.count(Slot.id))) or 0


async def test_a_published_week_shows_seats_taken_and_free_with_a_button_under_each(week: Coop) -> None:
    assert "No slots are planned for the week of Monday 2 November." in await week.say("bob", "/slots")
    plan = (await week.replies("bob", "/slots next"))[-1]
    lines = plan.text.splitlines()
    assert lines[0] == "Slots, week of Monday 9 November:"
    assert lines[1] == "• S-1 Mon 9 Nov 11:30–14:30 · 0/2 taken, 2 free"
    assert len(lines) == 6
    assert [b.command for b in plan.buttons] == [f"/signup S-{n}" for n in range(1, 6)]

    pressed = await week.say("bob", "", button="/signup S-1")
    assert pressed == "You ride S-1 Mon 9 Nov 11:30–14:30. Type /myslots to see your slots."
    again = (await week.replies("bob", "/slots next"))[-1]
    assert again.text.splitlines()[1] == "• S-1 Mon 9 Nov 11:30–14:30 · 1/2 taken, 1 free · ✅ you"
    assert "/signup S-1" not in [b.command for b in again.buttons]
    assert "• S-1 Mon 9 Nov 11:30–14:30" in await week.say("bob", "/myslots")


async def test_times_are_the_coops_clock_and_stored_in_utc(week: Coop) -> None:
    with week.session() as session:
        first = session.get_one(Slot, 1)
        assert (first.starts_at.isoformat(), first.ends_at.isoformat()) == (
            "2026-11-09T10:30:00+00:00", "2026-11-09T13:30:00+00:00")


async def test_a_full_slot_refuses_with_one_sentence(week: Coop) -> None:
    await week.say("bob", "/signup S-1")
    await week.say("chloé", "/signup S-1")
    assert await week.say("dan", "/signup S-1") == "S-1 is full. Type /slots to find a slot with seats free."
    assert await week.say("bob", "/signup S-1") == (
        "You are already signed up for S-1. Type /myslots to see your slots.")


async def test_signing_off_ends_some_hours_before_the_start_then_only_a_swap(week: Coop) -> None:
    await week.say("bob", "/signup S-1")
    await week.say("bob", "/signup S-2")
    assert await week.say("bob", "/signoff S-2") == "You are off S-2."
    week.clock.advance(days=7, hours=1, minutes=31)  # Monday the 9th, 09:31 UTC: an hour before S-1
    refused = await week.say("bob", "/signoff S-1")
    assert refused.startswith("S-1 starts in less than 12 hours: you can no longer sign off, only hand your seat")
    assert "/swap S-1 NAME" in refused and "\n" not in refused
    assert "S-1" in await week.say("bob", "/myslots")


async def test_a_cancelled_slot_tells_its_riders_and_takes_nobody(week: Coop) -> None:
    await week.say("bob", "/signup S-3")
    assert await answer(week, "alice", "/slots cancel S-3 heavy rain") == "S-3 is cancelled; 1 rider was told."
    await week.tick()
    assert week.inbox("bob")[-1].text == (
        "❌ S-3 Wed 11 Nov 11:30–14:30 is cancelled: heavy rain. You are no longer expected then.")
    assert "S-3 is cancelled (heavy rain)" in await week.say("dan", "/signup S-3")
    assert "S-3" not in await week.say("dan", "/slots next")


async def test_only_coordinators_publish_and_cancel(week: Coop) -> None:
    refused = await week.say("bob", "/slots add sat 19:00-23:00 x4 zone B")
    assert refused.startswith("Only coordinators can use /slots add.")
    assert (await week.say("bob", "/slots cancel S-1 why")).startswith("Only coordinators can use /slots cancel.")
    assert slots_count(week) == 5


async def test_a_zone_and_a_night_slot(week: Coop) -> None:
    published = await week.say("alice", "/slots add sat 19:00-01:00 x4 zone B from 2026-11-14")
    assert published.startswith("Published 1 slot, S-6, needing 4 riders.")
    assert "• S-6 Sat 14 Nov 19:00–01:00 · zone B · 0/4 taken, 4 free" in await week.say("bob", "/slots next")


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("/slots add someday 11:30-14:30 x6", "I could not read the days."),
        ("/slots add mon 25:00-14:30 x6", "I could not read the hours."),
        ("/slots add mon 11:30-14:30 six", "I could not read how many riders"),
        ("/slots add mon 11:30-14:30 x6 from 7/12", "I could not read that date."),
        ("/slots add mon 11:30-14:30 x6 from 2026-12-20 to 2026-12-07", "The dates must run forwards"),
        ("/slots add mon 11:30-14:30 x6 from 2026-10-01 to 2026-10-20", "would have begun already"),
        ("/slots add mon 11:30-14:30", "That is not how to publish slots."),
        ("/slots cancel S-1", "Say why, so the riders know: /slots cancel S-1 REASON."),
    ],
)
async def test_a_mistyped_slot_is_one_sentence_and_publishes_nothing(week: Coop, typed: str, said: str) -> None:
    reply = await week.say("alice", typed)
    assert said in reply and "\n" not in reply
    assert slots_count(week) == 5


@pytest.mark.parametrize(
    ("typed", "said"),
    [("/signup S-99", "There is no slot S-99."), ("/signup J-1", "J-1 is not a slot."), ("/signup", "/signup S-31")],
)
async def test_a_mistyped_slot_code_says_what_to_type(week: Coop, typed: str, said: str) -> None:
    reply = await week.say("bob", typed)
    assert said in reply and "\n" not in reply


async def test_a_swap_moves_the_seat_only_when_the_other_accepts(week: Coop) -> None:
    await week.say("bob", "/signup S-1")
    assert await answer(week, "bob", "/swap S-1 Chloé") == (
        "I asked Chloé to take your seat on S-1. It stays yours until they accept.")
    await week.tick()
    asked = week.inbox("chloé")[-1]
    assert asked.text.startswith("🔁 Bob asks you to take their seat on S-1 Mon 9 Nov 11:30–14:30.")
    assert [b.command for b in asked.buttons] == ["/swap accept S-1", "/swap decline S-1"]
    assert "S-1" in await week.say("bob", "/myslots")
    assert "S-1" not in await week.say("chloé", "/myslots")

    accepted = await answer(week, "chloé", "", button="/swap accept S-1")
    assert accepted == "You ride S-1 Mon 9 Nov 11:30–14:30 instead of Bob."
    await week.tick()
    assert week.inbox("bob")[-1].text == "🔁 Chloé took your seat on S-1 Mon 9 Nov 11:30–14:30: you are free."
    assert "You have no slots coming." in await week.say("bob", "/myslots")
    assert "Nobody has asked you" in await week.say("chloé", "/swap accept S-1")


async def test_a_declined_swap_leaves_the_seat_with_its_holder(week: Coop) -> None:
    await week.say("bob", "/signup S-1")
    await week.say("bob", "/swap S-1 Dan")
    assert await answer(week, "dan", "/swap decline S-1") == "You declined; S-1 stays with Bob."
    await week.tick()
    assert week.inbox("bob")[-1].text.startswith("Dan declined your seat on S-1")
    assert "S-1" in await week.say("bob", "/myslots")
    assert "S-1" not in await week.say("dan", "/myslots")


async def test_a_seat_given_away_goes_to_the_first_who_signs_up_and_frees_the_giver(week: Coop) -> None:
    await week.say("bob", "/signup S-1")
    await week.say("dan", "/signup S-1")
    assert await answer(week, "bob", "/giveaway S-1") == (
        "Your seat on S-1 is offered to 2 members. It stays yours until someone takes it.")
    await week.tick()
    offer = week.inbox("chloé")[-1]
    assert offer.text == "🙋 Bob offers their seat on S-1 Mon 9 Nov 11:30–14:30. The first to sign up takes it."
    taken = await answer(week, "chloé", "", button=offer.buttons[0].command)
    assert taken.endswith("You took the seat Bob gave away: they are free.")
    await week.tick()
    assert week.inbox("bob")[-1].text == "🔁 Chloé took your seat on S-1 Mon 9 Nov 11:30–14:30: you are free."
    assert "1/2" not in await week.say("alice", "/slots next")
    assert "You have no slots coming." in await week.say("bob", "/myslots")


async def test_riders_are_reminded_once_the_day_before_and_before_and_set_available_at_the_start(week: Coop) -> None:
    await week.say("bob", "/signup S-1")
    await week.say("chloé", "/signup S-1")
    await week.tick(days=6, hours=2, minutes=30)  # Sunday the 8th, 10:30 UTC: 24 hours before S-1
    await week.tick(minutes=5)
    eve = [m.text for m in week.inbox("bob") if m.text.startswith("🗓")]
    assert eve == ["🗓 Reminder: you ride S-1 Mon 9 Nov 11:30–14:30. Type /swap or /giveaway if you cannot."]
    await week.tick(hours=23)  # 09:35 UTC, 55 minutes before
    await week.tick(minutes=1)
    soon = [m.text for m in week.inbox("bob") if m.text.startswith("⏰")]
    assert soon == ["⏰ You ride soon: S-1 Mon 9 Nov 11:30–14:30 starts at 11:30."]
    assert not week.get_member("bob").available

    await week.tick(hours=1)
    assert week.inbox("bob")[-1].text == (
        "🚲 S-1 has started: you are available for jobs until 14:30. Type /away when you stop.")
    assert week.get_member("bob").available and week.get_member("chloé").available
    await week.say("bob", "/away")
    await week.tick(minutes=5)
    assert not week.get_member("bob").available
    assert len([m for m in week.inbox("bob") if m.text.startswith("🚲")]) == 1


async def test_at_the_end_a_rider_still_available_is_asked_whether_to_stay_once(week: Coop) -> None:
    await week.say("bob", "/signup S-1")
    await week.say("chloé", "/signup S-1")
    await week.tick(days=7, hours=2, minutes=30)  # Monday the 9th, 10:30 UTC: S-1 starts
    await week.say("chloé", "/away")
    for _ in range(3):  # Bob rides on, saying so before the idle question would come
        await week.tick(hours=1)
        await week.say("bob", "/available")
    await week.tick()  # 13:30 UTC: S-1 ends
    await week.tick(minutes=5)
    asked = [m for m in week.inbox("bob") if m.text.startswith("🏁")]
    assert [m.text for m in asked] == ["🏁 S-1 has ended. Are you still riding? Jobs keep coming until you type /away."]
    assert [b.command for b in asked[0].buttons] == ["/available", "/away"]
    assert not [m for m in week.inbox("chloé") if m.text.startswith("🏁")]


async def test_a_short_slot_calls_the_members_not_on_it_and_the_coordinators_once(week: Coop) -> None:
    await week.say("bob", "/signup S-1")
    await week.tick(days=6, hours=2, minutes=29)  # just over 24 hours before S-1: not yet
    assert not [m for m in week.inbox("dan") if m.text.startswith("🆘")]
    await week.tick(minutes=2)
    await week.tick(minutes=30)
    called = [m for m in week.inbox("dan") if m.text.startswith("🆘")]
    assert [m.text for m in called] == ["🆘 S-1 Mon 9 Nov 11:30–14:30 still needs 1 rider. Can you ride it?"]
    assert called[0].buttons[0].command == "/signup S-1"
    assert not [m for m in week.inbox("bob") if m.text.startswith("🆘")]
    coordinators = [m.text for m in week.room("coordinators") if m.text.startswith("🆘")]
    assert coordinators == ["🆘 S-1 Mon 9 Nov 11:30–14:30 is still short of 1 rider; 3 members were asked."]


async def test_the_hours_and_minutes_are_governed_settings(week: Coop) -> None:
    with week.session() as session:
        settings_svc.apply(session, week.bot.config, "signoff_hours", "48", week.clock.now())
    await week.say("bob", "/signup S-1")
    week.clock.advance(days=6)  # Sunday the 8th, 09:00 in Paris: 26 hours before S-1
    assert "less than 48 hours" in await week.say("bob", "/signoff S-1")
    for key, good, bad in (("signoff_hours", "0", "169"), ("remind_minutes", "15", "-5"), ("short_hours", "6", "x")):
        parse = settings_svc.governed(key).parse
        assert parse(f" {good} ") == good
        with pytest.raises(UsageError):
            parse(bad)


async def test_a_french_member_reads_the_plan_in_french_on_the_coops_clock(week: Coop) -> None:
    await week.say("chloé", "/lang fr")
    await week.say("bob", "/signup S-1")
    plan = (await week.replies("chloé", "/slots next"))[-1]
    lines = plan.text.splitlines()
    assert lines[0] == "Créneaux, semaine du lundi 9 novembre\u00a0:"
    assert lines[1] == "• S-1 lun. 9 nov. 11:30–14:30 · 1/2 pris, 1 libre"
    assert lines[2] == "• S-2 mar. 10 nov. 11:30–14:30 · 0/2 pris, 2 libres"
    assert plan.buttons[0].label == "🙋 M’inscrire S-1"


async def test_the_coming_weeks_plan_is_posted_to_the_coops_room_once_on_sunday_evening(week: Coop) -> None:
    await week.say("bob", "/signup S-1")
    await week.tick(days=6, hours=8, minutes=59)  # Sunday the 8th, 17:59 in Paris
    assert not [m for m in week.room() if m.text.startswith("Slots, week of")]
    await week.tick(minutes=1)
    await week.tick(hours=3)
    posted = [m for m in week.room() if m.text.startswith("Slots, week of")]
    assert [m.text.splitlines()[:2] for m in posted] == [
        ["Slots, week of Monday 9 November:", "• S-1 Mon 9 Nov 11:30–14:30 · 1/2 taken, 1 free"]]
    assert posted[0].buttons[0].command == "/signup S-1"


async def test_a_rider_is_on_one_slot_at_a_time_and_busy_riders_are_not_asked(week: Coop) -> None:
    assert (await week.say("alice", "/slots add mon 12:00-15:00 x1 zone B from 2026-11-09")).startswith(
        "Published 1 slot, S-6")
    await week.say("bob", "/signup S-1")
    refused = await week.say("bob", "/signup S-6")
    assert refused == ("You already ride S-1 at those hours, so you cannot ride S-6 too. "
                       "Hand S-1 on first with /swap or /giveaway.")
    await week.say("dan", "/signup S-6")
    assert (await answer(week, "chloé", "/giveaway S-1")).startswith("You are not signed up for S-1.")
    assert (await answer(week, "bob", "/giveaway S-1")).startswith("Your seat on S-1 is offered to 2 members.")
    assert not [m for m in week.inbox("dan") if m.text.startswith("🙋")]


async def test_a_member_who_leaves_gives_up_the_seats_to_come(coop: Coop) -> None:
    coop.member("Alice", "coordinator")
    coop.member("Bob")
    await coop.say("alice", "/slots add mon 11:30-14:30 x2 from 2026-11-09 to 2026-11-09")
    assert "You ride S-1" in await coop.say("bob", "/signup S-1")
    with coop.session() as session:
        leaving.start_leave(session, session.get_one(Member, coop.member_id("bob")), coop.clock.now(), coop.bot.config)
    assert "0/2 taken" in await coop.say("alice", "/slots next")
