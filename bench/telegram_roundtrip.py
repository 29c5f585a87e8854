"""How long a member waits for the bot on Telegram, next to the fastest bot possible.

Through the fake Bot API of the tests (a real HTTP server on 127.0.0.1, in its
own thread), a member types `/whoami` to the real co-op bot (python-telegram-bot
polling, the transport, the router, SQLite), and presses a button whose command
is `/whoami`. The time runs from the moment getUpdates hands the update to the
bot to the moment the bot's answer (sendMessage, or editMessageText for the
press) reaches the server. In the same run, on the same server, a bare
python-telegram-bot echo bot answers the same updates (it echoes the text, and
answers and edits on a press), so what is left is the cost of coopbot itself.
The echo bot runs before and after ours, half of its rounds each time, so a
drift of the machine hits both. Printed: p50 and p99 of each and the ratio of
the p50s. Target: ours at most 1.5x the echo bot's.

    /tmp/venv/bin/python bench/telegram_roundtrip.py --rounds 200
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from coopbot.app import CoopBot
from coopbot.chat import Address, Button, Outgoing
from coopbot.config import Config
from coopbot.db import transaction
from coopbot.services import members as members_svc
from coopbot.transports.telegram import TelegramTransport, build_telegram_transport
from tests.telegram.fake_bot_api import FakeBotApi, FakeUser, FloodLimits

TARGET = 1.5
TOKEN_ENV = "COOPBOT_BENCH_TELEGRAM_TOKEN"
Round = Callable[[], Awaitable[float]]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def text_round(api: FakeBotApi, member: FakeUser, text: str) -> float:
    """Seconds from getUpdates handing over `text` to the bot's answer reaching the server."""
    update_id = api.say(member, text)["update_id"]
    before = len(api.sent_to(member.id))
    await api.wait_for(lambda: len(api.sent_to(member.id)) > before, timeout=30)
    answer = next(c for c in reversed(api.calls) if c.method == "sendMessage" and c.chat_id == member.id)
    return answer.at - api.handed_at[update_id]


async def press_round(api: FakeBotApi, member: FakeUser, post: Callable[[], Awaitable[None]]) -> float:
    """Seconds from getUpdates handing over a button press to the edited message reaching the server."""
    await post()
    message = api.sent_to(member.id)[-1]
    update_id = api.press(member, message, label="Me")["update_id"]
    edits = api.count("editMessageText", "ok")
    await api.wait_for(lambda: api.count("editMessageText", "ok") > edits, timeout=30)
    edit = next(c for c in reversed(api.calls) if c.method == "editMessageText" and c.outcome == "ok")
    return edit.at - api.handed_at[update_id]


class EchoBot:
    """The baseline: says back what it reads; on a press, answers and edits the message."""

    def __init__(self, api: FakeBotApi) -> None:
        self.app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder().token(api.token).base_url(api.base_url).build()
        )
        self.app.add_handler(MessageHandler(filters.TEXT, self.echo))
        self.app.add_handler(CallbackQueryHandler(self.pressed))

    @staticmethod
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(str(update.message.text))

    @staticmethod
    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer()
        await query.edit_message_text(f"pressed {query.data}")

    async def run(self, rounds: int, one_round: Round) -> list[float]:
        assert self.app.updater is not None
        await self.app.start()
        await self.app.updater.start_polling(timeout=10)
        try:
            return [await one_round() for _ in range(rounds)]
        finally:
            await self.app.updater.stop()
            await self.app.stop()


async def measure(rounds: int, workdir: Path) -> dict[str, dict[str, list[float]]]:
    api = FakeBotApi()
    api.limits = FloodLimits(per_second=10**9, private_burst=10**9, group_per_minute=10**9)
    await api.start()
    os.environ[TOKEN_ENV] = api.token
    member = api.user(4242, "Bo", started=True)
    config = Config.model_validate(
        {
            "database": {"url": f"sqlite:///{workdir / 'bench.sqlite3'}"},
            "telegram": {"enabled": True, "token_env": TOKEN_ENV, "api_base_url": api.base_url},
        }
    )
    results: dict[str, dict[str, list[float]]] = {"coopbot": {}, "echo": {}}
    echo = EchoBot(api)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Me", callback_data="/whoami")]])

    async def echo_post() -> None:
        await echo.app.bot.send_message(member.id, "Tap", reply_markup=keyboard)

    async with echo.app:
        half = rounds // 2
        first_text = await echo.run(half, lambda: text_round(api, member, "/whoami"))
        first_press = await echo.run(half, lambda: press_round(api, member, echo_post))

        bot = CoopBot(config)
        transport = build_telegram_transport(config, bot)
        bot.add_transport(transport)
        with transaction(bot.sessions) as session:
            bo = members_svc.create_member(session, "Bo", "member", bot.clock.now())
            members_svc.add_identity(session, bo, "telegram", str(member.id), bot.clock.now(), "Bo")
        await bot.start()
        try:

            async def ours_post() -> None:
                await post_button(transport, member)

            results["coopbot"]["/whoami"] = [await text_round(api, member, "/whoami") for _ in range(rounds)]
            results["coopbot"]["press"] = [await press_round(api, member, ours_post) for _ in range(rounds)]
        finally:
            await bot.stop()
            bot.dispose()

        results["echo"]["/whoami"] = first_text + await echo.run(
            rounds - half, lambda: text_round(api, member, "/whoami")
        )
        results["echo"]["press"] = first_press + await echo.run(
            rounds - half, lambda: press_round(api, member, echo_post)
        )
    await api.stop()
    return results


async def post_button(transport: TelegramTransport, member: FakeUser) -> None:
    message = Outgoing("Tap", buttons=(Button("Me", "/whoami"),))
    await transport.send(Address("telegram", str(member.id), private=True), message, "bench")


def report(results: dict[str, dict[str, list[float]]]) -> bool:
    ok = True
    print(f"{'':10} {'bot':8} {'rounds':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for kind in ("/whoami", "press"):
        for who in ("coopbot", "echo"):
            values = results[who][kind]
            p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
            print(f"{kind:10} {who:8} {len(values):>6} {p50:>8.2f} {p99:>8.2f}")
        ratio = statistics.median(results["coopbot"][kind]) / statistics.median(results["echo"][kind])
        verdict = "ok" if ratio <= TARGET else f"over the {TARGET}x target"
        ok = ok and ratio <= TARGET
        print(f"{kind:10} ratio of p50s: {ratio:.2f}x ({verdict})")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as workdir:
        results = asyncio.run(measure(args.rounds, Path(workdir)))
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
