"""Polls as members live them in chat: propose, get a ballot, vote, hear the result."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from coopbot.app import CoopBot
from coopbot.chat import Incoming
from coopbot.clock import FakeClock
from coopbot.errors import UsageError
from coopbot.models import AuditEntry, OutboxMessage, Poll
from coopbot.services.members.accounts import add_identity, member_of
from coopbot.services.polls import settings as settings_svc
from tests.conftest import Coop, make_config


@pytest.fixture(autouse=True)
def ballot_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("COOPBOT_SECRET", "handler-tests-ballot-key-0123456789")
    yield


@pytest.fixture
async def relaxed(sqlite_url: str, clock: FakeClock) -> AsyncIterator[Coop]:
    """A co-op where a block is recorded but does not stop a proposal."""
    bot = CoopBot(make_config(sqlite_url, polls={"block_vetoes": False}), clock=clock)
    yield Coop(bot, clock)
    bot.dispose()


def setting(coop: Coop, key: str) -> str:
    with coop.session() as session:
        return settings_svc.current(session, coop.bot.config, key, coop.clock.now())


def last(coop: Coop, who: str) -> str:
    return coop.inbox(who)[-1].text


async def test_a_binding_proposal_from_proposal_to_applied_setting(coop: Coop) -> None:
    alice, bob, chloe = coop.member("Alice", "coordinator"), coop.member("Bob"), coop.member("Chloe")
    reply = await coop.say(bob, "/propose Raise the legal reserve to 20%? --closes 3d --sets legal_reserve_pct=20")
    assert "P-1 is open" in reply
    assert "3 active members got a ballot" in reply
    for who in (alice, bob, chloe):
        ballot = next(m for m in coop.inbox(who) if "asks: Raise the legal reserve" in m.text)
        assert "legal reserve (legal_reserve_pct) goes from 15% to 20%" in ballot.text
        assert [b.command for b in ballot.buttons] == [
            "/vote P-1 agree",
            "/vote P-1 abstain",
            "/vote P-1 disagree",
            "/vote P-1 block",
        ]
        assert [b.emoji for b in ballot.buttons] == ["👍", "🤷", "👎", "✋"]
    assert "Bob opened P-1" in coop.room()[-1].text

    assert "recorded: Agree" in await coop.say(alice, "/vote P-1 agree")
    assert "recorded: Disagree" in await coop.say(bob, "/vote p1 disagree")
    assert "recorded: Agree" in await coop.say(bob, "", button="/vote P-1 agree")  # a change of mind
    assert "Results are shown at the close" in await coop.say(chloe, "/results P-1")
    assert "Agree 2" not in await coop.say(chloe, "/results P-1")

    await coop.tick(days=3)
    for who in (alice, bob, chloe):
        result = last(coop, who)
        assert "P-1 is closed" in result
        assert "PASSED" in result
        assert "Agree 2 · Abstain 0 · Disagree 0 · Block 0" in result
        assert "Turnout: 2 of 3 active members (66%)" in result
        assert "legal reserve is now 20%" in result
    assert "PASSED" in coop.room()[-1].text
    assert setting(coop, "legal_reserve_pct") == "20"
    named = await coop.say(chloe, "/results P-1")
    assert "Agree: Alice, Bob" in named
    assert "closed" in await coop.say(chloe, "/vote P-1 agree")
    with coop.session() as session:
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "setting.changed")).one()
        assert audit.details == {"key": "legal_reserve_pct", "old": "15", "new": "20", "poll": "P-1"}


async def test_a_choice_poll_with_several_choices_by_typing_and_by_buttons(coop: Coop) -> None:
    alice, bob = coop.member("Alice"), coop.member("Bob")
    await coop.say(
        alice, '/propose Summer party date --options "June 14|June 21|June 28" --multiple --closes 2026-12-01 18:00'
    )
    ballot = next(m for m in coop.inbox(bob) if "Summer party date" in m.text)
    assert "Closes 2026-12-01 18:00" in ballot.text
    assert [b.emoji for b in ballot.buttons] == ["1️⃣", "2️⃣", "3️⃣"]
    assert "1. June 14, 3. June 28" in await coop.say(alice, "/vote P-1 1,3")
    await coop.say(bob, "", button="/vote P-1 +2")
    toggled = await coop.say(bob, "", button="/vote P-1 +3")
    assert "2. June 21, 3. June 28" in toggled
    assert "2. June 21" in await coop.say(bob, "", button="/vote P-1 +3")  # untick
    listing = await coop.say(bob, "/polls")
    assert "Summer party date" in listing
    assert "You voted" in listing
    coop.clock.set(coop.clock.now().replace(month=12, day=1, hour=17, minute=0))  # 18:00 in Paris
    await coop.tick()
    result = last(coop, bob)
    assert "June 14: 1" in result and "June 21: 1" in result and "June 28: 1" in result
    assert "a tie between" in result


async def test_refusals_are_one_clear_sentence(coop: Coop) -> None:
    alice = coop.member("Alice")
    coop.member("Bob")
    cases = {
        "/propose --closes 3d": "Write the question first",
        '/propose Party? --options "Sat"': "at least two options",
        "/propose Party? --closes soonish": "closing time",
        "/propose Party? --quorum 120": "percentage from 0 to 100",
        "/propose Party? --colour red": "do not know the option --colour",
        "/propose Reserve? --sets legal_reserve_pct=99": "the dividend would be negative",
        "/propose Pay? --sets base_pay_per_hour=12.3456": "12.3456 has more than two decimals",
        "/propose Dividend? --sets dividend_pct=80": "no governed setting called dividend_pct",
    }
    for text, expected in cases.items():
        reply = await coop.say(alice, text)
        assert expected in reply, (text, reply)
        assert "\n" not in reply
    await coop.say(alice, "/propose New logo? --closes 2d")
    assert "agree, abstain, disagree or block" in await coop.say(alice, "/vote P-1 perhaps")
    assert "There is no poll P-9" in await coop.say(alice, "/vote P-9 agree")
    assert "not a poll number" in await coop.say(alice, "/vote P-x agree")
    with coop.session() as session:
        assert len(session.scalars(select(Poll)).all()) == 1


async def test_strangers_and_former_members_are_told_why_they_cannot_vote(coop: Coop) -> None:
    alice, bob = coop.member("Alice"), coop.member("Bob")
    await coop.say(alice, "/propose Longer shifts? --closes 2d")
    assert "Only members of" in await coop.say("stranger", "/vote P-1 agree")
    with coop.session() as session:
        member = member_of(session, "console", bob)
        assert member is not None
        member.active = False
    assert "no longer an active member" in await coop.say(bob, "/vote P-1 agree")


async def test_one_member_on_two_platforms_has_one_ballot(coop: Coop) -> None:
    alice, bob = coop.member("Alice"), coop.member("Bob")
    with coop.session() as session:
        member = member_of(session, "console", bob)
        assert member is not None
        add_identity(session, member, "telegram", "777", coop.clock.now(), "Bob")
    await coop.say(alice, "/propose Rotation for offers? --closes 2d --sets offer_policy=rotation --secret")
    from_telegram = Incoming("telegram", "777", "777", True, "/vote P-1 disagree", "Bob", event_id="tg:1")
    replies = await coop.bot.handle(from_telegram)
    assert "recorded: Disagree" in replies[0].text
    assert "recorded: Agree" in await coop.say(bob, "/vote P-1 agree")
    await coop.say(alice, "/vote P-1 agree")
    assert "closed; every member gets the result" in await coop.say(alice, "/closepoll P-1")
    result = last(coop, alice)
    assert "Agree 2 · Abstain 0 · Disagree 0" in result
    assert "Turnout: 2 of 2" in result
    assert "Closed early" in result
    assert setting(coop, "offer_policy") == "rotation"


async def test_early_close_only_when_everyone_voted(coop: Coop) -> None:
    alice, bob, chloe = coop.member("Alice"), coop.member("Bob"), coop.member("Chloe", "coordinator")
    await coop.say(alice, "/propose Buy tyres? --closes 2d")
    await coop.say(alice, "/vote P-1 agree")
    refused = await coop.say(alice, "/closepoll P-1")
    assert "1 of 3 has so far" in refused
    assert "Only the member who proposed P-1 or a coordinator" in await coop.say(bob, "/closepoll P-1")
    await coop.say(bob, "/vote P-1 abstain")
    await coop.say(chloe, "/vote P-1 agree")
    assert "is closed" in await coop.say(chloe, "/closepoll P-1")
    assert "already closed" in await coop.say(alice, "/closepoll P-1")


async def test_members_who_have_not_voted_get_one_reminder(coop: Coop) -> None:
    alice, bob = coop.member("Alice"), coop.member("Bob")
    await coop.say(alice, "/propose Winter tyres? --closes 3d")
    await coop.say(alice, "/vote P-1 agree")
    await coop.tick(hours=47)
    assert not any("Reminder" in m.text for m in coop.inbox(bob))
    await coop.tick(hours=2)
    await coop.tick(hours=2)
    assert sum("Reminder: you have not voted on P-1" in m.text for m in coop.inbox(bob)) == 1
    assert not any("Reminder" in m.text for m in coop.inbox(alice))


async def test_a_block_stops_a_proposal_by_default(coop: Coop) -> None:
    alice, bob, chloe = coop.member("Alice"), coop.member("Bob"), coop.member("Chloe")
    await coop.say(alice, "/propose Drop the bike insurance? --closes 1d")
    await coop.say(alice, "/vote P-1 agree")
    await coop.say(bob, "/vote P-1 agree")
    await coop.say(chloe, "/vote P-1 block")
    await coop.tick(days=1)
    assert "stopped by 1 block" in last(coop, chloe)


async def test_a_block_is_recorded_when_the_coop_lets_proposals_pass(relaxed: Coop) -> None:
    coop = relaxed
    alice, bob, chloe = coop.member("Alice"), coop.member("Bob"), coop.member("Chloe")
    await coop.say(alice, "/propose Open on Sunday? --closes 1d")
    await coop.say(alice, "/vote P-1 agree")
    await coop.say(bob, "/vote P-1 agree")
    await coop.say(chloe, "/vote P-1 block")
    await coop.tick(days=1)
    result = last(coop, chloe)
    assert "PASSED" in result
    assert "1 block recorded" in result


async def test_secret_polls_show_counts_never_names(coop: Coop, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    alice, bob, chloe = coop.member("Alice"), coop.member("Bob"), coop.member("Chloe")
    await coop.say(alice, '/propose Who should we hire? --options "Dana|Eli" --secret --closes 1d')
    await coop.say(alice, "/vote P-1 1")
    await coop.say(bob, "/vote P-1 2")
    await coop.say(chloe, "/vote P-1 2")
    during = await coop.say(alice, "/results P-1")
    assert "3 of 3" in during and "Dana: " not in during
    await coop.tick(days=1)
    after = await coop.say(alice, "/results P-1")
    assert "1. Dana: 1" in after and "2. Eli: 2" in after
    for name in ("Alice", "Bob", "Chloe"):
        assert name not in after
    with coop.session() as session:
        for row in session.scalars(select(OutboxMessage)):
            if row.member_id is not None:
                assert "Your vote" not in row.text
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Dana" not in logged and "Eli" not in logged


async def test_live_results_and_the_open_poll_list(coop: Coop) -> None:
    alice, bob = coop.member("Alice"), coop.member("Bob")
    assert "No poll is open" in await coop.say(alice, "/polls")
    await coop.say(alice, '/propose Pizza or pasta? --options "Pizza|Pasta" --live --closes 2h')
    await coop.say(bob, "/vote P-1 2")
    live = await coop.say(alice, "/results P-1")
    assert "2. Pasta: 1" in live and "2. Pasta: Bob" in live
    listing = await coop.say(alice, "/polls")
    assert "2 h 0 min left" in listing
    assert "Not voted yet: /vote P-1" in listing


async def test_a_close_missed_while_the_bot_was_down_happens_at_start(sqlite_url: str, clock: FakeClock) -> None:
    first = CoopBot(make_config(sqlite_url), clock=clock)
    coop = Coop(first, clock)
    alice = coop.member("Alice")
    await coop.say(alice, "/propose Longer lunch? --closes 1d --sets offer_timeout=300")
    await coop.say(alice, "/vote P-1 agree")
    first.dispose()
    clock.advance(days=2)  # the bot was down over the deadline
    second = CoopBot(make_config(sqlite_url), clock=clock)
    restarted = Coop(second, clock)
    await second.start()
    await second.stop()
    await second.outbox.drain()
    second.dispose()
    assert any("P-1 is closed" in m.text for m in restarted.inbox(alice))
    with restarted.session() as session:
        assert session.scalars(select(Poll)).one().status == "closed"


async def test_french_members_vote_in_french(coop: Coop) -> None:
    alice, bob = coop.member("Alice"), coop.member("Bob")
    await coop.say(bob, "/lang fr")
    await coop.say(alice, "/propose Acheter un vélo cargo ? --closes 2d")
    ballot = next(m for m in coop.inbox(bob) if "vélo cargo" in m.text)
    assert "Clôture le" in ballot.text
    assert [b.label for b in ballot.buttons] == ["Pour", "Abstention", "Contre", "Blocage"]
    assert "enregistré\u00a0: Pour" in await coop.say(bob, "/vote P-1 pour")
    assert "enregistré\u00a0: Contre" in await coop.say(bob, "/vote P-1 contre")


def test_close_time_parsing() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from handlers.polls import parse_closes

    paris = ZoneInfo("Europe/Paris")
    now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    assert parse_closes("3d", now, paris) == now + timedelta(days=3)
    assert parse_closes("1d 12h", now, paris) == now + timedelta(hours=36)
    assert parse_closes("2 jours", now, paris) == now + timedelta(days=2)
    assert parse_closes("2026-12-01 18:00", now, paris) == datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    assert parse_closes("2026-07-01 18:00", now, paris) == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)  # summer time
    assert parse_closes("2026-12-01", now, paris) == datetime(2026, 12, 1, 22, 59, tzinfo=UTC)
    assert parse_closes("08:30", now, paris) == datetime(2026, 11, 3, 7, 30, tzinfo=UTC)  # already past today
    for wrong in ("soon", "2026-13-01 10:00", "3 parsecs", "25:00"):
        with pytest.raises(UsageError, match=r"polls\.bad_closes"):
            parse_closes(wrong, now, paris)


async def test_a_removal_that_could_never_apply_is_refused_when_proposed(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    cora = coop.member("Cora", "coordinator")
    coop.member("Bob")
    refusals = {
        "/propose Remove nobody --sets remove_member=#99999999999999999999":
            "No active member matches #99999999999999999999. Type /members to see the list.",
        "/propose Remove Alice --sets remove_member=#1":
            "That member is the co-op's last admin and cannot be removed: make someone else admin first with "
            "/role MEMBER admin.",
        "/propose Remove Dana --sets remove_member=Dana":
            "No active member matches Dana. Type /members to see the list.",
    }  # fmt: skip
    for text, expected in refusals.items():
        assert await coop.say(cora, text) == expected
    assert "P-1" in await coop.say(cora, "/propose Remove Bob --sets remove_member=#3")
    assert "Only a coordinator or an admin can propose" in await coop.say("bob", "/propose x --sets remove_member=#1")
    with coop.session() as session:
        assert len(session.scalars(select(Poll)).all()) == 1
    assert "P-2" in await coop.say(alice, "/propose Bob again? --sets remove_member=bob")


async def test_a_question_or_option_that_shows_nothing_is_refused(coop: Coop) -> None:
    alice = coop.member("Alice")
    invisible = "\u200b\u200d\u2060\ufeff\u200e\u202e\u3164"
    assert await coop.say(alice, f"/propose {invisible} --closes 3d") == (
        "The question shows nothing: it is only spaces or invisible characters. Write it in words, like "
        "/propose Raise the legal reserve to 20%? --closes 3d"
    )
    assert await coop.say(alice, f'/propose Lunch? --options "Pizza|{invisible}|Pasta"') == (
        'Option 2 shows nothing: it is empty or only invisible characters. Write each option in words, '
        'separated by |, like --options "June 14|June 21".'
    )
    assert "Two options are the same" in await coop.say(alice, '/propose Lunch? --options "Pizza|Piz\u200bza"')
    with coop.session() as session:
        assert session.scalars(select(Poll)).all() == []
    assert "P-1" in await coop.say(alice, '/propose Family day? 👨\u200d👩\u200d👧 --options "Yes 👍|No"')
    with coop.session() as session:
        assert session.get_one(Poll, 1).title == "Family day? 👨\u200d👩\u200d👧"
