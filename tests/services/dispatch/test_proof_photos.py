"""Delivery photos: kept as files for the retention the co-op set, then gone, whoever leaves."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from coopbot.chat import Photo
from coopbot.models import Job, OutboxMessage
from coopbot.services.data.leaving import pseudonym
from tests.conftest import Coop, job_status

PHOTO = Photo(b"\x89PNG\r\n\x1a\n a parcel on the doorstep", "image/png")


async def delivered_with_photo(coop: Coop) -> Path:
    """Martin's order J-1, delivered by Ana with a photo; returns where the photo is kept."""
    await coop.say("martin", "/order 75011 -> 75002")
    await coop.say("martin", "/confirm J-1")
    await coop.say("ana lopez", "/accept J-1")
    await coop.say("ana lopez", "/pickup J-1")
    await coop.say("ana lopez", "/deliver J-1", photo=PHOTO)
    with coop.session() as session:
        name = session.get_one(Job, 1).proof_photo
    assert name is not None
    return Path(coop.bot.config.orders.photo_folder) / name


def photo_named(coop: Coop) -> str | None:
    with coop.session() as session:
        return session.get_one(Job, 1).proof_photo


async def test_the_photo_is_a_file_in_the_data_folder_not_a_row_in_the_database(photo_shop: Coop) -> None:
    kept = await delivered_with_photo(photo_shop)
    assert kept.read_bytes() == PHOTO.data
    assert kept.name.startswith("J-1-") and kept.suffix == ".png"
    with photo_shop.session() as session:
        stored = session.scalars(select(OutboxMessage.attachment).where(OutboxMessage.attachment.is_not(None)))
        assert list(stored) == [], "the outbox reads the photo from disk when it sends it"


async def test_a_photo_is_kept_for_the_retention_days_then_deleted(photo_shop: Coop) -> None:
    kept = await delivered_with_photo(photo_shop)
    await photo_shop.tick(days=29)
    assert kept.exists() and photo_named(photo_shop) == kept.name
    await photo_shop.tick(days=2)
    assert not kept.exists()
    assert photo_named(photo_shop) is None
    assert "delivered by Ana Lopez, with a photo." in await photo_shop.say("chloé", "/why J-1")


async def test_a_message_sent_after_the_photo_expired_still_goes_and_says_so(photo_shop: Coop) -> None:
    await delivered_with_photo(photo_shop)
    await photo_shop.tick(days=31)
    bot = photo_shop.bot
    with photo_shop.session() as session:
        row = session.scalars(select(OutboxMessage).where(OutboxMessage.render.is_not(None))
                              .where(OutboxMessage.member_id == photo_shop.member_id("martin"))).one()
        message = bot.outbox.renderers.render(session, bot.config, row)
    assert message.attachment is None
    assert message.text == ("✅ J-1 is delivered, by Ana.\n"
                            "(The photo of this delivery is no longer kept: photos are deleted after 30 days.)")


async def test_a_photo_no_delivery_names_is_deleted_at_the_end_of_its_retention(photo_shop: Coop) -> None:
    """What a delivery whose transaction failed after writing its photo leaves behind."""
    folder = Path(photo_shop.bot.config.orders.photo_folder)
    folder.mkdir(parents=True, exist_ok=True)
    orphan, recent = folder / "J-7-0123456789abcdef01234567.jpg", folder / "J-8-0123456789abcdef01234567.jpg"
    orphan.write_bytes(b"left behind")
    recent.write_bytes(b"left behind today")
    month_ago = (photo_shop.clock.now().timestamp()) - 31 * 86400
    os.utime(orphan, (month_ago, month_ago))
    await photo_shop.tick(seconds=5)
    assert not orphan.exists()
    assert recent.exists()


async def test_when_the_customer_leaves_their_delivery_photo_follows_the_retention(photo_shop: Coop) -> None:
    kept = await delivered_with_photo(photo_shop)
    number = photo_shop.member_id("martin")
    await photo_shop.say("martin", "/leave confirm")
    await photo_shop.tick(seconds=5)
    with photo_shop.session() as session:
        customer = session.get_one(Job, 1).customer
        assert customer is not None and customer.name == pseudonym(number)
    assert kept.exists(), "the photo names nobody: it is not erased with the customer"
    await photo_shop.tick(days=31)
    assert not kept.exists() and photo_named(photo_shop) is None
    assert job_status(photo_shop, 1) == "delivered"
