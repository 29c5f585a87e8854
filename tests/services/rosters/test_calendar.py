"""Calendar feeds as a calendar app reads them: the right hours on the co-op's clock, summer time
included, a cancelled slot shown cancelled, the whole roster for coordinators only, and an
address that stops when it is replaced.

Alice coordinates; Bob and Chloé ride. The slots are the Saturday before and the Monday after
the last Sunday of March 2027, when Paris moves its clocks forward (28 March).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from icalendar import Calendar
from sqlalchemy import select

from coopbot.app import CoopBot
from coopbot.clock import FakeClock
from coopbot.db import transaction
from coopbot.models import Member
from coopbot.models_rosters import CalendarFeed
from coopbot.services.data import leaving
from coopbot.services.rosters import calendar
from coopbot.states import Role
from tests.conftest import Coop, make_config
from tests.races import race

PUBLIC = "https://bot.example.coop"
AROUND_SUMMER_TIME = "/slots add sat,mon 11:30-14:30 x3 from 2027-03-27 to 2027-03-29"


@pytest.fixture
async def web_coop(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Coop]:
    """A co-op whose web door is on, reached at `PUBLIC`."""
    config = make_config(f"sqlite:///{tmp_path / 'coop.sqlite3'}", web={"enabled": True, "public_url": PUBLIC})
    bot = CoopBot(config, clock=clock)
    yield Coop(bot, clock)
    bot.dispose()


@pytest.fixture
async def spring(web_coop: Coop) -> Coop:
    """S-1 Saturday 27 March and S-2 Monday 29 March 2027, 11:30–14:30 in Paris; Bob rides both,
    Chloé the Monday. The clock is then a week before."""
    web_coop.member("Alice", "coordinator")
    web_coop.member("Bob")
    web_coop.member("Chloé")
    assert (await web_coop.say("alice", AROUND_SUMMER_TIME)).startswith("Published 2 slots, S-1 to S-2")
    for who, slot in (("bob", "S-1"), ("bob", "S-2"), ("chloé", "S-2")):
        assert (await web_coop.say(who, f"/signup {slot}")).startswith("You ride")
    web_coop.clock.set(datetime(2027, 3, 20, 9, 0, tzinfo=UTC))
    return web_coop


def feed(coop: Coop, handle: str, scope: str = calendar.MINE) -> Calendar:
    """The member's feed, from their token, as a calendar app would parse it."""
    with coop.session() as session:
        member = session.get_one(Member, coop.member_id(handle))
        secret = calendar.token(session, coop.bot.config, member, scope, coop.clock.now())
        found = calendar.feed_of(session, secret)
        assert found is not None
        return Calendar.from_ical(calendar.feed_ics(session, coop.bot.config, *found, coop.clock.now()))


def read_back(coop: Coop, secret: str) -> bool:
    with coop.session() as session:
        return calendar.feed_of(session, secret) is not None


async def test_a_slot_reads_1130_on_both_sides_of_the_change_to_summer_time(spring: Coop) -> None:
    parsed = feed(spring, "bob")
    saturday, monday = sorted(parsed.events, key=lambda event: event.start)
    for event in (saturday, monday):
        assert event["DTSTART"].params["TZID"] == "Europe/Paris"
        assert (event.start.hour, event.start.minute) == (11, 30)
        assert (event.end.hour, event.end.minute) == (14, 30)
    assert saturday.start.date().isoformat() == "2027-03-27" and monday.start.date().isoformat() == "2027-03-29"
    # Winter time on Saturday (UTC+1), summer time on Monday (UTC+2).
    assert saturday.start.astimezone(UTC).isoformat() == "2027-03-27T10:30:00+00:00"
    assert monday.start.astimezone(UTC).isoformat() == "2027-03-29T09:30:00+00:00"


async def test_the_feed_carries_its_timezone_for_a_calendar_that_knows_no_timezone_names(spring: Coop) -> None:
    parsed = feed(spring, "bob")
    [vtimezone] = parsed.timezones
    assert vtimezone.tz_name == "Europe/Paris"
    from_the_file_alone = vtimezone.to_tz(lookup_tzid=False)  # built from the VTIMEZONE, not from zoneinfo
    for event, utc in zip(sorted(parsed.events, key=lambda e: e.start), ("10:30", "09:30"), strict=True):
        local = event.start.replace(tzinfo=from_the_file_alone)
        assert f"{local.astimezone(UTC):%H:%M}" == utc


