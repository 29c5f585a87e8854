"""Secret ballots while a poll is open: one sealed box per poll, opened only with its key.

Why one box rather than a row per ballot: a database's write-ahead log keeps
every page a transaction wrote, in order. With a row per ballot, the page
that changed when a member's `Voter` row appeared also showed the one ballot
that appeared with it, whatever the rows were named or however shuffled. So
a secret poll keeps all its ballots in one row (`BallotBox`), rewritten whole
at every vote with fresh random bytes: each write changes the same row of
the same size, and nothing in it or in the order of writes says who chose
what to anyone without the poll's key.

The box: a format byte, then for format 1 a random 96-bit nonce and the
AES-256-GCM encryption, under the poll's own key (`coopbot.secrets.poll_key`)
and bound to the poll's id, of fixed-width records (member id, choices as a
bit set) sorted by member id. Its size therefore depends only on how many
have voted, which `Voter` shows anyway, never on what they chose. Format 0 is
what migration 0003 made of the ballots of a poll open at the upgrade (the
earlier rows, as JSON under their keyed hashes); that poll's next vote seals
them.

At the close the box is deleted and, once the close is committed, the poll's
key is destroyed. Older copies of the box stay in the log, free pages and
backups (SQLite's `secure_delete` would not reach them), but they are
ciphertext under a key that no longer exists anywhere: from then on only the
tally stored in the poll says anything. A crash between the commit and the
destruction leaves the key on disk; the next close of any poll destroys it.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from typing import Any

from sqlalchemy import delete, event, select, update
from sqlalchemy.orm import Session, SessionTransaction

from coopbot import secrets
from coopbot.config import Config
from coopbot.models import BallotBox, Poll, Voter
from coopbot.services.polls.texts import PROPOSAL_CHOICES, code

log = logging.getLogger(__name__)

FORMAT_LEGACY = 0
FORMAT_SEALED = 1
RECORD = struct.Struct(">QH")
NONCE = 12
#: session.info keys: poll keys to destroy once the transaction commits, and whether it did.
PENDING = "ballot_box.destroy"
COMMITTED = "ballot_box.committed"


def _aad(poll_id: int) -> bytes:
    return f"coopbot ballot box v1 poll:{poll_id}".encode()


def _mask(poll: Poll, choices: list[Any]) -> int:
    if poll.kind == "proposal":
        return sum(1 << PROPOSAL_CHOICES.index(str(choice)) for choice in set(choices))
    return sum(1 << (int(choice) - 1) for choice in {int(c) for c in choices})


def _choices(poll: Poll, mask: int) -> list[Any]:
    if poll.kind == "proposal":
        return [choice for bit, choice in enumerate(PROPOSAL_CHOICES) if mask >> bit & 1]
    return [bit + 1 for bit in range(RECORD.size * 8) if mask >> bit & 1]


def seal(poll: Poll, key: bytes, ballots: dict[int, list[Any]]) -> bytes:
    records = b"".join(RECORD.pack(member_id, _mask(poll, ballots[member_id])) for member_id in sorted(ballots))
    nonce = os.urandom(NONCE)
    return bytes([FORMAT_SEALED]) + nonce + secrets.encrypt(key, nonce, records, _aad(poll.id))


def unseal(poll: Poll, key: bytes, sealed: bytes) -> dict[int, list[Any]]:
    lost = f"the ballot box of {code(poll)} does not open with its poll key"
    records = secrets.decrypt(key, sealed[1 : 1 + NONCE], sealed[1 + NONCE :], _aad(poll.id), lost=lost)
    return {member_id: _choices(poll, mask) for member_id, mask in RECORD.iter_unpack(records)}


def _stored(session: Session, poll: Poll) -> bytes | None:
    return session.scalar(select(BallotBox.sealed).where(BallotBox.poll_id == poll.id))


def read(session: Session, config: Config, poll: Poll) -> dict[int, list[Any]]:
    """Every ballot of the poll, by member id; only for counting, or for a member's own."""
    sealed = _stored(session, poll)
    if sealed is None:
        return {}
    if sealed[0] == FORMAT_LEGACY:
        return _legacy(session, config, poll, sealed[1:])
    key = secrets.poll_key(config, poll.id, create=False)
    if key is None:
        raise secrets.KeyLost(
            f"the key of secret poll {code(poll)} is missing from {secrets.key_dir(config)}: "
            "restore that folder from a backup, or the poll cannot be counted"
        )
    return unseal(poll, key, sealed)


def _legacy(session: Session, config: Config, poll: Poll, payload: bytes) -> dict[int, list[Any]]:
    """Ballots filed under `HMAC(server key, "poll:member")`, found again by their voters."""
    stored: dict[str, list[Any]] = json.loads(payload)
    found: dict[int, list[Any]] = {}
    for member_id in session.scalars(select(Voter.member_id).where(Voter.poll_id == poll.id)):
        ballot = stored.get(secrets.ballot_key(config, poll.id, member_id))
        if ballot is not None:
            found[member_id] = list(ballot)
    if len(found) != len(stored):
        log.warning("poll %s: some secret ballots do not match the ballot key; was the key changed?", poll.id)
    return found


def write(session: Session, config: Config, poll: Poll, ballots: dict[int, list[Any]]) -> None:
    """Rewrite the whole box, freshly encrypted; the poll's key is made at its first sealed box."""
    sealed = _stored(session, poll)
    first = sealed is None or sealed[0] == FORMAT_LEGACY
    key = secrets.poll_key(config, poll.id, create=first)
    if key is None:
        raise secrets.KeyLost(f"the key of secret poll {code(poll)} is missing from {secrets.key_dir(config)}")
    box = seal(poll, key, ballots)
    if sealed is None:
        session.add(BallotBox(poll_id=poll.id, sealed=box))
    else:
        session.execute(update(BallotBox).where(BallotBox.poll_id == poll.id).values(sealed=box))


def destroy(session: Session, config: Config, poll: Poll) -> None:
    """At the close, once counted: the box goes now, the poll's key when the close is committed.

    Keys left behind by a crash after an earlier close go too. If this
    transaction rolls back, the poll is still open and keeps its key.
    """
    session.execute(delete(BallotBox).where(BallotBox.poll_id == poll.id))
    held = secrets.poll_key_ids(config) - {poll.id}
    stale = set(session.scalars(select(Poll.id).where(Poll.id.in_(held), Poll.status != "open"))) if held else set()
    pending: dict[int, Config] = session.info.setdefault(PENDING, {})
    pending.update(dict.fromkeys(stale | {poll.id}, config))
    if not event.contains(session, "after_transaction_end", _on_end):
        event.listen(session, "after_commit", _on_commit)
        event.listen(session, "after_transaction_end", _on_end)


def _on_commit(session: Session) -> None:
    # Also fired when a savepoint is released: `_on_end` tells the two apart.
    session.info[COMMITTED] = True


def _on_end(session: Session, transaction: SessionTransaction) -> None:
    committed = session.info.pop(COMMITTED, False)
    if transaction.parent is not None:
        return
    for poll_id, config in session.info.pop(PENDING, {}).items():
        if not committed:
            continue
        try:
            secrets.destroy_poll_key(config, poll_id)
        except OSError as exc:
            log.error("could not destroy the key of poll %s (%s); the next close will try again", poll_id, exc)
