"""The public page and its charts are built once and served again (`coopbot.web.public.Built`),
never older than the last commit in this process to a table they read, nor than `KEPT_FOR`
seconds of the bot's clock."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import update

from coopbot.chat import Outgoing
from coopbot.clock import FakeClock
from coopbot.db import Commits, make_engine, make_sessionmaker, transaction
from coopbot.models import Member
from coopbot.outbox import queue_to_member
from coopbot.services.polls import settings
from coopbot.services.public import page as page_module
from coopbot.web import public
from coopbot.web.public import KEPT_FOR, RENEW_AT, Built
from tests.conftest import Coop
from tests.web.public_coop import fetch, fill, public_site
from tests.web.test_public_page import text_of


def count_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The language of every page built from the database, in order."""
    built: list[str] = []

    def counted(*args: object) -> page_module.Page:
        built.append(str(args[3]))
        return page_module.read_page(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(public, "read_page", counted)
    return built


async def test_the_page_is_built_once_per_language_while_nothing_changes(
    coop: Coop, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = count_builds(monkeypatch)
    coop.member("Alice", "admin")
    async with public_site(coop) as site:
        first = [await fetch(f"{site}/en") for _ in range(3)]
        french = await fetch(f"{site}/fr")
        coop.clock.advance(seconds=KEPT_FOR - 1)
        again = await fetch(f"{site}/en")
    assert built == ["en", "fr"]
    assert all(body == first[0][2] for _, _, body in [*first, again]) and french[2] != first[0][2]


async def test_a_commit_shows_on_the_next_view_at_once(coop: Coop, monkeypatch: pytest.MonkeyPatch) -> None:
    await fill(coop)
    built = count_builds(monkeypatch)
    async with public_site(coop) as site:
        status, _, _ = await fetch(f"{site}/periods/2026-11/shares.png")
        assert status == 200
        _, _, before = await fetch(f"{site}/en")
        assert "Bruno Kessler" not in text_of(before)
        await coop.say("bruno", "/public on")  # the event loop's own session
        _, _, named = await fetch(f"{site}/en")
        assert "Bruno Kessler" in text_of(named)
        with coop.session() as session:  # a worker thread's session
            settings.apply(session, coop.bot.config, "public.periods", "off", coop.clock.now())
        status, _, _ = await fetch(f"{site}/periods/2026-11/shares.png")
        _, _, private = await fetch(f"{site}/en")
    assert status == 404
    assert '<section id="periods"' not in private.decode()
    assert len(built) == 3, "each commit, and only a commit, made the page be built again"


async def test_a_write_by_another_process_shows_once_the_copy_is_too_old(coop: Coop) -> None:
    coop.member("Alice", "admin")
    elsewhere = make_engine(coop.bot.config.database.url)  # as a CLI command would write
    async with public_site(coop) as site:
        _, _, before = await fetch(f"{site}/en")
        with transaction(make_sessionmaker(elsewhere)) as session:
            settings.apply(session, coop.bot.config, "offer_policy", "rotation", coop.clock.now())
        _, _, still = await fetch(f"{site}/en")
        coop.clock.advance(seconds=KEPT_FOR)
        _, _, after = await fetch(f"{site}/en")
    elsewhere.dispose()
    assert still == before
    assert "one at a time, in turn (rotation)" in after.decode()


async def test_requests_that_find_no_copy_wait_for_the_one_being_built() -> None:
    commits = Commits()
    kept = Built(FakeClock(), commits)
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def build() -> bytes:
        calls.append(1)
        started.set()
        release.wait()
        return b"page"

    first = asyncio.ensure_future(kept.get("en", build))
    await asyncio.to_thread(started.wait)
    others = [asyncio.ensure_future(kept.get("en", build)) for _ in range(3)]
    release.set()
    assert await asyncio.gather(first, *others) == [b"page"] * 4
    assert len(calls) == 1
    commits._committed(None)  # type: ignore[arg-type]
    assert await kept.get("en", lambda: b"new") == b"new"
    assert await kept.get("en", lambda: b"newer") == b"new"


async def test_a_commit_to_a_table_the_page_does_not_read_keeps_it(coop: Coop, monkeypatch: pytest.MonkeyPatch) -> None:
    """The outbox marks messages sent all day: that must not make the page be built again."""
    await fill(coop)
    built = count_builds(monkeypatch)
    bruno = coop.member_id("bruno")
    async with public_site(coop) as site:
        _, _, before = await fetch(f"{site}/en")
        with coop.session() as session:
            queue_to_member(session, session.get_one(Member, bruno), "unrelated", Outgoing("hi"), coop.clock.now())
        _, _, kept = await fetch(f"{site}/en")
        assert built == ["en"], "an outbox row is not on the page"
        with coop.session() as session:  # a Core UPDATE, not an ORM flush, of a table the page reads
            session.execute(update(Member).where(Member.id == bruno).values(public_name=True))
        _, _, named = await fetch(f"{site}/en")
    assert kept == before
    assert built == ["en", "en"]
    assert "Bruno Kessler" in text_of(named) and "Bruno Kessler" not in text_of(before)


def test_commits_are_counted_per_table_written_and_only_once_committed(coop: Coop) -> None:
    commits = Commits()
    commits.watch(coop.bot.sessions)
    coop.member("Alice", "admin", handle="alice")
    alice = coop.member_id("alice")
    stamp = commits.stamp()
    with coop.session() as session:
        session.execute(update(Member).where(Member.id == alice).values(language="fr"))
        with session.begin_nested():
            queue_to_member(session, session.get_one(Member, alice), "k", Outgoing("hi"), coop.clock.now())
        assert commits.unchanged(stamp, {"member", "outbox"}), "a savepoint's release is not a commit"
    assert not commits.unchanged(stamp, {"member"}) and not commits.unchanged(stamp, {"outbox"})
    assert commits.unchanged(stamp, {"setting", "poll"})
    stamp = commits.stamp()
    session = coop.bot.sessions()
    session.execute(update(Member).values(language="en"))
    session.rollback()
    session.close()
    assert commits.unchanged(stamp, {"member"}), "what a rolled back transaction wrote is forgotten"
    commits._committed(None)  # type: ignore[arg-type]
    assert not commits.unchanged(stamp, {"setting"}), "a commit whose tables are unknown counts for all"


async def test_a_copy_near_its_end_is_served_while_its_successor_is_built() -> None:
    clock = FakeClock()
    kept = Built(clock, Commits())
    assert await kept.get("en", lambda: b"first") == b"first"
    release = threading.Event()
    calls: list[int] = []

    def build() -> bytes:
        calls.append(1)
        release.wait()
        return b"second"

    clock.advance(seconds=KEPT_FOR * RENEW_AT)
    assert await kept.get("en", build) == b"first", "served at once, while its successor is built"
    clock.advance(seconds=KEPT_FOR * (1 - RENEW_AT))
    expired = asyncio.ensure_future(kept.get("en", build))  # too old now: waits for the one being built
    release.set()
    assert await expired == b"second"
    assert await kept.get("en", build) == b"second"
    assert len(calls) == 1
