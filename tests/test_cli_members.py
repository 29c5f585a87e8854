"""`coopbot member list` and finding members by name from the server's command line."""

from __future__ import annotations

import io
import json
import sys
import unicodedata
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coopbot.app import CoopBot
from coopbot.cli import main
from coopbot.config import load_config
from coopbot.models import Member
from coopbot.services.members.accounts import pseudonym

ELODIE = unicodedata.normalize("NFC", "Élodie")
#: The same name as some keyboards and pasted text send it: E followed by a combining accent.
ELODIE_NFD = unicodedata.normalize("NFD", "Élodie")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[coop]\nname = "Coop Test"\n[database]\nurl = "sqlite:///{tmp_path / "c.sqlite3"}"\n')
    return path


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def test_the_list_shows_every_member_with_number_role_accounts_and_state(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config_file, "member", "add", "--name", "Alice", "--role", "admin",
               "--telegram", "1001", "--matrix", "@alice:example.org") == 0  # fmt: skip
    assert cli(config_file, "member", "add", "--name", "Bob") == 0
    assert cli(config_file, "member", "add", "--name", "Chloé", "--role", "coordinator", "--telegram", "1003") == 0
    assert cli(config_file, "member", "add", "--name", "Dan") == 0
    bot = CoopBot(load_config(config_file))
    try:
        with bot.sessions() as session, session.begin():
            chloe, dan = session.get_one(Member, 3), session.get_one(Member, 4)
            chloe.active, chloe.left_at = False, datetime(2026, 10, 31, 23, 30, tzinfo=UTC)  # Nov 1st in Paris
            dan.active, dan.left_at, dan.name = False, datetime(2026, 9, 1, tzinfo=UTC), pseudonym(4)
    finally:
        bot.dispose()
    capsys.readouterr()
    assert cli(config_file, "member", "list") == 0
    assert capsys.readouterr().out.splitlines() == [
        "number\tname\trole\taccounts\tstate",
        "#1\tAlice\tadmin\tmatrix @alice:example.org, telegram 1001\tactive",
        "#2\tBob\tmember\t-\tactive",
        "#3\tChloé\tcoordinator\ttelegram 1003\tleft 2026-11-01",
        "#4\tformer member #4\tmember\t-\terased",
    ]


def test_an_empty_co_op_lists_only_the_header(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(config_file, "member", "list") == 0
    assert capsys.readouterr().out == "number\tname\trole\taccounts\tstate\n"


def test_chat_as_an_unknown_name_points_to_the_list(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(config_file, "member", "add", "--name", "Alice", "--role", "admin") == 0
    capsys.readouterr()
    assert cli(config_file, "chat", "--as", "Nobody") == 1
    assert capsys.readouterr().err.strip() == (
        "No active member matches Nobody: `coopbot member list` shows every member with their number."
    )


@pytest.mark.parametrize(
    "typed",
    [ELODIE, ELODIE_NFD, ELODIE.upper(), ELODIE_NFD.upper(), ELODIE.lower(), ELODIE_NFD.lower()],
    ids=["composed", "decomposed", "upper", "upper decomposed", "lower", "lower decomposed"],
)
def test_chat_as_finds_elodie_however_her_name_is_typed(
    config_file: Path, typed: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli(config_file, "member", "add", "--name", ELODIE, "--role", "admin") == 0
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO("/whoami\n"))
    assert cli(config_file, "chat", "--as", typed) == 0
    assert f"Talking to Coop Test's bot as {ELODIE}." in capsys.readouterr().out


@pytest.mark.parametrize("typed", [ELODIE, ELODIE.upper()], ids=["as added", "upper"])
def test_export_member_finds_elodie_however_her_name_is_typed(
    config_file: Path, tmp_path: Path, typed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Added as sent decomposed, found as typed composed."""
    assert cli(config_file, "member", "add", "--name", "Bob") == 0
    assert cli(config_file, "member", "add", "--name", ELODIE_NFD, "--telegram", "730000117") == 0
    out = tmp_path / "elodie.zip"
    assert cli(config_file, "export", "member", typed, "--out", str(out)) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    with zipfile.ZipFile(out) as archive:
        data = json.loads(archive.read("data.json"))
    assert data["profile"][0]["id"] == 2


def test_the_operator_places_a_member_in_a_college(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "c.sqlite3"}"\n'
        '[colleges]\nweights = { workers = 50, partners = 50 }\ndefault = "workers"\n'
    )
    assert cli(path, "member", "add", "--name", "Pia") == 0
    capsys.readouterr()
    assert cli(path, "member", "college", "Pia", "Partners") == 0
    assert capsys.readouterr().out == "#1 Pia now votes in the partners college\n"
    assert cli(path, "member", "college", "Pia", "pirates") == 1
    assert capsys.readouterr().err.startswith("There is no college called “pirates”.")
    bot = CoopBot(load_config(path))
    with bot.sessions() as session:
        assert session.get_one(Member, 1).college == "partners"
    bot.dispose()
