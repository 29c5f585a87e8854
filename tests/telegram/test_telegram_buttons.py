"""Buttons are shortcuts for commands: every press is answered and shows what happened."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from coopbot.chat import Address, Button, Outgoing
from coopbot.outbox import queue
from coopbot.services.members import accounts as members_svc
from coopbot.transports.telegram.transport import TelegramTransport
from tests.telegram.conftest import TelegramCoop
from tests.telegram.fake_bot_api import FakeUser


async def notify(coop: TelegramCoop, chat_id: int, text: str, *buttons: Button, private: bool = True) -> dict[str, Any]:
    """Queue a notification through the outbox and wait for Telegram to show it."""
    with coop.session() as session:
        queue(
            session,
            key=f"test:{chat_id}:{text}",
            address=Address("telegram", str(chat_id), private),
            message=Outgoing(text, buttons),
            now=datetime.now(UTC),
        )
    coop.bot.outbox.poke()
    return await coop.api.wait_message(chat_id, text)


async def press(coop: TelegramCoop, user: FakeUser, message: dict[str, Any], label: str) -> dict[str, Any]:
    """Press a button and wait until Telegram got the press's answer; returns that answer."""
    query_id = coop.api.press(user, message, label=label)["callback_query"]["id"]
    answer: dict[str, Any] = await coop.api.wait_for(lambda: coop.api.callback_answers.get(query_id))
    return answer


async def test_a_press_edits_the_message_and_is_answered(coop: TelegramCoop) -> None:
    bo = coop.api.user(1003, "Bo", started=True)
    coop.member(bo)
    message = await notify(coop, bo.id, "Your account", Button("Show", "/whoami", "👤"))
    assert coop.api.current(message)["reply_markup"]["inline_keyboard"][0][0]["text"] == "👤 Show"
    answer = await press(coop, bo, message, "👤 Show")
    assert "text" not in answer  # nothing to add: the message itself now says it
    edited = coop.api.current(message)
    assert edited["text"].startswith("Bo (#1)")
    assert "reply_markup" not in edited
    assert len(coop.api.sent_to(bo.id)) == 1


async def test_a_press_whose_edit_cannot_be_read_is_answered_with_a_new_message(coop: TelegramCoop) -> None:
    bo = coop.api.user(1003, "Bo", started=True)
    coop.member(bo)
    message = await notify(coop, bo.id, "Your account", Button("Show", "/whoami", "👤"))
    coop.api.garble("editMessageText")
    await press(coop, bo, message, "👤 Show")
    answer = await coop.api.wait_message(bo.id, "Bo (#1)")
    assert answer["message_id"] != message["message_id"]
    assert coop.api.current(message)["text"] == "Your account"


async def test_a_stale_button_says_so_instead_of_failing_silently(coop: TelegramCoop) -> None:
    api = coop.api
    with coop.session() as session:
        code = members_svc.create_invite(session, None, "member", datetime.now(UTC))
    ana, cy = api.user(1006, "Ana", started=True), api.user(1007, "Cy", started=True)
    offers = [await notify(coop, who.id, "Welcome offer", Button("Join", f"/join {code}")) for who in (ana, cy)]
    await press(coop, ana, offers[0], "Join")
    assert coop.api.current(offers[0])["text"].startswith("Welcome to Coop Vélo, Ana!")
    await press(coop, cy, offers[1], "Join")
    assert "not valid" in coop.api.current(offers[1])["text"]


async def test_a_press_in_a_group_answers_the_presser_alone(coop: TelegramCoop) -> None:
    api, group = coop.api, coop.group
    fanny = api.user(1001, "Fanny", started=True)
    coop.member(fanny, "coordinator")
    board = await notify(coop, group.id, "Need a new courier?", Button("Invite", "/invite"), private=False)
    answer = await press(coop, fanny, board, "Invite")
    assert answer["text"] == "I have sent you the answer in a private chat."
    assert "/join" in api.sent_to(fanny.id)[-1]["text"]
    # the group's message is everyone's: it keeps its button and nothing is added to the group
    assert api.current(board)["reply_markup"] == board["reply_markup"]
    assert len(api.sent_to(group.id)) == 1


async def test_long_commands_survive_the_64_byte_limit_and_a_restart(coop: TelegramCoop) -> None:
    bo = coop.api.user(1003, "Bo", started=True)
    coop.member(bo)
    long_command = "/help " + "whoami " * 12
    message = await notify(coop, bo.id, "Long", Button("Help", long_command))
    data = coop.api.current(message)["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert data.startswith("#") and len(data.encode()) <= 64
    # a new transport (after a restart) finds the command in the database
    fresh = TelegramTransport(coop.bot.config, coop.transport.application, sessions=coop.bot.sessions)
    assert await fresh._command_for(data) == long_command
    await press(coop, bo, message, "Help")
    assert coop.api.current(message)["text"].startswith("/whoami:")


async def test_an_unknown_button_is_answered_with_a_hint(coop: TelegramCoop) -> None:
    bo = coop.api.user(1003, "Bo", started=True)
    coop.member(bo)
    bot = coop.transport.application.bot
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Old", callback_data="#" + "0" * 32)]])
    await bot.send_message(bo.id, "An old message", reply_markup=keyboard)
    message = coop.api.sent_to(bo.id)[-1]
    answer = await press(coop, bo, message, "Old")
    assert "no longer works" in answer["text"]
