"""Joining, linking and roles, as the co-op's members live them."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from coopbot.chat import Incoming
from coopbot.models import SeenEvent
from tests.conftest import Coop

CODE = re.compile(r"\b[A-Z0-9]{4}-[A-Z0-9]{4}\b")


def code_of(text: str) -> str:
    found = CODE.search(text)
    assert found, f"no code in {text!r}"
    return found.group(0)


async def test_founder_invites_and_newcomer_joins(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    code = code_of(await coop.say(alice, "/invite"))
    assert "Welcome" in await coop.say("zoe", f"/join {code}")
    whoami = await coop.say("zoe", "/whoami")
    assert "zoe" in whoami and "member" in whoami


async def test_a_used_invite_is_refused(any_coop: Coop) -> None:
    alice = any_coop.member("Alice", "admin")
    code = code_of(await any_coop.say(alice, "/invite"))
    await any_coop.say("zoe", f"/join {code}")
    assert "not valid" in await any_coop.say("yann", f"/join {code}")


async def test_an_expired_invite_is_refused(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    code = code_of(await coop.say(alice, "/invite"))
    coop.clock.advance(timedelta(days=8))
    assert "expired" in await coop.say("zoe", f"/join {code}")
    assert "/join CODE" in await coop.say("zoe", "/whoami")


async def test_codes_are_forgiving_about_case_and_dashes(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    code = code_of(await coop.say(alice, "/invite"))
    assert "Welcome" in await coop.say("zoe", f"/join {code.lower().replace('-', '')}")


async def test_a_coordinator_cannot_grant_admin(coop: Coop) -> None:
    bruno = coop.member("Bruno", "coordinator")
    assert "only an admin can" in await coop.say(bruno, "/invite admin")
    assert "coordinator" in await coop.say(bruno, "/invite coordinator")


async def test_a_member_cannot_invite(coop: Coop) -> None:
    chloe = coop.member("Chloe")
    assert "Only coordinators and admins can use /invite" in await coop.say(chloe, "/invite")


async def test_only_an_admin_changes_roles_and_never_removes_the_last_admin(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    bruno = coop.member("Bruno", "coordinator")
    coop.member("Chloe")
    assert "Only admins" in await coop.say(bruno, "/role Chloe coordinator")
    assert "Chloe is now coordinator" in await coop.say(alice, "/role chloe coordinator")
    assert "without an admin" in await coop.say(alice, "/role Alice member")
    assert "no role" in await coop.say(alice, "/role Chloe boss")
    assert "No active member" in await coop.say(alice, "/role Zed member")


async def test_linking_two_platforms_makes_one_member(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    reply = await coop.replies(alice, "/link")
    assert reply[0].private
    code = code_of(reply[0].text)
    from_matrix = Incoming(
        platform="matrix", user_id="@alice:coop.example", chat_id="!dm:coop.example",
        is_private=True, text=f"!link {code}", display_name="Alice M", event_id="mx:1",
    )
    answer = await coop.bot.handle(from_matrix)
    assert "one membership (Matrix, console)" in answer[0].text
    whoami = await coop.bot.handle(
        Incoming(platform="matrix", user_id="@alice:coop.example", chat_id="!dm:coop.example",
                 is_private=True, text="!whoami", event_id="mx:2")
    )
    assert "Matrix" in whoami[0].text and "console" in whoami[0].text
    assert "not valid" in (await coop.bot.handle(
        Incoming(platform="telegram", user_id="42", chat_id="42", is_private=True,
                 text=f"/link {code}", event_id="tg:1")
    ))[0].text


async def test_language_follows_the_member_then_the_app_then_the_coop(coop: Coop) -> None:
    assert "Bonjour" in await coop.say("stranger", "/start", language="fr-FR")
    alice = coop.member("Alice", "admin")
    assert "English" in await coop.say(alice, "/lang en")
    assert "Commands" in await coop.say(alice, "/help", language="fr")
    assert "français" in await coop.say(alice, "/langue fr")
    assert "Les commandes" in await coop.say(alice, "/help")


async def test_help_lists_only_what_the_role_may_use(coop: Coop) -> None:
    chloe = coop.member("Chloe")
    alice = coop.member("Alice", "admin")
    assert "/invite" not in await coop.say(chloe, "/help")
    assert "/role" in await coop.say(alice, "/help")
    assert "Type: /role MEMBER ROLE" in await coop.say(alice, "/help role")
    assert "no command /role you can use" in await coop.say(chloe, "/help role")


async def test_an_invite_asked_in_a_group_is_answered_privately(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    await coop.say(alice, "/invite", private=False)
    assert "private chat" in coop.room()[-1].text
    assert CODE.search(coop.inbox(alice)[-1].text)
    assert not any(CODE.search(m.text) for m in coop.room())


async def test_the_same_update_is_handled_once(any_coop: Coop) -> None:
    alice = any_coop.member("Alice", "admin")
    incoming = Incoming(platform="console", user_id=alice, chat_id=alice, is_private=True,
                        text="/invite", event_id="console:fixed")
    assert await any_coop.bot.handle(incoming)
    assert await any_coop.bot.handle(incoming) == []
    with any_coop.session() as session:  # the receipt, written as plain SQL, reads back as any time does
        assert session.scalars(select(SeenEvent.at)).one() == any_coop.clock.now()
