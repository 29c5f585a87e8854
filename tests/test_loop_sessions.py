"""Members kept from one message to the next (SQLite, in the event loop) are never
older than the database: whoever changed it, the next message sees the change."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, select, text, update

from coopbot.chat import Incoming
from coopbot.loop_sessions import LoopSessions
from coopbot.models import Member
from handlers.registry import Context, command
from tests.conftest import Coop, forbid_worker_threads


@pytest.fixture
def loop_sessions(coop: Coop) -> LoopSessions:
    assert coop.bot.loop_sessions is not None, "a file SQLite database runs commands in the loop"
    return coop.bot.loop_sessions


@pytest.fixture
def member_loads(loop_sessions: LoopSessions) -> list[str]:
    """Every statement the loop's connection sent that reads the member table."""
    seen: list[str] = []

    def note(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if "FROM member" in statement:
            seen.append(statement)

    event.listen(loop_sessions.engine, "before_cursor_execute", note)
    return seen


@pytest.fixture
def raw_promotion(coop: Coop) -> None:
    """/promote_raw: a command that writes past the ORM, as a bulk statement would."""

    @command("promote_raw", area="members")
    def promote_raw(ctx: Context) -> str:
        ctx.session.execute(text("UPDATE member SET role = 'admin'"))
        return "done"

    coop.bot.commands.add(promote_raw)


async def kept(coop: Coop, who: str, member_loads: list[str]) -> None:
    """Two messages: the first visit writes when the member was last seen (which drops what
    was kept); the second loads them and keeps them."""
    for _ in range(2):
        assert "(#" in await coop.say(who, "/whoami")
    member_loads.clear()


async def test_a_member_who_writes_again_is_not_loaded_again(coop: Coop, member_loads: list[str]) -> None:
    alice = coop.member("Alice")
    await kept(coop, alice, member_loads)
    for _ in range(3):
        assert "Alice" in await coop.say(alice, "/whoami")
    assert member_loads == []


async def test_a_change_committed_elsewhere_is_seen_at_the_next_message(coop: Coop, member_loads: list[str]) -> None:
    alice = coop.member("Alice")
    await kept(coop, alice, member_loads)
    with coop.session() as session:  # another connection: the CLI, the scheduler, the outbox
        session.execute(update(Member).values(role="coordinator"))
    assert "Alice (#1), coordinator" in await coop.say(alice, "/whoami")
    assert len(member_loads) == 1


async def test_a_member_removed_elsewhere_is_a_stranger_at_once(coop: Coop, member_loads: list[str]) -> None:
    alice = coop.member("Alice")
    await kept(coop, alice, member_loads)
    with coop.session() as session:
        session.execute(update(Member).values(active=False))
    assert "Alice" not in await coop.say(alice, "/whoami")


async def test_writing_when_a_member_was_last_seen_keeps_them(coop: Coop, member_loads: list[str]) -> None:
    """The last-seen write after a pause is made on the kept member itself: a rider tapping
    again after a few minutes is not loaded again for it."""
    alice = coop.member("Alice")
    await kept(coop, alice, member_loads)
    coop.clock.advance(minutes=5)
    for _ in range(2):
        assert "Alice" in await coop.say(alice, "/whoami")
    assert member_loads == []
    with coop.session() as session:
        assert session.scalars(select(Member.last_seen_at)).one() == coop.clock.now()


@pytest.mark.parametrize("update_id", ["u1", None], ids=["with an update id", "without one"])
async def test_a_message_that_wrote_drops_what_was_kept(
    coop: Coop, member_loads: list[str], raw_promotion: None, update_id: str | None
) -> None:
    alice = coop.member("Alice")
    await kept(coop, alice, member_loads)
    [done] = await coop.bot.handle(Incoming("console", alice, alice, True, "/promote_raw", event_id=update_id))
    assert done.text == "done"
    assert "Alice (#1), admin" in await coop.say(alice, "/whoami")


async def test_a_message_without_an_update_id_sees_changes_made_elsewhere(
    coop: Coop, member_loads: list[str]
) -> None:
    alice = coop.member("Alice")
    await kept(coop, alice, member_loads)
    with coop.session() as session:
        session.execute(update(Member).values(role="coordinator"))
    [answer] = await coop.bot.handle(Incoming("console", alice, alice, True, "/whoami"))
    assert "Alice (#1), coordinator" in answer.text


async def test_after_a_held_lock_the_next_message_runs_in_the_loop_again(
    coop: Coop, member_loads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = coop.member("Alice")
    await kept(coop, alice, member_loads)
    other = sqlite3.connect(coop.bot.config.database.url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    handed_over = asyncio.Event()
    to_thread = asyncio.to_thread

    async def noting_the_hand_over(fn: Callable[..., Any], /, *args: Any) -> Any:
        handed_over.set()
        return await to_thread(fn, *args)

    monkeypatch.setattr(asyncio, "to_thread", noting_the_hand_over)
    waiting = asyncio.create_task(coop.say(alice, "/lang fr"))
    await asyncio.wait_for(handed_over.wait(), timeout=10)  # the lock is held: it waits in a worker thread
    other.execute("UPDATE member SET name = 'Alicia'")
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(waiting, timeout=10)
    forbid_worker_threads(monkeypatch)
    [answer] = await coop.bot.handle(Incoming("console", alice, alice, True, "/whoami", event_id="after"))
    assert "Alicia (n°1), membre. Langue\u00a0: fr." in answer.text
