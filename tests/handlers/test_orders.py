"""A customer orders in the chat: a published price first, then a job like any other, followed to the door."""

from __future__ import annotations

import pytest

from coopbot.chat import Photo
from coopbot.models import Job
from coopbot.states import JobStatus
from tests.conftest import Coop, delivery_code, job_status


async def test_a_quote_shows_how_the_price_was_reached_and_dispatches_nothing(shop: Coop) -> None:
    [answer] = await shop.replies("martin", "/order 3 rue Paul Bert, 75011 -> 12 rue de Paris, 93100 Montreuil")
    assert "J-1 3 rue Paul Bert, 75011 → 12 rue de Paris, 93100 Montreuil" in answer.text
    assert "€6.50 = base €4.00 + crossing into zone C €2.50" in answer.text
    assert [button.command for button in answer.buttons] == ["/confirm J-1", "/cancel J-1"]
    assert job_status(shop, 1) == JobStatus.QUOTED
    assert shop.inbox("ana lopez")[-1].text.startswith("You are available")


async def test_a_confirmed_order_is_offered_like_any_job_and_coordinators_see_the_customer(shop: Coop) -> None:
    await shop.say("martin", "/order 12 rue Oberkampf, 75011")  # from the bakery's own address
    confirmed = await shop.say("martin", "/confirm J-1")
    assert "J-1 is confirmed at €4.00" in confirmed
    assert job_status(shop, 1) == JobStatus.OFFERED
    assert "for Boulangerie Martin" in shop.inbox("ana lopez")[-1].text
    assert any("New order J-1 from Boulangerie Martin" in m.text for m in shop.room("coordinators"))


async def test_the_customer_follows_each_step_and_the_courier_needs_the_recipients_code(shop: Coop) -> None:
    await shop.say("martin", "/order 75011 -> 75002")
    code = delivery_code(await shop.say("martin", "/confirm J-1"))
    await shop.say("ana lopez", "/accept J-1")
    await shop.say("ana lopez", "/pickup J-1")
    assert "needs the code its recipient was given" in await shop.say("ana lopez", "/deliver J-1")
    assert job_status(shop, 1) == JobStatus.PICKED_UP
    wrong = "0000" if code != "0000" else "1111"
    assert "(1 wrong try)" in await shop.say("ana lopez", f"/deliver J-1 {wrong}")
    await shop.say("ana lopez", f"/deliver J-1 {code}")
    assert job_status(shop, 1) == JobStatus.DELIVERED
    told = [m.text for m in shop.inbox("martin")]
    assert "J-1: Ana is taking your order." in told
    assert "J-1: Ana has picked up your order and is on the way." in told
    assert "✅ J-1 is delivered, by Ana." in told
    assert not any("Lopez" in text for text in told), "a customer sees the courier's first name only"
    why = await shop.say("martin", "/why J-1")
    assert "Now: delivered by Ana." in why
    assert "Lopez" not in why


async def test_five_wrong_codes_tell_the_coordinators_once(shop: Coop) -> None:
    await shop.say("martin", "/order 75011 -> 75002")
    code = delivery_code(await shop.say("martin", "/confirm J-1"))
    await shop.say("ana lopez", "/accept J-1")
    await shop.say("ana lopez", "/pickup J-1")
    wrong = "0000" if code != "0000" else "1111"
    for _ in range(6):
        await shop.say("ana lopez", f"/deliver J-1 {wrong}")
    alerts = [m.text for m in shop.room("coordinators") if "wrong delivery codes" in m.text]
    assert alerts == ["⚠️ J-1: 5 wrong delivery codes were typed. Check with the courier and the customer."]
    assert job_status(shop, 1) == JobStatus.PICKED_UP


async def test_a_customer_cancels_until_pickup_and_not_after(shop: Coop) -> None:
    await shop.say("martin", "/order 75011 -> 75002")
    assert "J-1 is cancelled" in await shop.say("martin", "/cancel J-1")
    await shop.say("martin", "/order 75011 -> 75002")
    await shop.say("martin", "/confirm J-2")
    await shop.say("ana lopez", "/accept J-2")
    await shop.say("ana lopez", "/pickup J-2")
    assert "only a coordinator can cancel it now" in await shop.say("martin", "/cancel J-2")
    assert job_status(shop, 2) == JobStatus.PICKED_UP


