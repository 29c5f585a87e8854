"""Webhook mode: Telegram posts updates to us, and only Telegram (it knows the secret) may."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from coopbot.errors import ConfigError
from coopbot.runner import add_configured_transports
from coopbot.transports.telegram.transport import build_telegram_transport
from tests.telegram.conftest import TOKEN_ENV, running_coop, telegram_config
from tests.telegram.fake_bot_api import FakeBotApi

SECRET_ENV = "COOPBOT_TEST_WEBHOOK_SECRET"
SECRET = "s3cret_from-the-installer"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_updates_posted_with_the_secret_are_handled_and_others_refused(
    fake_api: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = fake_api
    monkeypatch.setenv(TOKEN_ENV, api.token)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    port = free_port()
    config = telegram_config(
        api,
        tmp_path / "coop.sqlite3",
        mode="webhook",
        webhook_listen="127.0.0.1",
        webhook_port=port,
        webhook_url=f"http://127.0.0.1:{port}/telegram/hook",
        webhook_secret_env=SECRET_ENV,
    )
    coop = await running_coop(api, config, add_configured_transports)
    try:
        assert api.webhook == {"url": f"http://127.0.0.1:{port}/telegram/hook", "secret_token": SECRET}
        bo = api.user(1003, "Bo")
        coop.member(bo)
        assert (await coop.ask(bo, "/whoami")).startswith("Bo (#1)")
        await api.wait_for(lambda: api.webhook_statuses == [200])
        # Telegram is told "handled" (200) only once the answer is out: a crash before makes it resend
        answer = next(c for c in api.calls if c.method == "sendMessage")
        assert api.webhook_answered_at[1] > answer.at
        # forged updates: no secret, or the wrong one
        forged = {"update_id": 999, **api.typed(bo, "/start")}
        assert await api.post_webhook(forged, secret=None) == 403
        assert await api.post_webhook(forged, secret="guess") == 403
        await coop.ask(bo, "/help", contains="Commands")
        assert [m["text"].split(" ")[0] for m in api.sent_to(bo.id)] == ["Bo", "Commands"]
        await api.wait_for(lambda: api.webhook_statuses == [200, 200])
        assert api.count("getUpdates") == 0
    finally:
        await coop.bot.stop()
        coop.bot.dispose()


def test_webhook_mode_without_a_secret_refuses_to_start(
    fake_api: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, fake_api.token)
    monkeypatch.delenv(SECRET_ENV, raising=False)
    config = telegram_config(
        fake_api, tmp_path / "c.sqlite3", mode="webhook", webhook_url="https://bot.example.org/tg",
        webhook_secret_env=SECRET_ENV,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=SECRET_ENV):
        build_telegram_transport(config)
