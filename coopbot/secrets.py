"""The server's keys for secret ballots, kept away from the database.

Two kinds of key. The *server key* comes from the environment variable the
config names (the safer deployment: it never touches the disk), else from a
random key file created once, mode 0600. Each open secret poll also has its
own *poll key*, which seals that poll's ballots (`services.polls.ballot_box`); it is
a random key, wrapped with the server key, in a file of its own, and it is
destroyed when the poll closes.

Why files, and why not beside the database: the guarantee is that once a poll
has closed nobody can link a voter to a choice, even holding every backup of
the database, its write-ahead log and the server key. Anything the database
ever held stays in its backups and log, so a poll key stored there (even
wrapped with the server key) could be recovered after the close; a file
outside the database can really be destroyed. The keys therefore live in the
user's state directory (`$XDG_STATE_HOME/coopbot/`, by default
`~/.local/state/coopbot/`), in a folder named after the database so that two
co-ops on one host never share a key. Whatever is there must survive restarts
(mount it in a container): a poll whose key is lost cannot be counted.

Deployments from before kept the server key file beside the SQLite database
(`coopbot.sqlite3.ballot-key`) or in the working directory for PostgreSQL;
that file is still read when it exists, so polls open at the upgrade survive
it. `key_in_database_folder` names it so that `check-config` can warn.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from coopbot.config import Config

KEY_FILE = "ballot-key"
POLL_KEYS = "polls"
LEGACY_SUFFIX = ".ballot-key"
LEGACY_PG_FILE = "coopbot.ballot-key"
POLL_KEY_FILE = re.compile(r"^(\d+)\.key$")
_WRAP_LABEL = b"coopbot poll-key wrap v1"

_cache: dict[str, bytes] = {}
_lock = threading.Lock()


class KeyLost(RuntimeError):
    """A sealed ballot box whose poll key is gone or no longer opens."""


# --- where the keys are ----------------------------------------------------------


def database_file(config: Config) -> Path | None:
    """The SQLite file, or None for PostgreSQL and in-memory databases."""
    url = make_url(config.database.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve()
    return None


def state_home() -> Path:
    """`$XDG_STATE_HOME` when set to an absolute path (as the XDG spec asks), else `~/.local/state`."""
    configured = os.environ.get("XDG_STATE_HOME", "")
    if configured and Path(configured).is_absolute():
        return Path(configured)
    return Path.home() / ".local" / "state"


def key_dir(config: Config) -> Path:
    """This database's folder of keys: readable name, plus a digest of where the database is."""
    database = database_file(config)
    if database is not None:
        identity, label = str(database), database.stem
    else:
        url = make_url(config.database.url)
        identity = url.render_as_string(hide_password=True)
        label = url.database or url.get_backend_name()
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:40] or "coopbot"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return state_home() / "coopbot" / f"{label}-{digest}"


def legacy_key_file(config: Config) -> Path:
    """Where earlier versions created the server key file."""
    database = database_file(config)
    if database is not None:
        return database.with_name(database.name + LEGACY_SUFFIX)
    return Path.cwd() / LEGACY_PG_FILE


def default_key_file(config: Config) -> Path:
    return key_dir(config) / KEY_FILE


def key_file(config: Config) -> Path:
    """The server key file in use: the old place while a key is there, else the state directory."""
    legacy = legacy_key_file(config)
    return legacy if legacy.exists() else default_key_file(config)


def key_in_database_folder(config: Config) -> Path | None:
    """The key file (or poll-key folder) lying in the database's folder, where one backup takes both.

    Only SQLite has such a folder. A legacy key file there is reported even when
    the environment variable gives the key: the file still unlocks old ballots.
    """
    database = database_file(config)
    if database is None:
        return None
    folder = database.parent
    for candidate in (key_file(config), key_dir(config) / POLL_KEYS):
        if candidate.exists() and candidate.resolve().is_relative_to(folder):
            return candidate
    return None


# --- the server key ---------------------------------------------------------------


def ballot_secret(config: Config) -> bytes:
    from_env = os.environ.get(config.coop.secret_env, "")
    if from_env:
        return from_env.encode()
    path = key_file(config)
    cache_key = str(path.resolve())
    with _lock:
        if cache_key not in _cache:
            _cache[cache_key] = _read_or_create(path, lambda: secrets.token_hex(32).encode())
        key = _cache[cache_key]
    if len(key) < 32:
        raise RuntimeError(f"{path}: the ballot key file is damaged; restore it from a backup")
    return key


