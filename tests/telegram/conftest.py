"""Fixtures for the Telegram tests: a fake Bot API on 127.0.0.1 and a co-op bot talking to it.

The bot is built by `coopbot.runner.add_configured_transports`, exactly as
`coopbot run` builds it; only `api_base_url` points at the fake.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from coopbot.app import CoopBot
from coopbot.config import Config
from coopbot.db import transaction
from coopbot.models import Identity
from coopbot.runner import add_configured_transports
from coopbot.services.members import accounts as members_svc
from coopbot.transports.telegram.transport import TelegramTransport, build_application
from tests.telegram.fake_bot_api import FakeBotApi, FakeChat, FakeUser

GROUP_ID = -1001000000001
COORDINATORS_ID = -1001000000002
TOKEN_ENV = "COOPBOT_TEST_TELEGRAM_TOKEN"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """PTB 22 warns about its own `RetryAfter.retry_after` type change when it builds one."""
    for item in items:
        if "tests/telegram" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning"))


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotApi]:
    server = FakeBotApi()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def telegram_config(api: FakeBotApi, db_path: Path, **telegram: Any) -> Config:
    section = {
        "enabled": True,
        "token_env": TOKEN_ENV,
        "api_base_url": api.base_url,
        "group_chat_ids": [GROUP_ID],
        "coordinator_chat_ids": [COORDINATORS_ID],
        **telegram,
    }
    return Config.model_validate(
        {"coop": {"name": "Coop Vélo"}, "database": {"url": f"sqlite:///{db_path}"}, "telegram": section}
    )


@dataclass
class TelegramCoop:
    """A running co-op bot whose members talk to it through the fake Telegram."""

    bot: CoopBot
    api: FakeBotApi
    group: FakeChat
    coordinators: FakeChat

    @property
    def transport(self) -> TelegramTransport:
        transport = self.bot.transports["telegram"]
        assert isinstance(transport, TelegramTransport)
        return transport

    @contextmanager
    def session(self) -> Iterator[Session]:
        with transaction(self.bot.sessions) as session:
            yield session

    def member(self, user: FakeUser, role: str = "member") -> int:
        """Someone already in the co-op (added by `coopbot member add --telegram`)."""
        now = datetime.now(UTC)
        with self.session() as session:
            member = members_svc.create_member(session, user.first_name, role, now)
            members_svc.add_identity(session, member, "telegram", str(user.id), now, user.first_name)
            return member.id

    def identity(self, user: FakeUser) -> Identity:
        with self.session() as session:
            found = members_svc.identity_of(session, "telegram", str(user.id))
            assert found is not None
            session.expunge(found)
            return found

    async def ask(self, user: FakeUser, text: str, chat: FakeChat | None = None, contains: str = "") -> str:
        """`user` says `text`; the bot's first answer in that chat containing `contains`."""
        chat_id = chat.id if chat else user.id
        before = len(self.api.sent_to(chat_id))
        self.api.say(user, text, chat)
        message = await self.api.wait_message(chat_id, contains, after=before)
        return str(message["text"])


async def running_coop(api: FakeBotApi, config: Config, build: Callable[[CoopBot], None]) -> TelegramCoop:
    bot = CoopBot(config)
    build(bot)
    await bot.start()
    return TelegramCoop(bot, api, api.group(GROUP_ID, "Coop Vélo"), api.group(COORDINATORS_ID, "Coordination"))


@asynccontextmanager
async def started(api: FakeBotApi, config: Config) -> AsyncIterator[TelegramCoop]:
    """The co-op running with the transports its config names, stopped and closed afterwards."""
    running = await running_coop(api, config, add_configured_transports)
    try:
        yield running
    finally:
        await running.bot.stop()
        running.bot.dispose()


@pytest.fixture
async def coop(fake_api: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TelegramCoop]:
    monkeypatch.setenv(TOKEN_ENV, fake_api.token)
    async with started(fake_api, telegram_config(fake_api, tmp_path / "coop.sqlite3")) as running:
        yield running


def invite_code(text: str) -> str:
    found = re.search(r"/join ([A-Z0-9-]+)", text)
    assert found, f"no invite code in {text!r}"
    return found.group(1)


@pytest.fixture
async def transport(fake_api: FakeBotApi, tmp_path: Path) -> AsyncIterator[TelegramTransport]:
    """The transport alone, on its own Application, talking to the fake Bot API."""
    config = telegram_config(fake_api, tmp_path / "unused.sqlite3")
    app = build_application(config.telegram, fake_api.token, request_timeout=1.0)
    async with app:
        yield TelegramTransport(config, app)
