"""The fake Bot API speaks what python-telegram-bot expects, so the bot tests mean something."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from tests.telegram.fake_bot_api import FakeBotApi, FloodLimits
from tests.telegram.fake_telegram_rules import parse_html


def bare_app(server: FakeBotApi) -> Application[Any, Any, Any, Any, Any, Any]:
    return ApplicationBuilder().token(server.token).base_url(server.base_url).build()


async def test_a_bare_bot_polls_and_answers_through_the_fake(fake_api: FakeBotApi) -> None:
    app = bare_app(fake_api)

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, f"echo: {update.effective_message.text}")

    app.add_handler(MessageHandler(filters.TEXT, echo))
    ana = fake_api.user(501, "Ana")
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=1)
        fake_api.say(ana, "hello")
        reply = await fake_api.wait_message(ana.id, "echo: hello")
        await app.updater.stop()
        await app.stop()
    methods = [c.method for c in fake_api.calls]
    assert methods[:3] == ["getMe", "deleteWebhook", "getUpdates"]
    assert reply["from"]["username"] == "coopbot_test_bot"
    # the last getUpdates confirmed the update: a new bot would not see it again
    assert fake_api.calls[-1].method == "getUpdates"
    assert fake_api.calls[-1].params["offset"] == 2


async def test_pending_updates_wait_for_the_bot_and_are_confirmed_once(fake_api: FakeBotApi) -> None:
    ana = fake_api.user(501, "Ana")
    fake_api.say(ana, "one")
    fake_api.say(ana, "two")
    seen: list[str] = []
    arrived = asyncio.Condition()

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        async with arrived:
            seen.append(str(update.effective_message.text))
            arrived.notify_all()

    async def a_bot_until_it_has(text: str) -> None:
        app = bare_app(fake_api)
        app.add_handler(MessageHandler(filters.TEXT, record))
        async with app:
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(timeout=1)
            async with asyncio.timeout(10), arrived:
                await arrived.wait_for(lambda: text in seen)
            await app.updater.stop()
            await app.stop()

    await a_bot_until_it_has("two")
    # The next bot is given a third update: by the time it has it, it would have had the
    # first two again too, had they not been confirmed (updates come in order).
    fake_api.say(ana, "three")
    await a_bot_until_it_has("three")
    assert seen == ["one", "two", "three"]


async def test_html_is_checked_like_telegram() -> None:
    assert parse_html("<b>Job</b> &lt;J-1&gt; &amp; co") == (
        "Job <J-1> & co",
        [{"type": "bold", "offset": 0, "length": 3}],
    )
    for bad in ("a < b", "Tom & Jerry", "<script>x</script>", "<b>open"):
        with pytest.raises(Exception, match="can't parse entities"):
            parse_html(bad)


async def test_injected_failures_become_ptb_exceptions(fake_api: FakeBotApi) -> None:
    ana, bo, cy, stranger = (fake_api.user(500 + i, name) for i, name in enumerate(["Ana", "Bo", "Cy", "Di"]))
    for member in (ana, bo, cy):
        fake_api.say(member, "/start")
    app = bare_app(fake_api)
    async with app:
        fake_api.fail("sendMessage", rate=1.0, kinds=("500",))
        with pytest.raises(NetworkError):
            await app.bot.send_message(ana.id, "hi")
        fake_api.fail("sendMessage", rate=1.0, kinds=("429",), retry_after=3)
        with pytest.raises(RetryAfter):
            await app.bot.send_message(bo.id, "hi")
        fake_api.fail("sendMessage", rate=0.0)
        fake_api.block(cy.id)
        with pytest.raises(Forbidden, match="blocked"):
            await app.bot.send_message(cy.id, "hi")
        with pytest.raises(Forbidden, match="initiate"):
            await app.bot.send_message(stranger.id, "hi")
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await app.bot.send_message(999, "hi")
        # Bo was told to wait 3 s: sending sooner is a flood the fake counts
        assert fake_api.violations == []
        with pytest.raises(RetryAfter):
            await app.bot.send_message(bo.id, "too soon")
    assert fake_api.delivered == []
    assert len(fake_api.violations) == 1


async def test_buttons_presses_and_edits(fake_api: FakeBotApi) -> None:
    ana = fake_api.user(501, "Ana")
    fake_api.say(ana, "/start")
    app = bare_app(fake_api)
    async with app:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Accept", callback_data="/accept J-1")]])
        sent = await app.bot.send_message(ana.id, "Job J-1", reply_markup=keyboard)
        message = fake_api.sent_to(ana.id)[0]
        update = fake_api.press(ana, message, label="Accept")
        query_id = update["callback_query"]["id"]
        assert await app.bot.answer_callback_query(query_id, text="taken")
        with pytest.raises(BadRequest, match="too old"):
            await app.bot.answer_callback_query(query_id)
        await app.bot.edit_message_reply_markup(ana.id, sent.message_id, reply_markup=None)
        assert "reply_markup" not in fake_api.current(message)
        with pytest.raises(BadRequest, match="not modified"):
            await app.bot.edit_message_reply_markup(ana.id, sent.message_id, reply_markup=None)
        await app.bot.edit_message_text("Job J-1: yours", chat_id=ana.id, message_id=sent.message_id)
        with pytest.raises(BadRequest, match="not modified"):
            await app.bot.edit_message_text("Job J-1: yours", chat_id=ana.id, message_id=sent.message_id)
    assert fake_api.current(message)["text"] == "Job J-1: yours"
    assert "reply_markup" not in fake_api.current(message)


async def test_the_fake_counts_a_private_chat_flooded(fake_api: FakeBotApi) -> None:
    fake_api.limits = FloodLimits(private_burst=1)
    ana = fake_api.user(501, "Ana")
    fake_api.say(ana, "/start")
    app = bare_app(fake_api)
    async with app:
        await app.bot.send_message(ana.id, "one")
        with pytest.raises(RetryAfter):
            await app.bot.send_message(ana.id, "two")
    assert len(fake_api.violations) == 1
