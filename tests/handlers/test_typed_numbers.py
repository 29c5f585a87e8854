"""Any number a member types is read one way and checked before it reaches the database.

An attacker found 29 commands that answered "Something went wrong" to a 20-digit number (an
OverflowError in the database driver), and one that echoed a long number cut short. Here every
command gets such numbers in every position, next to real jobs, polls, entries and announcements.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coopbot.i18n import catalogue
from tests.conftest import Coop

HUGE = "99999999999999999999"
#: Numbers no id can be: past SQLite's 64 bits, past PostgreSQL's 32, past the 4,300 digits Python
#: agrees to read, or not written in ASCII digits.
HOSTILE = [
    f"#{HUGE}",
    "#9223372036854775808",
    "#2147483648",
    f"J-{HUGE}",
    f"P-{HUGE}",
    f"C-{HUGE}",
    f"A-{HUGE}",
    HUGE,
    "١٢٣",
    "１２３",
    "²",
    "J-١",
    "9" * 5000,
]
INTERNAL_ERROR = {catalogue(lang)["registry.internal_error"] for lang in ("en", "fr")}
#: Commands whose first word is a reference, and a real one to put there.
SKIPPED = {"leave", "mydata"}


@pytest.fixture
async def busy_coop(coop: Coop) -> Iterator[Coop]:
    """A co-op with a job, a poll, an entry and an announcement numbered 1."""
    alice = coop.member("Alice", "admin", handle="alice")
    coop.member("Bob", handle="bob")
    for setup in ("/newjob Boulangerie -> 3 rue Paul Bert", "/propose Paint the van green?",
                  "/log delivery 2 lunch", "/announce Hello"):
        await coop.say(alice, setup)
    yield coop


def two_word_forms(name: str, number: str) -> list[str]:
    return [f"/{name} {number}", f"/{name} {number} {number}", f"/{name} #1 {number}", f"/{name} J-1 {number}",
            f"/{name} P-1 {number}", f"/{name} {number} admin", f"/{name} to {number}", f"/{name} status {number}"]


@pytest.mark.parametrize("number", HOSTILE)
async def test_no_typed_number_crashes_any_command(busy_coop: Coop, number: str) -> None:
    crashed = []
    for name in sorted(set(busy_coop.bot.commands.names()) - SKIPPED):
        for typed in two_word_forms(name, number):
            replies = await busy_coop.replies("alice", typed)
            if {r.text for r in replies} & INTERNAL_ERROR:
                crashed.append(typed)
    assert crashed == []


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (f"/why J-{HUGE}", f"There is no job J-{HUGE}."),
        (f"/audit #{HUGE}", f"No active member matches #{HUGE}."),
        ("/role #9223372036854775808 admin", "No active member matches #9223372036854775808."),
        (f"/announcements A-{HUGE}", f"There is no announcement A-{HUGE} for you."),
        (f"/results P-{HUGE}", f"There is no poll P-{HUGE}."),
        (f"/approve C-{HUGE}", f"There is no entry C-{HUGE}."),
    ],
)
async def test_a_number_too_big_to_exist_is_named_whole(busy_coop: Coop, typed: str, expected: str) -> None:
    reply = await busy_coop.say("alice", typed)
    assert reply.startswith(expected), reply


@pytest.mark.parametrize("typed", ["J--1", "J-0001", "J-١٢", "J-１２", "J-²"])
async def test_codes_are_written_one_way(busy_coop: Coop, typed: str) -> None:
    reply = await busy_coop.say("alice", f"/why {typed}")
    assert reply == f"{typed} is not a job reference: write it like J-12."


@pytest.mark.parametrize("typed", ["A--1", "A-0001", "A-١"])
async def test_announcement_codes_are_written_one_way(busy_coop: Coop, typed: str) -> None:
    reply = await busy_coop.say("alice", f"/announce status {typed}")
    assert reply == f"{typed} is not an announcement number. Type it like A-4."

