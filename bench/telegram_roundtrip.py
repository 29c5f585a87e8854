"""How long a member waits for the bot on Telegram, next to the fastest bot possible.

Through the fake Bot API of the tests (a real HTTP server on 127.0.0.1, run
here), a member types `/whoami` to the real co-op bot (`coopbot run`:
python-telegram-bot polling, the transport, the router, SQLite), and presses a
button whose command is `/whoami`. The time runs from the moment getUpdates
hands the update to the bot to the moment the bot's answer (sendMessage, or
editMessageText for the press) reaches the server. In the same run a bare
python-telegram-bot echo bot answers the same updates (it echoes the text, and
answers and edits on a press), so what is left is the cost of coopbot itself.
Both bots run side by side, each polling a fake server of its own, and the
rounds alternate between them (one each, in turn): this machine's speed drifts
by a third from one minute to the next, and a drift must hit both bots alike.
Printed: p50 and p99 of each and the ratio of the p50s. Target: ours at most
1.5x the echo bot's.

The judged rows are the realistic ones, as a member meets the bot at lunch:
their last message was over a minute ago (so the bot writes when it last saw
them, as dispatch's idle check needs), and the outbox is delivering
notifications to other members in the same process meanwhile (rows queued by
another connection, 10 a second to 20 other chats, which also means every
commit there drops what the bot kept of the member, who is loaded afresh).
For the press, both bots do the same work in the same order: coopbot edits
the pressed message and then answers the press (the spinner stops), and so
does the echo bot; the round ends when both have reached the server.

Two rows for reference, not judged: the same command and press in a quiet
co-op, where nothing is written between two messages and the bot answers
from what it kept of the member (coopbot/loop_sessions.py).

Telegram's overall limit (30 messages a second) is lifted for coopbot here, as the fake
server's own limits are: the rounds follow each other as fast as the bots answer, a hundred
requests a second that no member makes, and coopbot's pacer would hold its answers back
where the echo bot, which paces nothing, goes on.

Each bot runs in a process of its own, as it does in production, where the
Bot API is another machine: sharing this process's interpreter lock with the
server would charge the server's own work to whichever bot runs threads.

    python bench/telegram_roundtrip.py --rounds 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

from coopbot.app import CoopBot
from coopbot.config import Config, load_config
from coopbot.db import transaction
from coopbot.services.members import accounts as members_svc
from tests.telegram.fake_bot_api import FakeBotApi, FakeUser, FloodLimits

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.5
#: Rounds each bot answers before the measured ones (connections opened, caches warm).
WARM_UP = 5
TOKEN_ENV = "COOPBOT_BENCH_TELEGRAM_TOKEN"
TEXT, PRESS = "/whoami", "press"
QUIET = " (quiet)"
#: Judged rows first; the quiet ones are for reference.
KINDS = (TEXT, PRESS, TEXT + QUIET, PRESS + QUIET)
#: Notifications the outbox delivers meanwhile in the realistic rounds: this many a second,
#: spread over OTHERS chats (each private chat takes one message a second at most).
STREAM_PER_SECOND = 10
OTHERS = 20


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def text_round(api: FakeBotApi, member: FakeUser, text: str) -> float:
    """Seconds from getUpdates handing over `text` to the bot's answer reaching the server."""
    before = len(api.sent_to(member.id))
    update_id = api.say(member, text)["update_id"]
    await api.wait_for(lambda: len(api.sent_to(member.id)) > before, timeout=30)
    answer = next(c for c in reversed(api.calls) if c.method == "sendMessage" and c.chat_id == member.id)
    return answer.at - api.handed_at[update_id]


async def press_round(api: FakeBotApi, member: FakeUser, post: Callable[[], Awaitable[None]]) -> float:
    """Seconds from getUpdates handing over a button press to both the edited message and the
    press's answer reaching the server, whichever came last."""
    await post()
    message = api.sent_to(member.id)[-1]
    edits, answers = api.count("editMessageText", "ok"), api.count("answerCallbackQuery", "ok")
    update_id = api.press(member, message, label="Me")["update_id"]
    await api.wait_for(
        lambda: api.count("editMessageText", "ok") > edits and api.count("answerCallbackQuery", "ok") > answers,
        timeout=30,
    )
    last = max(
        next(c for c in reversed(api.calls) if c.method == method and c.outcome == "ok").at
        for method in ("editMessageText", "answerCallbackQuery")
    )
    return last - api.handed_at[update_id]


