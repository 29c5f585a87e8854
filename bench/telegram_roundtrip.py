"""How long a member waits for the bot on Telegram, next to the fastest bot possible.

Through the fake Bot API of the tests (a real HTTP server on 127.0.0.1, run
here), a member types `/whoami` to the real co-op bot (`coopbot run`:
python-telegram-bot polling, the transport, the router, SQLite), and presses a
button whose command is `/whoami`. The time runs from the moment getUpdates
hands the update to the bot to the moment the bot's answer (sendMessage, or
editMessageText for the press) reaches the server. In the same run, on the
same server, a bare python-telegram-bot echo bot answers the same updates (it
echoes the text, and answers and edits on a press), so what is left is the
cost of coopbot itself. The echo bot runs before and after ours, half of its
rounds each time, so a drift of the machine hits both. Printed: p50 and p99 of
each and the ratio of the p50s. Target: ours at most 1.5x the echo bot's.

Each bot runs in a process of its own, as it does in production, where the
Bot API is another machine: sharing this process's interpreter lock with the
server would charge the server's own work to whichever bot runs threads.

    python bench/telegram_roundtrip.py --rounds 200
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

from coopbot.app import CoopBot
from coopbot.config import Config, load_config
from coopbot.db import transaction
from coopbot.services import members as members_svc
from tests.telegram.fake_bot_api import FakeBotApi, FakeUser, FloodLimits

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.5
#: Rounds each bot answers before the measured ones (connections opened, caches warm).
WARM_UP = 5
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


ECHO_BOT = """
import sys
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, MessageHandler, filters

async def echo(update, context):
    await update.message.reply_text(str(update.message.text))

async def pressed(update, context):
    query = update.callback_query
    await query.answer()
    await query.edit_message_text(f"pressed {query.data}")

app = ApplicationBuilder().token(sys.argv[1]).base_url(sys.argv[2]).build()
app.add_handler(MessageHandler(filters.TEXT, echo))
app.add_handler(CallbackQueryHandler(pressed))
app.run_polling(timeout=10)
"""


class BotProcess:
    """A bot running in a process of its own, as in production, polling the fake server."""

    def __init__(self, api: FakeBotApi, command: list[str], env: dict[str, str], log: Path) -> None:
        self.api, self.command, self.env, self.log = api, command, env, log
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> BotProcess:
        polls = self.api.count("getUpdates")
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        try:
            await self.api.wait_for(lambda: self.api.count("getUpdates") > polls + 1, timeout=60)
        except Exception:
            raise SystemExit(f"the bot did not start polling; its output:\n{self.log.read_text()}") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        await asyncio.to_thread(self.process.wait, 30)


async def run_rounds(bot: BotProcess, rounds: int, one_round: Round) -> list[float]:
    async with bot:
        for _ in range(WARM_UP):
            await one_round()
        return [await one_round() for _ in range(rounds)]


async def measure(rounds: int, workdir: Path) -> dict[str, dict[str, list[float]]]:
    api = FakeBotApi()
    api.limits = FloodLimits(per_second=10**9, private_burst=10**9, group_per_minute=10**9)
    await api.start()
    member = api.user(4242, "Bo", started=True)
    config_file = workdir / "coopbot.toml"
    config_file.write_text(
        f'[database]\nurl = "sqlite:///{workdir / "bench.sqlite3"}"\n'
        f'[telegram]\nenabled = true\ntoken_env = "{TOKEN_ENV}"\napi_base_url = "{api.base_url}"\n',
        encoding="utf-8",
    )
    add_member(load_config(config_file), member)
    env = {**os.environ, TOKEN_ENV: api.token, "PYTHONPATH": str(ROOT)}
    log = workdir / "bots.log"
    ours = BotProcess(api, [sys.executable, "-m", "coopbot", "--config", str(config_file), "run"], env, log)
    echo = BotProcess(api, [sys.executable, "-c", ECHO_BOT, api.token, api.base_url], env, log)
    poster = Bot(api.token, base_url=api.base_url)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Me", callback_data="/whoami")]])

    async def post() -> None:
        await poster.send_message(member.id, "Tap", reply_markup=keyboard)

    def whoami() -> Awaitable[float]:
        return text_round(api, member, "/whoami")

    def press() -> Awaitable[float]:
        return press_round(api, member, post)

    results: dict[str, dict[str, list[float]]] = {"coopbot": {}, "echo": {}}
    async with poster:
        half = rounds // 2
        first = {"/whoami": await run_rounds(echo, half, whoami), "press": await run_rounds(echo, half, press)}
        results["coopbot"]["/whoami"] = await run_rounds(ours, rounds, whoami)
        results["coopbot"]["press"] = await run_rounds(ours, rounds, press)
        results["echo"]["/whoami"] = first["/whoami"] + await run_rounds(echo, rounds - half, whoami)
        results["echo"]["press"] = first["press"] + await run_rounds(echo, rounds - half, press)
    await api.stop()
    return results


def add_member(config: Config, member: FakeUser) -> None:
    bot = CoopBot(config)
    try:
        with transaction(bot.sessions) as session:
            bo = members_svc.create_member(session, member.first_name, "member", bot.clock.now())
            members_svc.add_identity(session, bo, "telegram", str(member.id), bot.clock.now(), member.first_name)
    finally:
        bot.dispose()


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
