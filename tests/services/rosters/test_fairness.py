"""The fairness rule's parts: what is unpopular, who is asked first, who is never asked, when it stops.

The clock starts on Monday 2 November 2026 at 09:00 in Paris (08:00 UTC), in
a monthly accounting period (2026-11).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from coopbot.errors import Conflict, UsageError
from coopbot.models import Member
from coopbot.models_rosters import Slot, SlotOffer
from coopbot.services.polls import settings as settings_svc
from coopbot.services.rosters import fairness, slots
from coopbot.services.rosters.parsing import parse_spec
from tests.conftest import Coop
from tests.races import race

PARIS_RULE = fairness.read_rule("sun, after 21:00")
ZONE = ZoneInfo("Europe/Paris")


def publish(coop: Coop, typed: str) -> list[int]:
    """Slots published by Alice, a coordinator (added the first time)."""
    with coop.session() as session:
        alice = session.scalars(select(Member).where(Member.name == "Alice")).one_or_none()
    if alice is None:
        coop.member("Alice", "coordinator")
    with coop.session() as session:
        actor = session.scalars(select(Member).where(Member.name == "Alice")).one()
        spec = parse_spec(typed.split(), date(2026, 11, 2))
        return [slot.id for slot in slots.publish(session, coop.bot.config, actor, spec, coop.clock.now())]


def sign_up(coop: Coop, member_id: int, slot_id: int) -> None:
    with coop.session() as session:
        slot = slots.get(session, slots.code(slot_id), lock=True)
        slots.sign_up(session, coop.bot.config, session.get_one(Member, member_id), slot, coop.clock.now())


def fill(coop: Coop, slot_id: int) -> None:
    with coop.session() as session:
        fairness.fill_step(session, coop.bot.config, slot_id, coop.clock.now())


def asked(coop: Coop, slot_id: int) -> list[tuple[str, str | None]]:
    """Who was offered the slot, in turn, and their answer so far."""
    with coop.session() as session:
        rows = session.scalars(select(SlotOffer).where(SlotOffer.slot_id == slot_id).order_by(SlotOffer.id))
        return [(session.get_one(Member, row.member_id).name, row.answer) for row in rows]


def a_slot(starts: str, ends: str) -> Slot:
    """A slot at these UTC times (Paris is UTC+1 in November)."""
    return Slot(starts_at=datetime.fromisoformat(starts).replace(tzinfo=UTC),
                ends_at=datetime.fromisoformat(ends).replace(tzinfo=UTC), seats=1)  # fmt: skip


# --- the rule -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("sun, after 21:00", "sun, after 21:00"),
        ("Dimanche  après 21h00", "sun, after 21:00"),
        ("sat-sun, before 07:30, after 22:00", "sat, sun, after 22:00, before 07:30"),
        ("fri,sat", "fri, sat"),
        ("none", ""),
    ],
)
def test_the_rule_is_read_into_one_canonical_text(typed: str, canonical: str) -> None:
    assert settings_svc.governed("unpopular_slots").parse(typed) == canonical


@pytest.mark.parametrize("typed", ["", "weekends", "after", "after 25:00", "after 21:00 after 22:00", "sun 21:00",
                                   "sun-someday"])  # fmt: skip
def test_a_rule_that_cannot_be_read_is_refused_with_an_example(typed: str) -> None:
    with pytest.raises(UsageError) as refused:
        settings_svc.governed("unpopular_slots").parse(typed)
    assert refused.value.params == {"setting": "unpopular_slots", "expected": "sun, after 21:00"}


@pytest.mark.parametrize(
    ("starts", "ends", "reasons"),
    [
        ("2026-11-08T10:30", "2026-11-08T13:30", [("day", "sun")]),  # Sunday lunch
        ("2026-11-07T20:00", "2026-11-07T22:00", [("after", "21:00")]),  # Saturday 21:00–23:00
        ("2026-11-07T18:00", "2026-11-08T00:00", [("midnight", "")]),  # Saturday 19:00–01:00
        ("2026-11-07T18:00", "2026-11-07T23:00", []),  # Saturday 19:00–24:00 ends at midnight, not after
        ("2026-11-09T10:30", "2026-11-09T13:30", []),  # Monday lunch
        ("2026-11-08T20:00", "2026-11-09T00:00", [("day", "sun"), ("after", "21:00")]),
    ],
)
def test_a_slot_is_unpopular_for_the_reasons_the_rule_names(starts: str, ends: str,
                                                             reasons: list[tuple[str, str]]) -> None:  # fmt: skip
    assert PARIS_RULE.reasons(a_slot(starts, ends), ZONE) == reasons


def test_early_mornings_when_the_rule_says_so() -> None:
    rule = fairness.read_rule("before 07:00")
    assert rule.reasons(a_slot("2026-11-09T05:00", "2026-11-09T08:00"), ZONE) == [("before", "07:00")]
    assert rule.reasons(a_slot("2026-11-09T06:00", "2026-11-09T09:00"), ZONE) == []


# --- who is asked -----------------------------------------------------------------------------------


async def test_busy_inactive_and_customers_are_never_asked_and_the_turns_end_with_the_list(coop: Coop) -> None:
    [night] = publish(coop, "sat 21:00-23:30 x2 from 2026-11-07")
    [other] = publish(coop, "sat 20:00-22:00 x1 from 2026-11-07")
    bob, chloe, dan, eve = (coop.member_id(coop.member(name)) for name in ("Bob", "Chloé", "Dan", "Eve"))
    coop.member("Boulangerie Martin", "customer", handle="martin")
    sign_up(coop, bob, other)  # busy at those hours
    sign_up(coop, chloe, night)  # already on it
    with coop.session() as session:
        session.get_one(Member, eve).active = False
    coop.clock.advance(days=3, hours=12)  # Thursday the 5th, 21:00 in Paris: 48 hours before
    fill(coop, night)
    assert asked(coop, night) == [("Alice", None)]
    with coop.session() as session:
        alice = session.scalars(select(Member).where(Member.name == "Alice")).one()
        fairness.decline(session, coop.bot.config, alice, slots.get(session, slots.code(night)), coop.clock.now())
    assert asked(coop, night) == [("Alice", "declined"), ("Dan", None)]
    with coop.session() as session:
        fairness.decline(session, coop.bot.config, session.get_one(Member, dan), slots.get(session, slots.code(night)),
                         coop.clock.now())  # fmt: skip
    assert asked(coop, night) == [("Alice", "declined"), ("Dan", "declined")]
    coop.clock.advance(hours=2)
    fill(coop, night)
    assert asked(coop, night) == [("Alice", "declined"), ("Dan", "declined")]


async def test_only_short_unpopular_slots_within_the_hours_are_offered_and_an_offer_ends_at_the_start(
        any_coop: Coop) -> None:  # fmt: skip
    coop = any_coop
    publish(coop, "sat 11:30-14:30 x1 from 2026-11-07")
    [night] = publish(coop, "sat 21:00-23:00 x1 from 2026-11-07")
    [sunday] = publish(coop, "sun 21:00-23:00 x1 from 2026-11-08")
    coop.member("Bob")
    coop.clock.advance(days=3, hours=12, minutes=30)  # Thursday 21:30 in Paris
    with coop.session() as session:
        due = fairness.due_slots(session, coop.bot.config, coop.clock.now())
    assert due == [night]  # lunch is popular, Sunday is more than 48 hours away
    with coop.session() as session:
        settings_svc.apply(session, coop.bot.config, "fill_offer_minutes", "1440", coop.clock.now())
    fill(coop, night)
    assert asked(coop, night) == [("Alice", None)]
    with coop.session() as session:
        assert fairness.due_slots(session, coop.bot.config, coop.clock.now()) == []  # Alice has a day to answer
    coop.clock.advance(days=1, hours=23, minutes=30)  # Saturday 21:00 in Paris: the slot starts
    with coop.session() as session:
        assert fairness.due_slots(session, coop.bot.config, coop.clock.now()) == [night, sunday]  # now 24 hours away
    fill(coop, night)
    assert asked(coop, night) == [("Alice", "withdrawn")]


async def test_the_ranking_counts_this_period_only(coop: Coop) -> None:
    """Bob rode October's Sunday nights: a new period starts everyone afresh, so the member number decides."""
    coop.clock.set(datetime(2026, 10, 2, 8, 0, tzinfo=UTC))
    bob = coop.member_id(coop.member("Bob"))
    [october] = publish(coop, "sun 21:00-23:00 x1 from 2026-10-04")
    sign_up(coop, bob, october)
    coop.clock.set(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
    [november] = publish(coop, "sun 21:00-23:00 x1 from 2026-11-08")
    with coop.session() as session:
        slot = session.get_one(Slot, november)
        ranked = fairness.rank(session, coop.bot.config, slot, session.scalars(select(Member)).all(), PARIS_RULE)
    assert [(s.member.name, s.unpopular, s.minutes) for s in ranked] == [("Bob", 0, 0), ("Alice", 0, 0)]


# --- a race for the last seat -------------------------------------------------------------------------


async def test_the_holder_of_the_offer_and_a_member_signing_up_at_once_one_gets_the_seat(any_coop: Coop) -> None:
    [night] = publish(any_coop, "sat 21:00-23:00 x1 from 2026-11-07")
    bob = any_coop.member_id(any_coop.member("Bob"))
    any_coop.clock.advance(days=3, hours=12)
    fill(any_coop, night)
    [(holder, _)] = asked(any_coop, night)
    assert holder == "Alice"
    alice = any_coop.member_id("alice")

    def act(member_id: int) -> None:
        with any_coop.session() as session:
            slot = slots.get(session, slots.code(night), lock=True)
            member = session.get_one(Member, member_id)
            if member_id != alice:
                slots.sign_up(session, any_coop.bot.config, member, slot, any_coop.clock.now())
                return
            refused = fairness.take(session, any_coop.bot.config, member, slot, any_coop.clock.now())
            if refused is not None:
                raise refused

    won, lost = race([alice, bob], act)
    assert len(won) == 1 and [refused.key for refused in lost] == ["rosters.full"]
    assert all(isinstance(refused, Conflict) for refused in lost)
    fill(any_coop, night)
    assert asked(any_coop, night) == [("Alice", "taken" if won == [alice] else "withdrawn")]
    with any_coop.session() as session:
        assert [m.id for m in slots.signed_members(session, session.get_one(Slot, night))] == won
