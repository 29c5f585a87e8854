"""What an outbox row is, and how thousands are written in one go.

A claim tells 200 riders that the job is gone, a close tells 10,000 members
their share, an announcement reaches everyone: one round trip per message
would dominate each of them. So members are read as plain rows
(`recipients`), rows are built in one place (`outbox_row`), existing keys
are looked up once (`store_new`) and the rest written in one statement
(`coopbot.storage.bulk_insert`: COPY on PostgreSQL, one executemany
elsewhere). The queueing API built on them is here too; callers reach it,
with the delivery loop, through `coopbot.outbox`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Table,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy import cast as cast_
from sqlalchemy.orm import Session

from coopbot import platforms
from coopbot.chat import Address, Button, Outgoing
from coopbot.config import Config
from coopbot.i18n import t
from coopbot.models import Identity, Member, OutboxMessage
from coopbot.services.members.accounts import coordinators
from coopbot.storage import bulk_insert, insert_new_from_select, present_keys
from coopbot.storage.small_writes import insert_new, supported

OUTBOX = cast(Table, OutboxMessage.__table__)
MEMBER = cast(Table, Member.__table__)
IDENTITY = cast(Table, Identity.__table__)


class Reach(NamedTuple):
    """One account a private message can go to."""

    identity_id: int
    platform: str
    external_id: str


class _OnPlatform(Protocol):
    @property
    def platform(self) -> str: ...


_Account = TypeVar("_Account", bound=_OnPlatform)


def as_notified(notify: str, reachable: Sequence[_Account]) -> Sequence[_Account]:
    """The `/notify` rule: the chosen platform if reachable there, else every reachable account."""
    if notify != platforms.EVERY:
        preferred = [account for account in reachable if account.platform == notify]
        if preferred:
            return preferred
    return reachable


def notified_in_sql(member: Any, identity: Any) -> ColumnElement[bool]:
    """`as_notified` as a condition on a member row joined to one reachable identity
    row, for queueing in SQL alone; tests hold the two to the same answers."""
    preferred = IDENTITY.alias("preferred")
    preferred_reachable = (
        select(preferred.c.id)
        .where(
            preferred.c.member_id == member.c.id,
            preferred.c.reachable.is_(True),
            preferred.c.platform == member.c.notify,
        )
        .exists()
    )
    return or_(
        member.c.notify == platforms.EVERY, identity.c.platform == member.c.notify, not_(preferred_reachable)
    )


class Recipient(NamedTuple):
    """A member as queueing needs them: plain values, so a close or a claim that
    tells thousands of members reads rows, not ORM objects (a tuple: cheap by the 10,000)."""

    member_id: int
    active: bool
    notify: str
    language: str | None
    #: Reachable accounts, in identity order.
    reach: tuple[Reach, ...]

    @classmethod
    def of(cls, member: Member) -> Recipient:
        reach = tuple(Reach(i.id, i.platform, i.external_id) for i in member.identities if i.reachable)
        return cls(member.id, member.active, member.notify, member.language, reach)

    def targets(self) -> Sequence[Reach]:
        return as_notified(self.notify, self.reach)


#: A private message for one member: (who, key without the platform, message).
Notice = tuple[Member | Recipient, str, Outgoing]


def recipients(session: Session, which: ColumnElement[bool]) -> dict[int, Recipient]:
    """The active members matching `which` (a condition on the member table) with
    a reachable account, by member id, in one query."""
    rows = session.execute(
        select(MEMBER.c.id, MEMBER.c.notify, MEMBER.c.language, IDENTITY.c.id, IDENTITY.c.platform,
               IDENTITY.c.external_id)
        .select_from(MEMBER.join(IDENTITY, IDENTITY.c.member_id == MEMBER.c.id))
        .where(which, MEMBER.c.active.is_(True), IDENTITY.c.reachable.is_(True))
        .order_by(MEMBER.c.id, IDENTITY.c.id)
    )
    found: dict[int, tuple[str, str | None, list[Reach]]] = {}
    for member_id, notify, language, identity_id, platform, external_id in rows:
        found.setdefault(member_id, (notify, language, []))[2].append(Reach(identity_id, platform, external_id))
    return {
        member_id: Recipient(member_id, True, notify, language, tuple(reach))
        for member_id, (notify, language, reach) in found.items()
    }


def outbox_row(
    key: str, address: Address, message: Outgoing, now: datetime, member_id: int | None, identity_id: int | None,
    announcement_id: int | None, render: str | None = None,
) -> dict[str, Any]:
    """The one place an outbox row is made. Every column is given (COPY applies no defaults)."""
    name, data, mime = message.attachment or (None, None, None)
    return {
        "key": key,
        "platform": address.platform,
        "chat_id": address.chat_id,
        "private": address.private,
        "member_id": member_id,
        "identity_id": identity_id,
        "text": message.text,
        "buttons": _button_rows(message.buttons),
        "attachment_name": name,
        "attachment": data,
        "attachment_mime": mime,
        "status": "pending",
        "attempts": 0,
        "unexpected_failures": 0,
        "next_attempt_at": now,
        "created_at": now,
        "announcement_id": announcement_id,
        "render": render,
    }


@lru_cache(maxsize=256)
def _button_rows(buttons: tuple[Button, ...]) -> tuple[tuple[str, str, str], ...]:
    """Buttons as stored (a JSON list of [label, command, emoji]); one shared, immutable
    value per set of buttons, so a batch converts each set once."""
    return tuple((b.label, b.command, b.emoji) for b in buttons)


#: Up to this many rows, `store_new` checks and writes them in one statement (`insert_new`).
#: Reason: most queueing is one message or two (an order's offer and its coordinators'
#: line), for which the SELECT of the keys cost as much as the INSERT. Past it, the SELECT
#: and one INSERT of the new rows (COPY on PostgreSQL) stay: they were measured for
#: thousands of rows (`coopbot.storage.bulk_insert`), a conflict checked row by row was not.
FEW = 20

#: Set in `Session.info` when a transaction queues a message, so whoever commits it
#: wakes the delivery loop only then (`took_queued`), not after every command.
QUEUED = "coopbot.outbox.queued"


def took_queued(session: Session) -> bool:
    """Whether the session queued messages since the last call (and forget it)."""
    return bool(session.info.pop(QUEUED, False))


def store_new(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Insert the rows whose key is not stored yet (the first of a repeated key wins).

    One SELECT of the keys and one multi-row INSERT, whatever the number of
    rows: a claim that closes 200 offers or a close that tells 10,000
    members costs two statements, not two per message. Up to `FEW` rows
    (an order's notices, a reply's) are one statement that skips the stored
    keys itself (`coopbot.storage.small_writes.insert_new`). Pending ORM
    changes are flushed first, as the rows may refer to them.
    """
    fresh: dict[str, dict[str, Any]] = {}
    for row in rows:
        fresh.setdefault(row["key"], row)
    if not fresh:
        return 0
    session.flush()
    session.info[QUEUED] = True
    if len(fresh) <= FEW and supported(session):
        return insert_new(session, OUTBOX, list(fresh.values()), "key")
    for key in present_keys(session, OUTBOX.c.key, list(fresh)):
        del fresh[key]
    bulk_insert(session, OUTBOX, list(fresh.values()))
    return len(fresh)