ECHO_BOT = """
import sys
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, MessageHandler, filters

async def echo(update, context):
    await update.message.reply_text(str(update.message.text))

async def pressed(update, context):
    query = update.callback_query
    await query.edit_message_text(f"pressed {query.data}")
    await query.answer()

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


@dataclass
class Side:
    """One bot, the fake server it polls, and the member who talks to it."""

    name: str
    api: FakeBotApi
    member: FakeUser
    #: coopbot's SQLite file: its member's last visit is set back before each realistic round.
    database: Path | None = None
    process: BotProcess | None = None
    poster: Bot | None = None
    #: Notifications to the other chats delivered before the current realistic kind.
    delivered_before: int = 0
    times: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})

    def round(self, kind: str) -> Awaitable[float]:
        if not kind.endswith(QUIET) and self.database is not None:
            seen_long_ago(self.database, self.member)
        if kind.startswith(PRESS):
            return press_round(self.api, self.member, self.post)
        return text_round(self.api, self.member, "/whoami")

    async def post(self) -> None:
        assert self.poster is not None
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Me", callback_data="/whoami")]])
        await self.poster.send_message(self.member.id, "Tap", reply_markup=keyboard)


def seen_long_ago(database: Path, member: FakeUser) -> None:
    """The member last wrote two minutes ago, as another connection would leave it."""
    with contextlib.closing(sqlite3.connect(database, isolation_level=None, timeout=10)) as other:
        other.execute(
            "UPDATE member SET last_seen_at = strftime('%Y-%m-%d %H:%M:%f000', 'now', '-2 minutes') "
            "WHERE id = (SELECT member_id FROM identity WHERE platform = 'telegram' AND external_id = ?)",
            (str(member.id),),
        )


async def notifications(database: Path, chats: list[int], stop: asyncio.Event) -> int:
    """Queue STREAM_PER_SECOND notifications a second for the bot's outbox until `stop`, as
    another process (a sweep, the web door) would; returns how many were queued."""
    queued = 0
    with contextlib.closing(sqlite3.connect(database, isolation_level=None, timeout=10)) as other:
        while not stop.is_set():
            chat = chats[queued % len(chats)]
            other.execute(
                "INSERT INTO outbox (key, platform, chat_id, private, text, buttons, status, attempts, "
                "next_attempt_at, created_at, unexpected_failures) VALUES (?, 'telegram', ?, 1, ?, '[]', "
                "'pending', 0, '2000-01-01 00:00:00.000000', '2000-01-01 00:00:00.000000', 0)",
                (f"bench-{uuid.uuid4().hex}", str(chat), f"Job J-{queued} is waiting"),
            )
            queued += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1 / STREAM_PER_SECOND)
    return queued


async def alternate(sides: list[Side], kind: str, rounds: int) -> None:
    """Warm both bots up, then measure them in turn, the first of each pair swapping every round."""
    for side in sides:
        for _ in range(WARM_UP):
            await side.round(kind)
    for number in range(rounds):
        for side in sides if number % 2 == 0 else sides[::-1]:
            side.times[kind].append(await side.round(kind))


async def measure_kind(sides: list[Side], kind: str, rounds: int, others: list[int]) -> None:
    """The realistic kinds run with coopbot's outbox delivering meanwhile; then it is let drain."""
    ours = sides[0]
    if kind.endswith(QUIET) or ours.database is None:
        await alternate(sides, kind, rounds)
        return
    stop = asyncio.Event()
    stream = asyncio.create_task(notifications(ours.database, others, stop))
    try:
        await alternate(sides, kind, rounds)
    finally:
        stop.set()
        queued = await stream
    delivered = lambda: sum(len(ours.api.sent_to(chat)) for chat in others)  # noqa: E731
    await ours.api.wait_for(lambda: delivered() >= ours.delivered_before + queued, timeout=120)
    ours.delivered_before += queued


async def serve(name: str) -> Side:
    api = FakeBotApi()
    api.limits = FloodLimits(per_second=10**9, private_burst=10**9, group_per_minute=10**9)
    await api.start()
    return Side(name, api, api.user(4242, "Bo", started=True))


async def measure(rounds: int, workdir: Path) -> dict[str, dict[str, list[float]]]:
    sides = [await serve(name) for name in ("coopbot", "echo")]
    ours, echo = sides
    ours.database = workdir / "bench.sqlite3"
    config_file = workdir / "coopbot.toml"
    config_file.write_text(
        f'[database]\nurl = "sqlite:///{ours.database}"\n'
        f'[telegram]\nenabled = true\ntoken_env = "{TOKEN_ENV}"\napi_base_url = "{ours.api.base_url}"\n'
        "per_second = 1000\n",
        encoding="utf-8",
    )
    add_member(load_config(config_file), ours.member)
    others = [ours.api.user(5000 + number, f"Rider{number}", started=True).id for number in range(OTHERS)]
    env = {**os.environ, TOKEN_ENV: ours.api.token, "PYTHONPATH": str(ROOT)}
    log = workdir / "bots.log"
    run = [sys.executable, "-m", "coopbot", "--config", str(config_file), "run"]
    ours.process = BotProcess(ours.api, run, env, log)
    echo.process = BotProcess(echo.api, [sys.executable, "-c", ECHO_BOT, echo.api.token, echo.api.base_url], env, log)
    async with contextlib.AsyncExitStack() as stack:
        for side in sides:
            await stack.enter_async_context(side.process)
            side.poster = await stack.enter_async_context(Bot(side.api.token, base_url=side.api.base_url))
        for kind in KINDS:
            await measure_kind(sides, kind, rounds, others)
    for side in sides:
        await side.api.stop()
    return {side.name: side.times for side in sides}


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
    print(f"{'':21} {'bot':8} {'rounds':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for kind in KINDS:
        for who in ("coopbot", "echo"):
            values = results[who][kind]
            p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
            print(f"{kind:21} {who:8} {len(values):>6} {p50:>8.2f} {p99:>8.2f}")
        ratio = statistics.median(results["coopbot"][kind]) / statistics.median(results["echo"][kind])
        if kind.endswith(QUIET):
            verdict = "for reference"
        else:
            verdict = "ok" if ratio <= TARGET else f"over the {TARGET}x target"
            ok = ok and ratio <= TARGET
        print(f"{kind:21} ratio of p50s: {ratio:.2f}x ({verdict})")
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
