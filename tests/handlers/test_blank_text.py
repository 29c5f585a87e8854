"""Text that shows nothing on screen is never taken for an address, a note, a description or a reason.

Zero-width spaces, joiners, bidi marks and Hangul fillers are not spaces to `str.strip()`, so an
attacker could post a job to nowhere or fail a job "because ⁠". Each is refused like empty text.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from coopbot.models import Contribution, Job, LedgerEntry
from tests.conftest import Coop

INVISIBLE = ["\u200b", "\u200d\u2060", "\ufeff", "\u3164", "\u202e\u202c", "\u2800"]


@pytest.fixture
def alice(coop: Coop) -> str:
    return coop.member("Alice", "coordinator", handle="alice")


@pytest.fixture
def bob(coop: Coop) -> str:
    return coop.member("Bob", handle="bob")


@pytest.mark.parametrize("blank", INVISIBLE)
async def test_a_job_needs_addresses_that_show(coop: Coop, alice: str, blank: str) -> None:
    for typed in (f"/newjob {blank} -> 3 rue Paul Bert", f"/newjob Boulangerie -> {blank}"):
        assert "PICKUP -> DROPOFF" in await coop.say(alice, typed)
    with coop.session() as session:
        assert session.scalars(select(Job)).all() == []


async def test_an_invisible_note_is_no_note(coop: Coop, alice: str) -> None:
    await coop.say(alice, "/newjob Boulangerie -> 3 rue Paul Bert note \u200b\u2060")
    with coop.session() as session:
        assert session.scalars(select(Job.note)).one() == ""


@pytest.mark.parametrize("blank", INVISIBLE)
async def test_failing_a_job_needs_a_reason_that_shows(coop: Coop, alice: str, bob: str, blank: str) -> None:
    await coop.say(bob, "/available")
    await coop.say(alice, "/newjob Boulangerie -> 3 rue Paul Bert")
    await coop.say(bob, "/accept J-1")
    assert "Say why J-1 cannot be done" in await coop.say(bob, f"/fail J-1 {blank}")
    with coop.session() as session:
        assert session.scalars(select(Job.status)).one() == "assigned"


@pytest.mark.parametrize("blank", INVISIBLE)
async def test_rejecting_an_entry_needs_a_reason_that_shows(coop: Coop, alice: str, bob: str, blank: str) -> None:
    await coop.say(bob, "/log 2h admin accounts")
    assert "Say why" in await coop.say(alice, f"/reject C-1 {blank}")
    with coop.session() as session:
        assert session.scalars(select(Contribution.status)).one() == "pending"


@pytest.mark.parametrize("blank", INVISIBLE)
async def test_money_needs_a_note_that_shows(coop: Coop, alice: str, blank: str) -> None:
    assert "Say what the income is for" in await coop.say(alice, f"/income 120 {blank}")
    with coop.session() as session:
        assert session.scalars(select(LedgerEntry)).all() == []


async def test_an_invisible_log_description_is_no_description(coop: Coop, bob: str) -> None:
    await coop.say(bob, "/log 2h admin \u200b\u3164")
    with coop.session() as session:
        assert session.scalars(select(Contribution.note)).one() == ""