async def test_a_quote_not_confirmed_in_time_lapses(shop: Coop) -> None:
    await shop.say("martin", "/order 75011 -> 75002")
    await shop.tick(minutes=16)
    assert job_status(shop, 1) == JobStatus.LAPSED
    assert "has lapsed" in await shop.say("martin", "/confirm J-1")


async def test_a_customer_sees_only_their_own_orders(shop: Coop) -> None:
    await shop.say("martin", "/order 75011 -> 75002")
    assert await shop.say("rose", "/confirm J-1") == "You have no order J-1. Type /orders to see yours."
    assert await shop.say("rose", "/why J-1") == "You have no order J-1. Type /orders to see yours."
    assert "You have no orders yet" in await shop.say("rose", "/orders")
    listed = await shop.say("martin", "/orders")
    assert "J-1 → 75002" in listed


async def test_an_order_is_refused_with_an_example_when_it_cannot_be_read(shop: Coop) -> None:
    assert "Type /order PICKUP -> DROPOFF" in await shop.say("martin", "/order -> ")
    assert "Remove “price …”" in await shop.say("martin", "/order 75011 -> 75002 price 1")
    assert "no default pickup address" in await shop.say("rose", "/order 75002")
    assert "1 place Bellecour" in await shop.say("martin", "/order 75011 -> 1 place Bellecour, 69002 Lyon")


async def test_a_coordinators_price_is_shown_with_who_and_why(shop: Coop) -> None:
    await shop.say("martin", "/order 75011 -> 75002")
    assert "J-1 now costs €8.00" in await shop.say("chloé", "/price J-1 8.00 two heavy crates")
    assert "The price of J-1 is now €8.00, set by a coordinator: two heavy crates" in shop.inbox("martin")[-1].text
    why = await shop.say("martin", "/why J-1")
    assert "price set to €8.00 by Chloé (was €6.50): two heavy crates" in why
    assert "Zones: pickup in B, drop-off in A." in why


async def test_members_cannot_order_and_customers_cannot_take_jobs(shop: Coop) -> None:
    assert "/order" in await shop.say("ana lopez", "/order 75011 -> 75002")  # unknown to a member's commands
    assert jobs_stored(shop) == 0
    assert "/accept" not in await shop.say("martin", "/help")


def jobs_stored(coop: Coop) -> int:
    with coop.session() as session:
        return session.query(Job).count()


async def test_a_coordinator_cannot_give_a_job_to_a_customer(shop: Coop) -> None:
    await shop.say("chloé", "/newjob 75011 -> 75002")
    refused = await shop.say("chloé", "/assign J-1 Boulangerie Martin")
    assert refused == "Customers order deliveries; only the co-op's members are offered jobs."
    assert job_status(shop, 1) == JobStatus.OFFERED


# --- proof of delivery by photo ---------------------------------------------------------------

PHOTO = Photo(b"\xff\xd8\xff\xe0 a parcel at the door of 12 rue de Paris", "image/jpeg")


async def picked_up_order(coop: Coop) -> str:
    """Martin orders and confirms; Ana takes it and picks it up. Returns what the confirmation said."""
    await coop.say("martin", "/order 75011 -> 75002")
    confirmed = await coop.say("martin", "/confirm J-1")
    await coop.say("ana lopez", "/accept J-1")
    await coop.say("ana lopez", "/pickup J-1")
    return confirmed


def stored_photo(coop: Coop, job_id: int = 1) -> str | None:
    with coop.session() as session:
        return session.get_one(Job, job_id).proof_photo


async def test_with_photo_proof_a_delivery_needs_the_photo_and_the_customer_receives_it(photo_shop: Coop) -> None:
    confirmed = await picked_up_order(photo_shop)
    assert "Delivery code" not in confirmed, "with photo proof the customer is given no code"
    missing = await photo_shop.say("ana lopez", "/deliver J-1")
    assert missing == ("J-1 needs a photo as proof of delivery: send the photo with /deliver J-1 as its caption, "
                       "or in reply to the job’s message.")
    assert job_status(photo_shop, 1) == JobStatus.PICKED_UP
    answer = await photo_shop.say("ana lopez", "/deliver J-1", photo=PHOTO)
    assert "J-1 delivered, thank you!" in answer
    assert "📷 The photo goes to the customer and the coordinators." in answer
    assert job_status(photo_shop, 1) == JobStatus.DELIVERED
    told = photo_shop.inbox("martin")[-1]
    assert told.text == "✅ J-1 is delivered, by Ana."
    assert told.attachment == ("J-1-proof.jpg", PHOTO.data, "image/jpeg")
    [shown] = [m for m in photo_shop.room("coordinators") if m.attachment is not None]
    assert shown.text == "📷 J-1: the photo Ana Lopez took at the delivery."
    assert shown.attachment is not None and shown.attachment[1] == PHOTO.data


