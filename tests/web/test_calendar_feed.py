"""Calendar feeds through the real web server, fetched over HTTP as a calendar app fetches them:
the address `/calendar` gives answers a calendar, a replaced one answers 404, and a member's
feed names nobody else.

Alice coordinates; Bob and Chloé ride the lunches of the week after next.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from icalendar import Calendar

from coopbot.app import CoopBot
from coopbot.clock import FakeClock
from coopbot.web.calendar import add_calendar_routes
from coopbot.web.server import SECURITY_HEADERS, WebServer
from tests.conftest import Coop, make_config

PUBLIC = "https://bot.example.coop"
ADDRESS = re.compile(re.escape(PUBLIC) + r"(/calendar/[A-Za-z0-9_-]+\.ics)")


@dataclass
class Door:
    coop: Coop
    server: WebServer
    http: aiohttp.ClientSession

    async def addresses(self, who: str, typed: str = "/calendar") -> list[str]:
        """The paths `/calendar` gives `who`, their own first."""
        return ADDRESS.findall(await self.coop.say(who, typed))

    async def get(self, path: str) -> tuple[int, dict[str, str], str]:
        async with self.http.get(f"http://127.0.0.1:{self.server.port}{path}") as response:
            return response.status, dict(response.headers), await response.text()


@pytest.fixture
async def door(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Door]:
    config = make_config(f"sqlite:///{tmp_path / 'coop.sqlite3'}", web={"enabled": True, "public_url": PUBLIC})
    bot = CoopBot(config, clock=clock)
    coop = Coop(bot, clock)
    coop.member("Alice", "coordinator")
    coop.member("Bob")
    coop.member("Chloé")
    assert (await coop.say("alice", "/slots add mon-wed 11:30-14:30 x2 from 2026-11-09")).startswith("Published 3")
    await coop.say("bob", "/signup S-1")
    await coop.say("chloé", "/signup S-2")
    server = WebServer(bot, [add_calendar_routes], listen="127.0.0.1", port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Door(coop, server, http)
    finally:
        await server.stop()
        bot.dispose()


async def test_the_address_given_in_the_chat_answers_a_calendar(door: Door) -> None:
    [mine] = await door.addresses("bob")
    status, headers, body = await door.get(mine)
    assert status == 200, body
    assert headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert headers["Cache-Control"].startswith("private")
    assert headers["X-Frame-Options"] == SECURITY_HEADERS["X-Frame-Options"]
    [event] = Calendar.from_ical(body).events
    assert str(event["SUMMARY"]) == "Coop Vélo: slot S-1"
    assert f"{event.start:%Y-%m-%d %H:%M %Z}" == "2026-11-09 11:30 CET"


async def test_a_reset_address_answers_404_and_the_new_one_works(door: Door) -> None:
    [old] = await door.addresses("bob")
    [new] = await door.addresses("bob", "/calendar reset")
    assert new != old
    assert (await door.get(old))[0] == 404
    assert (await door.get(new))[0] == 200
    assert await door.addresses("bob") == [new]


async def test_unknown_and_malformed_addresses_answer_404(door: Door) -> None:
    status, _, body = await door.get("/calendar/" + "A" * 32 + ".ics")
    assert (status, body.strip()) == (404, (
        "There is no calendar at this address: it was replaced, or it never was. Type /calendar in the chat "
        "for yours."))  # fmt: skip
    for path in ("/calendar/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.ics", "/calendar/x.ics", "/calendar/..%2F.ics"):
        status, _, body = await door.get(path)
        assert status == 404, path
        assert "BEGIN:VCALENDAR" not in body


async def test_a_members_feed_shows_no_other_members_identifiers(door: Door) -> None:
    [bobs] = await door.addresses("bob")
    _, _, body = await door.get(bobs)
    assert "S-1" in body and "S-2" not in body  # Chloé's slot is not in Bob's calendar
    for other in ("Chloé", "chloé", "Alice", "alice"):
        assert other not in body
    [chloes] = await door.addresses("chloé")
    assert chloes.removesuffix(".ics").rsplit("/", 1)[1] not in body


async def test_a_coordinator_gets_the_whole_roster_too(door: Door) -> None:
    mine, everything = await door.addresses("alice")
    _, _, own = await door.get(mine)
    assert Calendar.from_ical(own).events == []
    _, _, roster = await door.get(everything)
    events = sorted(Calendar.from_ical(roster).events, key=lambda event: event.start)
    assert [str(event["DESCRIPTION"]) for event in events] == [
        "1/2 taken, 1 free.",
        "1/2 taken, 1 free.",
        "0/2 taken, 2 free.",
    ]
    assert "Bob" not in roster and "Chloé" not in roster
