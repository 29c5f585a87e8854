"""Telegram webhook mode with two `coopbot run` on one PostgreSQL behind a small proxy: every
process serves the webhook, whichever leads; 500 updates spread over both (some delivered to
both, as Telegram redelivers after a timeout) are each handled exactly once."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from coopbot.app import CoopBot
from coopbot.db import transaction
from coopbot.services.members import accounts as members_svc
from tests.conftest import make_config
from tests.ops.processes import LEADS, RUNNING, BotProcess
from tests.telegram.fake_bot_api import FakeBotApi, FakeUser

pytestmark = pytest.mark.postgres

TOKEN_ENV = "COOPBOT_TEST_TELEGRAM_TOKEN"
SECRET_ENV = "COOPBOT_TEST_WEBHOOK_SECRET"
SECRET = "proxy-test-secret"
UPDATES = 500
MEMBERS = 50
#: Every REDELIVERED-th update also goes to the other process, after the first has answered.
REDELIVERED = 5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotApi]:
    server = FakeBotApi()
    server.limits.per_second = 100_000  # the count matters here, not the pace
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class Proxy:
    """The load balancer: each POST to the next process in turn; some to both."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.turn = itertools.count()
        self.served = [0 for _ in ports]
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/hook", self.forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _post(self, index: int, body: bytes, headers: dict[str, str]) -> int:
        assert self._http is not None
        async with self._http.post(f"http://127.0.0.1:{self.ports[index]}/hook", data=body, headers=headers) as answer:
            self.served[index] += 1
            return answer.status

    async def forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {key: value for key, value in request.headers.items() if key.lower() != "host"}
        turn = next(self.turn)
        index = turn % len(self.ports)
        status = await self._post(index, body, headers)
        if turn % REDELIVERED == 0:
            assert await self._post((index + 1) % len(self.ports), body, headers) == 200
        return web.Response(status=status)


def write_config(folder: Path, url: str, api: FakeBotApi, port: int, proxy: Proxy) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    path.write_text(
        f'[coop]\nname = "Coop Test"\n[database]\nurl = "{url}"\n'
        f'[telegram]\nenabled = true\ntoken_env = "{TOKEN_ENV}"\napi_base_url = "{api.base_url}"\n'
        f'mode = "webhook"\nwebhook_listen = "127.0.0.1"\nwebhook_port = {port}\n'
        f'webhook_url = "http://127.0.0.1:{proxy.port}/hook"\nwebhook_secret_env = "{SECRET_ENV}"\n'
        "[leadership]\ncheck_seconds = 0.5\nretry_seconds = 0.5\n",
        encoding="utf-8",
    )
    return path


def members(url: str, api: FakeBotApi) -> list[FakeUser]:
    users = [api.user(7000 + n, f"Webhook{n}", started=True) for n in range(MEMBERS)]
    bot = CoopBot(make_config(url))
    now = datetime.now(UTC)
    with transaction(bot.sessions) as session:
        for user in users:
            member = members_svc.create_member(session, user.first_name, "member", now)
            members_svc.add_identity(session, member, "telegram", str(user.id), now, user.first_name)
    bot.dispose()
    return users


async def test_every_process_serves_the_webhook_and_each_update_is_handled_once(
    pg_url: str, fake_api: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, fake_api.token)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    users = members(pg_url, fake_api)
    ports = [free_port(), free_port()]
    proxy = Proxy(ports)
    await proxy.start()
    processes: list[BotProcess] = []
    try:
        for n, port in enumerate(ports):
            processes.append(BotProcess(write_config(tmp_path / f"p{n}", pg_url, fake_api, port, proxy)))
            await asyncio.to_thread(processes[-1].wait_line, RUNNING)
        await asyncio.to_thread(processes[0].wait_line, LEADS)
        for n in range(UPDATES):
            fake_api.say(users[n % MEMBERS], "/whoami")
        await fake_api.wait_for(lambda: len(fake_api.webhook_statuses) == UPDATES, timeout=180)
        assert set(fake_api.webhook_statuses) == {200}
        replies = sum(len(fake_api.sent_to(user.id)) for user in users)
        assert replies == UPDATES, f"{replies} answers to {UPDATES} updates"
        assert all(served >= UPDATES // 2 for served in proxy.served), proxy.served
        assert sum(process.count(LEADS) for process in processes) == 1
        assert fake_api.count("getUpdates") == 0
    finally:
        for process in processes:
            assert process.stop() == 0, process.output()
        await proxy.stop()
