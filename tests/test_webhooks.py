"""The shops' webhooks: each step of an order POSTed to the shop's server, signed with its
secret, through the outbox: retried after a 5xx, set aside after a refusal for good, and
posted once per step, even across a restart. The shop's server is a real aiohttp server
on 127.0.0.1 (`tests.webhook_receiver`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from coopbot.app import CoopBot
from coopbot.chat import Address, Outgoing, RefusedError, TransientSendError, UnreachableError
from coopbot.clock import FakeClock
from coopbot.errors import UsageError
from coopbot.models import Member, OutboxMessage
from coopbot.outbox_cli import retry
from coopbot.services.dispatch import webhooks
from coopbot.webhook_sender import WebhookSender
from tests.conftest import Coop
from tests.webhook_receiver import Receiver, receiving, verify

ORDER = "/order 12 rue de Paris, 93100 Montreuil"
BODY = '{"id":"webhook:1:ev9","event":"order.taken","at":"2026-11-02T09:00:00+01:00","order":{"code":"J-1"}}'


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async for served in receiving():
        yield served


@pytest.fixture
async def sender(shop: Coop) -> AsyncIterator[WebhookSender]:
    """The sender `coopbot run` adds (`runner.add_webhook_sender`), on the shop's bot."""
    posting = WebhookSender(shop.bot.sessions, shop.bot.config)
    shop.bot.add_transport(posting)
    yield posting
    await posting.stop()


def hook(coop: Coop, url: str, who: str = "martin") -> str:
    """`coopbot customer webhook` for `who`: the secret it prints."""
    with coop.session() as session:
        customer = session.get_one(Member, coop.member_id(who))
        return webhooks.set_webhook(session, coop.bot.config, customer, url)


def webhook_rows(coop: Coop) -> list[OutboxMessage]:
    with coop.session() as session:
        rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.platform == "webhook")))
        session.expunge_all()
        return rows


async def test_the_sender_signs_the_raw_body_and_reads_each_answer(
    shop: Coop, receiver: Receiver, sender: WebhookSender
) -> None:
    secret = hook(shop, receiver.url)
    to_martin = Address("webhook", str(shop.member_id("martin")), private=True)
    receiver.statuses = [200, 500, 410]
    assert await sender.send(to_martin, Outgoing(BODY), "webhook:1:ev9") == "200"
    got = receiver.received[0]
    assert got.body == BODY.encode()
    assert verify(secret, got.body, got.headers["X-Coopbot-Signature"])
    assert not verify(secret, got.body.replace(b"J-1", b"J-2"), got.headers["X-Coopbot-Signature"])
    assert (got.headers["Content-Type"], got.headers["X-Coopbot-Event"], got.headers["X-Coopbot-Delivery"]) == (
        "application/json", "order.taken", "webhook:1:ev9")
    with pytest.raises(TransientSendError):  # the shop's server is down: try again later
        await sender.send(to_martin, Outgoing(BODY), "webhook:1:ev9")
    with pytest.raises(RefusedError, match="410"):  # the hook is gone: set aside, not hammered
        await sender.send(to_martin, Outgoing(BODY), "webhook:1:ev9")
    # A new secret signs from now on; the old one no longer verifies.
    newer = hook(shop, receiver.url)
    await sender.send(to_martin, Outgoing(BODY), "webhook:1:ev9")
    last = receiver.received[-1].headers["X-Coopbot-Signature"]
    assert newer != secret and verify(newer, BODY.encode(), last) and not verify(secret, BODY.encode(), last)
    with shop.session() as session:
        webhooks.clear_webhook(session, session.get_one(Member, shop.member_id("martin")))
    with pytest.raises(UnreachableError):  # `--off`: nothing more is posted
        await sender.send(to_martin, Outgoing(BODY), "webhook:1:ev9")
    assert len(receiver.received) == 4


