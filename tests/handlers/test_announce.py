"""Announcements as the co-op lives them: a coordinator speaks to everyone,
each member hears it once, the coordinator learns who was not reached."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from coopbot.app import CoopBot
from coopbot.chat import Outgoing
from coopbot.services.members import accounts as members_svc
from handlers.announce import read_options
from tests.conftest import Coop
from tests.telegram.conftest import GROUP_ID, TOKEN_ENV, telegram_config
from tests.telegram.fake_bot_api import FakeBotApi

AG = "Assemblée générale jeudi 19h au local"


HEADER = re.compile(r"^(📣 Announcement|🚨 URGENT announcement|📣 Annonce|🚨 Annonce URGENTE) A-\d+,? (from|par) ")


def announcements_in(messages: list[Outgoing]) -> list[str]:
    """The announcements a member received (not the bot's answers about them)."""
    return [m.text for m in messages if HEADER.match(m.text)]


async def test_a_coordinator_reaches_every_member_and_the_room_and_gets_a_receipt(coop: Coop) -> None:
    alice = coop.member("Alice", "coordinator")
    bob, chloe = coop.member("Bob"), coop.member("Chloé")
    reply = await coop.say(alice, f"/announce {AG}")
    assert reply.startswith("📣 Announcement A-1 queued for 3 members.")
    assert "posted in 1 room of the co-op" in reply
    for who in (alice, bob, chloe):
        assert announcements_in(coop.inbox(who)) == [f"📣 Announcement A-1 from Alice\n\n{AG}"]
    assert [m.text for m in coop.room()] == [f"📣 Announcement A-1 from Alice\n\n{AG}"]

    await coop.tick(seconds=5)
    await coop.tick(seconds=5)
    assert [m.text for m in coop.inbox(alice) if m.text.startswith("✅")] == [
        "✅ Announcement A-1 delivered to all 3 members."
    ]


async def test_a_member_who_tries_is_told_who_can(coop: Coop) -> None:
    bob = coop.member("Bob")
    reply = await coop.say(bob, "/announce Free pizza")
    assert reply == "Only coordinators and admins can use /announce. Type /help to see what you can do."
    assert announcements_in(coop.inbox(bob)) == []


async def test_to_coordinators_reaches_coordinators_and_admins_only(coop: Coop) -> None:
    alice, cora, bob = coop.member("Alice", "admin"), coop.member("Cora", "coordinator"), coop.member("Bob")
    reply = await coop.say(cora, "/announce to coordinators Budget meeting Friday 10h")
    assert "queued for 2 members" in reply
    assert announcements_in(coop.inbox(alice)) == ["📣 Announcement A-1 from Cora\n\nBudget meeting Friday 10h"]
    assert announcements_in(coop.inbox(bob)) == []
    assert [m.text for m in coop.room("coordinators")] == announcements_in(coop.inbox(alice))
    assert coop.room() == []

    await coop.say(alice, "/announce to members Helmets are mandatory from Monday")
    assert announcements_in(coop.inbox(bob))[-1].endswith("Helmets are mandatory from Monday")
    assert len(announcements_in(coop.inbox(cora))) == 1


async def test_french_and_options_in_any_order(coop: Coop) -> None:
    claire = coop.member("Claire", "coordinator")
    bob = coop.member("Bob")
    await coop.say(bob, "/lang fr")
    reply = await coop.say(claire, "/annonce urgent à tous : Route barrée, passez par le quai.")
    assert "queued for 2 members" in reply
    assert announcements_in(coop.inbox(bob)) == [
        "🚨 Annonce URGENTE A-1, par Claire\n\nRoute barrée, passez par le quai."
    ]
    await coop.say(claire, "/annonce aux coordinateurs urgent Réunion")
    assert len(announcements_in(coop.inbox(bob))) == 1


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("urgent to coordinators Budget", ("Budget", "coordinator", True)),
        ("to all members: AG jeudi", ("AG jeudi", "member", False)),
        ("aux coordinateurs urgent Réunion", ("Réunion", "coordinator", True)),
        ("à tous : Route barrée", ("Route barrée", None, False)),
        ("à tout le monde Réunion", ("Réunion", None, False)),
        ("Urgent: the van is broken", ("the van is broken", None, True)),
        ("to admins\nLine 1\n\nLine 2", ("Line 1\n\nLine 2", "admin", False)),
    ],
)
def test_options_are_read_in_any_order(typed: str, expected: tuple[str, str | None, bool]) -> None:
    assert read_options(typed) == expected


