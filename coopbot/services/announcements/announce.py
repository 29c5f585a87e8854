"""Announcements: one text from a coordinator to every member, on every platform, once.

Everything an announcement owes is written in the transaction that creates
it: one outbox row per member, platform and part, keyed
`announce:{id}:m{member}:part{n}:{platform}`. A crash half-way through the
delivery therefore loses nothing (the rows are still pending) and repeats
nothing (a sent row is never sent again; queueing again stores nothing new).
The outbox paces and retries; a sweep notices when no row is pending any
more, tries the member's other platform for those whose account failed, and
tells the author once how it went.

Texts are split here, per platform, because each platform has its own
limit (the split itself, which prefers the end of a sentence and never cuts
a word or a character, is `coopbot.splitting`). Markup is not interpreted
anywhere: the transports escape it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.orm import Session

from coopbot import platforms
from coopbot.chat import Address, Outgoing
from coopbot.config import Config
from coopbot.errors import Conflict, NotFound, UsageError
from coopbot.i18n import t
from coopbot.models import Announcement, Member, OutboxMessage
from coopbot.outbox import Recipient, outbox_row, queue_to_member, recipients, room_addresses, store_new
from coopbot.scheduler import SweepContext, sweep
from coopbot.services.audit import record
from coopbot.services.refs import ANNOUNCEMENT, parse_code
from coopbot.services.text import is_blank
from coopbot.splitting import split_text
from coopbot.states import ROLES, Role

MAX_TEXT = 12000
NAMES_SHOWN = 15
RECENT = 10

#: Which members a target role reaches: coordinators include admins; everyone is every
#: member, never a customer (an announcement to the co-op's members is the members' business).
TARGET_ROLES: dict[str | None, tuple[Role, ...]] = {
    None: ROLES,
    Role.MEMBER: (Role.MEMBER,),
    Role.COORDINATOR: (Role.COORDINATOR, Role.ADMIN),
    Role.ADMIN: (Role.ADMIN,),
}


# --- composing and queueing ------------------------------------------------------------


def ref(announcement_id: int) -> str:
    return f"A-{announcement_id}"


def parse_ref(text: str) -> int:
    """`A-4`, `a4`, `#4` or `4` → 4."""
    return parse_code(text, ANNOUNCEMENT)


def compose(lang: str, announcement: Announcement, author: str, platform: str) -> list[str]:
    """The messages one reader gets on one platform: a header, then the text, split to fit."""
    on = platforms.find(platform)
    limit, measure = on.max_length, on.measure
    key = "announce.header_urgent" if announcement.urgent else "announce.header"
    longest = t(lang, key, ref=ref(announcement.id), name=author, part=t(lang, "announce.part", n=99, total=99))
    room = limit - measure(longest) - measure("\n\n")
    bodies = split_text(announcement.text, max(room, 100), measure)
    total = len(bodies)
    messages = []
    for number, body in enumerate(bodies, start=1):
        part = t(lang, "announce.part", n=number, total=total) if total > 1 else ""
        head = t(lang, key, ref=ref(announcement.id), name=author, part=part)
        messages.append(f"{head}\n\n{body}")
    return messages


def _in_target(target_role: str | None) -> ColumnElement[bool]:
    return Member.role.in_(TARGET_ROLES[target_role])


def addressed_to(announcement: Announcement, member: Member) -> bool:
    return member.role in TARGET_ROLES.get(announcement.target_role, ROLES)


@dataclass
class Queued:
    announcement: Announcement
    members: int
    muted: int
    rooms: int
    #: Targeted members with no reachable account at all (ids).
    unreachable: list[int] = field(default_factory=list)


class _Composer:
    """Composes each (language, platform) version once, however many readers share it."""

    def __init__(self, announcement: Announcement, author: str, default_lang: str) -> None:
        self.announcement = announcement
        self.author = author
        self.default_lang = default_lang
        self._cache: dict[tuple[str, str], list[str]] = {}

    def parts(self, lang: str | None, platform: str) -> list[str]:
        key = (lang or self.default_lang, platform)
        if key not in self._cache:
            self._cache[key] = compose(key[0], self.announcement, self.author, platform)
        return self._cache[key]

    def rows(self, recipient: Recipient, now: datetime) -> list[dict[str, Any]]:
        """Every part, on each platform `/notify` allows, keyed per member, part and platform."""
        announcement_id = self.announcement.id
        rows = []
        for identity_id, platform, external_id in recipient.targets():
            address = Address(platform, external_id, private=True)
            for number, text in enumerate(self.parts(recipient.language, platform), start=1):
                key = f"announce:{announcement_id}:m{recipient.member_id}:part{number}:{platform}"
                rows.append(
                    outbox_row(key, address, Outgoing(text), now, recipient.member_id, identity_id, announcement_id)
                )
        return rows


def _room_addresses(config: Config, target_role: str | None) -> list[Address]:
    if target_role == Role.ADMIN:
        return []
    return room_addresses(config, coordinators_only=target_role == Role.COORDINATOR)


def announce(
    session: Session,
    config: Config,
    author: Member,
    text: str,
    now: datetime,
    *,
    target_role: str | None = None,
    urgent: bool = False,
) -> Queued:
    """Store the announcement and everything it owes, in the caller's transaction.

    Two statements whatever the co-op's size: one read of the recipients, one
    insert of the rows (the outbox skips keys it already holds)."""
    text = text.strip()
    if is_blank(text):
        raise UsageError("announce.empty")
    if len(text) > MAX_TEXT:
        raise UsageError("announce.too_long", length=len(text), most=MAX_TEXT)
    if target_role not in TARGET_ROLES:
        raise UsageError("announce.bad_target", target=str(target_role)[:30])
    announcement = Announcement(author_id=author.id, text=text, target_role=target_role, urgent=urgent, created_at=now)
    session.add(announcement)
    session.flush()
    composer = _Composer(announcement, author.name, config.coop.default_language)
    targeted = session.execute(
        select(Member.id, Member.mute_announcements).where(_in_target(target_role), Member.active.is_(True))
    ).all()
    listening = [member_id for member_id, muted in targeted if urgent or not muted]
    reached = recipients(session, Member.id.in_(listening)) if listening else {}
    rows = [row for recipient in reached.values() for row in composer.rows(recipient, now)]
    rooms = _room_addresses(config, target_role)
    for address in rooms:
        for number, part in enumerate(composer.parts(None, address.platform), start=1):
            key = f"announce:{announcement.id}:room:part{number}:{address.platform}:{address.chat_id}"
            rows.append(outbox_row(key, address, Outgoing(part), now, None, None, announcement.id))
    store_new(session, rows)
    unreachable = sorted(set(listening) - set(reached))
    queued = Queued(announcement, len(reached), len(targeted) - len(listening), len(rooms), unreachable)
    announcement.recipients = queued.members
    announcement.details = {"muted": queued.muted, "unreachable": queued.unreachable}
    record(session, now, "announcement.sent", actor=author, announcement=announcement.id,
           target=target_role or "all", urgent=urgent, recipients=queued.members)  # fmt: skip
    return queued


# --- how it went ---------------------------------------------------------------------


@dataclass
class Delivery:
    """Where an announcement stands, counted per member (a member reached on one
    of their platforms is delivered)."""

    delivered: int = 0
    pending: int = 0
    failed_ids: list[int] = field(default_factory=list)
    rooms_sent: int = 0
    rooms: int = 0
    muted: int = 0
    unreachable_ids: list[int] = field(default_factory=list)

    @property
    def unreachable(self) -> int:
        return len(self.unreachable_ids)

    @property
    def done(self) -> bool:
        return self.pending == 0


def deliveries(session: Session, announcements: list[Announcement]) -> dict[int, Delivery]:
    """Delivery counts for several announcements in two queries."""
    ids = [a.id for a in announcements]
    result = {a.id: Delivery(muted=int(a.details.get("muted", 0))) for a in announcements}
    is_sent = func.max(case((OutboxMessage.status == "sent", 1), else_=0))
    is_pending = func.max(case((OutboxMessage.status == "pending", 1), else_=0))
    rows = session.execute(
        select(OutboxMessage.announcement_id, OutboxMessage.member_id, is_sent, is_pending)
        .where(OutboxMessage.announcement_id.in_(ids), OutboxMessage.member_id.is_not(None))
        .group_by(OutboxMessage.announcement_id, OutboxMessage.member_id)
        .order_by(OutboxMessage.announcement_id, OutboxMessage.member_id)
    ).all()
    for announcement_id, member_id, sent, pending in rows:
        delivery = result[announcement_id]
        if pending:
            delivery.pending += 1
        elif sent:
            delivery.delivered += 1
        else:
            delivery.failed_ids.append(member_id)
    room_rows = session.execute(
        select(OutboxMessage.announcement_id, OutboxMessage.platform, OutboxMessage.chat_id, is_sent, is_pending)
        .where(OutboxMessage.announcement_id.in_(ids), OutboxMessage.member_id.is_(None))
        .group_by(OutboxMessage.announcement_id, OutboxMessage.platform, OutboxMessage.chat_id)
    ).all()
    for announcement_id, _platform, _chat, sent, pending in room_rows:
        result[announcement_id].rooms += 1
        if sent and not pending:
            result[announcement_id].rooms_sent += 1
    failed = {m for d in result.values() for m in d.failed_ids}
    gone = set(session.scalars(select(Member.id).where(Member.id.in_(failed), Member.active.is_(False))))
    for announcement in announcements:
        delivery = result[announcement.id]
        delivery.failed_ids = [m for m in delivery.failed_ids if m not in gone]  # who left was not "unreachable"
        delivery.unreachable_ids = list(announcement.details.get("unreachable", [])) + delivery.failed_ids
    return result


def delivery(session: Session, announcement: Announcement) -> Delivery:
    return deliveries(session, [announcement])[announcement.id]


def names(session: Session, member_ids: list[int]) -> str:
    """`Zoe, Yann (+3)`: names cut short for a chat message."""
    if not member_ids:
        return ""
    shown = member_ids[:NAMES_SHOWN]
    found = {row[0]: row[1] for row in session.execute(select(Member.id, Member.name).where(Member.id.in_(shown)))}
    listed = ", ".join(found.get(member_id, f"#{member_id}") for member_id in shown)
    extra = len(member_ids) - len(shown)
    return listed + (f" (+{extra})" if extra else "")


def members_count(lang: str, count: int) -> str:
    """`1 member`, `143 members` (French: `0 membre`, `1 membre`, `2 membres`, by CLDR's rules)."""
    return t(lang, "announce.members", count=count)


def author_names(session: Session, announcements: list[Announcement]) -> dict[int, str]:
    ids = {a.author_id for a in announcements if a.author_id is not None}
    found = {row[0]: row[1] for row in session.execute(select(Member.id, Member.name).where(Member.id.in_(ids)))}
    return {a.id: found.get(a.author_id, "?") if a.author_id else "?" for a in announcements}


def author_name(session: Session, announcement: Announcement) -> str:
    return author_names(session, [announcement])[announcement.id]


def get(session: Session, text: str, reader: Member | None = None) -> Announcement:
    """An announcement by reference; a reader only finds the ones addressed to them."""
    number = parse_ref(text)
    announcement = session.get(Announcement, number)
    if announcement is None or (reader is not None and not addressed_to(announcement, reader)):
        raise NotFound("announce.no_such", ref=ref(number))
    return announcement


def recent(session: Session, reader: Member, *, everything: bool, limit: int = RECENT) -> list[Announcement]:
    query = select(Announcement).order_by(Announcement.id.desc())
    if not everything:
        mine = [role for role, roles in TARGET_ROLES.items() if role and roles and reader.role in roles]
        query = query.where(Announcement.target_role.is_(None) | Announcement.target_role.in_(mine))
    return list(session.scalars(query.limit(limit)))


# --- members' preferences ---------------------------------------------------------------

def notify_choices() -> str:
    """What a member may type to choose one platform: `/notify matrix, /notify telegram`."""
    return ", ".join(f"/notify {platform.name}" for platform in platforms.chat_platforms())


def notify_usage() -> UsageError:
    return UsageError("announce.notify_usage", choices=notify_choices())


def notify_where(lang: str, choice: str) -> str:
    """Where a member's private notices go, in words."""
    if choice == platforms.EVERY:
        return t(lang, "announce.notify_where_both")
    return t(lang, "announce.notify_where_one", platform=platforms.label(choice))


def set_notify(member: Member, choice: str) -> str:
    """`choice` is a platform's name, or `platforms.EVERY`."""
    if choice != platforms.EVERY and choice not in {p.name for p in platforms.chat_platforms()}:
        raise notify_usage()
    if choice != platforms.EVERY and not any(i.platform == choice for i in member.identities):
        raise Conflict("announce.notify_not_linked", platform=platforms.label(choice))
    member.notify = choice
    return choice


def set_mute(session: Session, member: Member, muted: bool, now: datetime) -> None:
    if member.mute_announcements != muted:
        member.mute_announcements = muted
        record(session, now, "announcement.mute", actor=member, subject=member, muted=muted)


# --- the sweep: other platforms, then the author's receipt ------------------------------------


def _retry_elsewhere(
    session: Session, config: Config, announcement: Announcement, failed: list[int], now: datetime
) -> int:
    """Members whose every row failed: queue on any account still reachable (a blocked
    Telegram falls back to Matrix even with `/notify telegram`)."""
    if not failed:
        return 0
    composer = _Composer(announcement, author_name(session, announcement), config.coop.default_language)
    reached = recipients(session, Member.id.in_(failed))
    return store_new(session, [row for recipient in reached.values() for row in composer.rows(recipient, now)])


def _still_pending(session: Session, announcement_id: int) -> bool:
    """One indexed look-up, so the sweep costs nothing while a big announcement is on its way."""
    query = select(OutboxMessage.id).where(
        OutboxMessage.announcement_id == announcement_id, OutboxMessage.status == "pending"
    )
    return session.scalar(query.limit(1)) is not None


def receipt_text(session: Session, lang: str, announcement: Announcement, done: Delivery) -> str:
    total = done.delivered + done.unreachable
    if total == 0:
        return t(lang, "announce.receipt_nobody", ref=ref(announcement.id))
    if done.unreachable:
        return t(
            lang,
            "announce.receipt_some",
            ref=ref(announcement.id),
            delivered=done.delivered,
            total=members_count(lang, total),
            unreachable=done.unreachable,
            names=names(session, done.unreachable_ids),
        )
    return t(lang, "announce.receipt_all", ref=ref(announcement.id), members=members_count(lang, done.delivered))


@sweep("announce-receipts")
def send_receipts(ctx: SweepContext) -> None:
    """Once nothing of an announcement is pending, tell its author how it went, once."""
    with ctx.sessions() as session:
        open_ids = list(session.scalars(select(Announcement.id).where(Announcement.receipt_sent_at.is_(None))))
    ctx.each(open_ids, ref, lambda session, number: _send_receipt(session, ctx.config, number, ctx.now))


def _send_receipt(session: Session, config: Config, announcement_id: int, now: datetime) -> None:
    """One announcement: its receipt, once nothing is pending and no retry elsewhere is left."""
    if _still_pending(session, announcement_id):
        return
    announcement = session.get_one(Announcement, announcement_id)
    done = delivery(session, announcement)
    if not done.done or _retry_elsewhere(session, config, announcement, done.failed_ids, now):
        return
    claimed = session.execute(
        update(Announcement)
        .where(Announcement.id == announcement_id, Announcement.receipt_sent_at.is_(None))
        .values(receipt_sent_at=now)
        .returning(Announcement.id)
    ).scalar_one_or_none()
    author = session.get(Member, announcement.author_id) if announcement.author_id else None
    if claimed is None or author is None or not author.active:
        return
    lang = author.language or config.coop.default_language
    text = receipt_text(session, lang, announcement, done)
    queue_to_member(session, author, f"announce:{announcement_id}:receipt", Outgoing(text), now)
