"""One limit for everything the bot sends to Telegram: members who type during a broadcast at
the limit are answered at once, and no request draws a 429 it earned, even after one it did not."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coopbot.chat import Outgoing
from coopbot.models import Member
from coopbot.outbox import queue_to_member
from tests.telegram.conftest import TOKEN_ENV, TelegramCoop, started, telegram_config
from tests.telegram.fake_bot_api import FakeBotApi, FakeUser, FloodLimits

LIMIT = 20
MEMBERS = 60
TYPING = 8


@pytest.fixture
async def coop(fake_api: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TelegramCoop]:
    """A co-op whose Telegram allows LIMIT messages a second, counted exactly, and which says so."""
    monkeypatch.setenv(TOKEN_ENV, fake_api.token)
    fake_api.limits = FloodLimits(per_second=LIMIT)
    config = telegram_config(fake_api, tmp_path / "coop.sqlite3", per_second=LIMIT)
    async with started(fake_api, config) as running:
        yield running


def announce_to_everyone(coop: TelegramCoop, users: list[FakeUser]) -> set[str]:
    ids = [coop.member(user) for user in users]
    now = datetime.now(UTC)
    with coop.session() as session:
        for member_id in ids:
            member = session.get_one(Member, member_id)
            queue_to_member(session, member, f"a1:{member_id}", Outgoing(f"Assembly on Thursday ({member_id})"), now)
    coop.bot.outbox.poke()
    return {f"Assembly on Thursday ({member_id})" for member_id in ids}


async def type_during_the_broadcast(coop: TelegramCoop, users: list[FakeUser]) -> list[tuple[FakeUser, int]]:
    """Once the broadcast runs at full speed, several members type a command in the same instant."""
    api = coop.api
    await api.wait_for(lambda: len(api.delivered) >= LIMIT)
    typing = users[-TYPING:]
    asked = [(user, len(api.sent_to(user.id))) for user in typing]
    for user in typing:
        api.say(user, "/whoami")
    return asked


async def everyone_answered(coop: TelegramCoop, asked: list[tuple[FakeUser, int]]) -> None:
    for user, before in asked:
        await coop.api.wait_message(user.id, user.first_name, after=before, timeout=30)


async def test_members_typing_during_a_broadcast_at_the_limit_are_answered_without_a_429(coop: TelegramCoop) -> None:
    api = coop.api
    users = [api.user(3000 + n, f"Courier {n}", started=True) for n in range(MEMBERS)]
    expected = announce_to_everyone(coop, users)
    asked = await type_during_the_broadcast(coop, users)
    await everyone_answered(coop, asked)
    still_announcing = len([m for m in api.delivered if m["text"] in expected]) < MEMBERS
    await api.wait_for(lambda: len([m for m in api.delivered if m["text"] in expected]) >= MEMBERS, timeout=30)
    assert still_announcing, "the answers went before the rest of the broadcast"
    assert api.violations == []
    assert api.count("sendMessage", "error 429") == 0
    announced = Counter(m["text"] for m in api.delivered if m["text"] in expected)
    assert set(announced) == expected and max(announced.values()) == 1


async def test_a_429_is_waited_out_and_brings_no_other(coop: TelegramCoop) -> None:
    """Telegram says "retry after 1 s" to one send in ten, replies included: that chat waits its
    second, the rest go on at the paced rate, and no request goes over the limit."""
    api = coop.api
    users = [api.user(3000 + n, f"Courier {n}", started=True) for n in range(MEMBERS)]
    api.fail("sendMessage", rate=0.1, kinds=("429",), retry_after=1)
    expected = announce_to_everyone(coop, users)
    asked = await type_during_the_broadcast(coop, users)
    await everyone_answered(coop, asked)
    await api.wait_for(lambda: len([m for m in api.delivered if m["text"] in expected]) >= MEMBERS, timeout=30)
    assert api.count("sendMessage", "error 429") >= 1, "Telegram did say to wait"
    assert api.violations == [], "no chat was sent to before its retry_after, nor any second over the limit"
    announced = Counter(m["text"] for m in api.delivered if m["text"] in expected)
    assert set(announced) == expected and max(announced.values()) == 1
