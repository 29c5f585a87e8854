"""`coopbot status` on SQLite: the process running now, the outbox, the sweeps' last runs."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

from coopbot.cli import main
from tests.ops.processes import LEADS, ROOT, BotProcess


def status(config: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "coopbot.cli", "--config", str(config), "status"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_status_names_the_running_process_and_the_sweeps(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "coop.sqlite3"}"\n', encoding="utf-8")
    assert main(["--config", str(config), "member", "add", "--name", "Alice", "--role", "admin"]) == 0
    assert status(config).splitlines()[0] == "leader: none recorded yet; NOT running now (SQLite: one process)"
    running = BotProcess(config)
    try:
        running.wait_line(LEADS)
        running.wait_line("Talking to")  # after the first tick of the sweeps
        shown = status(config)
    finally:
        assert running.process.stdin is not None
        running.process.stdin.close()
        assert running.process.wait(timeout=60) == 0, running.output()
    lines = shown.splitlines()
    assert re.fullmatch(
        rf"leader: {re.escape(socket.gethostname())}, pid {running.pid}, since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d \S+ "
        r"\(\d+ s ago\); running now \(SQLite: one process\)",
        lines[0],
    ), lines[0]
    assert lines[1] == "outbox: 0 waiting; 0 set aside (coopbot outbox failed)"
    assert lines[2] == "sweeps (last run):"
    assert len(lines) > 3 and all(re.search(r"\d+\.\d{3} s, ok$", line) for line in lines[3:]), shown
    assert "NOT running now" in status(config).splitlines()[0]


def test_the_sweeps_runs_are_recorded_each_minute_and_at_once_when_one_fails(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from coopbot.db import make_engine, make_sessionmaker, upgrade
    from coopbot.ops.state import SweepRecorder, SweepRun, read_sweeps

    engine = make_engine(f"sqlite:///{tmp_path / 'coop.sqlite3'}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    record = SweepRecorder(sessions)
    first, later = datetime(2026, 12, 4, 9, 0, tzinfo=UTC), datetime(2026, 12, 4, 9, 0, 5, tzinfo=UTC)
    record([SweepRun("polls.close", first, 0.01, True)])
    record([SweepRun("polls.close", later, 0.01, True)])  # 5 s later, nothing new: not written
    with sessions() as session:
        assert [run.at for run in read_sweeps(session)] == [first]
    record([SweepRun("polls.close", later, 0.01, False)])  # it fails: written at once
    with sessions() as session:
        assert [(run.at, run.ok) for run in read_sweeps(session)] == [(later, False)]
    engine.dispose()
