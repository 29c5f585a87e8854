"""No-shows: a rider nobody has heard from 15 minutes into their slot is asked, and the coordinators
told, once; nothing else happens to them.

Alice coordinates; Bob, Chloé and Dan ride S-1, Monday 9 November 2026, 11:30–14:30 in Paris
(10:30 UTC). The clock starts a week before, on Monday 2 November at 09:00 in Paris.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from coopbot.models import Contribution
from coopbot.models_rosters import SlotSignup
from tests.conftest import Coop

#: From the clock's start to S-1's start (Monday the 9th, 10:30 UTC).
TO_START = timedelta(days=7, hours=2, minutes=30)


@pytest.fixture
async def lunch(coop: Coop) -> Coop:
    """S-1, three seats, taken by Bob, Chloé and Dan."""
    coop.member("Alice", "coordinator")
    await coop.say("alice", "/slots add mon 11:30-14:30 x3 from 2026-11-09")
    for name in ("Bob", "Chloé", "Dan"):
        coop.member(name)
        assert (await coop.say(name.lower(), "/signup S-1")).startswith("You ride S-1")
    return coop


async def start_lunch(coop: Coop) -> None:
    coop.clock.advance(TO_START)
    await coop.tick()


def questions(coop: Coop, who: str) -> list[str]:
    return [m.text for m in coop.inbox(who) if m.text.startswith("⏰ S-1")]


def told(coop: Coop, sign: str = "⏰") -> list[str]:
    return [m.text for m in coop.room("coordinators") if m.text.startswith(sign)]


def seat(coop: Coop, who: str) -> SlotSignup:
    with coop.session() as session:
        found = session.scalars(select(SlotSignup).where(SlotSignup.member_id == coop.member_id(who))).one()
        session.expunge(found)
        return found


async def test_a_rider_not_heard_from_15_minutes_in_is_asked_once_and_the_coordinators_told(lunch: Coop) -> None:
    await start_lunch(lunch)
    await lunch.tick(minutes=5)
    await lunch.say("chloé", "/myslots")  # Chloé is there and says so, in a way
    await lunch.say("dan", "/away")  # Dan stops at once: he told the co-op, he is not asked
    await lunch.tick(minutes=9)  # 11:44
    assert questions(lunch, "bob") == [] and told(lunch) == []

    await lunch.tick(minutes=1)  # 11:45
    await lunch.tick(minutes=10)
    [asked] = [m for m in lunch.inbox("bob") if m.text.startswith("⏰ S-1")]
    assert asked.text == ("⏰ S-1 Mon 9 Nov 11:30–14:30 started at 11:30 and I have not heard from you. "
                          "Are you riding? Tap a button, or type /available or /away.")  # fmt: skip
    assert [b.command for b in asked.buttons] == ["/available", "/away"]
    assert told(lunch) == ["⏰ No sign of Bob 15 minutes into S-1 Mon 9 Nov 11:30–14:30 (started 11:30); "
                           "I asked them where they are."]  # fmt: skip
    assert questions(lunch, "chloé") == [] and questions(lunch, "dan") == []
    assert seat(lunch, "bob").noshow_asked_at == lunch.clock.now() - timedelta(minutes=10)

    # Nothing else: Bob is still available for jobs, and nothing is written against him.
    assert lunch.get_member("bob").available
    with lunch.session() as session:
        assert session.scalar(select(func.count(Contribution.id))) == 0


async def test_a_rider_available_before_the_start_or_on_a_shift_is_not_asked(lunch: Coop) -> None:
    lunch.clock.advance(TO_START - timedelta(minutes=20))
    await lunch.say("bob", "/available")  # 11:10: Bob is early
    await lunch.say("chloé", "/shift start")  # so is Chloé, clocking in
    lunch.clock.advance(minutes=20)
    await lunch.tick()  # 11:30: S-1 starts
    await lunch.tick(minutes=16)
    assert questions(lunch, "bob") == [] and questions(lunch, "chloé") == []
    assert len(questions(lunch, "dan")) == 1
    assert [line.split(" 15 minutes")[0] for line in told(lunch)] == ["⏰ No sign of Dan"]


async def test_the_rider_asked_who_turns_up_rides_from_then_and_the_coordinators_know(lunch: Coop) -> None:
    await start_lunch(lunch)
    for who in ("chloé", "dan"):
        await lunch.say(who, "/available")
    await lunch.tick(minutes=15)  # 11:45: Bob is asked
    lunch.clock.advance(minutes=7)
    answered = await lunch.say("bob", "", button="/available")  # 11:52: "I'm riding"
    assert "available" in answered
    await lunch.tick(seconds=5)
    assert told(lunch, "🚲") == ["🚲 Bob is riding S-1 since 11:52."]
    assert seat(lunch, "bob").started_at == lunch.clock.now() - timedelta(seconds=5)
    await lunch.tick(minutes=5)
    assert len(told(lunch, "🚲")) == 1 and len(questions(lunch, "bob")) == 1


async def test_a_rider_asked_who_cannot_come_is_set_away_and_nothing_more(lunch: Coop) -> None:
    await start_lunch(lunch)
    for who in ("chloé", "dan"):
        await lunch.say(who, "/available")
    await lunch.tick(minutes=15)
    assert "away" in await lunch.say("bob", "", button="/away")  # "I can't come"
    await lunch.tick(minutes=5)
    assert not lunch.get_member("bob").available
    assert told(lunch, "🚲") == [] and len(told(lunch)) == 1
    bob = seat(lunch, "bob")  # his work never began; it stopped when the clock saw him away
    assert (bob.started_at, bob.ended_at) == (lunch.clock.now() - timedelta(minutes=20), lunch.clock.now())


async def test_a_french_rider_is_asked_in_french(lunch: Coop) -> None:
    await lunch.say("bob", "/lang fr")
    await start_lunch(lunch)
    await lunch.tick(minutes=15)
    [asked] = [m for m in lunch.inbox("bob") if m.text.startswith("⏰ S-1")]
    assert asked.text.startswith("⏰ S-1 lun. 9 nov. 11:30–14:30 a commencé à 11:30 et je n’ai pas de nouvelles")
    assert "Roulez-vous\u202f?" in asked.text
    assert [b.label for b in asked.buttons] == ["Je roule", "Je ne peux pas venir"]
