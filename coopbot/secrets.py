"""The server's key for secret ballots.

A member may change a secret vote until the close, so the server must find
their ballot again; someone reading the database must not. The ballot is
stored under `HMAC-SHA256(key, "poll:member")`: without this key, a ballot
row names no one. The key comes from the environment variable the config
names (the safer deployment: it never sits beside the data), else from a
random key file created once, mode 0600, next to the SQLite database (or in
the working directory for PostgreSQL). Whoever holds both the key and the
database can still link votes to members: keep them apart in backups.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path

from sqlalchemy.engine import make_url

from coopbot.config import Config

KEY_FILE_SUFFIX = ".ballot-key"
PG_KEY_FILE = "coopbot.ballot-key"

_cache: dict[str, bytes] = {}
_lock = threading.Lock()


def key_file(config: Config) -> Path:
    url = make_url(config.database.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database)
        return database.with_name(database.name + KEY_FILE_SUFFIX)
    return Path.cwd() / PG_KEY_FILE


def ballot_secret(config: Config) -> bytes:
    from_env = os.environ.get(config.coop.secret_env, "")
    if from_env:
        return from_env.encode()
    path = key_file(config)
    cache_key = str(path.resolve())
    with _lock:
        if cache_key not in _cache:
            _cache[cache_key] = _read_or_create(path)
        return _cache[cache_key]


def _read_or_create(path: Path) -> bytes:
    """Create the key exactly once, even when two processes start together.

    The key is written to a private temporary file first and then linked into
    place, so nobody ever reads a half-written key.
    """
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise RuntimeError(f"{path}: the ballot key file is damaged; restore it from a backup")
    return key.encode()


def ballot_key(config: Config, poll_id: int, member_id: int) -> str:
    """The name of one member's secret ballot in one poll; meaningless without the key."""
    message = f"{poll_id}:{member_id}".encode()
    return hmac.new(ballot_secret(config), message, hashlib.sha256).hexdigest()
