"""Secret ballots stay secret from whoever holds the server's files.

During a poll, someone reading the database and its write-ahead log, frame
by frame, without the key, cannot tell who chose what; after the close,
nobody can, even with every backup and the server's key.
"""

from __future__ import annotations

import hashlib
import json
import stat
import struct
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import func, select, text

from coopbot import secrets
from coopbot.config import Config
from coopbot.db import alembic_config, make_engine, make_sessionmaker, transaction, upgrade
from coopbot.models import BallotBox, Member, Poll, Voter
from coopbot.secrets import KeyLost
from coopbot.services.polls import ballot_box, voting
from tests.conftest import Coop, make_config
from tests.services.conftest import members, open_poll

pytestmark = pytest.mark.usefixtures("ballot_env")
CHOICES = ("agree", "abstain", "disagree", "block")


def cast(coop: Coop, member_id: int, poll_id: int, choice: str) -> None:
    with coop.session() as session:
        member = session.get_one(Member, member_id)
        voting.vote(session, coop.bot.config, member, f"P-{poll_id}", choice, coop.clock.now())


def close(coop: Coop, poll_id: int) -> dict[str, Any]:
    with coop.session() as session:
        assert voting.close(session, coop.bot.config, poll_id, coop.clock.now())
        return dict(session.get_one(Poll, poll_id).result)


def sealed_box(coop: Coop, poll_id: int) -> bytes:
    with coop.session() as session:
        return bytes(session.scalars(select(BallotBox.sealed).where(BallotBox.poll_id == poll_id)).one())


# --- an attacker reading SQLite's files, without any key ---------------------------------------


def varint(buf: bytes, at: int) -> tuple[int, int]:
    value = 0
    for n in range(9):
        byte = buf[at + n]
        if n == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + n + 1
    raise AssertionError("unreachable")


def leaf_records(page_no: int, page: bytes) -> Iterator[tuple[Any, ...]]:
    """The rows on a table leaf page, as SQLite's file format lays them out (rowid left aside)."""
    head = 100 if page_no == 1 else 0
    if page[head] != 0x0D:
        return
    for cell in range(struct.unpack_from(">H", page, head + 3)[0]):
        try:
            at = struct.unpack_from(">H", page, head + 8 + 2 * cell)[0]
            length, at = varint(page, at)
            _rowid, at = varint(page, at)
            payload = page[at : at + length]
            header_size, pos = varint(payload, 0)
            types = []
            while pos < header_size:
                kind, pos = varint(payload, pos)
                types.append(kind)
            values: list[Any] = []
            body = header_size
            for kind in types:
                size = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8, 7: 8}.get(kind, 0)
                if kind >= 12:
                    size = (kind - 12) // 2
                values.append(payload[body : body + size] if kind >= 12 else (kind, payload[body : body + size]))
                body += size
            yield tuple(values)
        except (IndexError, struct.error):
            continue


