"""Nothing a member said is lost to a crash, and nothing is answered twice.

Telegram keeps an update until the bot confirms it; the bot confirms only
what it has handled. The first test kills `coopbot run` (a process of its
own, as in production) while it holds updates it has fetched but not yet
handled; the restarted bot answers each of them exactly once. The second
switches to a new bot whose update ids start at 1 again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from coopbot.runner import add_configured_transports
from tests.telegram.conftest import TOKEN_ENV, TelegramCoop, running_coop, telegram_config
from tests.telegram.fake_bot_api import FakeBotApi

ROOT = Path(__file__).resolve().parents[2]


class BotProcess:
    """`coopbot run` in a process of its own, polling the fake Telegram."""

    def __init__(self, api: FakeBotApi, workdir: Path) -> None:
        self.api = api
        self.database = workdir / "coop.sqlite3"
        self.config = workdir / "coopbot.toml"
        self.config.write_text(
            f'[database]\nurl = "sqlite:///{self.database}"\n'
            f'[telegram]\nenabled = true\ntoken_env = "{TOKEN_ENV}"\napi_base_url = "{api.base_url}"\n',
            encoding="utf-8",
        )
        self.log = workdir / "bot.log"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        """Start it and wait until it polls (so its database is up to date)."""
        polls = self.api.count("getUpdates")
        env = {**os.environ, TOKEN_ENV: self.api.token, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "coopbot", "--config", str(self.config), "run"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            await self.api.wait_for(lambda: self.api.count("getUpdates") > polls, timeout=60)
        except TimeoutError:
            raise AssertionError(f"the bot never polled; its output:\n{self.log.read_text()}") from None

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@contextlib.contextmanager
def write_lock_held(database: Path) -> Iterator[None]:
    """Another connection holds SQLite's write lock: the bot can fetch but not handle (commit)."""
    with contextlib.closing(sqlite3.connect(database, isolation_level=None, timeout=30)) as other:
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


async def test_updates_fetched_but_not_handled_when_the_bot_is_killed_are_handled_once_after_restart(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    api = fake_api
    ana, bo = api.user(1001, "Ana"), api.user(1002, "Bo")
    bot = BotProcess(api, tmp_path)
    await bot.start()
    try:
        with write_lock_held(bot.database):
            said = [api.say(ana, "/start"), api.say(ana, "/help"), api.say(bo, "/start")]
            ids = [update["update_id"] for update in said]
            await api.wait_for(lambda: all(i in api.handed_at for i in ids))
            # the bot asks for more while it still holds them: the moment PTB's Updater confirmed them
            handed = max(api.handed_at[i] for i in ids)
            await api.wait_for(lambda: any(c.method == "getUpdates" and c.at > handed for c in api.calls))
            bot.kill()
        assert api.delivered == []
        offsets = [c.params.get("offset") for c in api.calls if c.method == "getUpdates"]
        assert all(offset is None or offset <= ids[0] for offset in offsets), offsets
        await bot.start()
        await api.wait_for(lambda: len(api.sent_to(ana.id)) == 2 and len(api.sent_to(bo.id)) == 1, timeout=30)
        # a later message is answered after them: by then a second answer to any of them would show
        api.say(bo, "/help")
        await api.wait_message(bo.id, "Commands", after=1)
        assert [m["text"].split()[0] for m in api.sent_to(ana.id)] == ["Hello!", "Commands"]
        assert [m["text"].split()[0] for m in api.sent_to(bo.id)] == ["Hello!", "Commands"]
    finally:
        bot.stop()


async def test_a_new_bot_whose_update_ids_start_again_is_answered_and_a_replay_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "coop.sqlite3"
    apis = [FakeBotApi("123456:TEST-fake-token"), FakeBotApi("654321:TEST-new-bot")]
    coop: TelegramCoop | None = None

    async def run_on(api: FakeBotApi) -> TelegramCoop:
        monkeypatch.setenv(TOKEN_ENV, api.token)
        return await running_coop(api, telegram_config(api, database), add_configured_transports)

    try:
        for api in apis:
            await api.start()
            coop = await run_on(api)
            bo = api.user(1003, "Bo")
            if api is apis[0]:
                coop.member(bo)
            assert (await coop.ask(bo, "/whoami")).startswith("Bo (#1)")
            await coop.bot.stop()
            coop.bot.dispose()
        old, new = apis
        assert set(old.handed_at) == set(new.handed_at) == {1}
        # the new bot crashes before confirming: Telegram hands update 1 over again
        new.replay_unconfirmed(1)
        with caplog.at_level(logging.WARNING, logger="handlers.registry"):
            coop = await run_on(new)
            await coop.ask(bo, "/start", contains="Bo")
        assert [m["text"].split()[0] for m in new.sent_to(bo.id)] == ["Bo", "Hello"]
        assert "update 654321:1 on platform telegram was already handled; ignored" in caplog.text
        assert "/whoami" not in caplog.text
    finally:
        if coop is not None:
            await coop.bot.stop()
            coop.bot.dispose()
        for api in apis:
            await api.stop()
