"""The transport's own rules: Telegram's errors in the outbox's words, its limits, its syntax."""

from __future__ import annotations

import logging

import pytest
import telegram
from telegram.error import BadRequest

from coopbot.chat import Address, Button, Incoming, Outgoing, SendError, TransientSendError, UnreachableError
from coopbot.splitting import split_text, utf16_units
from coopbot.transports.telegram.messages import TEXT_LIMIT
from coopbot.transports.telegram.transport import TelegramTransport
from tests.telegram.fake_bot_api import FakeBotApi


def to(user_id: int) -> Address:
    return Address("telegram", str(user_id), private=True)


async def test_telegrams_answers_become_retry_or_unreachable(
    fake_api: FakeBotApi, transport: TelegramTransport
) -> None:
    ana, bo, cy, di, ed = (fake_api.user(10 + n, name, started=True) for n, name in enumerate("ABCDE"))
    fake_api.fail("sendMessage", rate=1.0, kinds=("429",), retry_after=7)
    with pytest.raises(TransientSendError) as flood:
        await transport.send(to(ana.id), Outgoing("hi"), "k1")
    assert (flood.value.retry_after, flood.value.scope) == (7.0, "chat")
    fake_api.fail("sendMessage", rate=1.0, kinds=("500",))
    with pytest.raises(TransientSendError) as server_error:
        await transport.send(to(bo.id), Outgoing("hi"), "k2")
    assert server_error.value.retry_after is None
    fake_api.fail("sendMessage", rate=0.0)
    fake_api.hang("sendMessage")
    with pytest.raises(TransientSendError):
        await transport.send(to(cy.id), Outgoing("hi"), "k3")
    fake_api.block(di.id)
    with pytest.raises(UnreachableError):
        await transport.send(to(di.id), Outgoing("hi"), "k4")
    with pytest.raises(UnreachableError):
        await transport.send(to(999), Outgoing("hi"), "k5")
    assert await transport.send(to(ed.id), Outgoing("hi"), "k6") == f"{ed.id}:1"


