"""Hours ridden on a slot become shift hours in the ledger, once, approved by the slot itself when
they match the plan, by a coordinator when they do not; never twice with a `/shift` over them.

Same co-op as `test_attendance`: S-1 is Monday 9 November, 11:30–14:30 in Paris, three hours.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from coopbot.errors import UsageError
from coopbot.models import Contribution
from coopbot.models_rosters import SlotSignup
from coopbot.services.polls import settings as settings_svc
from coopbot.states import ContributionStatus
from tests.conftest import Coop
from tests.services.rosters.test_attendance import TO_START, lunch, seat

__all__ = ["lunch"]


async def ride(coop: Coop, minutes: int, *riders: str) -> None:
    """Let `minutes` pass, the riders saying they still ride every half hour, as the idle question wants."""
    for _ in range(minutes // 30):
        await coop.tick(minutes=30)
        for who in riders:
            await coop.say(who, "/available")
    await coop.tick(minutes=minutes % 30)


async def start_lunch(coop: Coop, *present: str) -> None:
    coop.clock.advance(TO_START)
    await coop.tick()
    for who in present:
        await coop.say(who, "/available")


def entries(coop: Coop) -> list[Contribution]:
    with coop.session() as session:
        found = list(session.scalars(select(Contribution).order_by(Contribution.id)))
        session.expunge_all()
        return found


def worked_minutes(coop: Coop, who: str) -> int | None:
    return seat(coop, who).worked_minutes


async def test_a_slot_ridden_to_the_end_counts_its_hours_once_approved_by_the_slot(lunch: Coop) -> None:
    await start_lunch(lunch, "bob")
    await ride(lunch, 180, "bob")  # 14:30: S-1 ends
    await lunch.tick(minutes=5)
    [entry] = entries(lunch)
    assert (entry.kind, entry.unit, entry.quantity_milli, entry.points_milli) == ("shift", "hour", 3000, 3000)
    assert (entry.status, entry.source, entry.source_ref, entry.note) == (
        ContributionStatus.APPROVED, "slot", f"slot:{seat(lunch, 'bob').id}", "S-1")
    bob = seat(lunch, "bob")
    assert (bob.worked_minutes, bob.contribution_id) == (180, entry.id)
    assert "• shift: 3 points" in await lunch.say("bob", "/contrib")
    await lunch.tick(hours=2)
    assert len(entries(lunch)) == 1


async def test_a_rider_who_stops_early_waits_for_a_coordinator_who_approves_as_usual(lunch: Coop) -> None:
    await start_lunch(lunch, "bob")
    await ride(lunch, 120, "bob")
    await lunch.say("bob", "/away")  # 13:30, an hour early
    await lunch.tick(seconds=5)
    await ride(lunch, 60)
    [entry] = entries(lunch)
    assert (entry.quantity_milli, entry.status) == (2000, ContributionStatus.PENDING)
    assert worked_minutes(lunch, "bob") == 120
    notice = [m.text for m in lunch.room("coordinators") if m.text.startswith("⏱")]
    assert notice == ["⏱ Bob worked 2h on S-1 Mon 9 Nov 11:30–14:30, 3h planned: C-1 waits for approval. "
                      "Type /approve C-1 or /reject C-1 REASON."]  # fmt: skip
    assert "C-1 Bob: 2h shift (2 points): S-1" in await lunch.say("alice", "/approve")
    assert "Approved C-1 for Bob" in await lunch.say("alice", "/approve C-1")
    assert entries(lunch)[0].status == ContributionStatus.APPROVED


async def test_a_few_minutes_off_the_plan_are_approved_by_the_slot(lunch: Coop) -> None:
    await start_lunch(lunch, "bob")
    await ride(lunch, 170, "bob")
    await lunch.say("bob", "/away")  # 14:20, ten minutes early
    await lunch.tick(seconds=5)
    await ride(lunch, 15)
    [entry] = entries(lunch)
    assert (entry.quantity_milli, entry.status) == (2833, ContributionStatus.APPROVED)


async def test_a_pause_within_the_slot_counts_as_riding(lunch: Coop) -> None:
    await start_lunch(lunch, "bob")
    await ride(lunch, 30, "bob")
    await lunch.say("bob", "/away")
    await lunch.tick(minutes=10)
    assert seat(lunch, "bob").ended_at == lunch.clock.now()
    lunch.clock.advance(seconds=30)
    await lunch.say("bob", "/available")
    await lunch.tick(seconds=5)
    assert seat(lunch, "bob").ended_at is None
    await ride(lunch, 145, "bob")
    assert worked_minutes(lunch, "bob") == 180
    assert entries(lunch)[0].status == ContributionStatus.APPROVED


async def test_a_rider_who_never_came_worked_nothing_and_nothing_is_written(lunch: Coop) -> None:
    await start_lunch(lunch, "chloé", "dan")
    await ride(lunch, 185, "chloé", "dan")  # Bob is asked at 11:45 and never answers
    assert worked_minutes(lunch, "bob") == 0
    assert seat(lunch, "bob").contribution_id is None
    assert sorted(e.member_id for e in entries(lunch)) == sorted(lunch.member_id(w) for w in ("chloé", "dan"))


async def test_a_late_rider_counts_from_when_they_answered(lunch: Coop) -> None:
    await start_lunch(lunch)
    await lunch.tick(minutes=15)  # Bob is asked
    lunch.clock.advance(minutes=25)
    await lunch.say("bob", "", button="/available")  # 12:10: "I'm riding"
    await lunch.tick(seconds=1)
    await ride(lunch, 140, "bob")
    assert worked_minutes(lunch, "bob") == 140
    [entry] = [e for e in entries(lunch) if e.member_id == lunch.member_id("bob")]
    assert entry.status == ContributionStatus.PENDING


async def test_a_shift_over_the_slot_wins_and_the_slot_writes_nothing(lunch: Coop) -> None:
    lunch.clock.advance(TO_START - timedelta(minutes=5))
    await lunch.say("chloé", "/shift start")  # 11:25
    await lunch.tick(minutes=5)
    await ride(lunch, 190, "chloé")
    ended = await lunch.say("chloé", "/shift end")  # 14:40
    assert ended.startswith("Shift 11:25–14:40: 3.25 h")
    await lunch.tick(minutes=5)
    mine = [e for e in entries(lunch) if e.member_id == lunch.member_id("chloé")]
    assert [(e.source, e.quantity_milli) for e in mine] == [("shift", 3250)]
    chloe = seat(lunch, "chloé")
    assert (chloe.worked_minutes, chloe.contribution_id) == (180, None)


async def test_a_shift_started_afterwards_over_a_slot_already_counted_is_refused(lunch: Coop) -> None:
    await start_lunch(lunch, "bob")
    await ride(lunch, 190, "bob")  # 14:40: S-1's three hours are in the ledger
    refused = await lunch.say("bob", "/shift start 11:30")
    assert refused == ("Your hours on S-1 until 14:30 already count. "
                       "Start your shift at 14:30 or later: /shift start 14:30.")  # fmt: skip
    assert "Shift started at 14:30" in await lunch.say("bob", "/shift start 14:30")
    assert len(entries(lunch)) == 1


async def test_the_tolerance_is_a_governed_setting(lunch: Coop) -> None:
    with lunch.session() as session:
        settings_svc.apply(session, lunch.bot.config, "slot_tolerance_minutes", "60", lunch.clock.now())
    await start_lunch(lunch, "bob")
    await ride(lunch, 120, "bob")
    await lunch.say("bob", "/away")  # an hour early: within the co-op's hour
    await lunch.tick(seconds=5)
    await ride(lunch, 65)
    [entry] = entries(lunch)
    assert (entry.quantity_milli, entry.status) == (2000, ContributionStatus.APPROVED)
    parse = settings_svc.governed("slot_tolerance_minutes").parse
    assert parse(" 30 ") == "30"
    with pytest.raises(UsageError):
        parse("-5")


async def test_a_cancelled_slot_counts_nothing(lunch: Coop) -> None:
    await start_lunch(lunch, "bob")
    await ride(lunch, 60, "bob")
    assert "S-1 is cancelled" in await lunch.say("alice", "/slots cancel S-1 storm")
    await ride(lunch, 130, "bob")
    assert entries(lunch) == []
    with lunch.session() as session:
        assert session.scalars(select(SlotSignup.worked_minutes)).all() == [None, None, None]