def _private_dir(folder: Path) -> None:
    """Only the folder itself is private: `mkdir(parents=True)` would give its parents the default mode."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)


def _read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """Create the file exactly once, even when two processes start together.

    It is written to a private temporary file first and then linked into
    place, so nobody ever reads a half-written key.
    """
    if not path.exists():
        _private_dir(path.parent)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(make() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_bytes().strip()


def ballot_key(config: Config, poll_id: int, member_id: int) -> str:
    """How earlier versions filed a secret ballot; only used to seal a poll opened before the upgrade."""
    message = f"{poll_id}:{member_id}".encode()
    return hmac.new(ballot_secret(config), message, hashlib.sha256).hexdigest()


# --- poll keys --------------------------------------------------------------------


def poll_key_file(config: Config, poll_id: int) -> Path:
    return key_dir(config) / POLL_KEYS / f"{poll_id}.key"


def encrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    """AES-256-GCM. `cryptography` is imported here, on the first secret ballot,
    not when the bot starts: it is 6 MiB of the idle bot's memory otherwise."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key).encrypt(nonce, data, aad)


def decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes, *, lost: str) -> bytes:
    """The inverse of `encrypt`; a wrong key or a changed byte is `KeyLost(lost)`."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(key).decrypt(nonce, data, aad)
    except InvalidTag:
        raise KeyLost(lost) from None


def seal(config: Config, purpose: bytes, owner: str, data: bytes) -> str:
    """Personal or secret data the bot must read back (an IBAN, a webhook's secret), kept so that a
    copy of the database alone does not give it away: AES-GCM under a key derived from the server
    key for one `purpose`, bound to its `owner` (copied to another row, it does not open). Hex, for
    a text column."""
    nonce = os.urandom(12)
    return (nonce + encrypt(purpose_key(config, purpose), nonce, data, owner.encode())).hex()


def unseal(config: Config, purpose: bytes, owner: str, sealed: str, *, lost: str) -> bytes:
    """What `seal` kept; `KeyLost(lost)` when the server key no longer opens it."""
    stored = bytes.fromhex(sealed)
    return decrypt(purpose_key(config, purpose), stored[:12], stored[12:], owner.encode(), lost=lost)


def purpose_key(config: Config, purpose: bytes) -> bytes:
    """A key of its own for one use of the server key (sealing IBANs, calendar addresses)."""
    return hmac.new(ballot_secret(config), purpose, hashlib.sha256).digest()


def _wrapping_key(config: Config) -> bytes:
    return hmac.new(ballot_secret(config), _WRAP_LABEL, hashlib.sha256).digest()


def poll_key(config: Config, poll_id: int, *, create: bool) -> bytes | None:
    """The poll's own 256-bit key; made on first use when `create`, else None if there is none.

    Wrapped with the server key: the state directory alone, without the
    environment variable, opens nothing.
    """
    path = poll_key_file(config, poll_id)
    if not path.exists() and not create:
        return None
    aad = f"poll:{poll_id}".encode()

    def wrapped() -> bytes:
        nonce = os.urandom(12)
        return (nonce + encrypt(_wrapping_key(config), nonce, os.urandom(32), aad)).hex().encode()

    _private_dir(key_dir(config))
    stored = bytes.fromhex(_read_or_create(path, wrapped).decode("ascii"))
    lost = f"{path} does not open with the server key: was {config.coop.secret_env} or the key file changed?"
    return decrypt(_wrapping_key(config), stored[:12], stored[12:], aad, lost=lost)


def poll_key_ids(config: Config) -> set[int]:
    """The polls that still have a key on disk."""
    folder = key_dir(config) / POLL_KEYS
    if not folder.is_dir():
        return set()
    return {int(found.group(1)) for path in folder.iterdir() if (found := POLL_KEY_FILE.match(path.name))}


def destroy_poll_key(config: Config, poll_id: int) -> None:
    """Overwrite, flush, then unlink: the copy on disk goes too, as far as the file system allows."""
    path = poll_key_file(config, poll_id)
    try:
        with path.open("r+b") as handle:
            handle.write(b"\0" * path.stat().st_size)
            handle.flush()
            os.fsync(handle.fileno())
        path.unlink()
    except FileNotFoundError:
        pass