@pytest.mark.parametrize(
    ("typed", "refusal"),
    [
        ("/announce status A-1 please", "/announce status takes one announcement number"),
        ("/announce status", "/announce status takes one announcement number"),
        ("/announce to coordinatrs Budget meeting", "There is no group called coordinatrs."),
        ("/announce to be or not to be", "There is no group called be."),
        ("/announce urgent to all the riders: helmets", "There is no group called riders."),
        ("/announce to", "Say who it is for"),
        ("/announce to all the", "Say who it is for"),
        ("/announce \u200b\u200d", "An announcement needs a text"),
        ("/announce to coordinators \u2060\ufeff", "An announcement needs a text"),
    ],
)
async def test_an_announcement_that_cannot_be_read_exactly_goes_to_nobody(
    coop: Coop, typed: str, refusal: str
) -> None:
    alice, bob = coop.member("Alice", "coordinator"), coop.member("Bob")
    await coop.say(alice, "/announce Depot open")
    reply = await coop.say(alice, typed)
    assert reply.startswith(refusal), reply
    await coop.tick(seconds=5)
    assert announcements_in(coop.inbox(bob)) == ["📣 Announcement A-1 from Alice\n\nDepot open"]


async def test_a_text_starting_with_an_option_word_is_sent_by_naming_the_group(coop: Coop) -> None:
    alice, bob = coop.member("Alice", "coordinator"), coop.member("Bob")
    await coop.say(alice, "/announce to everyone status of the vans: all repaired")
    await coop.tick(seconds=5)
    assert announcements_in(coop.inbox(bob)) == ["📣 Announcement A-1 from Alice\n\nstatus of the vans: all repaired"]


async def test_mute_holds_back_ordinary_announcements_but_not_urgent_ones(coop: Coop) -> None:
    alice, bob = coop.member("Alice", "coordinator"), coop.member("Bob")
    assert "You receive announcements" in await coop.say(bob, "/mute")
    assert "Urgent ones will still reach you" in await coop.say(bob, "/mute on")
    reply = await coop.say(alice, "/announce Barbecue on Sunday")
    assert "queued for 1 member." in reply and "1 member muted announcements" in reply
    await coop.say(alice, "/announce urgent The depot is closed today")
    assert announcements_in(coop.inbox(bob)) == ["🚨 URGENT announcement A-2 from Alice\n\nThe depot is closed today"]
    assert await coop.say(bob, "/mute off") == "You will receive announcements again."
    assert await coop.say(bob, "/mute maybe") == (
        "Type /mute on to stop receiving announcements, or /mute off to receive them again."
    )


async def test_notify_chooses_the_platform_and_refuses_one_not_linked(coop: Coop) -> None:
    bob = coop.member("Bob")
    assert "every app you linked" in await coop.say(bob, "/notify")
    assert "You have no Telegram account linked" in await coop.say(bob, "/notify telegram")
    assert await coop.say(bob, "/notify pigeon") == "Type /notify matrix, /notify telegram or /notify both."
    with coop.session() as session:
        member = members_svc.member_of(session, "console", bob)
        assert member is not None
        members_svc.add_identity(session, member, "telegram", "555", coop.clock.now())
    assert "now go to Telegram" in await coop.say(bob, "/notify telegram")
    assert coop.get_member(bob).notify == "telegram"