async def test_a_send_reads_only_the_message_id_of_telegrams_answer(
    fake_api: FakeBotApi, transport: TelegramTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No `Message` is built from the answer (0.2 ms of CPU a send): the id is all the outbox
    keeps. An answer without one cannot be read, and is not Telegram's "try again"."""
    ana = fake_api.user(10, "Ana", started=True)
    fake_api.limits.private_burst = 10

    def unbuilt(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Message was built from the answer")

    monkeypatch.setattr(telegram.Message, "de_json", unbuilt)
    chart = Outgoing("Share", attachment=("share.png", b"\x89PNG fake", "image/png"), buttons=(Button("OK", "/ok"),))
    refs = [await transport.send(to(ana.id), message, key) for key, message in (("t", Outgoing("hi")), ("p", chart))]
    assert refs == [f"{ana.id}:{m['message_id']}" for m in fake_api.sent_to(ana.id)] == [f"{ana.id}:1", f"{ana.id}:2"]
    fake_api.garble("sendMessage")
    with pytest.raises(ValueError, match="no message id") as unreadable:
        await transport.send(to(ana.id), Outgoing("hi again"), "g")
    assert not isinstance(unreadable.value, SendError)


async def test_a_revoked_token_pauses_every_send_and_a_refusal_is_telegrams_own(
    fake_api: FakeBotApi, transport: TelegramTransport
) -> None:
    ana = fake_api.user(10, "Ana", started=True)
    fake_api.limits.private_burst = 10
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):  # the outbox counts it as unexpected
        await transport.send(to(ana.id), Outgoing("x", buttons=(Button("OK", ""),)), "refused")
    fake_api.token = "123456:revoked"  # Telegram answers 401 from now on
    with pytest.raises(TransientSendError) as revoked:
        await transport.send(to(ana.id), Outgoing("hi"), "k")
    assert (revoked.value.retry_after, revoked.value.scope) == (60.0, "all")


async def test_a_long_message_is_split_and_a_retry_sends_only_the_rest(
    fake_api: FakeBotApi, transport: TelegramTransport
) -> None:
    ana = fake_api.user(10, "Ana", started=True)
    lines = [f"line {n}: " + "é" * 60 for n in range(150)]  # about 10,000 characters
    message = Outgoing("\n".join(lines), buttons=(Button("OK", "/start"),))
    fake_api.limits.private_burst = 100
    original = fake_api.failures
    fake_api.hang("sendMessage")  # the first part's request hangs…
    with pytest.raises(TransientSendError):
        await transport.send(to(ana.id), message, "long")
    assert fake_api.sent_to(ana.id) == [] and original is fake_api.failures
    ref = await transport.send(to(ana.id), message, "long")
    parts = fake_api.sent_to(ana.id)
    assert len(parts) == 3 and ref == f"{ana.id}:{parts[-1]['message_id']}"
    assert "\n".join(p["text"] for p in parts) == message.text
    assert [("reply_markup" in p) for p in parts] == [False, False, True]


def test_splitting_counts_what_telegram_counts() -> None:
    text = ("😀" * 3000 + "\n") * 2  # an emoji is two UTF-16 units
    pieces = split_text(text, TEXT_LIMIT)
    assert all(utf16_units(p) <= TEXT_LIMIT for p in pieces)
    assert "".join(pieces) == text.replace("\n", "")
    assert split_text("short\n\n", TEXT_LIMIT) == ["short"]


async def test_attachments_go_as_photo_or_document(fake_api: FakeBotApi, transport: TelegramTransport) -> None:
    ana = fake_api.user(10, "Ana", started=True)
    fake_api.limits.private_burst = 10
    chart = Outgoing("Your share <3", attachment=("share.png", b"\x89PNG fake", "image/png"))
    await transport.send(to(ana.id), chart, "p")
    export = Outgoing("Your data", attachment=("mydata.zip", b"PK fake", "application/zip"))
    await transport.send(to(ana.id), export, "d")
    photo, document = fake_api.sent_to(ana.id)
    assert photo["caption"] == "Your share <3" and photo["photo"][0]["file_size"] == 9
    assert document["document"]["file_name"] == "mydata.zip" and document["caption"] == "Your data"


async def test_a_reply_message_that_cannot_be_read_is_logged_and_the_rest_still_sent(
    fake_api: FakeBotApi, transport: TelegramTransport, caplog: pytest.LogCaptureFixture
) -> None:
    ana = fake_api.user(10, "Ana", started=True)
    fake_api.limits.private_burst = 10
    fake_api.garble("sendMessage")  # Telegram answers "ok" with nothing PTB can read
    asked = Incoming("telegram", str(ana.id), str(ana.id), True, text="/help", event_id="123456:1")
    with caplog.at_level(logging.WARNING):
        await transport.reply(asked, [Outgoing("First answer"), Outgoing("Second answer")])
    assert [m["text"] for m in fake_api.sent_to(ana.id)] == ["Second answer"]
    assert fake_api.count("sendMessage", "garbled") == 1  # not retried: it may well have been shown
    assert "a reply to 10 failed" in caplog.text
    # a chat that cannot be reached at all ends the reply: the rest would fail alike
    fake_api.block(ana.id)
    await transport.reply(asked, [Outgoing("Third"), Outgoing("Fourth")])
    assert fake_api.count("sendMessage", "error 403") == 1


def test_pacing_stays_under_the_configured_limits(transport: TelegramTransport) -> None:
    """One chat's limits are counted on start times, with a margin; the overall one is held
    exactly by counting each request until its answer (tests/telegram/test_telegram_pacing.py)."""
    pacing = transport.pacing()
    assert pacing.per_second == 30
    assert 1.0 < pacing.private_chat_interval <= 1.2
    assert 16 <= pacing.group_per_minute < 20
