"""A customer's orders from end to end, through the real transports.

A bakery orders on Telegram (python-telegram-bot's real Application against
the fake Bot API on loopback), a courier takes and delivers them on Matrix (a
real nio client on a real Synapse), one proven by the recipient's code and
one by a photo, and the period's close sends the bakery its statement.
One running bot serves both platforms, as `coopbot run` does; only the
date on its clock is the test's, so that the test can end the month and
let the scheduler close it. Every assertion is on what a person really
received on their own platform.

Why not `FakeClock`: its seconds pass only when something sleeps on it, and
the running outbox holds a Telegram chat's next message until the chat's
interval (a second) has passed, waiting idle on the clock meanwhile; nothing
would ever move it. `MovableClock` keeps the wall clock's seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from coopbot.app import CoopBot
from coopbot.db import transaction
from coopbot.runner import add_configured_transports
from coopbot.services.members import accounts as members_svc
from tests.conftest import MovableClock, delivery_code
from tests.matrix.conftest import make_member, matrix_coop, synapse  # noqa: F401  (fixtures used here)
from tests.matrix.members import MatrixCoop, NioMember
from tests.matrix.test_matrix_coop import direct_chat
from tests.matrix.test_matrix_photos import PHOTO, send_image
from tests.telegram.conftest import TOKEN_ENV, fake_api  # noqa: F401  (fixture used here)
from tests.telegram.fake_bot_api import FakeBotApi, FakeUser

MakeMember = Callable[[str], Awaitable[NioMember]]

MONDAY_MORNING = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
NOVEMBER_ENDS = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # 1 December 00:00 in Paris
PRICES = {"base": 4.0, "crossing": 2.5, "zones": "A: 75001, 75002; B: 75011; C: 93100"}
WAIT = 30.0


@dataclass
class Customer:
    """A customer on Telegram: what they type, press and are told in their private chat with the bot."""

    api: FakeBotApi
    user: FakeUser
    #: Every text they were shown, as first shown (an edit replaces a message's text) and button answers.
    shown: list[str] = field(default_factory=list)

    def chat(self) -> list[str]:
        """The private chat as it stands now, oldest first."""
        return [str(m.get("text", m.get("caption", ""))) for m in self.api.sent_to(self.user.id)]

    async def types(self, text: str, expect: str) -> dict[str, Any]:
        """Type `text`; the bot's answer containing `expect`, as Telegram holds it."""
        before = len(self.chat())
        self.api.say(self.user, text)
        answer = await self._waits_for(expect, after=before)
        return self.api.current(answer)

    async def presses(self, message: dict[str, Any], label: str, expect: str) -> str:
        """Press the button `label` on `message`; the text, edited or new, that then says `expect`."""
        query_id = self.api.press(self.user, message, label=label)["callback_query"]["id"]
        answered = await self.api.wait_for(lambda: self.api.callback_answers.get(query_id), timeout=WAIT)
        self.shown.append(str(answered.get("text", "")))
        return str((await self._waits_for(expect))["text"])

    async def is_told(self, expect: str) -> str:
        """Until a message in the chat says `expect`; that message."""
        message = await self._waits_for(expect)
        return str(message.get("text", message.get("caption", "")))

    async def is_shown(self, expect: str) -> dict[str, Any]:
        """Until a message (a photo's caption included) says `expect`; that message, as Telegram holds it."""
        return await self._waits_for(expect)

    async def _waits_for(self, expect: str, after: int = 0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            sent = self.api.sent_to(self.user.id)[after:]
            return next((m for m in sent if expect in m.get("text", m.get("caption", ""))), None)

        try:
            message: dict[str, Any] = await self.api.wait_for(found, timeout=WAIT)
        except TimeoutError:
            raise AssertionError(f"{self.user.first_name} was never told {expect!r}; the chat: {self.chat()}") from None
        self.shown.append(str(message.get("text", message.get("caption", ""))))
        return message

    def photo_received(self, message: dict[str, Any]) -> bytes:
        """The bytes of the photo a message carried, as the bot uploaded them."""
        return self.api.files[message["photo"][-1]["file_id"]][1]

    def everything_shown(self) -> list[str]:
        return [*self.shown, *self.chat()]


@dataclass
class Courier:
    """A co-op member on Matrix, typing `!` commands in their direct chat with the bot."""

    client: NioMember
    coop: MatrixCoop
    room: str = ""

    async def opens_a_direct_chat(self) -> None:
        self.room = await direct_chat(self.client, self.coop)

    async def types(self, text: str, expect: str) -> str:
        """Type `text`; the bot's next message in the direct chat that says `expect`."""
        mark = self.client.mark()
        await self.client.say(self.room, text)
        return await self._waits_for(expect, after=mark)

    async def is_offered(self, job: str) -> str:
        return await self._waits_for(f"!accept {job}")

    async def sends_photo(self, caption: str, expect: str) -> str:
        """A photo from Element with `caption`; the bot's answer that says `expect`."""
        mark = self.client.mark()
        await send_image(self.client, self.room, PHOTO, caption)
        return await self._waits_for(expect, after=mark)

    async def takes_and_picks_up(self, job: str) -> None:
        await self.is_offered(job)
        await self.types(f"!accept {job}", f"It's yours: {job}")
        await self.types(f"!pickup {job}", f"Picked up: {job}")

    async def _waits_for(self, expect: str, after: int = 0) -> str:
        try:
            seen = await self.client.next_message(after=after, sender=self.coop.user_id, contains=expect)
        except AssertionError:
            chat = [m.body for m in self.client.messages(after=after, sender=self.coop.user_id)]
            raise AssertionError(f"{self.client.name} was never told {expect!r}; the bot said: {chat}") from None
        return seen.body


@dataclass
class Shop:
    """The running co-op bot, on both platforms, and its clock."""

    bot: CoopBot
    clock: MovableClock
    api: FakeBotApi
    matrix: MatrixCoop

    def signs_up_customer(self, name: str, address: str, telegram: FakeUser) -> None:
        """What `coopbot customer add --name … --telegram … --address … --lang en` does."""
        now = self.clock.now()
        with transaction(self.bot.sessions) as session:
            customer = members_svc.create_customer(session, name, now, address=address, language="en")
            members_svc.add_identity(session, customer, "telegram", str(telegram.id), now, telegram.first_name)

    async def month_ends(self) -> None:
        """The month is over: the scheduler closes the period at its next tick (it ticks every few
        seconds; one tick now saves the wait), and the running outbox sends what the close queued."""
        self.clock.set(NOVEMBER_ENDS)
        await self.bot.scheduler.tick()


@pytest.fixture
async def shop(
    matrix_coop: MatrixCoop,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> AsyncIterator[Shop]:
    """One bot on Telegram and Matrix, with published prices and a code or a photo as proof, early in November."""
    monkeypatch.setenv(TOKEN_ENV, fake_api.token)
    matrix_coop.extra = {
        "telegram": {"enabled": True, "token_env": TOKEN_ENV, "api_base_url": fake_api.base_url},
        "prices": PRICES,
        "orders": {"proof": "photo_or_code", "photo_folder": str(tmp_path / "proof-photos")},
    }
    clock = MovableClock(MONDAY_MORNING)
    # What `matrix_coop.start()` does, on the test's clock.
    bot = matrix_coop.bot = await asyncio.to_thread(CoopBot, matrix_coop.config(), clock=clock)
    add_configured_transports(bot)
    await bot.start()
    assert set(bot.transports) == {"telegram", "matrix"}
    yield Shop(bot, clock, fake_api, matrix_coop)
    await matrix_coop.stop()


async def test_a_customer_on_telegram_follows_their_orders_to_the_door_and_the_statement(
    shop: Shop,
    make_member: MakeMember,  # noqa: F811
) -> None:
    # The bakery is signed up with its address and its Telegram account.
    bakery = Customer(shop.api, shop.api.user(4242, "Boulangerie", started=True))
    shop.signs_up_customer("Boulangerie Martin", "3 rue Paul Bert, 75011", bakery.user)

    # Ana Lopez rides for the co-op, on Matrix, and says she is available.
    ana = Courier(await make_member("Ana"), shop.matrix)
    shop.matrix.add_member("Ana Lopez", "member", ana.client.user_id)
    await ana.opens_a_direct_chat()
    await ana.types("!available", "You are available")

    # The bakery orders: a quote that shows how its price was reached, with Confirm / Cancel.
    quote = await bakery.types("/order 75011 -> 75002", "J-1")
    assert quote["text"].startswith("J-1 75011 → 75002 · €6.50 · for Boulangerie Martin\n")
    assert "Price: €6.50 = base €4.00 + crossing into zone A €2.50" in quote["text"]
    assert [b["text"] for row in quote["reply_markup"]["inline_keyboard"] for b in row] == ["✅ Confirm", "❌ Cancel"]

    # It presses Confirm, and is given the code the recipient will need.
    confirmed = await bakery.presses(quote, "✅ Confirm", "Delivery code:")
    assert confirmed.startswith("J-1 is confirmed at €6.50: we are finding a courier")
    code = delivery_code(confirmed)

    # Ana is offered the order on Matrix and takes it; the bakery learns who, by first name.
    assert "J-1 75011 → 75002 · €6.50 · for Boulangerie Martin" in await ana.is_offered("J-1")
    await ana.types("!accept J-1", "It's yours: J-1")
    await bakery.is_told("J-1: Ana is taking your order.")

    await ana.types("!pickup J-1", "Picked up: J-1")
    await bakery.is_told("J-1: Ana has picked up your order and is on the way.")

    # Finishing needs a proof: none is asked for, a wrong code refused, the right one done.
    await ana.types("!deliver J-1", "J-1 needs proof of delivery")
    wrong = "0000" if code != "0000" else "1111"
    await ana.types(f"!deliver J-1 {wrong}", "That is not the delivery code of J-1 (1 wrong try)")
    await ana.types(f"!deliver J-1 {code}", "J-1 delivered, thank you!")
    await bakery.is_told("✅ J-1 is delivered, by Ana.")

    # A second order, typed this time, delivered with a photo from Element: the bakery gets the photo.
    await bakery.types("/order 12 rue Oberkampf, 75011", "J-2")
    await bakery.types("/confirm J-2", "J-2 is confirmed at €4.00")
    await ana.takes_and_picks_up("J-2")
    await ana.sends_photo("!deliver J-2", "J-2 delivered, thank you!")
    delivered = await bakery.is_shown("✅ J-2 is delivered, by Ana.")
    assert bakery.photo_received(delivered) == PHOTO

    # The month ends; the close sends the bakery its statement on Telegram.
    await shop.month_ends()
    statement = await bakery.is_told("🧾 Your statement")
    assert statement.splitlines() == [
        "🧾 Your statement for 2026-11: 2 orders delivered, €10.50 in all.",
        "• J-1 (Nov 2) → 75002: €6.50",
        "• J-2 (Nov 2) → 12 rue Oberkampf, 75011: €4.00",
    ]

    # Of the courier, the bakery only ever read her first name: no surname, no Matrix account.
    for text in bakery.everything_shown():
        assert "Lopez" not in text, text
        assert ana.client.user_id not in text and "@" not in text, text
