"""`coopbot demo`: a small co-op's period, played on a throw-away database.

It runs the real bot (router, services, outbox, scheduler) through the
console transport with a clock it moves itself, so a whole period fits in a
second and prints as a chat transcript, in English or French
(`coopbot/locales/*/demo.toml`: the narration, and what members type).

Every run prints the same transcript: the clock is fake, invite codes come
from a seeded generator, and the outbox sends one message at a time, in the
order they were queued (a real bot has several sends in flight, each reading
its row in a worker thread, so messages to different chats can swap places).
"""

from __future__ import annotations

import random
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from babel.dates import format_datetime

from coopbot.app import CoopBot
from coopbot.chat import Outgoing
from coopbot.clock import FakeClock
from coopbot.config import Config
from coopbot.db import transaction
from coopbot.i18n import t
from coopbot.services.members import accounts as members_svc
from coopbot.transports.console import ConsoleTransport, Conversation

CODE = re.compile(r"\b[A-Z0-9]{4}-[A-Z0-9]{4}\b")


def code_in(replies: list[Outgoing]) -> str:
    return found_in(replies, CODE)


def ref_in(replies: list[Outgoing], prefix: str) -> str:
    """The first `C-12`-style reference the bot mentioned."""
    return found_in(replies, re.compile(rf"\b{prefix}-\d+\b"))


def found_in(replies: list[Outgoing], pattern: re.Pattern[str]) -> str:
    for reply in replies:
        found = pattern.search(reply.text)
        if found:
            return found.group(0)
    raise RuntimeError(f"the bot's reply has no {pattern.pattern}")


@contextmanager
def seeded_codes(seed: int = 2026) -> Iterator[None]:
    """Invite codes from a seeded generator while the demo plays, so every run shows the same
    ones. A real co-op's codes stay random: a code is what lets a stranger in."""
    draw = random.Random(seed)
    real = members_svc.new_code

    def new_code(groups: int = 2) -> str:
        return "-".join("".join(draw.choice(members_svc.CODE_ALPHABET) for _ in range(4)) for _ in range(groups))

    members_svc.new_code = new_code
    try:
        yield
    finally:
        members_svc.new_code = real


class Demo:
    def __init__(self, bot: CoopBot, clock: FakeClock, out: TextIO, lang: str = "en") -> None:
        self.bot = bot
        self.clock = clock
        self.out = out
        self.lang = lang
        self.console = ConsoleTransport(out=out)
        bot.add_transport(self.console)
        self.chat = Conversation(bot, self.console, out)

    def text(self, key: str, **params: object) -> str:
        """A line of the demo's catalogue, in its language."""
        return t(self.lang, f"demo.{key}", **params)

    def scene(self, key: str) -> None:
        self.out.write(f"\n── {self.text(key)} ──\n")

    async def say(self, who: str, text: str, **kwargs: object) -> list[Outgoing]:
        return await self.chat.say(who, text, **kwargs)  # type: ignore[arg-type]

    def founder(self, name: str) -> str:
        with transaction(self.bot.sessions) as session:
            member = members_svc.create_member(session, name, "admin", self.clock.now())
            members_svc.add_identity(session, member, "console", "alice", self.clock.now(), name)
        self.console.names["alice"] = name
        return "alice"

    def person(self, handle: str, name: str) -> str:
        self.console.names[handle] = name
        return handle

    async def later(self, delta: timedelta | None = None, *, until: datetime | None = None) -> None:
        """Let time pass: the scheduler does what falls due, the outbox delivers it."""
        if until is not None:
            self.clock.set(until)
        if delta is not None:
            self.clock.advance(delta)
        shown = format_datetime(self.clock.now(), self.text("when"), tzinfo=self.bot.config.coop.tz, locale=self.lang)
        self.out.write(f"  … {shown} …\n")
        self.bot.scheduler.run_due()
        await self.bot.outbox.drain()


