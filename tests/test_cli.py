"""What the member who installs the bot types on the server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy.exc

from coopbot.cli import build_parser, main
from coopbot.runner import upgrade_apart


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
    assert "1 active member:" in done.stdout


def test_run_with_no_member_says_how_to_add_one(config_file: Path) -> None:
    done = coopbot(config_file, "run")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "No members yet: add the first one with `coopbot member add --name NAME --role admin`, then start again."
    )


def test_run_without_an_admin_talks_as_the_first_member(config_file: Path) -> None:
    assert coopbot(config_file, "member", "add", "--name", "Bob").returncode == 0
    done = coopbot(config_file, "run", stdin="/whoami\n")
    assert done.returncode == 0, done.stderr
    assert "Talking to Coop Test's bot as Bob." in done.stdout


def test_run_warns_of_a_transport_filled_in_but_not_switched_on(tmp_path: Path, config_file: Path) -> None:
    text = config_file.read_text() + '[telegram]\ntoken_env = "COOP_TG"\ngroup_chat_ids = [-100123]\n'
    config_file.write_text(text)
    assert coopbot(config_file, "member", "add", "--name", "Alice", "--role", "admin").returncode == 0
    done = coopbot(config_file, "run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        "warning: [telegram] has settings (group_chat_ids, token_env) but no `enabled = true`: "
        "Telegram stays off until you add that line."
    )
    assert "running in the console" in done.stdout


# --- --config and -v, before or after the command ------------------------------------


def test_config_is_taken_after_the_command_too(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["member", "add", "--name", "Alice", "--role", "admin", "--config", str(config_file)]) == 0
    assert main(["db", "upgrade", "--config", str(config_file)]) == 0
    assert main(["member", "list", "--config", str(config_file)]) == 0
    assert "#1\tAlice\tadmin" in capsys.readouterr().out
    assert main(["period", "close", "--dry-run", "--config", str(config_file)]) == 0
    assert "DRY RUN, nothing changed" in capsys.readouterr().out
    assert main(["export", "ledger", "--period", "1999-01", "--config", str(config_file)]) == 1
    assert "There is no period 1999-01" in capsys.readouterr().err
    other = tmp_path / "other.toml"
    other.write_text(f'[coop]\nname = "Other"\n[database]\nurl = "sqlite:///{tmp_path / "o.sqlite3"}"\n')
    # Given before and after, the later one wins, as when an option is repeated.
    assert main(["--config", str(other), "member", "list", "--config", str(config_file)]) == 0
    assert "Alice" in capsys.readouterr().out
    assert main(["--config", str(config_file), "member", "list", "--config", str(other)]) == 0
    assert "Alice" not in capsys.readouterr().out


def test_run_and_chat_take_config_after_the_command(config_file: Path) -> None:
    assert coopbot(config_file, "member", "add", "--name", "Alice", "--role", "admin").returncode == 0
    for command in (["run"], ["chat", "--as", "Alice"]):
        done = subprocess.run(
            [sys.executable, "-m", "coopbot.cli", *command, "--config", str(config_file)],
            input="/whoami\n", capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "Talking to Coop Test's bot as Alice." in done.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "-v"],
        ["period", "close", "--verbose"],
        ["export", "ledger", "--period", "2026-11", "-v"],
        ["-v", "member", "list", "--config", "c.toml"],
    ],
)
def test_verbose_goes_before_or_after_the_command(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).verbose is True


# --- PostgreSQL named, its driver not installed -----------------------------------------

NO_DRIVER = (
    "database.url is a PostgreSQL URL but the PostgreSQL driver is not installed: install `coopbot[postgres]` "
    '(pip install "coopbot[postgres]") in coopbot\'s environment, or use a sqlite:/// URL.'
)


@pytest.fixture
def postgres_without_driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config naming PostgreSQL on an installation without the `postgres` extra."""
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now fails, as when it is absent
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "postgresql+psycopg://coopbot@127.0.0.1:1/coopbot"\n')
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["chat", "--as", "Alice"],
        ["db", "upgrade"],
        ["member", "add", "--name", "Alice", "--role", "admin"],
        ["member", "list"],
        ["invite"],
        ["period", "close", "--dry-run"],
        ["export", "ledger"],
        ["export", "member", "#1"],
    ],
)
def test_every_command_that_opens_the_database_says_to_install_the_extra(
    postgres_without_driver: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(postgres_without_driver), *command]) == 1
    assert capsys.readouterr().err.strip() == NO_DRIVER


def test_check_config_says_to_install_the_extra(
    postgres_without_driver: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(postgres_without_driver), "check-config"]) == 2
    out = capsys.readouterr().out
    assert NO_DRIVER in out
    assert ": OK" not in out


def test_a_short_postgresql_url_is_checked_too(
    postgres_without_driver: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    postgres_without_driver.write_text('[database]\nurl = "postgresql://coopbot@127.0.0.1:1/coopbot"\n')
    assert main(["--config", str(postgres_without_driver), "member", "list"]) == 1
    assert capsys.readouterr().err.strip() == NO_DRIVER


# --- light to start ------------------------------------------------------------------------

#: What `--help` and a mistyped command must not load: the bot, the database, the ballot keys' cryptography,
#: the period close's machinery (in coopbot.services).
HEAVY = ("coopbot.app", "coopbot.db", "coopbot.secrets", "coopbot.services", "coopbot.models",
         "sqlalchemy", "cryptography", "alembic", "matplotlib", "telegram", "nio", "pydantic", "aiohttp",
         "coopbot.web", "schwifty", "sepaxml")

LOADED = f"""
import sys
from coopbot.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
loaded = [name for name in sys.modules if any(name == heavy or name.startswith(heavy + ".") for heavy in {HEAVY})]
print(sorted(loaded), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--help"], ["no-such-command"], ["period", "close", "--no-such-option"],
                                  ["demo", "--help"]])
def test_help_and_argument_errors_load_nothing_heavy(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", LOADED, *argv], capture_output=True, text=True, timeout=60,
                          check=False)
    assert "usage: coopbot" in done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_an_upgrade_that_fails_in_its_child_process_fails_here(tmp_path: Path) -> None:
    """The migrations run in a forked child to keep their modules out of the bot's memory;
    what goes wrong there must stop `coopbot run` as it would have in-process."""
    broken = tmp_path / "not-a-database.sqlite3"
    broken.write_bytes(b"this is not a SQLite file" * 100)
    with pytest.raises(sqlalchemy.exc.DatabaseError):
        upgrade_apart(f"sqlite:///{broken}")
    assert upgrade_apart(f"sqlite:///{tmp_path / 'fresh.sqlite3'}") is True