def queue_rendered(session: Session, member_ids: Select[Any], key: str, render: str, now: datetime) -> int:
    """Queue a message, written at delivery by `render`, to each active member among
    `member_ids` on every account `/notify` allows; returns how many rows were stored.

    One INSERT ... SELECT: the rows never pass through Python, so telling every
    member of a 10,000-member co-op costs the database's work alone. Keys are
    `{key}:m{member_id}:{platform}`; keys already queued are skipped.
    """
    member, identity = MEMBER, IDENTITY
    now_value = literal(now, OUTBOX.c.created_at.type)
    rows = (
        select(
            literal(f"{key}:m") + cast_(member.c.id, String) + literal(":") + identity.c.platform,
            identity.c.platform,
            identity.c.external_id,
            true(),
            member.c.id,
            identity.c.id,
            literal(""),
            literal([], OUTBOX.c.buttons.type),
            literal("pending"),
            literal(0),
            now_value,
            now_value,
            literal(render),
        )
        .select_from(member.join(identity, identity.c.member_id == member.c.id))
        .where(
            member.c.id.in_(member_ids),
            member.c.active.is_(True),
            identity.c.reachable.is_(True),
            notified_in_sql(member, identity),
        )
        .order_by(member.c.id, identity.c.id)
    )
    columns = ["key", "platform", "chat_id", "private", "member_id", "identity_id", "text", "buttons", "status",
               "attempts", "next_attempt_at", "created_at", "render"]
    session.flush()
    session.info[QUEUED] = True
    return insert_new_from_select(session, OUTBOX, columns, rows, ["key"])


