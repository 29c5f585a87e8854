"""What the member who installs the bot types on the server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from coopbot.cli import main


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[coop]\nname = "Coop Test"\n[database]\nurl = "sqlite:///{tmp_path / "c.sqlite3"}"\n')
    return path


def coopbot(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coopbot.cli", "--config", str(config), *args],
        input=stdin, capture_output=True, text=True, timeout=120, check=False,
    )


def test_bootstrap_the_first_members(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config_file), "db", "upgrade"]) == 0
    assert main(["--config", str(config_file), "member", "add", "--name", "Alice", "--role", "admin",
                 "--telegram", "1001", "--matrix", "@alice:example.org"]) == 0
    assert "added #1 Alice (admin)" in capsys.readouterr().out
    assert main(["--config", str(config_file), "invite", "--role", "member"]) == 0
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", last_line)


def test_bad_ids_are_refused_with_the_reason(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config_file), "member", "add", "--name", "Bob", "--telegram", "bob"]) == 2
    assert "a Telegram user id is a number" in capsys.readouterr().err
    assert main(["--config", str(config_file), "member", "add", "--name", "Bob", "--matrix", "bob"]) == 2
    assert "@alice:example.org" in capsys.readouterr().err


def test_chat_as_a_member_uses_the_same_commands(config_file: Path) -> None:
    assert coopbot(config_file, "member", "add", "--name", "Alice", "--role", "admin").returncode == 0
    done = coopbot(config_file, "chat", "--as", "Alice", stdin="/whoami\n/invite\nas Nobody\n")
    assert done.returncode == 0, done.stderr
    assert "Alice (#1), admin" in done.stdout
    assert re.search(r"Invite code for a new member: [A-Z0-9]{4}-[A-Z0-9]{4}", done.stdout)
    assert "No active member matches Nobody" in done.stdout


def test_run_without_transports_talks_in_the_console(config_file: Path) -> None:
    assert coopbot(config_file, "member", "add", "--name", "Alice", "--role", "admin").returncode == 0
    done = coopbot(config_file, "run", stdin="/members\n")
    assert done.returncode == 0, done.stderr
    assert "running in the console" in done.stdout
    assert "1 active members" in done.stdout


def test_run_with_no_member_says_how_to_add_one(config_file: Path) -> None:
    done = coopbot(config_file, "run")
    assert done.returncode == 2
    assert "coopbot member add --name NAME --role admin" in done.stderr
