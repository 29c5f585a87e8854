"""`/calendar`: a member's own address, privately; the whole roster's too for a coordinator; a new
address with `/calendar reset`; and one sentence when the web door is off.

Alice coordinates, Bob rides.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coopbot.app import CoopBot
from coopbot.clock import FakeClock
from tests.conftest import Coop, make_config

PUBLIC = "https://bot.example.coop"
ADDRESS = re.compile(re.escape(PUBLIC) + r"/calendar/[A-Za-z0-9_-]{32}\.ics")


@pytest.fixture
async def web_coop(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Coop]:
    config = make_config(f"sqlite:///{tmp_path / 'coop.sqlite3'}", web={"enabled": True, "public_url": PUBLIC})
    bot = CoopBot(config, clock=clock)
    coop = Coop(bot, clock)
    coop.member("Alice", "coordinator")
    coop.member("Bob")
    yield coop
    bot.dispose()


async def test_a_member_gets_one_address_to_subscribe_to(web_coop: Coop) -> None:
    answer = await web_coop.say("bob", "/calendar")
    assert answer.startswith("📅 Your slots as a calendar. In your calendar app, add a calendar by URL")
    assert len(ADDRESS.findall(answer)) == 1
    assert "whole roster" not in answer
    assert "keep it to yourself" in answer and "/calendar reset" in answer
    assert ADDRESS.findall(await web_coop.say("bob", "/calendar")) == ADDRESS.findall(answer)


async def test_a_coordinator_also_gets_the_whole_roster(web_coop: Coop) -> None:
    answer = await web_coop.say("alice", "/calendar")
    mine, everything = ADDRESS.findall(answer)
    assert mine != everything
    assert f"📅 The whole roster, each slot with its seats taken and free:\n{everything}" in answer


async def test_asked_in_the_group_the_address_goes_to_the_private_chat(web_coop: Coop) -> None:
    replies = await web_coop.replies("bob", "/calendar", private=False)
    [sent] = [reply for reply in replies if reply.private]
    assert ADDRESS.search(sent.text)
    assert [message.text for message in web_coop.room()] == ["I have sent you the answer in a private chat."]


async def test_reset_gives_new_addresses(web_coop: Coop) -> None:
    before = ADDRESS.findall(await web_coop.say("alice", "/calendar"))
    answer = await web_coop.say("alice", "/calendar reset")
    assert answer.startswith("🔁 New address below; the old one no longer works.")
    after = ADDRESS.findall(answer)
    assert len(after) == 2 and not set(after) & set(before)
    assert ADDRESS.findall(await web_coop.say("alice", "/calendar")) == after


async def test_french_alias_and_words(web_coop: Coop) -> None:
    answer = await web_coop.say("bob", "/calendrier nouveau", language="fr")
    assert answer.startswith("🔁 Nouvelle adresse ci-dessous\u202f; l’ancienne ne marche plus.")
    assert "📅 Vos créneaux en agenda." in answer and ADDRESS.search(answer)


async def test_anything_else_after_calendar_shows_how_to_type_it(web_coop: Coop) -> None:
    assert await web_coop.say("bob", "/calendar please") == (
        "That is not how /calendar works. Type: /calendar, or /calendar reset for a new address that stops the old one"
    )


async def test_without_the_web_door_it_says_what_the_installer_must_switch_on(coop: Coop) -> None:
    coop.member("Bob")
    assert await coop.say("bob", "/calendar") == (
        "Calendar feeds need the bot's web door: ask whoever installed the bot to set enabled = true and "
        "public_url in the [web] section of its config.toml."
    )
