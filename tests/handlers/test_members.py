"""Joining, linking and roles, as the co-op's members live them."""

from __future__ import annotations

from sqlalchemy import func, select

from coopbot.models import Identity, Member
from tests.conftest import Coop


async def test_founder_invites_and_newcomer_joins(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    reply = await coop.say(alice, "/invite")
    code = reply.split("code for a new member: ")[1].split()[0]
    assert "Welcome" in await coop.say("zoe", f"/join {code}")
    assert "Zoe" not in reply
    assert "member" in await coop.say("zoe", "/whoami")


async def test_used_invite_is_refused(any_coop: Coop) -> None:
    alice = any_coop.member("Alice", "admin")
    code = (await any_coop.say(alice, "/invite")).split(": ")[1].split()[0]
    await any_coop.say("zoe", f"/join {code}")
    assert "not valid" in await any_coop.say("yann", f"/join {code}")