async def run_demo(out: TextIO, *, lang: str = "en") -> int:
    with tempfile.TemporaryDirectory(prefix="coopbot-demo-") as tmp:
        config = Config.model_validate(
            {
                "coop": {"name": "Coop Vélo Paris", "default_language": lang},
                "database": {"url": f"sqlite:///{Path(tmp) / 'demo.sqlite3'}"},
                "shares": {"base_pay_per_hour": 12.5, "base_pay_per_delivery": 2, "equity_threshold": 200},
            }
        )
        clock = FakeClock(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
        bot = CoopBot(config, clock=clock)
        bot.outbox.max_in_flight = 1  # one send at a time: the transcript shows the queue's order
        try:
            with seeded_codes():
                await play(Demo(bot, clock, out, lang))
        finally:
            bot.dispose()
    return 0


async def play(demo: Demo) -> None:
    demo.out.write(demo.text("title") + "\n")
    alice = demo.founder("Alice")
    bruno = demo.person("bruno", "Bruno")
    chloe = demo.person("chloe", "Chloé")
    dan = demo.person("dan", "Dan")
    eve = demo.person("eve", "Eve")
    await founding(demo, alice, bruno, chloe, dan, eve)
    await lunch_rush(demo, bruno, chloe, dan)
    await work_and_money(demo, alice, bruno, chloe)
    await a_vote(demo, alice, bruno, chloe, dan)
    await announcements(demo, bruno, dan)
    await month_end(demo, chloe)
    await own_data(demo, alice, chloe, eve)


async def founding(demo: Demo, alice: str, bruno: str, chloe: str, dan: str, eve: str) -> None:
    demo.scene("scene_founding")
    code = code_in(await demo.say(alice, "/invite coordinator"))
    await demo.say(dan, demo.text("hello"))
    await demo.say(bruno, f"/join {code}")
    code = code_in(await demo.say(bruno, "/invite"))
    await demo.say(chloe, f"/join {code}")
    await demo.say(dan, f"/join {code}")
    await demo.say(dan, f"/join {code_in(await demo.say(bruno, '/invite'))}")
    await demo.say(eve, f"/join {code_in(await demo.say(bruno, '/invite'))}")

    demo.scene("scene_getting_around")
    await demo.say(chloe, "/help")
    await demo.say(chloe, "/whoami")
    await demo.say(dan, "/lang fr")
    await demo.say(dan, "/membres")
    await demo.say(chloe, "/invite")
    await demo.say(alice, "/acept")


async def lunch_rush(demo: Demo, bruno: str, chloe: str, dan: str) -> None:
    demo.scene("scene_lunch_rush")
    await demo.say(chloe, "/available")
    await demo.say(dan, "/available")
    await demo.say(bruno, demo.text("new_job"))
    await demo.say(chloe, "", button="/accept J-1")
    await demo.say(dan, "/accept J-1")
    await demo.say(chloe, "", button="/pickup J-1")
    await demo.later(timedelta(minutes=20))
    await demo.say(chloe, "/deliver J-1")
    await demo.say(dan, "/why J-1")


async def work_and_money(demo: Demo, alice: str, bruno: str, chloe: str) -> None:
    demo.scene("scene_work_and_money")
    await demo.say(chloe, "/shift start")
    await demo.later(timedelta(hours=6, minutes=30))
    await demo.say(chloe, "/shift end")
    mine = ref_in(await demo.say(chloe, demo.text("log_admin")), "C")
    his = ref_in(await demo.say(bruno, demo.text("log_training")), "C")
    await demo.say(bruno, f"/approve {mine}")
    await demo.say(bruno, f"/approve {his}")
    await demo.say(alice, f"/approve {his}")
    await demo.say(bruno, demo.text("income"))
    await demo.say(bruno, demo.text("expense"))
    await demo.say(chloe, "/contrib")
    await demo.say(chloe, "/period")


async def a_vote(demo: Demo, alice: str, bruno: str, chloe: str, dan: str) -> None:
    demo.scene("scene_vote")
    poll = ref_in(await demo.say(chloe, demo.text("propose")), "P")
    await demo.say(alice, demo.text("vote_agree", poll=poll))
    await demo.say(bruno, "", button=f"/vote {poll} agree")
    await demo.say(dan, f"/vote {poll} contre")
    await demo.say(chloe, f"/results {poll}")
    await demo.later(timedelta(days=2))
    await demo.say(chloe, f"/results {poll}")


async def announcements(demo: Demo, bruno: str, dan: str) -> None:
    demo.scene("scene_announcement")
    await demo.say(dan, demo.text("announce_refused"))
    await demo.say(bruno, demo.text("announce"))
    await demo.later(timedelta(seconds=10))


async def month_end(demo: Demo, chloe: str) -> None:
    demo.scene("scene_month_end")
    await demo.later(until=datetime(2026, 11, 30, 23, 0, 5, tzinfo=UTC))
    await demo.say(chloe, "/share")


async def own_data(demo: Demo, alice: str, chloe: str, eve: str) -> None:
    demo.scene("scene_own_data")
    await demo.say(chloe, "/mydata")
    await demo.say(eve, "/leave")
    await demo.say(eve, "", button="/leave confirm")
    await demo.later(timedelta(seconds=10))
    await demo.say(alice, "/audit")
