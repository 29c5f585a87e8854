"""The web door's core, served for real on 127.0.0.1 and asked over HTTP: health,
readiness and why not, the headers every answer carries, the body cap, and a bug
answered without its stack trace."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from coopbot.app import CoopBot
from coopbot.db import make_engine, make_sessionmaker
from coopbot.web.server import SECURITY_HEADERS, WebServer
from tests.conftest import Coop


async def echo_length(request: web.Request) -> web.Response:
    return web.Response(text=str(len(await request.read())))


async def broken(request: web.Request) -> web.Response:
    raise RuntimeError("secret detail of the code")


def add_test_routes(app: web.Application, bot: CoopBot) -> None:
    """A route adder as the API's and the public page's will be."""
    app.router.add_post("/echo", echo_length)
    app.router.add_get("/broken", broken)


@dataclass
class Door:
    server: WebServer
    http: aiohttp.ClientSession

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"


@pytest.fixture
async def door(coop: Coop) -> AsyncIterator[Door]:
    server = WebServer(coop.bot, [add_test_routes], listen="127.0.0.1", port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Door(server, http)
    finally:
        await server.stop()


async def test_healthz_answers_ok_while_the_process_runs(door: Door) -> None:
    assert door.server.port != 0
    async with door.http.get(door.url("/healthz")) as response:
        assert response.status == 200
        assert (await response.text()).strip() == "ok"


async def test_readyz_is_ready_with_the_database_and_the_console(door: Door) -> None:
    async with door.http.get(door.url("/readyz")) as response:
        assert response.status == 200, await response.text()


async def test_readyz_names_a_database_that_does_not_answer(coop: Coop, door: Door, tmp_path: Path) -> None:
    gone = make_engine(f"sqlite:///{tmp_path}/no-such-folder/coop.sqlite3")
    coop.bot.sessions = make_sessionmaker(gone)
    try:
        async with door.http.get(door.url("/readyz")) as response:
            assert response.status == 503
            assert "database: OperationalError: unable to open database file" in await response.text()
    finally:
        gone.dispose()


@dataclass
class Disconnected:
    """A transport still waiting for its platform, as Matrix is before its first sync."""

    platform: str = "matrix"
    connected: bool = False


async def test_readyz_names_a_transport_not_connected(coop: Coop, door: Door) -> None:
    coop.bot.transports["matrix"] = Disconnected()  # type: ignore[assignment]
    async with door.http.get(door.url("/readyz")) as response:
        assert response.status == 503
        assert (await response.text()).strip() == "matrix: not connected"


@pytest.mark.parametrize(("path", "status"), [("/healthz", 200), ("/no-such-page", 404), ("/readyz", 200)])
async def test_every_answer_carries_the_security_headers(door: Door, path: str, status: int) -> None:
    async with door.http.get(door.url(path)) as response:
        assert response.status == status
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, name
    assert "script-src 'none'" in SECURITY_HEADERS["Content-Security-Policy"]


async def test_a_body_over_the_cap_is_refused_with_413(door: Door) -> None:
    cap = door.server.bot.config.web.max_body_kib * 1024
    async with door.http.post(door.url("/echo"), data=b"x" * cap) as response:
        assert response.status == 200
        assert await response.text() == str(cap)
    async with door.http.post(door.url("/echo"), data=b"x" * (cap + 1)) as response:
        assert response.status == 413
        assert response.headers["X-Frame-Options"] == "DENY"
    async with door.http.post(door.url("/healthz"), data=b"x" * (cap + 1)) as response:
        assert response.status == 413  # refused before routing: no handler reads it


async def test_a_body_without_a_length_is_cut_at_the_cap(door: Door) -> None:
    cap = door.server.bot.config.web.max_body_kib * 1024

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(cap // 1024 + 1):
            yield b"x" * 1024

    async with door.http.post(door.url("/echo"), data=chunks()) as response:
        assert response.status == 413


async def test_a_bug_is_logged_and_answered_500_without_its_trace(
    door: Door, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="coopbot.web.server"):
        async with door.http.get(door.url("/broken")) as response:
            assert response.status == 500
            body = await response.text()
    assert "secret detail" not in body and "Traceback" not in body and "RuntimeError" not in body
    assert response.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert any("GET /broken failed" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_a_port_in_use_is_said_with_the_key_to_change(coop: Coop, door: Door) -> None:
    from coopbot.errors import ConfigError

    second = WebServer(coop.bot, listen="127.0.0.1", port=door.server.port)
    with pytest.raises(ConfigError, match=r"web: cannot listen on 127.0.0.1 port \d+ .*check web.listen and web.port"):
        await second.start()
