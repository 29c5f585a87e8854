"""`coopbot backup` then `coopbot restore`: a database on which the sweeps and the outbox go on
as before; a database with data is replaced only with --force; the ballot keys travel apart."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from coopbot import secrets
from coopbot.app import CoopBot
from coopbot.chat import Address, Outgoing
from coopbot.cli import main
from coopbot.db import transaction
from coopbot.models import Member, OutboxMessage
from coopbot.outbox import outbox_row, store_new
from coopbot.services.members import accounts as members_svc
from coopbot.transports.console import ConsoleTransport
from tests.conftest import make_config, postgres_base_url


def config_file(folder: Path, url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    path.write_text(f'[coop]\nname = "Coop Test"\n[database]\nurl = "{url}"\n', encoding="utf-8")
    return path


def fill(url: str, members: int = 5, pending: int = 3, *, who: str = "m") -> None:
    """Members, and messages still owed to them: what a restore must not lose."""
    bot = CoopBot(make_config(url))
    now = datetime.now(UTC)
    with transaction(bot.sessions) as session:
        for n in range(members):
            member = members_svc.create_member(session, f"Member {who}{n}", "member", now)
            members_svc.add_identity(session, member, "console", f"{who}{n}", now, f"Member {who}{n}")
        rows = [outbox_row(f"owed:{n}", Address("console", f"m{n}", True), Outgoing(f"Owed {n}"), now,
                           None, None, None) for n in range(pending)]
        store_new(session, rows)
    bot.dispose()


def counts(url: str) -> tuple[int, int]:
    bot = CoopBot(make_config(url), migrate=False)
    with bot.sessions() as session:
        members = session.scalar(select(func.count()).select_from(Member)) or 0
        owed = session.scalar(select(func.count()).where(OutboxMessage.status == "pending")) or 0
    bot.dispose()
    return members, owed


async def carries_on(url: str) -> None:
    """The restored co-op runs: every sweep goes through, and the messages owed go out."""
    bot = CoopBot(make_config(url))
    console = ConsoleTransport(out=None)
    bot.add_transport(console)
    try:
        assert bot.scheduler.run_due() == []
        await bot.outbox.drain()
        assert sorted(d.message.text for d in console.log) == ["Owed 0", "Owed 1", "Owed 2"]
    finally:
        bot.dispose()


async def test_a_sqlite_backup_taken_while_the_bot_writes_restores_to_a_working_co_op(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source_url = f"sqlite:///{tmp_path / 'live' / 'coop.sqlite3'}"
    live = config_file(tmp_path / "live", source_url)
    fill(source_url)
    writing, stop = threading.Event(), threading.Event()

    def writer() -> None:  # the bot at work: commits all through the backup
        db = sqlite3.connect(tmp_path / "live" / "coop.sqlite3", timeout=30)
        db.execute("CREATE TABLE IF NOT EXISTS busy (n INTEGER)")
        while not stop.is_set():
            with db:
                db.execute("INSERT INTO busy VALUES (1)")
            writing.set()
        db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(30)
        assert main(["--config", str(live), "backup", str(tmp_path / "backups" / "coop.bak")]) == 0
    finally:
        stop.set()
        thread.join()
    said = capsys.readouterr().out
    assert "SQLite's online backup" in said and "not in it, on purpose" in said
    with sqlite3.connect(tmp_path / "backups" / "coop.bak") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    copy.close()

    restored_url = f"sqlite:///{tmp_path / 'new' / 'coop.sqlite3'}"
    new = config_file(tmp_path / "new", restored_url)
    assert main(["--config", str(new), "restore", str(tmp_path / "backups" / "coop.bak")]) == 0
    assert counts(restored_url) == (5, 3)
    await carries_on(restored_url)


def test_restore_refuses_a_database_with_data_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'coop.sqlite3'}"
    config = config_file(tmp_path, url)
    fill(url, members=2, pending=0)
    assert main(["--config", str(config), "backup", str(tmp_path / "b" / "two.bak")]) == 0
    fill(url, members=1, pending=0, who="late")
    capsys.readouterr()
    assert main(["--config", str(config), "restore", str(tmp_path / "b" / "two.bak")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"{tmp_path / 'coop.sqlite3'} already holds a co-op's data: add --force to replace it with "
        f"{tmp_path / 'b' / 'two.bak'}."
    )
    assert counts(url) == (3, 0)
    assert main(["--config", str(config), "restore", str(tmp_path / "b" / "two.bak"), "--force"]) == 0
    assert counts(url) == (2, 0)
    (tmp_path / "junk").write_text("not a database", encoding="utf-8")
    capsys.readouterr()
    assert main(["--config", str(config), "restore", str(tmp_path / "junk"), "--force"]) == 1
    assert "is not a coopbot backup" in capsys.readouterr().err


def test_the_ballot_keys_are_backed_up_apart_and_come_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'old' / 'coop.sqlite3'}"
    old = config_file(tmp_path / "old", url)
    fill(url, members=1, pending=0)
    server_key = secrets.ballot_secret(make_config(url))
    assert secrets.poll_key(make_config(url), 7, create=True) is not None
    assert main(["--config", str(old), "backup", str(tmp_path / "b" / "c.bak"), "--keys", str(tmp_path / "b")]) == 1
    assert "keep the secret-ballot keys apart" in capsys.readouterr().err
    assert not (tmp_path / "b" / "c.bak").exists()
    keys = tmp_path / "elsewhere" / "keys"
    assert main(["--config", str(old), "backup", str(tmp_path / "b" / "c.bak"), "--keys", str(keys)]) == 0
    assert (keys / secrets.KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert (keys / secrets.POLL_KEYS / "7.key").exists()
    with sqlite3.connect(tmp_path / "b" / "c.bak") as copy:  # nothing of the keys in the database's backup
        dump = "\n".join(copy.iterdump())
    copy.close()
    assert server_key.decode() not in dump

    new_url = f"sqlite:///{tmp_path / 'new' / 'coop.sqlite3'}"
    new = config_file(tmp_path / "new", new_url)
    assert main(["--config", str(new), "restore", str(tmp_path / "b" / "c.bak"), "--keys", str(keys)]) == 0
    secrets._cache.clear()
    assert secrets.ballot_secret(make_config(new_url)) == server_key
    assert secrets.poll_key_ids(make_config(new_url)) == {7}


@pytest.mark.postgres
async def test_a_postgres_backup_is_pg_dump_and_restores_with_pg_restore(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("PostgreSQL backup test: pg_dump and pg_restore are not installed")
    config = config_file(tmp_path, pg_url)
    fill(pg_url)
    assert main(["--config", str(config), "backup", str(tmp_path / "coop.dump")]) == 0
    assert "Ran pg_dump on postgresql://" in capsys.readouterr().out
    fill(pg_url, members=1, pending=0, who="late")
    assert main(["--config", str(config), "restore", str(tmp_path / "coop.dump")]) == 1
    assert "already holds a co-op's data: add --force" in capsys.readouterr().err
    schema = pg_url.rsplit("%3D", 1)[1]
    admin = create_engine(postgres_base_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:  # a new, empty database to restore into
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    assert main(["--config", str(config), "restore", str(tmp_path / "coop.dump")]) == 0
    assert "Ran pg_restore" in capsys.readouterr().out
    assert counts(pg_url) == (5, 3)
    await carries_on(pg_url)