# --- queueing (inside the caller's transaction) ------------------------------------


def reachable_identities(member: Member) -> list[Identity]:
    """Where a member's private notices go, honouring `/notify`."""
    return list(as_notified(member.notify, [identity for identity in member.identities if identity.reachable]))


def queue(
    session: Session,
    *,
    key: str,
    address: Address,
    message: Outgoing,
    now: datetime,
    member_id: int | None = None,
    identity_id: int | None = None,
    announcement_id: int | None = None,
) -> bool:
    """Store one message unless a message with this key exists; True if stored."""
    return store_new(session, [outbox_row(key, address, message, now, member_id, identity_id, announcement_id)]) == 1


def queue_many(
    session: Session, notices: Iterable[Notice], now: datetime, *, announcement_id: int | None = None
) -> int:
    """Queue private messages for many members at once; returns how many rows were stored.

    Each goes to every account `/notify` allows, keyed `{key}:{platform}`;
    members who left get nothing; keys already queued are skipped.
    """
    rows = []
    for who, key, message in notices:
        if not who.active:
            continue
        recipient = who if isinstance(who, Recipient) else Recipient.of(who)
        for identity_id, platform, external_id in recipient.targets():
            address = Address(platform, external_id, private=True)
            rows.append(outbox_row(f"{key}:{platform}", address, message, now, recipient.member_id, identity_id,
                                   announcement_id))
    return store_new(session, rows)


def queue_to_member(
    session: Session,
    member: Member,
    key: str,
    message: Outgoing,
    now: datetime,
    *,
    announcement_id: int | None = None,
) -> int:
    """Queue a private message on each platform the member is reached on."""
    return queue_many(session, [(member, key, message)], now, announcement_id=announcement_id)


def room_addresses(config: Config, *, coordinators_only: bool = False) -> list[Address]:
    """The co-op's rooms; in console mode (no platform configured), the console room."""
    return platforms.rooms(config, coordinators=coordinators_only)


def queue_to_rooms(
    session: Session,
    config: Config,
    key: str,
    message: Outgoing,
    now: datetime,
    *,
    coordinators_only: bool = False,
    announcement_id: int | None = None,
    render: str | None = None,
) -> int:
    """Queue a message to each of the co-op's rooms (or written at delivery by `render`)."""
    rows = [
        outbox_row(f"{key}:{address.platform}:{address.chat_id}", address, message, now, None, None, announcement_id,
                   render)
        for address in room_addresses(config, coordinators_only=coordinators_only)
    ]
    return store_new(session, rows)


def queue_to_coordinators(
    session: Session, config: Config, key: str, text_key: str, now: datetime, **params: object
) -> int:
    """A notice for the coordinators: their rooms if configured, else each one privately."""
    default = config.coop.default_language
    if room_addresses(config, coordinators_only=True):
        return queue_to_rooms(
            session, config, key, Outgoing(t(default, text_key, **params)), now, coordinators_only=True
        )
    notices: list[Notice] = [
        (member, f"{key}:m{member.id}", Outgoing(t(member.language or default, text_key, **params)))
        for member in coordinators(session)
    ]
    return queue_many(session, notices, now)
