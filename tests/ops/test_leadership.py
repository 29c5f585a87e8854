"""The election itself: one leader on PostgreSQL, the handover fenced by the work lock;
one process on SQLite, a second refused with one sentence."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from coopbot.cli import main
from coopbot.i18n import t
from coopbot.ops import leadership
from coopbot.ops.leadership import AlreadyRunning, FileLock, PgLeadership
from tests.conftest import postgres_schema
from tests.ops.processes import ROOT, BotProcess

FAST = {"check_seconds": 0.2, "retry_seconds": 0.2}


def terminate_leader_backend(url: str) -> None:
    engine = leadership.lock_engine(url)
    with engine.connect() as connection:
        backend = leadership.leader_backend(connection)
        assert backend is not None
        assert connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend}).scalar()
    engine.dispose()


@pytest.mark.postgres
async def test_one_leader_and_the_next_only_once_the_old_has_stepped_down(pg_url: str) -> None:
    stop = asyncio.Event()
    old, new = PgLeadership(pg_url, **FAST), PgLeadership(pg_url, **FAST)
    try:
        assert await old.acquire(stop)
        waiting = asyncio.create_task(new.acquire(stop))
        watching = asyncio.create_task(old.watch(stop))
        await asyncio.to_thread(terminate_leader_backend, pg_url)
        assert await asyncio.wait_for(watching, timeout=15) is False  # it noticed: it no longer leads
        # Its work (a sweep, a send) may still be ending: the work lock keeps the other one out.
        assert not waiting.done() and not new.leading
        await old.step_down()
        assert await asyncio.wait_for(waiting, timeout=15)
        assert new.leading
    finally:
        stop.set()
        for one in (old, new):
            await one.release()
            one.dispose()


@pytest.mark.postgres
async def test_a_dead_leader_s_locks_go_with_its_connections(pg_url: str) -> None:
    stop = asyncio.Event()
    first, second = PgLeadership(pg_url, **FAST), PgLeadership(pg_url, **FAST)
    try:
        assert await first.acquire(stop)
        waiting = asyncio.create_task(second.acquire(stop))
        first.dispose()  # as a kill -9 closes every socket
        assert await asyncio.wait_for(waiting, timeout=15)
    finally:
        stop.set()
        second.dispose()


@pytest.mark.postgres
async def test_two_co_ops_in_two_schemas_each_have_their_leader(pg_url: str) -> None:
    stop = asyncio.Event()
    with postgres_schema() as other_url:
        mine, theirs = PgLeadership(pg_url, **FAST), PgLeadership(other_url, **FAST)
        try:
            assert await asyncio.wait_for(mine.acquire(stop), timeout=15)
            assert await asyncio.wait_for(theirs.acquire(stop), timeout=15)
        finally:
            mine.dispose()
            theirs.dispose()


def test_the_sqlite_lock_is_held_once(tmp_path: Path) -> None:
    database = tmp_path / "coop.sqlite3"
    first = FileLock(database)
    me = first.acquire()
    assert leadership.file_lock_held(leadership.lock_path(database)) == me
    with pytest.raises(AlreadyRunning) as refused:
        FileLock(database).acquire()
    sentence = t("en", refused.value.key, **refused.value.params)
    assert sentence.startswith(f"Another coopbot is already running on {database} (")
    assert f"pid {me.pid}" in sentence
    first.release()
    FileLock(database).acquire()


def test_a_second_run_on_sqlite_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "coop.sqlite3"}"\n', encoding="utf-8")
    assert main(["--config", str(config), "member", "add", "--name", "Alice", "--role", "admin"]) == 0
    running = BotProcess(config)
    try:
        running.wait_line("Talking to")
        second = subprocess.run([sys.executable, "-m", "coopbot.cli", "--config", str(config), "run"], cwd=ROOT,
                                input="", capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            f"Another coopbot is already running on {tmp_path / 'coop.sqlite3'} "
            f"({running_host()}, pid {running.pid}): SQLite is one machine's database, so stop that one first, "
            "or move the co-op to PostgreSQL to run several."
        ]
        assert "Talking to" not in second.stdout
    finally:
        assert running.process.stdin is not None
        running.process.stdin.close()  # Ctrl-D: the console run ends
        assert running.process.wait(timeout=60) == 0, running.output()
    after = subprocess.run([sys.executable, "-m", "coopbot.cli", "--config", str(config), "run"], cwd=ROOT,
                           input="/whoami\n", capture_output=True, text=True, timeout=60, check=False)
    assert after.returncode == 0, after.stderr  # once the first has stopped, the lock is free


def running_host() -> str:
    import socket

    return socket.gethostname()
