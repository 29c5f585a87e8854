"""The core's promises to every platform: private things stay private, and a
button press answers on the message that carried it."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import func, select

from coopbot.app import CoopBot
from coopbot.chat import Address, Incoming, IncomingHandler, Outgoing, Pacing, UnreachableError
from coopbot.clock import FakeClock
from coopbot.models import SeenEvent
from coopbot.services.members.accounts import add_identity, member_of
from tests.conftest import Coop, forbid_worker_threads, make_config

T = TypeVar("T")


@dataclass
class GroupOnlyTransport:
    """A platform where a private message to the member fails: by default because they never
    opened a private chat with the bot, or with `failure`, in a way the platform did not explain."""

    platform: str = "groupy"
    replies: list[tuple[str, Outgoing]] = field(default_factory=list)
    failure: Exception = field(default_factory=lambda: UnreachableError("user never started a private chat"))

    async def start(self, on_incoming: IncomingHandler) -> None: ...

    async def stop(self) -> None: ...

    def pacing(self) -> Pacing:
        return Pacing()

    async def reply(self, incoming: Incoming, messages: list[Outgoing]) -> None:
        self.replies += [(incoming.chat_id, m) for m in messages]

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        raise self.failure


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (UnreachableError("user never started a private chat"), "open a private chat with me"),
        (ValueError("the platform answered something unreadable"), "could not send you the answer privately"),
    ],
)
async def test_a_private_answer_never_lands_in_the_group(coop: Coop, failure: Exception, said: str) -> None:
    transport = GroupOnlyTransport(failure=failure)
    coop.bot.add_transport(transport)
    coop.member("Alice", "admin")
    with coop.session() as session:
        alice = member_of(session, "console", "alice")
        assert alice is not None
        add_identity(session, alice, "groupy", "u1", coop.clock.now())
    await coop.bot.on_incoming(Incoming("groupy", "u1", "group-1", False, "/invite", event_id="g1"))
    [(chat, answer)] = transport.replies
    assert chat == "group-1"
    assert said in answer.text
    assert "-" not in answer.text.split(":")[-1], "the code leaked into the group"


async def test_a_button_press_edits_the_message_it_came_from(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    [answer] = await coop.replies(alice, "", button="/whoami")
    assert answer.edit
    [typed] = await coop.replies(alice, "/whoami")
    assert not typed.edit


async def test_a_refusal_leaves_nothing_half_written_but_still_counts_as_a_visit(coop: Coop) -> None:
    from sqlalchemy import func, select, update

    from coopbot.errors import UsageError
    from coopbot.models import Identity, Member
    from coopbot.services.members.accounts import create_member
    from handlers.registry import Context, command

    @command("halfway", area="members")
    def halfway(ctx: Context) -> str:
        create_member(ctx.session, "Ghost", "member", ctx.now)
        raise UsageError("members.lang_usage")

    coop.bot.commands.add(halfway)
    alice = coop.member("Alice")
    with coop.session() as session:
        session.execute(update(Identity).values(reachable=False))
    assert "Type /lang fr" in await coop.say(alice, "/halfway")
    with coop.session() as session:
        assert session.scalar(select(func.count(Member.id)).where(Member.name == "Ghost")) == 0
        assert session.scalars(select(Identity.reachable)).one() is True


async def test_what_a_test_teaches_its_bot_no_other_bot_knows(coop: Coop, clock: FakeClock, tmp_path: Path) -> None:
    """Commands, sweeps and renderers belong to the bot that collected them at start: one added
    to a bot (as a test does) is unknown to the next bot, and so never leaks into another test."""
    from coopbot.outbox_render import renderer
    from coopbot.scheduler import SweepContext, sweep
    from handlers.registry import Context, command

    @command("only_here", area="members")
    def only_here(ctx: Context) -> str:
        return "here"

    @sweep("test-only-here")
    def only_here_sweep(ctx: SweepContext) -> None: ...

    @renderer("only-here")
    def only_here_renderer(*args: object) -> Outgoing:
        return Outgoing("here")

    coop.bot.commands.add(only_here)
    coop.bot.sweeps.add(only_here_sweep)
    coop.bot.renderers.add(only_here_renderer)
    alice = coop.member("Alice")
    assert await coop.say(alice, "/only_here") == "here"

    other = CoopBot(make_config(f"sqlite:///{tmp_path / 'other.sqlite3'}"), clock=clock)
    try:
        assert other.commands.lookup("only_here") is None
        assert "only_here" in coop.bot.commands and "only_here" not in other.commands
        assert "test-only-here" not in other.sweeps and "only-here" not in other.renderers
        assert other.router.commands is other.commands and other.scheduler.sweeps is other.sweeps
        assert other.outbox.renderers is other.renderers
    finally:
        other.dispose()


async def test_a_message_waits_for_a_held_database_without_stalling_the_other_chats(
    coop: Coop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a command runs in the event loop only while nobody else writes: with the
    write lock held elsewhere (a sweep, a second process) it waits in a worker thread,
    and the loop keeps serving Telegram, Matrix and the outbox meanwhile."""
    alice = coop.member("Alice", "admin")
    url = coop.bot.config.database.url.removeprefix("sqlite:///")
    other = sqlite3.connect(url, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    handed_over = asyncio.Event()
    to_thread = asyncio.to_thread

    async def watched(fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        if fn == coop.bot.router.handle:
            handed_over.set()
        return await to_thread(fn, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", watched)
    answer = asyncio.create_task(coop.say(alice, "/whoami"))
    await asyncio.wait_for(handed_over.wait(), timeout=10)  # the message waits for the lock in a worker thread
    served = asyncio.get_running_loop().create_future()  # what else the loop serves: Telegram, Matrix, the outbox
    asyncio.get_running_loop().call_soon(served.set_result, "served")
    assert await served == "served" and not answer.done()
    other.execute("COMMIT")
    other.close()
    assert "Alice" in await asyncio.wait_for(answer, timeout=10)
    with coop.session() as session:
        assert session.scalar(select(func.count()).select_from(SeenEvent)) == 1  # handled once


async def test_a_free_database_answers_in_the_loop(coop: Coop, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = coop.member("Alice", "admin")
    forbid_worker_threads(monkeypatch)
    [answer] = await coop.bot.handle(Incoming("console", alice, alice, True, "/whoami", event_id="e1"))
    assert "Alice" in answer.text


CHARTS = """
import sys
from handlers import collect_commands
from coopbot.outbox_render import collect_renderers
from coopbot.scheduler import collect_sweeps
import coopbot.app, coopbot.runner, coopbot.services.money.notices
collect_commands()
collect_sweeps()
collect_renderers()
drawing = {"matplotlib", "numpy", "PIL"}
print(sorted(drawing & {name.split(".")[0] for name in sys.modules}))
from coopbot.charts import Bar, shares_png
png = shares_png([Bar("Ana", 6000, "€6"), Bar("Bo", 4000, "€4")], title="2026-11", ylabel="%", others_label=str)
print(sorted(drawing & {name.split(".")[0] for name in sys.modules}), png.startswith(b"\\x89PNG"))
"""


def test_matplotlib_numpy_and_pillow_load_only_when_a_chart_is_drawn() -> None:
    done = subprocess.run([sys.executable, "-c", CHARTS], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.splitlines() == ["[]", "['PIL', 'matplotlib', 'numpy'] True"]


POSTGRES_DIALECT = """
import asyncio, sys, tempfile
from coopbot.app import CoopBot
from coopbot.clock import FakeClock
from coopbot.runner import upgrade_apart
from coopbot.transports.console import ConsoleTransport
from tests.conftest import Coop, make_config
from tests.handlers.test_router import rush

async def lunch(url: str) -> None:
    bot = CoopBot(make_config(url), clock=FakeClock(), migrate=False)
    bot.add_transport(ConsoleTransport(out=None))
    coop = Coop(bot, bot.clock)
    carol = await rush(coop)
    await coop.say(carol, "/announce Meeting at 7")
    await bot.outbox.drain()
    bot.dispose()

url = f"sqlite:///{tempfile.mkdtemp()}/coop.sqlite3"
assert upgrade_apart(url)  # as `coopbot run` migrates: in a child process
asyncio.run(lunch(url))
print(sorted(name for name in sys.modules if name.startswith("sqlalchemy.dialects.postgresql")))
"""


def test_a_coop_on_sqlite_never_loads_postgresqls_dialect() -> None:
    """2.2 MiB a bot on SQLite does not need (`bench/startup.py`): jobs raced for, notices and an
    announcement queued and sent, without it."""
    done = subprocess.run([sys.executable, "-c", POSTGRES_DIALECT], capture_output=True, text=True, timeout=300,
                          check=True)  # fmt: skip
    assert done.stdout.splitlines()[-1] == "[]"
