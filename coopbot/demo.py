"""`coopbot demo`: a small co-op's period, played on a throw-away database.

It runs the real bot (router, services, outbox, scheduler) through the
console transport with a clock it moves itself, so a whole period fits in a
second and prints as a chat transcript.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from coopbot.app import CoopBot
from coopbot.chat import Outgoing
from coopbot.clock import FakeClock
from coopbot.config import Config, CoopSection, DatabaseSection
from coopbot.db import transaction
from coopbot.services import members as members_svc
from coopbot.transports.console import ConsoleTransport, Conversation

CODE = re.compile(r"\b[A-Z0-9]{4}-[A-Z0-9]{4}\b")


def code_in(replies: list[Outgoing]) -> str:
    for reply in replies:
        found = CODE.search(reply.text)
        if found:
            return found.group(0)
    raise RuntimeError("the bot gave no code")


class Demo:
    def __init__(self, bot: CoopBot, clock: FakeClock, out: TextIO) -> None:
        self.bot = bot
        self.clock = clock
        self.out = out
        self.console = ConsoleTransport(out=out)
        bot.add_transport(self.console)
        self.chat = Conversation(bot, self.console, out)

    def scene(self, title: str) -> None:
        self.out.write(f"\n── {title} ──\n")

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


async def run_demo(out: TextIO, *, lang: str = "en") -> int:
    with tempfile.TemporaryDirectory(prefix="coopbot-demo-") as tmp:
        config = Config(
            coop=CoopSection.model_validate({"name": "Coop Vélo Paris", "default_language": lang}),
            database=DatabaseSection(url=f"sqlite:///{Path(tmp) / 'demo.sqlite3'}"),
        )
        clock = FakeClock(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
        bot = CoopBot(config, clock=clock)
        try:
            await play(Demo(bot, clock, out))
        finally:
            bot.dispose()
    return 0


async def play(demo: Demo) -> None:
    out = demo.out
    out.write("coopbot demo: a small courier co-op, on a throw-away database.\n")
    alice = demo.founder("Alice")
    bruno = demo.person("bruno", "Bruno")
    chloe = demo.person("chloe", "Chloé")
    stranger = demo.person("dan", "Dan")

    demo.scene("The founder invites a coordinator and a rider")
    code = code_in(await demo.say(alice, "/invite coordinator"))
    await demo.say(stranger, "hello?")
    await demo.say(bruno, f"/join {code}")
    code = code_in(await demo.say(bruno, "/invite"))
    await demo.say(chloe, f"/join {code}")
    await demo.say(stranger, f"/join {code}")

    demo.scene("Getting around")
    await demo.say(chloe, "/help")
    await demo.say(chloe, "/whoami")
    await demo.say(chloe, "/lang fr")
    await demo.say(chloe, "/membres")
    await demo.say(chloe, "/invite")
    await demo.say(bruno, "/role Chloé admin")
    await demo.say(alice, "/acept")