class WalReader:
    """Reads the `-wal` file frame by frame, as a database administrator could, after each vote."""

    def __init__(self, database: Path) -> None:
        self.wal = database.with_name(database.name + "-wal")
        main = database.read_bytes()
        size = struct.unpack_from(">H", main, 16)[0] or 65536
        self.pages = {n + 1: main[n * size : (n + 1) * size] for n in range(len(main) // size)}
        self.seen: set[tuple[int, int, int]] = set()
        self.next()

    def _commits(self) -> Iterator[tuple[tuple[int, int, int], dict[int, bytes]]]:
        data = self.wal.read_bytes()
        if len(data) < 32:
            return
        page_size, _checkpoint, salt1, salt2 = struct.unpack_from(">IIII", data, 8)
        pending: dict[int, bytes] = {}
        at = 32
        while at + 24 + page_size <= len(data):
            page_no, commit, s1, s2 = struct.unpack_from(">IIII", data, at)
            if (s1, s2) != (salt1, salt2):
                break
            pending[page_no] = data[at + 24 : at + 24 + page_size]
            at += 24 + page_size
            if commit:
                yield (salt1, salt2, at), pending
                pending = {}

    def next(self) -> tuple[list[bytes], Counter[tuple[Any, ...]]]:
        """Pages written since the last call, and the rows they added (a row moved elsewhere cancels out)."""
        written: list[bytes] = []
        added: Counter[tuple[Any, ...]] = Counter()
        for mark, pages in self._commits():
            if mark in self.seen:
                continue
            self.seen.add(mark)
            for page_no, page in pages.items():
                added.update(leaf_records(page_no, page))
                added.subtract(leaf_records(page_no, self.pages.get(page_no, b"\0" * len(page))))
                self.pages[page_no] = page
                written.append(page)
        return written, +added


def guess(added: Counter[tuple[Any, ...]]) -> str | None:
    """The one choice that appeared in the rows this vote added, if the rows show one."""
    found = {
        choice
        for row in added
        for value in row
        for choice in CHOICES
        if isinstance(value, bytes) and f'"{choice}"'.encode() in value
    }
    return found.pop() if len(found) == 1 else None


async def test_the_wal_attack_links_no_secret_voter_to_a_choice(coop: Coop, sqlite_url: str) -> None:
    database = Path(sqlite_url.removeprefix("sqlite:///"))
    with coop.session() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    ids = members(coop, 7)
    secret = open_poll(coop, ids[0], voting.PollSpec("Hire a mechanic?", [], secret=True))
    public = open_poll(coop, ids[0], voting.PollSpec("Paint the depot?", []))
    chosen = ["agree", "disagree", "abstain", "block", "agree", "disagree", "agree"]
    attacker = WalReader(database)
    linked_public: dict[int, str | None] = {}
    linked_secret: dict[int, str | None] = {}
    for member_id, choice in [*zip(ids, chosen, strict=True), (ids[0], "block")]:
        cast(coop, member_id, public, choice)
        _written, added = attacker.next()
        linked_public[member_id] = guess(added)
        cast(coop, member_id, secret, choice)
        written, added = attacker.next()
        assert added, "the attacker must see the secret vote's writes"
        linked_secret[member_id] = guess(added)
        for page in written:  # not even stale bytes on a page the vote wrote name a choice
            assert not any(f'"{c}"'.encode() in page for c in CHOICES)
    # The attack works: on a poll that is not secret it links every voter to their latest choice ...
    assert linked_public == dict(zip(ids, ["block", *chosen[1:]], strict=True))
    # ... and on the secret poll it links no one.
    assert linked_secret == dict.fromkeys(ids)
    result = close(coop, secret)
    assert result["counts"] == {"agree": 2, "abstain": 1, "disagree": 2, "block": 2}


def test_the_size_of_a_box_says_how_many_voted_never_what() -> None:
    key = bytes(32)
    proposal = Poll(id=1, kind="proposal", options=[])
    sizes = {len(ballot_box.seal(proposal, key, {7: [c], 9: ["agree"]})) for c in CHOICES}
    assert len(sizes) == 1
    multiple = Poll(id=2, kind="multiple", options=[str(n) for n in range(10)])
    ticks = [list(c) for r in range(11) for c in combinations(range(1, 11), r) if r in (0, 1, 5, 10)]
    assert len({len(ballot_box.seal(multiple, key, {3: tick})) for tick in ticks}) == 1
    for tick in ticks:
        assert ballot_box.unseal(multiple, key, ballot_box.seal(multiple, key, {3: tick})) == {3: tick}
    # A box is bound to its poll: moved to another one it does not open.
    with pytest.raises(KeyLost):
        ballot_box.unseal(Poll(id=3, kind="proposal"), key, ballot_box.seal(proposal, key, {7: ["block"]}))


# --- after the close -------------------------------------------------------------------------


async def test_after_the_close_only_the_tally_is_left_and_no_key_opens_a_backup(any_coop: Coop) -> None:
    coop = any_coop
    config = coop.bot.config
    ids = members(coop, 3)
    poll_id = open_poll(coop, ids[0], voting.PollSpec("Which bike?", ["Cargo", "Trike"], secret=True))
    for member_id, choice in zip(ids, ["1", "2", "2"], strict=True):
        cast(coop, member_id, poll_id, choice)
    backup = sealed_box(coop, poll_id)  # what a backup of the database, or its log, keeps
    assert secrets.poll_key_ids(config) == {poll_id}
    with coop.session() as session:
        ballots = ballot_box.read(session, config, session.get_one(Poll, poll_id))
    assert ballots == {ids[0]: [1], ids[1]: [2], ids[2]: [2]}
    result = close(coop, poll_id)
    assert result["counts"] == {"1": 1, "2": 2}
    with coop.session() as session:
        assert session.scalar(select(func.count()).select_from(BallotBox)) == 0
        assert session.scalar(select(func.count(Voter.id))) == 3  # who voted stays: turnout, /mydata
        poll = session.get_one(Poll, poll_id)
    assert not secrets.poll_key_file(config, poll_id).exists()
    assert secrets.poll_key_ids(config) == set()
    assert secrets.poll_key(config, poll_id, create=False) is None
    # Everything the server still holds: its key, and whatever is in its key folder.
    server_key = secrets.ballot_secret(config)
    candidates = [server_key[:32], hashlib.sha256(server_key).digest()]
    for path in secrets.key_dir(config).rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            candidates += [content[:32], hashlib.sha256(content).digest()]
    for candidate in candidates:
        with pytest.raises(KeyLost):
            ballot_box.unseal(poll, candidate.ljust(32, b"\0"), backup)


async def test_a_close_that_rolls_back_keeps_the_poll_and_its_key(coop: Coop) -> None:
    ids = members(coop, 2)
    poll_id = open_poll(coop, ids[0], voting.PollSpec("Move the depot?", [], secret=True))
    cast(coop, ids[0], poll_id, "agree")
    with pytest.raises(RuntimeError, match="crash"), coop.session() as session:
        assert voting.close(session, coop.bot.config, poll_id, coop.clock.now())
        raise RuntimeError("crash after the close, before the commit")
    with pytest.raises(RuntimeError, match="crash"), coop.session() as session:  # inside a released savepoint
        with session.begin_nested():
            assert voting.close(session, coop.bot.config, poll_id, coop.clock.now())
        raise RuntimeError("crash after the savepoint, before the commit")
    assert secrets.poll_key_file(coop.bot.config, poll_id).exists()
    cast(coop, ids[1], poll_id, "disagree")
    cast(coop, ids[0], poll_id, "block")
    assert close(coop, poll_id)["counts"] == {"agree": 0, "abstain": 0, "disagree": 1, "block": 1}
    assert not secrets.poll_key_file(coop.bot.config, poll_id).exists()


async def test_a_key_left_by_a_crash_after_a_close_goes_at_the_next_close(
    coop: Coop, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = members(coop, 1)
    first = open_poll(coop, ids[0], voting.PollSpec("First?", [], secret=True))
    second = open_poll(coop, ids[0], voting.PollSpec("Second?", [], secret=True))
    cast(coop, ids[0], first, "agree")
    cast(coop, ids[0], second, "agree")
    destroy = secrets.destroy_poll_key

    def crash(config: Config, poll_id: int) -> None:
        raise OSError("the process died here")

    monkeypatch.setattr(secrets, "destroy_poll_key", crash)
    close(coop, first)
    assert secrets.poll_key_ids(coop.bot.config) == {first, second}
    monkeypatch.setattr(secrets, "destroy_poll_key", destroy)
    close(coop, second)
    assert secrets.poll_key_ids(coop.bot.config) == set()


async def test_a_lost_poll_key_is_named_not_replaced(coop: Coop) -> None:
    ids = members(coop, 2)
    poll_id = open_poll(coop, ids[0], voting.PollSpec("Buy a van?", [], secret=True))
    cast(coop, ids[0], poll_id, "agree")
    secrets.poll_key_file(coop.bot.config, poll_id).unlink()
    with pytest.raises(KeyLost, match=str(secrets.key_dir(coop.bot.config))):
        cast(coop, ids[1], poll_id, "agree")
    assert secrets.poll_key_ids(coop.bot.config) == set()  # no new key that would hide the loss


# --- where the keys live -----------------------------------------------------------------------


def sqlite_config(path: Path) -> Config:
    return Config.model_validate({"database": {"url": f"sqlite:///{path}"}})


def test_keys_live_in_the_state_folder_one_per_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COOPBOT_SECRET")
    one, two = sqlite_config(tmp_path / "a" / "coop.sqlite3"), sqlite_config(tmp_path / "b" / "coop.sqlite3")
    assert secrets.ballot_secret(one) != secrets.ballot_secret(two)
    assert secrets.key_dir(one) != secrets.key_dir(two)
    assert secrets.key_in_database_folder(one) is None
    pg = Config.model_validate({"database": {"url": "postgresql+psycopg://coop:pw@db/coop"}})
    assert secrets.key_dir(pg).is_relative_to(secrets.state_home())
    assert secrets.key_in_database_folder(pg) is None
    # State kept inside the database's folder is one backup with it: named, for check-config to warn.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "a" / "state"))
    secrets.ballot_secret(one)
    assert secrets.key_in_database_folder(one) == secrets.default_key_file(one)


def test_a_key_file_beside_the_database_from_before_is_still_used_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COOPBOT_SECRET")
    config = sqlite_config(tmp_path / "coopbot.sqlite3")
    legacy = tmp_path / "coopbot.sqlite3.ballot-key"
    legacy.write_text("f" * 64 + "\n")
    assert secrets.ballot_secret(config) == b"f" * 64
    assert secrets.key_in_database_folder(config) == legacy
    assert not secrets.default_key_file(config).exists()


def test_a_poll_key_file_alone_opens_nothing(coop: Coop, monkeypatch: pytest.MonkeyPatch) -> None:
    key = secrets.poll_key(coop.bot.config, 5, create=True)
    assert key is not None
    path = secrets.poll_key_file(coop.bot.config, 5)
    assert key.hex().encode() not in path.read_bytes()
    assert [stat.S_IMODE(p.stat().st_mode) for p in (path, path.parent, path.parent.parent)] == [0o600, 0o700, 0o700]
    monkeypatch.setenv("COOPBOT_SECRET", "another-server-key-of-enough-length")
    with pytest.raises(KeyLost):
        secrets.poll_key(coop.bot.config, 5, create=False)


# --- polls open at the upgrade -------------------------------------------------------------------


def test_a_poll_open_at_the_upgrade_keeps_its_ballots(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ballots filed the old way, with the key file in its old place, are counted and then sealed."""
    monkeypatch.chdir(tmp_path)  # PostgreSQL's old key file was in the working directory
    monkeypatch.delenv("COOPBOT_SECRET")
    config = make_config(db_url)
    secrets.legacy_key_file(config).write_text("e" * 64 + "\n")
    engine = make_engine(db_url)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    when = "'2026-11-01 09:00:00'"
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0002")
        connection.execute(
            text(
                "INSERT INTO member (id, name, role, active, joined_at, notify, mute_announcements, hide_in_charts, "
                f"available) VALUES (1, 'Ana', 'member', true, {when}, 'both', false, false, false), "
                f"(2, 'Ben', 'member', true, {when}, 'both', false, false, false), "
                f"(3, 'Cleo', 'member', true, {when}, 'both', false, false, false)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO poll (id, title, kind, options, secret, live_results, quorum_pct, threshold_pct, "
                "created_at, closes_at, status, result) VALUES "
                f"(1, 'Open', 'proposal', '[]', true, false, 0, 50, {when}, '2026-11-09 09:00:00', 'open', '{{}}'), "
                f"(2, 'Closed', 'proposal', '[]', true, false, 0, 50, {when}, {when}, 'closed', "
                """'{"counts": {"agree": 1}}')"""
            )
        )
        ballots = [(1, 1, "disagree"), (1, 2, "agree"), (2, 1, "agree")]
        for poll_id, member_id, choice in ballots:
            connection.execute(
                text("INSERT INTO voter (poll_id, member_id) VALUES (:p, :m)"), {"p": poll_id, "m": member_id}
            )
            connection.execute(
                text("INSERT INTO secret_ballot (poll_id, ballot_key, choices) VALUES (:p, :k, :c)"),
                {"p": poll_id, "k": secrets.ballot_key(config, poll_id, member_id), "c": json.dumps([choice])},
            )
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with transaction(sessions) as session:
        poll, ana = session.get_one(Poll, 1), session.get_one(Member, 1)
        assert voting.own_choices(session, config, poll, ana) == ["disagree"]
        voting.vote(session, config, session.get_one(Member, 3), "P-1", "block", now)
    with transaction(sessions) as session:
        sealed = session.scalars(select(BallotBox.sealed)).all()
        assert [bytes(box)[0] for box in sealed] == [ballot_box.FORMAT_SEALED]  # only the open poll, now sealed
        assert voting.close(session, config, 1, now)
        assert session.get_one(Poll, 1).result["counts"] == {"agree": 1, "abstain": 0, "disagree": 1, "block": 1}
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(BallotBox)).scalar() == 0
    engine.dispose()
    expected = secrets.legacy_key_file(config) if config.database.url.startswith("sqlite") else None
    assert secrets.key_in_database_folder(config) == expected
