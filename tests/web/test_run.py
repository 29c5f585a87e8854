"""`coopbot run` with `[web] enabled`: the web door opens after the bot starts, says where,
answers while the bot runs, and is closed when the bot stops."""

from __future__ import annotations

import asyncio
import io
import re
import signal
from pathlib import Path

import aiohttp
import pytest

from coopbot import runner
from coopbot.app import CoopBot
from coopbot.transports.console import ConsoleTransport
from tests.conftest import make_config

LISTENING = re.compile(r"The web door is listening on (http://\S+/)")


class Output(io.StringIO):
    """What `coopbot run` prints, with an event for the line a test waits on."""

    def __init__(self) -> None:
        super().__init__()
        self.running = asyncio.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if "coopbot is running on" in text:
            self.running.set()
        return written


def console_only(bot: CoopBot) -> None:
    """Stands for Telegram or Matrix: a transport that is always connected."""
    bot.add_transport(ConsoleTransport(out=None))


async def run_until_running(config_dir: Path, monkeypatch: pytest.MonkeyPatch, **web: object) -> tuple[
    asyncio.Task[int], Output
]:
    monkeypatch.setattr(runner, "add_configured_transports", console_only)
    config = make_config(f"sqlite:///{config_dir / 'coop.sqlite3'}", web=web)
    out = Output()
    task = asyncio.create_task(runner.run_forever(config, out))
    await asyncio.wait_for(out.running.wait(), timeout=60)
    return task, out


async def test_run_serves_the_web_door_and_closes_it_on_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task, out = await run_until_running(tmp_path, monkeypatch, enabled=True, port=0)
    found = LISTENING.search(out.getvalue())
    assert found is not None, out.getvalue()
    url = found.group(1)
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "healthz") as response:
            assert response.status == 200
        async with http.get(url + "readyz") as response:
            assert response.status == 200, await response.text()
        signal.raise_signal(signal.SIGTERM)
        assert await asyncio.wait_for(task, timeout=60) == 0
        with pytest.raises(aiohttp.ClientConnectorError):
            await http.get(url + "healthz")

