"""`coopbot backup DEST` and `coopbot restore SRC`: the database, and the ballot keys apart.

SQLite: SQLite's online backup API copies a consistent snapshot page by page
while the bot runs and writes (WAL mode lets it read without stopping them), so
a backup never needs the bot stopped. Restoring writes through the same API into
the configured file, and needs the bot stopped (the lock file says if it is not).

PostgreSQL: `pg_dump` in its custom format with the configured URL (the command
says so), limited to the co-op's schema; `pg_restore` puts it back. PostgreSQL's
own tools are the right ones there: they know every type, sequence and index.

The secret-ballot keys (`coopbot.secrets`) are never in the database's backup,
and `--keys DIR` copies them to a folder that must lie outside the backup's. Why
apart: a secret ballot is sealed with its poll's key, destroyed when the poll
closes, so that nobody can ever link a voter to a choice afterwards. A backup
holding both the database and the keys would keep, for as long as it is kept,
what the close destroyed; kept apart (another place, other people, a shorter
life), the database's backups alone never open a ballot.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, inspect, make_url, select, text

from coopbot.config import Config
from coopbot.errors import CoopError, UsageError
from coopbot.ops.leadership import FileLock
from coopbot.ops.running import is_postgres, sqlite_file


class BackupError(CoopError):
    """A backup or restore that cannot be done as asked."""


@dataclass(frozen=True)
class Done:
    """What was done, as the operator reads it: one line each."""

    lines: list[str]


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as PostgreSQL's tools take it: no `+driver`, password included."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def shown_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=True)


def _run_tool(tool: str, args: list[str]) -> None:
    if shutil.which(tool) is None:
        raise BackupError("ops.pg_dump_missing", tool=tool)
    done = subprocess.run([tool, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        error = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise BackupError("ops.pg_tool_failed", tool=tool, error=error)


def current_schema(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(connection.execute(text("SELECT current_schema()")).scalar() or "public")


# --- backup --------------------------------------------------------------------------------


def backup(config: Config, dest: Path, engine: Engine, keys: Path | None = None) -> Done:
    if dest.exists():
        raise BackupError("ops.backup_exists", dest=str(dest))
    if keys is not None:
        _check_apart(dest, keys)
    dest.parent.mkdir(parents=True, exist_ok=True)
    url = config.database.url
    if is_postgres(url):
        schema = current_schema(engine)
        _run_tool("pg_dump", ["--format=custom", "--no-owner", f"--schema={schema}", f"--file={dest}",
                              f"--dbname={libpq_url(url)}"])
        lines = [f"Ran pg_dump on {shown_url(url)} (schema {schema}): the co-op's database is in {dest}."]
    else:
        database = sqlite_file(url)
        if database is None:
            raise UsageError("ops.in_memory")
        partial = dest.with_name(dest.name + ".partial")
        with sqlite3.connect(database) as source, sqlite3.connect(partial) as target:
            source.backup(target)
        source.close()
        target.close()
        os.replace(partial, dest)
        lines = [f"Copied {database} with SQLite's online backup (consistent while the bot runs) to {dest}."]
    if keys is None:
        lines.append("The secret-ballot keys are not in it, on purpose: back them up apart with --keys DIR, "
                     "to another place than the database's backups.")
    else:
        lines += backup_keys(config, keys)
    return Done(lines)


def _check_apart(dest: Path, keys: Path) -> None:
    folder = dest.resolve().parent
    if keys.resolve() == folder or keys.resolve().is_relative_to(folder):
        raise BackupError("ops.keys_inside", keys=str(keys), folder=str(folder))


def backup_keys(config: Config, keys: Path) -> list[str]:
    """The server key file and the open polls' keys, mode 0600 in a 0700 folder."""
    from coopbot import secrets

    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = []
    if os.environ.get(config.coop.secret_env):
        lines.append(f"The server key comes from ${config.coop.secret_env}: keep it with your other secrets.")
    server = secrets.key_file(config)
    if server.exists():
        _copy_private(server, keys / secrets.KEY_FILE)
        lines.append(f"Copied the server key file to {keys / secrets.KEY_FILE}.")
    polls = secrets.key_dir(config) / secrets.POLL_KEYS
    count = 0
    if polls.is_dir():
        (keys / secrets.POLL_KEYS).mkdir(exist_ok=True, mode=0o700)
        for found in sorted(polls.iterdir()):
            if secrets.POLL_KEY_FILE.match(found.name):
                _copy_private(found, keys / secrets.POLL_KEYS / found.name)
                count += 1
    lines.append(f"Copied the keys of {count} open secret poll(s): delete this copy once those polls have closed.")
    return lines


