"""`coopbot export member`: the operator answers a member's request for their data."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from coopbot.cli import main


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[coop]\nname = "Coop Test"\n[database]\nurl = "sqlite:///{tmp_path / "c.sqlite3"}"\n')
    return path


def add(config: Path, name: str, telegram: str) -> None:
    assert main(["--config", str(config), "member", "add", "--name", name, "--telegram", telegram]) == 0


def test_the_zip_is_written_where_asked_and_its_path_is_the_last_line(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add(config_file, "Zoé Leclerc", "730000117")
    add(config_file, "Bob Martin", "640000042")
    capsys.readouterr()
    out = tmp_path / "exports" / "zoe.zip"
    out.parent.mkdir()
    assert main(["--config", str(config_file), "export", "member", "Zoé Leclerc", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    with zipfile.ZipFile(io.BytesIO(out.read_bytes())) as archive:
        data = json.loads(archive.read("data.json"))
        everything = "".join(archive.read(name).decode() for name in archive.namelist())
    assert data["coop"] == "Coop Test"
    assert data["profile"][0]["name"] == "Zoé Leclerc"
    assert "730000117" in {identity["external_id"] for identity in data["identities"]}
    assert "Bob Martin" not in everything and "640000042" not in everything


def test_by_number_into_the_default_file(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    add(config_file, "Zoé Leclerc", "730000117")
    monkeypatch.chdir(tmp_path)
    assert main(["--config", str(config_file), "export", "member", "#1"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "coopbot-data-1.zip"
    assert zipfile.is_zipfile(tmp_path / "coopbot-data-1.zip")


def test_an_unknown_member_is_one_clear_sentence(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config_file), "export", "member", "Nobody"]) == 1
    assert capsys.readouterr().err.strip() == "No active member matches Nobody. Type /members to see the list."
