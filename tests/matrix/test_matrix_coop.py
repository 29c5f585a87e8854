"""The co-op's work over Matrix: offers taken with a reaction, announcements
reaching everyone, one member across Telegram and Matrix in one running bot.

Everything here goes through the real bot (router, outbox, handlers) and the
real homeserver; the members are plain Matrix clients.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from coopbot.db import transaction
from coopbot.models import Job
from tests.matrix.members import MatrixCoop, NioMember

MakeMember = Callable[[str], Awaitable[NioMember]]
HANDLERS = Path(__file__).parents[2] / "handlers"
needs_dispatch = pytest.mark.skipif(
    not (HANDLERS / "dispatch.py").exists(), reason="needs handlers/dispatch.py"
)
needs_announce = pytest.mark.skipif(
    not (HANDLERS / "announce.py").exists(), reason="needs handlers/announce.py"
)


async def direct_chat(member: NioMember, coop: MatrixCoop) -> str:
    room = await member.create_room([coop.user_id], direct=True, encrypted=True)
    await member.wait_joined(room, coop.user_id)
    return room


async def ask(member: NioMember, room: str, coop: MatrixCoop, text: str) -> str:
    mark = member.mark()
    await member.say(room, text)
    return (await member.next_message(after=mark, sender=coop.user_id, room_id=room)).body


@needs_dispatch
async def test_a_courier_takes_an_offer_by_reacting_to_it(matrix_coop: MatrixCoop, make_member: MakeMember) -> None:
    bot = await matrix_coop.start()
    carla = await make_member("Carla")
    dana = await make_member("Dana")
    matrix_coop.add_member("Carla", "coordinator", carla.user_id)
    dana_id = matrix_coop.add_member("Dana", "member", dana.user_id)
    carla_dm = await direct_chat(carla, matrix_coop)
    dana_dm = await direct_chat(dana, matrix_coop)
    await ask(dana, dana_dm, matrix_coop, "!available")

    mark = dana.mark()
    await ask(carla, carla_dm, matrix_coop, "!newjob Boulangerie Martin, 3 rue Paul Bert -> 12 rue Oberkampf")
    offer = await dana.next_message(after=mark, sender=matrix_coop.user_id, contains="J-")
    assert offer.encrypted and "!accept J-" in offer.body
    await dana.wait_for(
        lambda: {r.key for r in dana.reactions if r.reacts_to == offer.event_id} >= {"✅", "❌"}, "✅ and ❌"
    )

    mark = dana.mark()
    await dana.react(offer.room_id, offer.event_id, "✅")
    taken = await dana.next_message(after=mark, sender=matrix_coop.user_id, room_id=offer.room_id)
    assert taken.relates_to == {"m.in_reply_to": {"event_id": offer.event_id}}
    with transaction(bot.sessions) as session:
        job = session.scalars(select(Job)).one()
        assert (job.status, job.assignee_id) == ("assigned", dana_id)


@needs_announce
async def test_a_coordinators_announcement_reaches_every_member_in_their_direct_chat(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    await matrix_coop.start()
    carla = await make_member("Carla")
    dana = await make_member("Dana")
    eve = await make_member("Eve")
    matrix_coop.add_member("Carla", "coordinator", carla.user_id)
    matrix_coop.add_member("Dana", "member", dana.user_id)
    matrix_coop.add_member("Eve", "member", eve.user_id)
    carla_dm = await direct_chat(carla, matrix_coop)

    await ask(carla, carla_dm, matrix_coop, "!announce General meeting on Friday at 18:00, bring your ideas.")

    for member in (dana, eve):
        got = await member.next_message(after=0, sender=matrix_coop.user_id, contains="General meeting")
        assert got.encrypted
        room = member.client.rooms[got.room_id]
        assert set(room.users) == {member.user_id, matrix_coop.user_id}


async def test_a_member_on_telegram_and_matrix_is_one_member_with_both_accounts(
    matrix_coop: MatrixCoop, make_member: MakeMember, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.telegram.fake_bot_api import FakeBotApi

    telegram = FakeBotApi()
    await telegram.start()
    try:
        monkeypatch.setenv("COOPBOT_TEST_TELEGRAM_TOKEN", telegram.token)
        matrix_coop.extra = {
            "telegram": {
                "enabled": True,
                "token_env": "COOPBOT_TEST_TELEGRAM_TOKEN",
                "api_base_url": telegram.base_url,
            }
        }
        bot = await matrix_coop.start()
        assert set(bot.transports) == {"telegram", "matrix"}
        dana_tg = telegram.user(4242, "Dana", started=True)
        dana_mx = await make_member("Dana")
        code = matrix_coop.invite_code("member")

        async def on_telegram(text: str, contains: str = "") -> str:
            before = len(telegram.sent_to(dana_tg.id))
            telegram.say(dana_tg, text)
            return str((await telegram.wait_message(dana_tg.id, contains, after=before, timeout=30))["text"])

        await on_telegram(f"/join {code}", "Dana")
        link = re.search(r"/link ([A-Z0-9-]+)", await on_telegram("/link", "/link"))
        assert link is not None
        dm = await direct_chat(dana_mx, matrix_coop)
        assert "Dana" in await ask(dana_mx, dm, matrix_coop, f"!link {link.group(1)}")

        from_matrix = await ask(dana_mx, dm, matrix_coop, "!whoami")
        from_telegram = await on_telegram("/whoami", "Dana")
        for shown in (from_matrix, from_telegram):
            assert "Telegram: Dana" in shown and "Matrix: Dana" in shown
        assert from_matrix == from_telegram
    finally:
        await matrix_coop.stop()
        await telegram.stop()