async def test_a_photo_alone_proves_the_one_parcel_the_courier_carries(photo_shop: Coop) -> None:
    await picked_up_order(photo_shop)
    assert "J-1 delivered" in await photo_shop.say("ana lopez", "", photo=PHOTO)
    assert job_status(photo_shop, 1) == JobStatus.DELIVERED
    name = stored_photo(photo_shop)
    assert name is not None and name.startswith("J-1-") and "ana" not in name.lower()


async def test_a_photo_in_reply_to_the_jobs_message_proves_that_job(photo_shop: Coop) -> None:
    await picked_up_order(photo_shop)
    await photo_shop.say("martin", "/order 75011 -> 75001")
    await photo_shop.say("martin", "/confirm J-2")
    await photo_shop.say("ana lopez", "/accept J-2")
    carrying = await photo_shop.say("ana lopez", "/pickup J-2")
    assert "Which delivery does this photo prove?" in await photo_shop.say("ana lopez", "", photo=PHOTO)
    assert stored_photo(photo_shop, 2) is None
    await photo_shop.say("ana lopez", "", photo=PHOTO, reply_text=carrying)
    assert job_status(photo_shop, 2) == JobStatus.DELIVERED
    assert job_status(photo_shop, 1) == JobStatus.PICKED_UP


@pytest.mark.parametrize("proof", ["photo_or_code"])
async def test_with_photo_or_code_either_proves_it_and_why_says_which(photo_shop: Coop) -> None:
    code = delivery_code(await picked_up_order(photo_shop))
    missing = await photo_shop.say("ana lopez", "/deliver J-1")
    assert missing == ("J-1 needs proof of delivery: send a photo of it with /deliver J-1 as the caption, "
                       "or type /deliver J-1 CODE with the recipient’s code.")
    await photo_shop.say("ana lopez", f"/deliver J-1 {code}")
    assert job_status(photo_shop, 1) == JobStatus.DELIVERED
    assert stored_photo(photo_shop) is None
    assert "delivered by Ana, with the recipient’s code." in await photo_shop.say("martin", "/why J-1")
    await photo_shop.say("martin", "/order 75011 -> 75001")
    await photo_shop.say("martin", "/confirm J-2")
    await photo_shop.say("ana lopez", "/accept J-2")
    await photo_shop.say("ana lopez", "/pickup J-2")
    await photo_shop.say("ana lopez", "/deliver J-2", photo=PHOTO)
    assert job_status(photo_shop, 2) == JobStatus.DELIVERED
    assert "delivered by Ana Lopez, with a photo." in await photo_shop.say("chloé", "/why J-2")


async def test_a_photo_that_proves_no_delivery_is_answered_with_what_to_do(photo_shop: Coop) -> None:
    answer = await photo_shop.say("martin", "", photo=PHOTO)
    assert answer == ("I keep photos only as a courier’s proof of delivery. "
                      "Tell me what you need in words, or type /help.")
    assert "Which delivery does this photo prove?" in await photo_shop.say("ana lopez", "", photo=PHOTO)


async def test_where_photos_prove_nothing_a_photo_is_not_kept(shop: Coop) -> None:
    await picked_up_order(shop)
    refused = await shop.say("ana lopez", "", photo=PHOTO)
    assert refused == ("Photos are not what proves J-1 delivered: type /deliver J-1 to finish it, "
                       "with the recipient’s code if the order came with one.")
    assert stored_photo(shop) is None
    assert job_status(shop, 1) == JobStatus.PICKED_UP


async def test_a_french_courier_is_told_in_french_what_proof_is_missing(photo_shop: Coop) -> None:
    await picked_up_order(photo_shop)
    await photo_shop.say("ana lopez", "/lang fr")
    answer = await photo_shop.say("ana lopez", "/deliver J-1")
    assert answer.startswith("J-1 demande une photo comme preuve de livraison\u00a0: envoyez la photo")
