"""The shops' orders API, end to end: a real aiohttp server on 127.0.0.1, the shop's co-op behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from coopbot.models import IdempotentRequest, Job
from coopbot.services.members import api_keys
from coopbot.web.api import add_api
from coopbot.web.openapi import document
from tests.conftest import Coop

NEW = {"dropoff": "12 rue de Paris, 93100 Montreuil", "deadline": "12:30", "note": "two crates",
       "external_ref": "BM-1001"}  # fmt: skip


@dataclass
class Api:
    client: TestClient[web.Request, web.Application]
    coop: Coop
    keys: dict[str, str]

    async def call(self, method: str, path: str, who: str = "martin", **kwargs: Any) -> tuple[int, Any, Any]:
        headers = {"Authorization": f"Bearer {self.keys[who]}", **kwargs.pop("headers", {})}
        async with self.client.request(method, path, headers=headers, **kwargs) as response:
            body = await response.json(content_type=None) if response.content_type.endswith("json") else None
            return response.status, body, response.headers


async def serve(coop: Coop, rate_per_minute: int = 600) -> AsyncIterator[Api]:
    customers = {who: coop.get_member(who) for who in ("martin", "rose")}
    with coop.session() as session:
        keys = {who: api_keys.issue(session, session.merge(customer), coop.clock.now())
                for who, customer in customers.items()}
    app = web.Application()
    add_api(app, coop.bot, rate_per_minute=rate_per_minute)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield Api(client, coop, keys)


@pytest.fixture
async def api(shop: Coop) -> AsyncIterator[Api]:
    async for served in serve(shop):
        yield served


def check(body: Any, schema: str) -> None:
    """The answer is what the OpenAPI document says it is."""
    doc = document()
    jsonschema.validate(body, {"$ref": f"#/components/schemas/{schema}", "components": doc["components"]})


async def test_a_shop_orders_confirms_follows_lists_and_cancels_through_the_api(api: Api) -> None:
    status, quote, headers = await api.call("POST", "/api/v1/orders", json=NEW)
    assert status == 201, quote
    check(quote, "Order")
    assert headers["Location"] == "/api/v1/orders/J-1"
    assert (quote["code"], quote["state"], quote["pickup"], quote["external_ref"]) == (
        "J-1", "quoted", "3 rue Paul Bert, 75011", "BM-1001")
    assert quote["price"] == {"cents": 650, "amount": "6.50", "currency": "EUR"}
    assert quote["quote"]["terms"] == [
        {"key": "base", "label": "base", "cents": 400, "amount": "4.00", "currency": "EUR"},
        {"key": "crossing", "label": "crossing into zone C", "cents": 250, "amount": "2.50", "currency": "EUR"},
    ]
    assert quote["quote"]["zones"] == {"pickup": "B", "dropoff": "C"}
    assert quote["quote"]["explanation"] == (
        "€6.50 = base €4.00 + crossing into zone C €2.50; price rules of the co-op’s configuration")
    assert {(c["rule"], c["vote"]) for c in quote["quote"]["citations"]} == {
        ("price.base", None), ("price.crossing", None), ("price.zones", None)}
    assert quote["valid_until"] == "2026-11-02T09:15:00+01:00"
    # The chat's quote, for the same order, reads the same price the same way.
    assert quote["quote"]["explanation"] in await api.coop.say("martin", "/order 12 rue de Paris, 93100 Montreuil")

    status, confirmed, _ = await api.call("POST", "/api/v1/orders/J-1/confirm")
    assert status == 200, confirmed
    check(confirmed, "ConfirmedOrder")
    assert confirmed["state"] in ("open", "offered") and len(confirmed["delivery_code"]) == 4
    assert "3 rue Paul Bert" in await api.coop.say("ana lopez", "/accept J-1")

    status, order, _ = await api.call("GET", "/api/v1/orders/J-1")
    assert status == 200
    check(order, "OrderWithHistory")
    assert order["state"] == "assigned"
    assert [(step["step"], step["by"]) for step in order["history"]] == [
        ("quoted", "Boulangerie Martin"), ("confirmed", "Boulangerie Martin"), ("accepted", "Ana")]
    assert order["proof"] == {"kind": None, "photo": None}

    status, listed, _ = await api.call("GET", "/api/v1/orders?state=assigned,quoted")
    check(listed, "OrderList")
    assert [(o["code"], o["state"]) for o in listed["orders"]] == [("J-2", "quoted"), ("J-1", "assigned")]
    status, listed, _ = await api.call("GET", "/api/v1/orders?state=quoted")
    assert [o["code"] for o in listed["orders"]] == ["J-2"]

    status, cancelled, _ = await api.call("DELETE", "/api/v1/orders/J-2", json={"reason": "changed my mind"})
    assert (status, cancelled["state"]) == (200, "cancelled")

    await api.coop.say("ana lopez", "/pickup J-1")
    status, problem, headers = await api.call("DELETE", "/api/v1/orders/J-1")
    assert status == 409 and headers["Content-Type"].startswith("application/problem+json")
    check(problem, "Problem")
    assert problem["detail"] == ("J-1 has been picked up and is on its way, so only a coordinator can cancel it "
                                 "now.")  # fmt: skip
    await api.coop.say("ana lopez", f"/deliver J-1 {confirmed['delivery_code']}")
    status, order, _ = await api.call("GET", "/api/v1/orders/J-1")
    assert (order["state"], order["proof"]["kind"], order["history"][-1]["step"]) == ("delivered", "code",
                                                                                       "delivered")


async def test_a_retried_post_returns_the_first_answer_and_makes_one_order(api: Api) -> None:
    headers = {"Idempotency-Key": "a3c2f1d0-order-1"}
    first = await api.call("POST", "/api/v1/orders", json=NEW, headers=headers)
    again = await api.call("POST", "/api/v1/orders", json=dict(reversed(NEW.items())), headers=headers)
    assert first[0] == again[0] == 201
    assert again[1] == first[1]
    assert again[2]["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first[2]
    confirm = {"Idempotency-Key": "a3c2f1d0-confirm-1"}
    confirmed = await api.call("POST", "/api/v1/orders/J-1/confirm", headers=confirm)
    assert (await api.call("POST", "/api/v1/orders/J-1/confirm", headers=confirm))[1] == confirmed[1]
    with api.coop.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 1
        assert session.scalar(select(func.count()).select_from(IdempotentRequest)) == 2
    status, problem, _ = await api.call("POST", "/api/v1/orders", json={**NEW, "note": "other"}, headers=headers)
    assert (status, problem["code"]) == (422, "api.idempotency_key_reused")
    # The same key is the other customer's own: it names nothing of Martin's.
    status, theirs, _ = await api.call("POST", "/api/v1/orders", "rose", json={**NEW, "pickup": "75002"},
                                       headers=headers)  # fmt: skip
    assert (status, theirs["code"]) == (201, "J-2")


def test_a_concurrent_retry_loses_to_the_first_and_gets_its_answer(shop: Coop) -> None:
    """Two attempts both past the lookup: the second's insert fails, and it answers with the first's."""
    from coopbot.db import transaction
    from coopbot.services.dispatch import idempotency

    customer = shop.get_member("martin")
    now = shop.clock.now()
    first = idempotency.Answer(201, {"code": "J-1"})
    with transaction(shop.bot.sessions) as session:
        idempotency.remember(session, customer, "k", "print", first, now)
    with pytest.raises(idempotency.Replayed) as replayed, transaction(shop.bot.sessions) as session:
        idempotency.remember(session, customer, "k", "print", idempotency.Answer(201, {"code": "J-2"}), now)
    assert replayed.value.answer == first


async def test_the_openapi_document_lists_every_route_the_app_serves(api: Api) -> None:
    async with api.client.get("/api/v1/openapi.json") as response:
        assert response.status == 200
        doc = await response.json()
    assert doc["openapi"] == "3.1.0"
    served = {(route.method.lower(), route.resource.canonical) for route in api.client.app.router.routes()
              if route.resource is not None and route.method != "HEAD"}  # fmt: skip
    documented = {(method, path) for path, item in doc["paths"].items() for method in item if method != "parameters"}
    assert served == documented
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
