"""`coopbot customer add|list`: the operator signs up a shop from the server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import LOADED
from tests.test_cli_members import cli, config_file

__all__ = ["config_file"]  # the fixture, shared with the members' commands


def test_customer_add_then_list_shows_number_name_accounts_address_and_state(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config_file, "member", "add", "--name", "Alice", "--role", "admin") == 0
    assert cli(config_file, "customer", "add", "--name", "Boulangerie Martin", "--telegram", "4242",
               "--matrix", "@martin:example.org", "--address", "3 rue Paul Bert, 75011",
               "--lang", "fr") == 0  # fmt: skip
    assert cli(config_file, "customer", "add", "--name", "Chez Léa") == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["added customer #2 Boulangerie Martin",
                                                         "added customer #3 Chez Léa"]  # fmt: skip
    assert cli(config_file, "customer", "list") == 0
    assert capsys.readouterr().out.splitlines() == [
        "number\tname\taccounts\taddress\tstate",
        "#2\tBoulangerie Martin\tmatrix @martin:example.org, telegram 4242\t3 rue Paul Bert, 75011\tactive",
        "#3\tChez Léa\t-\t-\tactive",
    ]


def test_member_list_leaves_customers_out(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(config_file, "member", "add", "--name", "Alice", "--role", "admin") == 0
    assert cli(config_file, "customer", "add", "--name", "Boulangerie Martin") == 0
    capsys.readouterr()
    assert cli(config_file, "member", "list") == 0
    assert capsys.readouterr().out.splitlines() == [
        "number\tname\trole\taccounts\tstate",
        "#1\tAlice\tadmin\t-\tactive",
    ]


def test_customer_add_refuses_a_matrix_id_without_a_server(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config_file, "customer", "add", "--name", "Boulangerie Martin", "--matrix", "@martin") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "--matrix @martin: a Matrix id looks like @alice:example.org; type it that way, or leave it out."
    )
    assert cli(config_file, "customer", "list") == 0
    assert capsys.readouterr().out == "number\tname\taccounts\taddress\tstate\n"


def test_customer_add_refuses_a_language_the_bot_does_not_speak(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config_file, "customer", "add", "--name", "Bäckerei Schmidt", "--lang", "de") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "--lang de: the bot writes to customers in English or French; type --lang en or --lang fr."
    )


def test_customer_add_refuses_an_empty_address(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(config_file, "customer", "add", "--name", "Boulangerie Martin", "--address", " ") == 1
    assert capsys.readouterr().err.strip() == (
        'An address cannot be empty. Give the street and town, like "3 rue Paul Bert, 75011 Paris".'
    )


def test_the_operator_prints_an_invite_for_a_customer(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(config_file, "invite", "--role", "customer") == 0
    assert capsys.readouterr().out.startswith("one-time invite for a new customer, valid 7 days:")


@pytest.mark.parametrize("argv", [["customer", "--help"], ["customer", "add", "--help"]])
def test_customer_help_loads_nothing_heavy(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", LOADED, *argv], capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert "usage: coopbot customer" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_customer_key_prints_a_new_key_once_and_a_new_key_revokes_the_old(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import text

    from coopbot.app import CoopBot
    from coopbot.config import load_config
    from coopbot.services.members import api_keys

    assert cli(config_file, "customer", "add", "--name", "Boulangerie Martin") == 0
    assert cli(config_file, "customer", "key", "Boulangerie Martin") == 0
    first = capsys.readouterr().out.splitlines()[-1]
    assert cli(config_file, "customer", "key", "#1") == 0  # by number
    out = capsys.readouterr().out.splitlines()
    second = out[-1]
    assert first.startswith("coop_") and second.startswith("coop_") and first != second
    assert "replaces the old key" in out[-2]
    bot = CoopBot(load_config(config_file))
    try:
        with bot.sessions() as session:
            assert api_keys.customer_of(session, first) is None
            found = api_keys.customer_of(session, second)
            assert found is not None and found.name == "Boulangerie Martin"
            stored = " ".join(str(v) for row in session.execute(text("SELECT * FROM api_key")) for v in row)
            assert second not in stored and second.split("_", 2)[2] not in stored
    finally:
        bot.dispose()


def test_customer_webhook_prints_a_new_secret_once_keeps_it_sealed_and_off_stops_it(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import text

    from coopbot.app import CoopBot
    from coopbot.config import load_config
    from coopbot.services.dispatch import webhooks

    assert cli(config_file, "customer", "add", "--name", "Boulangerie Martin") == 0
    assert cli(config_file, "customer", "webhook", "Boulangerie Martin", "https://shop.example/coopbot-hook") == 0
    out = capsys.readouterr().out.splitlines()
    first = out[-1]
    assert "POSTed to https://shop.example/coopbot-hook" in out[-2] and first.startswith("whsec_")
    assert cli(config_file, "customer", "webhook", "#1", "http://127.0.0.1:8099/hook") == 0  # on this machine
    second = capsys.readouterr().out.splitlines()[-1]
    assert second.startswith("whsec_") and second != first
    bot = CoopBot(load_config(config_file))
    try:
        with bot.sessions() as session:
            assert webhooks.target_of(session, bot.config, 1) == ("http://127.0.0.1:8099/hook", second)
            stored = " ".join(str(v) for row in session.execute(text("SELECT * FROM member")) for v in row)
            assert second not in stored and second.removeprefix("whsec_") not in stored  # sealed, not plain
    finally:
        bot.dispose()
    assert cli(config_file, "customer", "webhook", "#1", "--off") == 0
    assert capsys.readouterr().out.strip() == "customer #1 Boulangerie Martin: webhooks stopped"
    bot = CoopBot(load_config(config_file))
    try:
        with bot.sessions() as session:
            assert webhooks.target_of(session, bot.config, 1) is None
    finally:
        bot.dispose()


def test_customer_webhook_refuses_plain_http_to_another_machine_and_a_member(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config_file, "member", "add", "--name", "Alice", "--role", "admin") == 0
    assert cli(config_file, "customer", "add", "--name", "Boulangerie Martin") == 0
    capsys.readouterr()
    assert cli(config_file, "customer", "webhook", "#2", "http://shop.example/hook") == 1
    assert "is not https" in capsys.readouterr().err
    assert cli(config_file, "customer", "webhook", "Alice", "https://shop.example/hook") == 1
    assert capsys.readouterr().err.strip() == "Alice is not an active customer: only customers get webhooks."
    assert cli(config_file, "customer", "webhook", "#2") == 2  # neither a URL nor --off
    assert "or --off to stop" in capsys.readouterr().err