async def test_a_step_is_retried_after_a_500_and_posted_once_even_across_a_restart(
    shop: Coop, receiver: Receiver, sender: WebhookSender, clock: FakeClock
) -> None:
    secret = hook(shop, receiver.url)
    receiver.statuses = [500]
    await shop.say("martin", ORDER)
    await shop.say("martin", "/confirm J-1")
    await shop.tick()
    assert [r.status for r in receiver.received] == [500]
    (row,) = webhook_rows(shop)
    assert (row.status, row.attempts, row.chat_id) == ("pending", 1, str(shop.member_id("martin")))
    await shop.tick(seconds=1)  # past the first backoff
    assert [r.status for r in receiver.received] == [500, 200]
    first, again = receiver.received
    assert again.body == first.body  # the same bytes, the same delivery: the shop can drop a repeat
    assert again.headers["X-Coopbot-Delivery"] == first.headers["X-Coopbot-Delivery"] == row.key
    assert verify(secret, again.body, again.headers["X-Coopbot-Signature"])
    assert again.json["event"] == "order.confirmed" and again.json["order"]["code"] == "J-1"
    await shop.tick(minutes=5)
    assert len(receiver.received) == 2

    # A restart: a new bot on the same database posts nothing already delivered, then the next step once.
    await sender.stop()
    bot = CoopBot(shop.bot.config, clock=clock)
    restarted = Coop(bot, clock)
    restarted.console.names.update(shop.console.names)
    posting = WebhookSender(bot.sessions, bot.config)
    bot.add_transport(posting)
    try:
        await restarted.tick()
        assert len(receiver.received) == 2
        await restarted.say("ana lopez", "/accept J-1")
        await restarted.tick()
        await restarted.tick(minutes=5)
    finally:
        await posting.stop()
        bot.dispose()
    assert [r.json["event"] for r in receiver.received] == ["order.confirmed", "order.confirmed", "order.taken"]
    assert [row.status for row in webhook_rows(shop)] == ["sent", "sent"]


async def test_a_refused_webhook_is_set_aside_for_the_operator_then_sent_again(
    shop: Coop, receiver: Receiver, sender: WebhookSender
) -> None:
    hook(shop, receiver.url)
    receiver.statuses = [410]
    await shop.say("martin", ORDER)
    await shop.say("martin", "/confirm J-1")
    await shop.tick()
    await shop.tick(minutes=10)
    (row,) = webhook_rows(shop)
    assert (row.status, row.failure_kind, len(receiver.received)) == ("failed", "refused", 1)
    assert "410" in (row.last_error or "")
    told = [m.text for m in shop.room("coordinators")]
    assert any(f"Message #{row.id} to Boulangerie Martin (webhook) was set aside" in text for text in told), told
    with shop.session() as session:
        retry(session, row.id, shop.clock.now())  # `coopbot outbox retry`, once the shop fixed its end
    await shop.tick()
    assert [r.status for r in receiver.received] == [410, 200]


async def test_no_webhook_is_queued_for_a_shop_without_one_or_for_a_coordinators_job(
    shop: Coop, receiver: Receiver, sender: WebhookSender
) -> None:
    hook(shop, receiver.url, who="rose")
    await shop.say("martin", ORDER)
    await shop.say("martin", "/confirm J-1")
    await shop.say("chloé", "/newjob 75011 -> 75002")
    await shop.say("ana lopez", "/accept J-1")
    await shop.tick()
    assert webhook_rows(shop) == [] and receiver.received == []


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("http://shop.example/hook", "api.webhook_not_https"),
        ("ftp://shop.example/hook", "api.webhook_not_https"),
        ("https://user:pw@shop.example/hook", "api.webhook_bad_url"),
        ("https:///hook", "api.webhook_bad_url"),
        ("https://shop.example:99999/hook", "api.webhook_bad_url"),
        ("https://shop.example/hook", None),
        ("http://127.0.0.1:8099/hook", None),
        ("http://localhost/hook", None),
    ],
)
def test_a_webhook_goes_over_https_or_to_this_machine(url: str, refusal: str | None) -> None:
    if refusal is None:
        assert webhooks.check_url(url) == url
        return
    with pytest.raises(UsageError) as refused:
        webhooks.check_url(url)
    assert refused.value.key == refusal
