"""Each request to Telegram has a connection of its own, reused, and bounded as httpx's pool was."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from telegram.error import TimedOut

from coopbot.chat import Address, Outgoing, TransientSendError
from coopbot.transports.telegram.connections import OwnConnections
from coopbot.transports.telegram.transport import TelegramTransport, build_application
from tests.telegram.conftest import telegram_config
from tests.telegram.fake_bot_api import FakeBotApi


def get_me(api: FakeBotApi) -> str:
    return f"{api.base_url}{api.token}/getMe"



async def test_sends_in_flight_each_have_a_connection_and_reuse_it(
    fake_api: FakeBotApi, transport: TelegramTransport
) -> None:
    connections = transport.bot.request._client._transport  # type: ignore[attr-defined]
    assert isinstance(connections, OwnConnections)  # the bot's calls, but getUpdates
    users = [fake_api.user(100 + n, f"U{n}", started=True) for n in range(8)]
    opened = connections.opened

    async def round_(n: int) -> list[str]:
        sends = [transport.send(Address("telegram", str(u.id), True), Outgoing("hi"), f"{u.id}:{n}") for u in users]
        return await asyncio.gather(*sends)

    first = await round_(1)
    assert connections.opened - opened <= 8  # at most one a send in flight
    second = await round_(2)
    assert connections.opened - opened <= 8  # and kept for the next ones
    assert first == [f"{u.id}:1" for u in users] and second == [f"{u.id}:2" for u in users]


async def test_beyond_the_limit_a_request_waits_for_a_connection_then_times_out(fake_api: FakeBotApi) -> None:
    connections = OwnConnections(limit=2)
    async with httpx.AsyncClient(transport=connections, timeout=httpx.Timeout(5.0, pool=5.0)) as client:
        answers = await asyncio.gather(*(client.get(get_me(fake_api)) for _ in range(5)))
        assert [a.status_code for a in answers] == [200] * 5 and connections.opened == 2
        fake_api.hang("getMe", times=2)  # both connections busy until their read times out
        hung = [asyncio.create_task(client.get(get_me(fake_api), timeout=httpx.Timeout(5.0, read=1.0)))
                for _ in range(2)]  # fmt: skip
        await fake_api.wait_for(lambda: fake_api.count("getMe", "hang") == 2)
        with pytest.raises(httpx.PoolTimeout):
            await client.get(get_me(fake_api), timeout=httpx.Timeout(5.0, pool=0.05))
        waiting = asyncio.create_task(client.get(get_me(fake_api)))
        for task in hung:
            with pytest.raises(httpx.ReadTimeout):
                await task
        assert (await waiting).status_code == 200  # given a connection the hung ones left
        assert fake_api.count("getMe") == 5 + 2 + 1


async def test_a_full_pool_is_telegrams_try_again(fake_api: FakeBotApi, tmp_path: Path) -> None:
    """PTB reads httpx's PoolTimeout as TimedOut, a network error: the outbox retries later."""
    ana = fake_api.user(10, "Ana", started=True)
    config = telegram_config(fake_api, tmp_path / "unused.sqlite3")
    app = build_application(config.telegram, fake_api.token, request_timeout=0.5)
    async with app:
        transport = TelegramTransport(config, app)
        connections = transport.bot.request._client._transport  # type: ignore[attr-defined]
        await connections.aclose()  # as if every connection were in use
        connections.limit = 0
        with pytest.raises(TransientSendError) as full:
            await transport.send(Address("telegram", str(ana.id), True), Outgoing("hi"), "k")
        assert isinstance(full.value.__cause__, TimedOut) and "Pool timeout" in str(full.value)


async def test_closed_connections_are_opened_again(fake_api: FakeBotApi) -> None:
    """PTB closes its client at shutdown and builds another, on the same transport, at initialize."""
    connections = OwnConnections()
    async with httpx.AsyncClient(transport=connections) as client:
        assert (await client.get(get_me(fake_api))).status_code == 200
    async with httpx.AsyncClient(transport=connections) as client:
        assert (await client.get(get_me(fake_api))).status_code == 200
    assert connections.opened == 2