async def test_a_cancelled_slot_stays_in_the_riders_calendar_marked_cancelled_with_why(spring: Coop) -> None:
    spring.clock.set(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    assert (await spring.say("alice", "/slots cancel S-2 heavy rain")).startswith("S-2 is cancelled")
    spring.clock.set(datetime(2027, 3, 20, 9, 0, tzinfo=UTC))
    events = {str(event["UID"]): event for event in feed(spring, "bob").events}
    assert set(events) == {"slot-1@bot.example.coop", "slot-2@bot.example.coop"}
    assert events["slot-1@bot.example.coop"]["STATUS"] == "CONFIRMED"
    cancelled = events["slot-2@bot.example.coop"]
    assert cancelled["STATUS"] == "CANCELLED" and int(cancelled["SEQUENCE"]) == 1
    assert "heavy rain" in cancelled["DESCRIPTION"]
    assert str(cancelled["SUMMARY"]) == "Coop Vélo: slot S-2"
    roster = feed(spring, "alice", calendar.ALL)
    assert [str(event["UID"]) for event in roster.events] == ["roster-slot-1@bot.example.coop"]


async def test_a_members_feed_holds_their_own_slots_and_nobody_elses_name(spring: Coop) -> None:
    assert spring.clock.now() < datetime(2027, 3, 27, tzinfo=UTC)
    chloe = feed(spring, "chloé")
    assert [str(event["UID"]) for event in chloe.events] == ["slot-2@bot.example.coop"]
    text = chloe.to_ical().decode()
    assert "Bob" not in text and "Alice" not in text


async def test_the_whole_roster_counts_seats_for_coordinators_without_naming_riders(spring: Coop) -> None:
    roster = feed(spring, "alice", calendar.ALL)
    descriptions = [str(event["DESCRIPTION"]) for event in sorted(roster.events, key=lambda e: e.start)]
    assert descriptions == ["1/3 taken, 2 free.", "2/3 taken, 1 free."]
    assert "Bob" not in roster.to_ical().decode() and "Chloé" not in roster.to_ical().decode()
    with spring.session() as session:
        bob = session.get_one(Member, spring.member_id("bob"))
        assert calendar.scopes_for(bob) == (calendar.MINE,)


async def test_a_coordinator_who_steps_down_loses_the_roster_feed(spring: Coop) -> None:
    with spring.session() as session:
        alice = session.get_one(Member, spring.member_id("alice"))
        secret = calendar.token(session, spring.bot.config, alice, calendar.ALL, spring.clock.now())
    assert read_back(spring, secret)
    with spring.session() as session:
        session.get_one(Member, spring.member_id("alice")).role = Role.MEMBER
    assert not read_back(spring, secret)
    with spring.session() as session:
        calendar.reset(
            session, spring.bot.config, session.get_one(Member, spring.member_id("alice")), spring.clock.now()
        )
    with spring.session() as session:
        session.get_one(Member, spring.member_id("alice")).role = Role.COORDINATOR
    assert not read_back(spring, secret)  # reset while stepped down: it does not come back with the role


async def test_the_address_is_the_same_until_reset_then_the_old_one_stops(spring: Coop) -> None:
    config, now = spring.bot.config, spring.clock.now()
    with spring.session() as session:
        bob = session.get_one(Member, spring.member_id("bob"))
        first = calendar.tokens(session, config, bob, now)[calendar.MINE]
        assert calendar.tokens(session, config, bob, now)[calendar.MINE] == first
    with spring.session() as session:
        bob = session.get_one(Member, spring.member_id("bob"))
        second = calendar.reset(session, config, bob, now)[calendar.MINE]
    assert second != first
    assert not read_back(spring, first) and read_back(spring, second)
    with spring.session() as session:
        [row] = session.scalars(select(CalendarFeed)).all()
        assert (row.generation, row.token_hash) == (2, calendar.digest(second))
        assert second not in row.token_hash  # only its hash is kept


async def test_a_member_who_left_has_no_feed_any_more(spring: Coop) -> None:
    with spring.session() as session:
        bob = session.get_one(Member, spring.member_id("bob"))
        secret = calendar.token(session, spring.bot.config, bob, calendar.MINE, spring.clock.now())
    with spring.session() as session:
        session.get_one(Member, spring.member_id("bob")).active = False
    assert not read_back(spring, secret)


async def test_leaving_drops_the_members_calendar_addresses(spring: Coop) -> None:
    """Nothing of a member who left should keep answering for them, not even a hash."""
    with spring.session() as session:
        bob = session.get_one(Member, spring.member_id("bob"))
        calendar.token(session, spring.bot.config, bob, calendar.MINE, spring.clock.now())
    with spring.session() as session:
        leaving.start_leave(session, session.get_one(Member, spring.member_id("bob")), spring.clock.now(),
                            spring.bot.config)  # fmt: skip
    with spring.session() as session:
        assert session.scalars(select(CalendarFeed)).all() == []


async def test_addresses_are_made_kept_and_replaced_on_both_databases(any_coop: Coop) -> None:
    alice = any_coop.member_id(any_coop.member("Alice", "coordinator"))
    config, now = any_coop.bot.config, any_coop.clock.now()
    with any_coop.session() as session:
        first = calendar.tokens(session, config, session.get_one(Member, alice), now)
    with any_coop.session() as session:
        assert calendar.tokens(session, config, session.get_one(Member, alice), now) == first
        renewed = calendar.reset(session, config, session.get_one(Member, alice), now)
    assert set(renewed) == {calendar.MINE, calendar.ALL} and not set(renewed.values()) & set(first.values())
    with any_coop.session() as session:
        assert [calendar.feed_of(session, secret) for secret in first.values()] == [None, None]
        assert [calendar.feed_of(session, secret)[0].scope for secret in renewed.values()] == ["mine", "all"]  # type: ignore[index]


async def test_a_member_asking_twice_at_once_gets_one_address(any_coop: Coop) -> None:
    bob = any_coop.member_id(any_coop.member("Bob"))
    given: list[str] = []

    def ask(_: int) -> None:
        with transaction(any_coop.bot.sessions) as session:
            member = session.get_one(Member, bob)
            given.append(calendar.token(session, any_coop.bot.config, member, calendar.MINE, any_coop.clock.now()))

    won, _ = race(list(range(12)), ask)
    assert len(won) == 12 and len(set(given)) == 1
    with any_coop.session() as session:
        assert len(session.scalars(select(CalendarFeed)).all()) == 1
