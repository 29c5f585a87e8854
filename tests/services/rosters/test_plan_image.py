"""The week's plan as a picture: a PNG a phone shows whole, and words naming the slots short of riders.

Alice publishes three lunches and a Saturday night for the week of Monday 9 November 2026; the
Monday lunch fills, the others do not.
"""

from __future__ import annotations

import io
from datetime import date

import pytest
from PIL import Image

from coopbot.services.rosters import slots
from coopbot.services.rosters.plan_image import WeekImage, week_image
from tests.conftest import Coop

MONDAY = date(2026, 11, 9)


@pytest.fixture
async def week(coop: Coop) -> Coop:
    coop.member("Alice", "coordinator")
    for name in ("Bob", "Chloé"):
        coop.member(name)
    await coop.say("alice", "/slots add mon-wed 11:30-14:30 x2 from 2026-11-09")
    await coop.say("alice", "/slots add sat 19:00-01:00 x3 zone B from 2026-11-14")
    for who, slot in (("bob", "S-1"), ("chloé", "S-1"), ("bob", "S-2")):
        assert (await coop.say(who, f"/signup {slot}")).startswith("You ride")
    return coop


def drawn(coop: Coop, lang: str) -> WeekImage:
    with coop.session() as session:
        seats = slots.week(session, coop.bot.config, None, MONDAY)
        return week_image(seats, MONDAY, lang, coop.bot.config.coop.tz)


async def test_the_week_is_a_png_a_phone_shows_whole(week: Coop) -> None:
    image = drawn(week, "en")
    assert image.png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(image.png)) as picture:
        width, height = picture.size
        assert 800 <= width <= 1600 and 500 <= height <= 1200
        assert width > height  # seven days across
        colours = {colour for _, colour in picture.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    assert (0x2A, 0x9D, 0x8F) in colours  # the full slot
    assert (0xE7, 0x6F, 0x51) in colours  # a slot nobody took yet
    assert 10_000 < len(image.png) < 1_000_000


async def test_the_words_name_each_short_slot_and_no_full_one(week: Coop) -> None:
    alt = drawn(week, "en").alt
    assert alt.startswith("Slots of the week of Monday 9 November as a grid, days across. 3 slots are short of riders:")
    assert "S-2 Tue 10 Nov 11:30–14:30 (1/2)" in alt
    assert "S-3 Wed 11 Nov 11:30–14:30 (0/2)" in alt
    assert "S-4 Sat 14 Nov 19:00–01:00 (0/3)" in alt
    assert "S-1" not in alt


async def test_a_full_week_says_so_in_french(week: Coop) -> None:
    for who, slot in (("chloé", "S-2"), ("bob", "S-3"), ("chloé", "S-3"), ("alice", "S-4"), ("bob", "S-4"),
                      ("chloé", "S-4")):  # fmt: skip
        await week.say(who, f"/signup {slot}")
    assert drawn(week, "fr").alt == (
        "Les créneaux de la semaine du lundi 9 novembre en grille, jours en colonnes\u00a0: "
        "chaque créneau a ses coursier·es."
    )