def _copy_private(source: Path, target: Path) -> None:
    target.write_bytes(source.read_bytes())
    target.chmod(0o600)


# --- restore ---------------------------------------------------------------------------------


def holds_data(engine: Engine) -> bool:
    """Any row in any of coopbot's tables: a database `coopbot db upgrade` only created is empty."""
    from coopbot.models import Base

    present = set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name in present and connection.execute(select(1).select_from(table).limit(1)).first():
                return True
    return False


def restore(config: Config, source: Path, engine: Engine, *, force: bool, keys: Path | None = None) -> Done:
    url = config.database.url
    if not source.is_file():
        raise BackupError("ops.no_backup", source=str(source))
    target = shown_url(url) if is_postgres(url) else str(sqlite_file(url))
    if holds_data(engine) and not force:
        raise BackupError("ops.not_empty", target=target, source=str(source))
    if is_postgres(url):
        _run_tool("pg_restore", ["--list", str(source)])  # a pg_dump archive, or refused before dropping anything
        engine.dispose()
        _run_tool("pg_restore", ["--clean", "--if-exists", "--no-owner", "--exit-on-error", "--single-transaction",
                                 f"--dbname={libpq_url(url)}", str(source)])
        lines = [f"Ran pg_restore of {source} into {shown_url(url)}."]
    else:
        database = sqlite_file(url)
        if database is None:
            raise UsageError("ops.in_memory")
        _check_sqlite_backup(source)
        lock = FileLock(database)
        lock.acquire()  # refuses while the bot runs on it
        try:
            engine.dispose()
            with sqlite3.connect(source) as backup_db, sqlite3.connect(database) as live:
                backup_db.backup(live)
            backup_db.close()
            live.close()
        finally:
            lock.release()
        lines = [f"Restored {database} from {source} with SQLite's backup API."]
    if keys is not None:
        lines += restore_keys(config, keys, force=force)
    lines.append("Run `coopbot db upgrade` if the backup is older than this version of coopbot.")
    return Done(lines)


def _check_sqlite_backup(source: Path) -> None:
    try:
        with sqlite3.connect(source) as db:
            query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            found = db.execute(query).fetchone()
        db.close()
    except sqlite3.DatabaseError:
        found = None
    if not found:
        raise BackupError("ops.no_backup", source=str(source))


def restore_keys(config: Config, keys: Path, *, force: bool) -> list[str]:
    from coopbot import secrets

    target = secrets.key_dir(config)
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    restored = 0
    server = keys / secrets.KEY_FILE
    if server.is_file():
        destination = secrets.default_key_file(config)
        if destination.exists() and destination.read_bytes() != server.read_bytes() and not force:
            raise BackupError("ops.not_empty", target=str(destination), source=str(server))
        _copy_private(server, destination)
        restored += 1
    polls = keys / secrets.POLL_KEYS
    if polls.is_dir():
        (target / secrets.POLL_KEYS).mkdir(exist_ok=True, mode=0o700)
        for found in sorted(polls.iterdir()):
            if secrets.POLL_KEY_FILE.match(found.name):
                _copy_private(found, target / secrets.POLL_KEYS / found.name)
                restored += 1
    return [f"Restored {restored} key file(s) to {target}."]
