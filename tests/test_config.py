"""The installer's configuration: defaults that run, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

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
