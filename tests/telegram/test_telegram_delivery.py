"""Notifications reach members once, at Telegram's pace, whatever Telegram answers."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from coopbot.app import CoopBot
from coopbot.chat import Address, Outgoing
from coopbot.models import Member, OutboxMessage
from coopbot.outbox import queue, queue_to_member
from coopbot.runner import add_configured_transports
from coopbot.transports.telegram.transport import build_telegram_transport
from tests.telegram.conftest import GROUP_ID, TOKEN_ENV, TelegramCoop, running_coop, telegram_config
from tests.telegram.fake_bot_api import FakeBotApi, FloodLimits


def notify_member(coop: TelegramCoop, member_id: int, key: str, text: str) -> None:
    with coop.session() as session:
        queue_to_member(session, session.get_one(Member, member_id), key, Outgoing(text), datetime.now(UTC))
    coop.bot.outbox.poke()


async def test_a_member_who_blocked_the_bot_is_marked_unreachable_and_coordinators_told_once(
    coop: TelegramCoop,
) -> None:
    api = coop.api
    bo = api.user(1003, "Bo", started=True)
    bo_id = coop.member(bo)
    api.block(bo.id)
    notify_member(coop, bo_id, "n1", "First notice")
    notify_member(coop, bo_id, "n2", "Second notice")
    await api.wait_message(coop.coordinators.id, "Bo can no longer be reached on telegram")

    def statuses() -> list[str]:
        with coop.session() as session:
            query = select(OutboxMessage.status).where(OutboxMessage.member_id == bo_id)
            return sorted(session.scalars(query).all())

    await api.wait_for(lambda: statuses() == ["dead", "dead"])
    assert not coop.identity(bo).reachable
    assert api.count("sendMessage", "error 403", chat_id=bo.id) == 2  # no retry after Forbidden
    assert len(api.sent_to(coop.coordinators.id)) == 1
    # Bo unblocks the bot and writes to it: reachable again, notices flow again
    api.unblock(bo.id)
    await coop.ask(bo, "/whoami")
    assert coop.identity(bo).reachable
    notify_member(coop, bo_id, "n3", "Third notice")
    await api.wait_message(bo.id, "Third notice")


async def test_updates_sent_while_the_bot_was_down_are_handled_once_after_it_starts(
    coop: TelegramCoop, tmp_path: Path
) -> None:
    api = coop.api
    bo = api.user(1003, "Bo", started=True)
    coop.member(bo)
    await coop.ask(bo, "/start")
    await coop.bot.stop()
    first = api.say(bo, "/whoami")["update_id"]
    api.say(bo, "/help")
    coop.bot = CoopBot(coop.bot.config)
    add_configured_transports(coop.bot)
    await coop.bot.start()
    await api.wait_message(bo.id, "Commands of Coop Vélo")
    assert [m["text"].split(" ")[0] for m in api.sent_to(bo.id)] == ["Hello", "Bo", "Commands"]
    # as if the bot had crashed before confirming: Telegram offers them again, nobody sees them twice
    api.replay_unconfirmed(first)
    await coop.ask(bo, "/start", contains="Hello")
    assert len(api.sent_to(bo.id)) == 4


async def test_a_broadcast_arrives_complete_once_and_at_telegrams_pace_despite_failures(
    fake_api: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = fake_api
    api.limits = FloodLimits(private_burst=1)
    monkeypatch.setenv(TOKEN_ENV, api.token)
    config = telegram_config(api, tmp_path / "coop.sqlite3")
    coop = await running_coop(
        api, config, lambda bot: bot.add_transport(build_telegram_transport(config, bot, request_timeout=2))
    )
    try:
        users = [api.user(2000 + n, f"Member {n}", started=True) for n in range(99)]
        member_ids = [coop.member(user) for user in users]
        api.fail("sendMessage", rate=0.2, kinds=("429", "500"), retry_after=1)
        api.hang("sendMessage", times=1)
        now = datetime.now(UTC)
        with coop.session() as session:
            for n in range(2):
                address = Address("telegram", str(GROUP_ID), private=False)
                queue(session, key=f"g{n}", address=address, message=Outgoing(f"Group notice {n}"), now=now)
            for round_ in (1, 2):
                for member_id in member_ids:
                    member = session.get_one(Member, member_id)
                    text = f"Notice {round_}/{member_id}"
                    queue_to_member(session, member, f"b{round_}:{member_id}", Outgoing(text), now)
        coop.bot.outbox.poke()

        def lines() -> list[str]:  # the group's two notices may arrive as one message
            return [line for m in api.delivered for line in m["text"].splitlines()]

        await api.wait_for(lambda: len(lines()) >= 200, timeout=60)
        texts = Counter(lines())
        expected = {f"Notice {r}/{m}" for r in (1, 2) for m in member_ids} | {f"Group notice {n}" for n in range(2)}
        assert set(texts) == expected
        assert max(texts.values()) == 1
        assert api.violations == []
        failed = api.count("sendMessage", "error 429") + api.count("sendMessage", "error 500")
        assert failed >= 20  # the failures really happened, and were retried
        assert api.count("sendMessage", "hang") == 1
        # each member's two notices came in the order they were queued
        for user, member_id in zip(users, member_ids, strict=True):
            assert [m["text"] for m in api.sent_to(user.id)] == [f"Notice 1/{member_id}", f"Notice 2/{member_id}"]
    finally:
        await coop.bot.stop()
        coop.bot.dispose()
    with coop.session() as session:
        assert set(session.scalars(select(OutboxMessage.status)).all()) == {"sent"}