async def test_status_and_the_list_show_delivery_counts(coop: Coop) -> None:
    alice, bob = coop.member("Alice", "coordinator"), coop.member("Bob")
    await coop.say(alice, f"/announce {AG}")
    await coop.say(alice, "/announce to coordinators Budget")
    await coop.tick(seconds=5)
    status = await coop.say(alice, "/announce status a-1")
    assert status.splitlines()[0] == "Announcement A-1 by Alice, 02/11 09:00, to everyone."
    assert "Delivered: 2 · on the way: 0 · unreachable: 0 · muted: 0" in status
    assert "Delivery finished" in status

    listing = await coop.say(alice, "/announcements")
    assert "A-2 · 02/11 09:00 · Alice · coordinators — 1/1 delivered" in listing
    assert "A-1 · 02/11 09:00 · Alice · everyone — 2/2 delivered" in listing

    mine = await coop.say(bob, "/announcements")
    assert "A-1" in mine and "A-2" not in mine and "delivered" not in mine
    assert (await coop.say(bob, "/announcements A-1")).endswith(AG)
    assert "There is no announcement A-2 for you." in await coop.say(bob, "/announcements A-2")
    assert "There is no announcement A-9" in await coop.say(alice, "/announce status A-9")


async def test_bad_announce_commands_say_what_to_type(coop: Coop) -> None:
    alice = coop.member("Alice", "coordinator")
    assert "Type: /announce TEXT" in await coop.say(alice, "/announce")
    assert "An announcement needs a text" in await coop.say(alice, "/announce urgent")
    assert "not an announcement number" in await coop.say(alice, "/announce status X-1")
    assert (
        await coop.say(alice, "/announcements nothing-here")
        == "nothing-here is not an announcement number. Type it like A-4."
    )


async def test_a_long_announcement_is_kept_whole_and_split_at_sentence_ends(coop: Coop) -> None:
    alice, bob = coop.member("Alice", "coordinator"), coop.member("Bob")
    text = "\n".join(f"Rule {n}: park bikes inside the depot, never on the pavement." for n in range(90))
    assert len(text) > 5000
    await coop.say(alice, f"/announce {text}")
    parts = announcements_in(coop.inbox(bob))
    assert [p.split("\n\n", 1)[0] for p in parts] == [
        "📣 Announcement A-1 from Alice (1/2)",
        "📣 Announcement A-1 from Alice (2/2)",
    ]
    assert "\n".join(p.split("\n\n", 1)[1] for p in parts) == text
    assert all(p.endswith("pavement.") for p in parts)


async def test_on_telegram_markup_arrives_as_typed_and_each_part_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coopbot.transports.telegram.transport import build_telegram_transport

    api = FakeBotApi()
    await api.start()
    monkeypatch.setenv(TOKEN_ENV, api.token)
    bot = CoopBot(telegram_config(api, tmp_path / "coop.sqlite3"))
    bot.add_transport(build_telegram_transport(bot.config, bot))
    try:
        await bot.start()
        api.group(GROUP_ID, "Coop Vélo")
        coordinator = api.user(7001, "Alice", started=True)
        member = api.user(7002, "Bob", started=True)
        with bot.sessions() as session, session.begin():
            for user, role in ((coordinator, "coordinator"), (member, "member")):
                created = members_svc.create_member(session, user.first_name, role, bot.clock.now())
                members_svc.add_identity(session, created, "telegram", str(user.id), bot.clock.now())
        typed = "<b>AG</b> & *vote* <i>jeudi</i>. " * 150
        api.say(coordinator, f"/announce {typed}")
        first = await api.wait_message(member.id, "A-1")
        await api.wait_message(member.id, "(2/2)")
        await api.wait_message(GROUP_ID, "(1/2)")
        received = [m for m in api.sent_to(member.id) if "A-1" in m["text"]]
        assert "(1/2)" in first["text"] and len(received) == 2
        assert all("entities" not in m for m in received), "nothing was interpreted as markup"
        assert all(len(m["text"].encode("utf-16-le")) // 2 <= 4096 for m in received)
        bodies = " ".join(m["text"].split("\n\n", 1)[1] for m in received)
        assert bodies == typed.strip()
        assert api.violations == []
    finally:
        await bot.stop()
        bot.dispose()
        await api.stop()
