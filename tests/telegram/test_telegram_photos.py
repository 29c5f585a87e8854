"""A courier proves a delivery with a Telegram photo; the customer and the coordinators see it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coopbot.config import OrdersSection, PricesSection
from coopbot.models import Job, Member
from tests.conftest import ZONES
from tests.telegram.conftest import COORDINATORS_ID, TOKEN_ENV, TelegramCoop, started, telegram_config
from tests.telegram.fake_bot_api import FakeBotApi, FakeUser

#: Not a real JPEG: Telegram and the bot pass the bytes on as they are.
PHOTO = b"\xff\xd8\xff\xe0 the parcel at the door of 12 rue de Paris " * 40


@pytest.fixture
async def shop(fake_api: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TelegramCoop]:
    """A co-op on Telegram whose customers' deliveries are proved by a photo."""
    monkeypatch.setenv(TOKEN_ENV, fake_api.token)
    config = telegram_config(fake_api, tmp_path / "coop.sqlite3").model_copy(update={
        "orders": OrdersSection(proof="photo", photo_folder=str(tmp_path / "proof-photos")),
        "prices": PricesSection(base=4.0, crossing=2.5, zones=ZONES),
    })  # fmt: skip
    async with started(fake_api, config) as running:
        yield running


async def picked_up_order(shop: TelegramCoop) -> tuple[FakeUser, FakeUser]:
    """Martin (a customer) orders J-1; Ana (a courier) takes it and picks it up."""
    api = shop.api
    ana, martin = api.user(2001, "Ana", started=True), api.user(2002, "Martin", started=True)
    shop.member(ana)
    number = shop.member(martin, "customer")
    with shop.session() as session:
        session.get_one(Member, number).address = "3 rue Paul Bert, 75011"
    await shop.ask(ana, "/available")
    await shop.ask(martin, "/order 75011 -> 75002")
    await shop.ask(martin, "/confirm J-1")
    await api.wait_message(ana.id, "J-1")
    await shop.ask(ana, "/accept J-1")
    await shop.ask(ana, "/pickup J-1")
    return ana, martin


async def test_a_photo_in_reply_to_the_job_message_delivers_it_and_the_customer_gets_the_photo(
    shop: TelegramCoop,
) -> None:
    api = shop.api
    ana, martin = await picked_up_order(shop)
    job_message = api.sent_to(ana.id)[-1]
    assert "J-1" in job_message["text"]
    assert "needs a photo as proof of delivery" in await shop.ask(ana, "/deliver J-1")

    api.send_photo(ana, PHOTO, reply_to=job_message)
    answer = await api.wait_message(ana.id, "J-1 delivered")
    assert "📷 The photo goes to the customer and the coordinators." in answer["text"]
    told = await api.wait_message(martin.id, "✅ J-1 is delivered, by Ana.")
    assert api.files[told["photo"][0]["file_id"]][1] == PHOTO
    shown = await api.wait_message(COORDINATORS_ID, "📷 J-1: the photo Ana took at the delivery.")
    assert api.files[shown["photo"][0]["file_id"]][1] == PHOTO
    with shop.session() as session:
        name = session.get_one(Job, 1).proof_photo
    assert name is not None
    assert (Path(shop.bot.config.orders.photo_folder) / name).read_bytes() == PHOTO
    assert api.count("getFile") == 1, "only the largest size is downloaded"


async def test_a_photo_captioned_with_deliver_and_the_job_delivers_it(shop: TelegramCoop) -> None:
    api = shop.api
    ana, martin = await picked_up_order(shop)
    api.send_photo(ana, PHOTO, "/deliver J-1")
    await api.wait_message(martin.id, "✅ J-1 is delivered, by Ana.")
    with shop.session() as session:
        assert session.get_one(Job, 1).proof_photo is not None
