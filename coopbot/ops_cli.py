"""`coopbot status`, `coopbot backup DEST`, `coopbot restore SRC`: the operator's commands.

`status` answers "is it working?" from any machine that reaches the database:
which process leads and since when (and whether it still holds the lock right
now), the outbox's depth and oldest message, and each sweep's last run. It never
shows a message's text or names a member.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from coopbot.config import Config
    from coopbot.ops.leadership import Holder


def add_ops_commands(sub: Any) -> None:
    status = sub.add_parser("status", help="which process leads, the outbox's depth, the sweeps' last runs")
    status.set_defaults(action=cmd_status)
    backup = sub.add_parser("backup", help="copy the database to DEST while the bot runs (SQLite) or with pg_dump")
    backup.add_argument("dest", metavar="DEST", help="the backup file to write (must not exist)")
    backup.add_argument("--keys", metavar="DIR", help="also copy the secret-ballot keys there, apart from DEST")
    backup.set_defaults(action=cmd_backup)
    restore = sub.add_parser("restore", help="put a backup back into the configured database")
    restore.add_argument("source", metavar="SRC", help="a file `coopbot backup` wrote")
    restore.add_argument("--keys", metavar="DIR", help="also put back the secret-ballot keys copied there")
    restore.add_argument("--force", action="store_true", help="replace a database that holds data")
    restore.set_defaults(action=cmd_restore)


def _config(args: argparse.Namespace) -> Config:
    from coopbot.config import load_config

    return load_config(args.config)


def ago(then: datetime, now: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def when(moment: datetime, config: Config) -> str:
    return f"{moment.astimezone(config.coop.tz):%Y-%m-%d %H:%M:%S %Z}"


def leader_lines(config: Config, recorded: Holder | None, now: datetime) -> list[str]:
    """The leader as recorded, checked against who holds the lock at this moment."""
    from sqlalchemy import make_url

    from coopbot.ops import leadership
    from coopbot.ops.running import is_postgres, sqlite_file

    url = config.database.url
    said = (f"{recorded.host}, pid {recorded.pid}, since {when(recorded.since, config)} ({ago(recorded.since, now)})"
            if recorded else "none recorded yet")
    if is_postgres(url):
        engine = leadership.lock_engine(url)
        try:
            with engine.connect() as connection:
                backend = leadership.leader_backend(connection)
        finally:
            engine.dispose()
        state = "holding the lock now" if backend is not None else "NO process holds the lock now"
        return [f"leader: {said}; {state}"]
    database = sqlite_file(url)
    if database is None:
        return [f"leader: none (the database {make_url(url).render_as_string()} is in memory)"]
    holder = leadership.file_lock_held(leadership.lock_path(database))
    state = "running now" if holder is not None else "NOT running now"
    return [f"leader: {said}; {state} (SQLite: one process)"]


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.db import make_engine, make_sessionmaker, read_only
    from coopbot.ops import state as ops_state

    config = _config(args)
    engine = make_engine(config.database.url)
    sessions = make_sessionmaker(engine)
    now = datetime.now(UTC)
    try:
        with read_only(sessions) as session:
            recorded = ops_state.read_leader(session)
            outbox = ops_state.outbox_state(session)
            sweeps = ops_state.read_sweeps(session)
        lines = leader_lines(config, recorded, now)
    finally:
        engine.dispose()
    oldest = f", oldest queued {when(outbox.oldest, config)} ({ago(outbox.oldest, now)})" if outbox.oldest else ""
    lines.append(f"outbox: {outbox.pending} waiting{oldest}; {outbox.failed} set aside (coopbot outbox failed)")
    if not sweeps:
        lines.append("sweeps: none run yet")
    else:
        lines.append("sweeps (last run):")
        width = max(len(run.name) for run in sweeps)
        for run in sweeps:
            result = "ok" if run.ok else "FAILED (see the log)"
            lines.append(f"  {run.name:<{width}}  {when(run.at, config)} ({ago(run.at, now)}), "
                         f"{run.seconds:.3f} s, {result}")
    out.write("\n".join(lines) + "\n")
    return 0


def cmd_backup(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.backup import backup
    from coopbot.db import make_engine

    config = _config(args)
    engine = make_engine(config.database.url)
    try:
        done = backup(config, Path(args.dest), engine, Path(args.keys) if args.keys else None)
    finally:
        engine.dispose()
    out.write("\n".join(done.lines) + "\n")
    return 0


def cmd_restore(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.backup import restore
    from coopbot.db import make_engine

    config = _config(args)
    engine = make_engine(config.database.url)
    try:
        done = restore(config, Path(args.source), engine, force=args.force,
                       keys=Path(args.keys) if args.keys else None)
    finally:
        engine.dispose()
    out.write("\n".join(done.lines) + "\n")
    return 0
