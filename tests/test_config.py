"""The installer's configuration: defaults that run, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from coopbot import secrets as ballot_secrets
from coopbot.cli import main
from coopbot.config import Config, load_config, parse_config
from coopbot.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_no_file_means_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.database.url.startswith("sqlite")
    assert config.shares.legal_reserve_pct + config.shares.development_fund_pct + config.shares.dividend_pct == 100


def test_example_config_is_valid_and_complete() -> None:
    example = load_config(ROOT / "config.example.toml")
    assert example == Config.model_validate(example.model_dump())
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for section, model in Config.model_fields.items():
        if section == "weights":
            continue
        for key in model.annotation.model_fields:  # type: ignore[union-attr]
            assert f"\n{key} =" in text or f"\n# {key} =" in text, f"{section}.{key} is not documented"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"coop": {"timezone": "Mars/Olympus"}}, "coop.timezone"),
        ({"coop": {"currency": "euros"}}, "coop.currency"),
        ({"coop": {"nmae": "typo"}}, "coop.nmae: unknown key"),
        ({"shares": {"legal_reserve_pct": 50}}, "add up to 100"),
        ({"periods": {"schedule": "every tuesday"}}, "periods.schedule"),
        ({"database": {"url": "mysql://x"}}, "database.url"),
        ({"weights": {"admin": -1}}, "weights"),
        ({"telegram": {"mode": "push"}}, "telegram.mode"),
        ({"web": {"port": 70000}}, "web.port"),
        ({"colleges": {"weights": {"workers": 60, "partners": 40}, "default": "workers"}}, "between 10 and 50"),
        ({"colleges": {"weights": {"workers": 50, "partners": 40}, "default": "workers"}}, "add up to 100"),
        ({"colleges": {"weights": {"workers": 50, "partners": 50}}}, 'default = "workers"'),
        ({"colleges": {"weights": {"workers": 50, "partners": 50}, "default": "crew"}}, "not one of the colleges"),
    ],
)
def test_a_bad_key_is_named_with_the_reason(data: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(data)
    assert named in str(raised.value)


def test_check_config_names_the_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[coop]\ntimezone = "Paris"\n', encoding="utf-8")
    assert main(["--config", str(path), "check-config"]) == 2
    assert "coop.timezone: unknown timezone 'Paris'" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["coop.example.org", "ftp://coop.example.org", "https://"])
def test_check_config_refuses_a_public_url_that_is_not_a_web_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[web]\nenabled = true\npublic_url = "{url}"\n', encoding="utf-8")
    assert main(["--config", str(path), "check-config"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "config error:",
        f"web.public_url: {url!r} is not a web address: write the full http(s) address people reach "
        "the web door at, like 'https://coop.example.org'",
    ]


def test_a_public_url_is_kept_without_its_last_slash() -> None:
    assert parse_config({"web": {"public_url": "https://coop.example.org/"}}).web.public_url == (
        "https://coop.example.org"
    )


def test_check_config_wants_the_token_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MY_TOKEN", raising=False)
    path = tmp_path / "config.toml"
    path.write_text('[telegram]\nenabled = true\ntoken_env = "MY_TOKEN"\n', encoding="utf-8")
    assert main(["--config", str(path), "check-config"]) == 2
    assert "MY_TOKEN is empty or not set" in capsys.readouterr().out
    monkeypatch.setenv("MY_TOKEN", "123:abc")
    assert main(["--config", str(path), "check-config"]) == 0


def test_check_config_warns_of_a_transport_filled_in_but_not_switched_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config.toml"
    path.write_text('[matrix]\nhomeserver = "https://matrix.example.org"\nuser_id = "@coopbot:example.org"\n')
    assert main(["--config", str(path), "check-config"]) == 0
    out = capsys.readouterr().out
    assert (
        "warning: [matrix] has settings (homeserver, user_id) but no `enabled = true`: "
        "Matrix stays off until you add that line.\n"
    ) in out
    assert ": OK" in out
    # No settings, or `enabled = false` written out (a choice, not an oversight): nothing to warn about.
    for text in ["", "[telegram]\n", '[telegram]\nenabled = false\ntoken_env = "TG"\n', '[coop]\nname = "C"\n']:
        path.write_text(text)
        assert main(["--config", str(path), "check-config"]) == 0
        assert "warning:" not in capsys.readouterr().out, text


def test_check_config_warns_of_a_ballot_key_beside_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    data = tmp_path / "data"
    data.mkdir()
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{data / "coop.sqlite3"}"\n')
    assert main(["--config", str(path), "check-config"]) == 0
    assert "warning:" not in capsys.readouterr().out
    key = data / "coop.sqlite3.ballot-key"  # where earlier versions made it
    key.write_text("0" * 64 + "\n")
    assert main(["--config", str(path), "check-config"]) == 0
    out = capsys.readouterr().out
    assert f"warning: {key} holds secret-ballot keys and is in the database's folder" in out
    assert "keep it out of the database's backups, or move it, with the bot stopped, to " in out
    assert str(tmp_path / "state") in out
    assert ": OK" in out


def test_check_config_reports_what_the_key_check_finds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever `key_in_database_folder` names (here a poll-key folder) is warned about."""
    folder = tmp_path / "polls"
    monkeypatch.setattr(ballot_secrets, "key_in_database_folder", lambda config: folder)
    monkeypatch.chdir(tmp_path)
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert f"warning: {folder} holds secret-ballot keys and is in the database's folder" in out
    assert "move it" not in out
