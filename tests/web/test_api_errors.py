"""The shops' API refuses plainly: RFC 9457 problems a shop's developer can act on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Coop
from tests.web.test_api import NEW, Api, serve

PROBLEM = "application/problem+json"


@pytest.fixture
async def api(shop: Coop) -> AsyncIterator[Api]:
    async for served in serve(shop, rate_per_minute=3):
        yield served


async def test_bad_json_and_unknown_fields_are_refused_saying_what_to_send(api: Api) -> None:
    status, problem, headers = await api.call("POST", "/api/v1/orders", data=b'{"dropoff": ',
                                              headers={"Content-Type": "application/json"})  # fmt: skip
    assert (status, problem["type"], problem["code"]) == (400, "urn:coopbot:problem:bad-request", "api.bad_json")
    assert headers["Content-Type"].startswith(PROBLEM)
    assert problem["detail"].startswith("The request body is not valid JSON (Expecting value)")
    status, problem, _ = await api.call("POST", "/api/v1/orders", json={**NEW, "drop_off": "x", "price": "1"})
    assert (status, problem["code"]) == (422, "api.unknown_fields")
    assert problem["detail"] == ("Unknown field(s) drop_off, price. This request takes only pickup, dropoff, "
                                 "deadline, note, external_ref.")  # fmt: skip


async def test_a_missing_or_wrong_key_is_401_with_www_authenticate(api: Api) -> None:
    async with api.client.post("/api/v1/orders", json=NEW) as response:
        problem = await response.json(content_type=None)
        assert (response.status, problem["code"]) == (401, "api.no_key")
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="coopbot"'
    api.keys["forger"] = api.keys["martin"][:-4] + "AAAA"
    status, problem, headers = await api.call("GET", "/api/v1/orders", "forger")
    assert (status, problem["code"]) == (401, "api.wrong_key")
    assert headers["WWW-Authenticate"] == 'Bearer realm="coopbot", error="invalid_token"'


async def test_another_customers_order_does_not_exist_for_them(api: Api) -> None:
    assert (await api.call("POST", "/api/v1/orders", json=NEW))[0] == 201
    for method, path in (("GET", "/api/v1/orders/J-1"), ("POST", "/api/v1/orders/J-1/confirm")):
        status, problem, _ = await api.call(method, path, "rose")
        assert (status, problem["detail"]) == (404, "You have no order J-1. Type /orders to see yours.")
    status, listed, _ = await api.call("GET", "/api/v1/orders", "rose")
    assert listed == {"orders": [], "next": None}


async def test_over_the_rate_a_key_gets_429_with_retry_after_until_time_passes(api: Api) -> None:
    for _ in range(3):
        assert (await api.call("GET", "/api/v1/orders"))[0] == 200
    status, problem, headers = await api.call("GET", "/api/v1/orders")
    assert (status, problem["code"], headers["Retry-After"]) == (429, "api.rate_limited", "20")
    assert (await api.call("GET", "/api/v1/orders", "rose"))[0] == 200  # per key
    api.coop.clock.advance(seconds=20)
    assert (await api.call("GET", "/api/v1/orders"))[0] == 200


async def test_an_address_outside_the_zones_is_the_chats_sentence(api: Api) -> None:
    status, problem, _ = await api.call("POST", "/api/v1/orders", json={"dropoff": "1 place Bellecour, 69002 Lyon"})
    assert (status, problem["code"]) == (422, "prices.not_covered")
    assert problem["detail"] == ("No price zone covers “1 place Bellecour, 69002 Lyon”. Check the postcode, or ask a "
                                 "coordinator, who can post the job with a price.")  # fmt: skip
    naive = {"dropoff": "75002", "deadline": "2026-12-01T12:30"}
    status, problem, _ = await api.call("POST", "/api/v1/orders", json=naive)
    assert (status, problem["code"]) == (422, "api.deadline_offset")


async def test_no_answer_shows_a_chat_account(api: Api) -> None:
    assert (await api.call("POST", "/api/v1/orders", json=NEW))[0] == 201
    await api.call("POST", "/api/v1/orders/J-1/confirm")
    status, order, _ = await api.call("GET", "/api/v1/orders/J-1")
    assert "ana lopez" not in str(order).lower() and "console" not in str(order)
    status, problem, _ = await api.call("GET", "/api/v1/nothing")
    assert (status, problem["code"]) == (404, "api.no_route")
