"""Seats on a slot: never more riders than seats, even when many sign up at the same instant."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from coopbot.db import transaction
from coopbot.errors import Conflict
from coopbot.models import Member
from coopbot.models_rosters import SlotSignup
from coopbot.services.rosters import slots
from coopbot.services.rosters.parsing import parse_spec
from tests.conftest import Coop
from tests.races import race


def publish(coop: Coop, typed: str) -> list[int]:
    coordinator = coop.member_id(coop.member("Alice", "coordinator"))
    with coop.session() as session:
        spec = parse_spec(typed.split(), date(2026, 11, 2))
        made = slots.publish(session, coop.bot.config, session.get_one(Member, coordinator), spec, coop.clock.now())
        return [slot.id for slot in made]


def race_to_sign_up(coop: Coop, riders: list[int], slot_id: int) -> tuple[list[int], list[Conflict]]:
    """Every rider signs up at the same instant, each from their own thread and session."""

    def sign_up(member_id: int) -> None:
        with transaction(coop.bot.sessions) as session:
            slot = slots.get(session, slots.code(slot_id), lock=True)
            slots.sign_up(session, coop.bot.config, session.get_one(Member, member_id), slot, coop.clock.now())

    return race(riders, sign_up)


async def test_many_riders_signing_up_at_once_fill_the_seats_and_no_more(any_coop: Coop) -> None:
    [slot_id] = publish(any_coop, "sat 19:00-23:00 x3 from 2026-11-07")
    riders = [any_coop.member_id(any_coop.member(f"Rider{n}")) for n in range(10)]
    won, lost = race_to_sign_up(any_coop, riders, slot_id)
    assert len(won) == 3 and len(lost) == 7
    assert {refused.key for refused in lost} == {"rosters.full"}
    with any_coop.session() as session:
        seated = session.scalars(select(SlotSignup.member_id).where(SlotSignup.slot_id == slot_id)).all()
        assert sorted(seated) == sorted(won)
        assert session.scalar(select(func.count(SlotSignup.id))) == 3


async def test_days_already_begun_are_left_out_of_a_published_range(coop: Coop) -> None:
    """Monday 2 November, 09:00 in Paris: this morning's slot has begun, tomorrow's has not."""
    made = publish(coop, "mon-tue 08:00-10:00 x1 from 2026-11-02 to 2026-11-03")
    with coop.session() as session:
        [slot] = [slots.get(session, slots.code(slot_id)) for slot_id in made]
        assert slot.starts_at.isoformat() == "2026-11-03T07:00:00+00:00"
