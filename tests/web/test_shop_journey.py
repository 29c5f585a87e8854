"""The web door's promise to a shop, end to end: its script orders over HTTP with its API key,
retries the same POST with its Idempotency-Key and gets one order, a courier delivers it in
the chat with the recipient's code, and the shop's own server receives one signed webhook
for each step, in order. The real web server (`runner.web_routes`) and a real receiving
server, both on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import func, select

from coopbot import runner
from coopbot.models import Job, Member
from coopbot.services.dispatch import webhooks
from coopbot.services.members import api_keys
from coopbot.web.server import WebServer
from tests.conftest import Coop
from tests.webhook_receiver import Receiver, receiving, verify

ORDER = {"dropoff": "12 rue de Paris, 93100 Montreuil", "note": "two crates", "external_ref": "BM-1001"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async for served in receiving():
        yield served


async def test_a_shop_orders_over_http_and_follows_each_step_by_signed_webhooks(
    shop: Coop, receiver: Receiver
) -> None:
    with shop.session() as session:
        bakery = session.get_one(Member, shop.member_id("martin"))
        key = api_keys.issue(session, bakery, shop.clock.now())  # `coopbot customer key`
        secret = webhooks.set_webhook(session, shop.bot.config, bakery, receiver.url)  # `coopbot customer webhook`
    runner.add_webhook_sender(shop.bot)  # as `coopbot run` does
    server = WebServer(shop.bot, runner.web_routes(), listen="127.0.0.1", port=0)
    await server.start()
    base = f"http://127.0.0.1:{server.port}/api/v1/orders"
    auth = {"Authorization": f"Bearer {key}"}
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            # The shop's script sends its order, loses the answer, and sends the same POST again.
            answers = []
            for _ in range(2):
                async with http.post(base, json=ORDER, headers={"Idempotency-Key": "bm-1001-try"}) as answer:
                    answers.append((answer.status, await answer.json(), answer.headers.get("Idempotent-Replayed")))
            (status, quote, replayed), again = answers
            assert (status, replayed) == (201, None)
            assert again == (201, quote, "true")
            with shop.session() as session:
                assert session.scalar(select(func.count(Job.id))) == 1
            async with http.post(f"{base}/{quote['code']}/confirm", headers={"Idempotency-Key": "bm-1001-ok"}) as ok:
                assert ok.status == 200
                code = (await ok.json())["delivery_code"]
            await shop.tick()

            # A courier in the chat takes it, picks it up and delivers it with the recipient's code.
            assert "J-1" in await shop.say("ana lopez", "/accept J-1")
            await shop.tick()
            await shop.say("ana lopez", "/pickup J-1")
            await shop.tick()
            assert "delivered" in await shop.say("ana lopez", f"/deliver J-1 {code}")
            await shop.tick()
            await shop.tick(minutes=5)  # nothing more, nothing twice

            async with http.get(f"{base}/J-1") as answer:
                assert (await answer.json())["state"] == "delivered"
    finally:
        await server.stop()
        await shop.bot.transports["webhook"].stop()

    received = receiver.received
    assert [r.json["event"] for r in received] == [
        "order.confirmed", "order.taken", "order.picked_up", "order.delivered"]
    for request in received:
        assert request.status == 200
        assert verify(secret, request.body, request.headers["X-Coopbot-Signature"])
        assert request.headers["X-Coopbot-Event"] == request.json["event"]
        assert request.headers["X-Coopbot-Delivery"] == request.json["id"]
        assert request.json["order"]["code"] == "J-1" and request.json["order"]["external_ref"] == "BM-1001"
        assert "Ana" not in request.body.decode() and "Lopez" not in request.body.decode()  # never the courier
    assert len({r.headers["X-Coopbot-Delivery"] for r in received}) == 4
    assert [r.json["order"]["state"] for r in received][1:] == ["assigned", "picked_up", "delivered"]
    # The shop's people read the same steps in their chat.
    assert "✅ J-1 is delivered, by Ana." in [m.text for m in shop.inbox("martin")]
