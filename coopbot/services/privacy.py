"""Members own their data: everything held about one member, in one zip, and
the erasure that follows when they leave (or a poll removes them).

Leaving takes two steps, so that the export truly arrives first and nothing
after it:

1. `start_leave`, in the /leave (or poll close) transaction: the member turns
   inactive (`queue_to_member` skips them, the router sees a stranger), their
   pending messages are dropped, and their export is queued in the outbox
   under `leave:<id>:...`, delivered with the usual retries through accounts
   that still exist (Matrix needs the account to find the private room).
2. The `privacy.erase` sweep erases them once none of those messages is
   pending (sent, or found undeliverable), or after `EXPORT_GRACE` so that a
   silent platform cannot keep personal data alive: accounts and link codes
   deleted, name replaced by a stable pseudonym, texts sent to them emptied,
   and their name and platform ids replaced wherever else they appear, in
   any case or Unicode form, whole or by given or family name (`erasure`).

Replying with the export and erasing in the same transaction would not be
safe: a reply is not durable (a crash after the commit loses the export
while the data is gone), and a removal by poll has no chat to reply to.
Rows keep their member number, so past periods add up exactly as before.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from typing import cast as type_cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, CursorResult, delete, func, or_, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, selectinload

from coopbot.chat import Address, Outgoing
from coopbot.clock import SystemClock
from coopbot.config import Config, load_config
from coopbot.db import make_engine, make_sessionmaker, transaction, upgrade
from coopbot.errors import Conflict, CoopError, NotFound, UsageError
from coopbot.i18n import t
from coopbot.models import (
    Allocation,
    Announcement,
    AuditEntry,
    Base,
    Contribution,
    Identity,
    Invite,
    Job,
    JobEvent,
    LedgerEntry,
    LinkCode,
    Member,
    Offer,
    OutboxMessage,
    Period,
    Poll,
    Setting,
    Shift,
    Vote,
    Voter,
)
from coopbot.outbox import queue, queue_to_coordinators, reachable_identities
from coopbot.scheduler import SweepContext, sweep
from coopbot.services import dispatch, erasure, ledger
from coopbot.services.audit import record
from coopbot.services.erasure import map_strings, personal_strings
from coopbot.services.members import PSEUDONYM_PREFIX, active_members, find_member, is_erased, pseudonym
from coopbot.services.refs import member_number
from coopbot.services.settings import register_action

ZIP_MIME = "application/zip"
LEAVE_KEY = "leave:{member}:"
EXPORT_GRACE = timedelta(days=1)


def member_by_ref(session: Session, ref: str) -> Member:
    """`#17` finds any member, even one who left; names and ids find active members."""
    number = member_number(ref)
    if number is not None:
        member = session.get(Member, number)
        if member is None:
            raise NotFound("members.no_such_member", ref=ref.strip()[:40])
        return member
    return find_member(session, ref)


# --- the export ------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """One CSV file of the export, and one list in its data.json."""

    name: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


#: Columns never exported: codes stored as hashes, and the export's own attachment.
NOT_EXPORTED = {"code_hash", "attachment", "buttons", "key", "chat_id", "identity_id", "sent_ref"}


def member_tables(session: Session, member: Member, tz: ZoneInfo) -> list[Table]:
    """Every row the co-op holds about `member`; other people appear only by number.

    Tables list every column of the model (so a column added later is
    exported too), minus `NOT_EXPORTED`; `period_id` gains the period's label.
    """
    me = member.id
    labels: dict[int, str] = dict(session.execute(select(Period.id, Period.label)).all())

    def cell(column: str, value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(tz).isoformat()
        if column == "period_id" and value is not None:
            return labels.get(value, value)
        return value

    def table(name: str, model: type[Base], where: ColumnElement[bool], only: tuple[str, ...] = ()) -> Table:
        columns = only or tuple(c.key for c in model.__table__.columns if c.key not in NOT_EXPORTED)
        rows = session.scalars(select(model).where(where).order_by(*sa_inspect(model).primary_key))
        return Table(name, columns, [tuple(cell(c, getattr(row, c)) for c in columns) for row in rows])

    votes = session.execute(
        select(Poll.id, Poll.title, Vote.choices, Vote.at)
        .join(Vote, Vote.poll_id == Poll.id)
        .where(Vote.member_id == me, Poll.secret.is_(False))
        .order_by(Poll.id)
    ).all()
    # A secret ballot is stored apart from its voter: only the fact of voting is theirs.
    secret = session.execute(
        select(Poll.id, Poll.title).join(Voter, Voter.poll_id == Poll.id).where(Voter.member_id == me)
    ).all()
    tables = [
        table("profile", Member, Member.id == me),
        table("identities", Identity, Identity.member_id == me),
        table("jobs", Job, or_(Job.assignee_id == me, Job.created_by == me)),
        table("job_events", JobEvent, or_(JobEvent.actor_id == me, JobEvent.member_id == me)),
        table("offers", Offer, Offer.member_id == me),
        table("shifts", Shift, Shift.member_id == me),
        table("contributions", Contribution, Contribution.member_id == me),
        table("ledger_entries", LedgerEntry, or_(LedgerEntry.member_id == me, LedgerEntry.created_by == me)),
        table("allocations", Allocation, Allocation.member_id == me),
        Table("votes", ("poll_id", "title", "choices", "at"),
              [(p, title, choices, cell("at", at)) for p, title, choices, at in votes]),
        Table("secret_polls_voted", ("poll_id", "title"), [tuple(row) for row in secret]),
        table("polls_proposed", Poll, Poll.proposer_id == me),
        table("announcements", Announcement, Announcement.author_id == me),
        table("invites", Invite, or_(Invite.created_by == me, Invite.used_by == me)),
        table("settings_set", Setting, Setting.set_by == me),
        table("audit", AuditEntry, or_(AuditEntry.actor_id == me, AuditEntry.subject_id == me)),
        table("messages", OutboxMessage, OutboxMessage.member_id == me,
              ("id", "platform", "private", "text", "attachment_name", "status", "created_at", "sent_at")),
    ]
    hide = _others_hider(session, member)
    return [Table(t.name, t.columns, [tuple(hide(v) for v in row) for row in t.rows]) for t in tables]


def _others_hider(session: Session, member: Member) -> Callable[[Any], Any]:
    """Replace any other member's name or account, wherever it appears, by their number."""
    own = {needle.lower() for needle in personal_strings(member)}
    numbers: dict[str, int] = {}
    others = select(Member).where(Member.id != member.id).options(selectinload(Member.identities))
    for other in session.scalars(others):
        for needle in personal_strings(other):
            numbers.setdefault(needle.lower(), other.id)
    wanted = {k: v for k, v in numbers.items() if k not in own}
    if not wanted:
        return lambda value: value
    pattern = _pattern(wanted)
    return map_strings(lambda text: pattern.sub(lambda m: f"member #{wanted[m.group(0).lower()]}", text))


@dataclass(frozen=True)
class Export:
    file_name: str
    data: bytes
    counts: dict[str, int]

    @property
    def attachment(self) -> tuple[str, bytes, str]:
        return self.file_name, self.data, ZIP_MIME


def export_zip(session: Session, member: Member, now: datetime, config: Config) -> Export:
    """`coopbot-data-<id>.zip`: data.json with everything, and one CSV per table."""
    tz = config.coop.tz
    tables = member_tables(session, member, tz)
    document: dict[str, Any] = {"coop": config.coop.name, "member": member.id, "currency": config.coop.currency,
                                "exported_at": now.astimezone(tz).isoformat()}  # fmt: skip
    document.update({table.name: table.records() for table in tables})
    stamp = now.astimezone(tz).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("data.json", stamp), json.dumps(document, ensure_ascii=False, indent=2))
        for table in tables:
            archive.writestr(zipfile.ZipInfo(f"{table.name}.csv", stamp), _csv(table))
    counts = {table.name: len(table.rows) for table in tables}
    return Export(f"coopbot-data-{member.id}.zip", buffer.getvalue(), counts)


def _csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "", True: "true", False: "false"}[value]
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)


def cli_export_member(args: Any, out: TextIO) -> int:
    """`coopbot export member MEMBER [--out FILE]`: the path is printed on the last line."""
    config = load_config(args.config)
    engine = make_engine(config.database.url)
    try:
        upgrade(engine)
        with transaction(make_sessionmaker(engine)) as session:
            member = member_by_ref(session, args.member)
            export = export_zip(session, member, SystemClock().now(), config)
    finally:
        engine.dispose()
    path = Path(args.out or export.file_name)
    path.write_bytes(export.data)
    out.write(f"everything held about #{member.id}, as JSON and CSV:\n{path}\n")
    return 0


# --- leaving ---------------------------------------------------------------------


def check_can_leave(session: Session, member: Member, *, by_vote: bool = False) -> None:
    """Refuse what would leave the co-op stuck; a removal by vote only keeps the last admin."""
    if not member.active:
        raise Conflict("data.already_left", number=member.id)
    if member.role == "admin" and len(active_members(session, "admin")) <= 1:
        raise Conflict("data.last_admin_removal" if by_vote else "data.last_admin")
    held = dispatch.held_jobs(session, member)
    if held and not by_vote:
        raise Conflict("data.jobs_in_hand", jobs=", ".join(f"J-{job.id}" for job in held))


def live_platforms(config: Config) -> set[str]:
    """The platforms this deployment sends on (the console when none is configured)."""
    live = {name for name, on in (("telegram", config.telegram.enabled), ("matrix", config.matrix.enabled)) if on}
    return live or {"console"}


def start_leave(session: Session, member: Member, now: datetime, config: Config, *, by_vote: bool = False,
                poll: Poll | None = None, platforms: Iterable[str] = ()) -> int:  # fmt: skip
    """Step 1 of leaving: stop the work, deactivate, drop pending messages, queue the export.

    A running shift ends now so its hours count; open offers pass to the next
    worker. Returns how many export messages were queued; erasure (step 2) is
    the `privacy.erase` sweep's job once they are delivered.
    """
    check_can_leave(session, member, by_vote=by_vote)
    if ledger.open_shift(session, member) is not None:
        try:
            with session.begin_nested():
                ledger.end_shift(session, config, member, now)
        except CoopError:
            pass  # too long to count as is: the shift-limit sweep closes it for review
    dispatch.set_away(session, config, member, now, reason="left")
    held = dispatch.held_jobs(session, member)
    export = export_zip(session, member, now, config)
    reason = "removed" if by_vote else "left"
    text = t(member.language or config.coop.default_language, f"data.export_{reason}", coop=config.coop.name)
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.member_id == member.id, OutboxMessage.status == "pending")
        .values(status="dead", last_error="not sent: the member left the co-op")
    )
    live = live_platforms(config) | set(platforms)
    targets = [i for i in reachable_identities(member) if i.platform in live]
    queued = 0
    for identity in targets or [i for i in member.identities if i.platform in live]:
        queued += queue(
            session,
            key=f"{LEAVE_KEY.format(member=member.id)}{identity.platform}:{identity.id}",
            address=Address(identity.platform, identity.external_id, private=True),
            message=Outgoing(text, attachment=export.attachment),
            now=now,
            member_id=member.id,
            identity_id=identity.id,
        )
    member.active, member.left_at, member.available, member.available_since = False, now, False, None
    poll_ref = {"poll": f"P-{poll.id}"} if poll is not None else {}
    record(session, now, f"member.{reason}", actor=None if by_vote else member, subject=member, **poll_ref)
    queue_to_coordinators(session, config, f"member-{reason}:{member.id}", f"data.notice_{reason}", now,
                          name=member.name, number=member.id, poll=poll_ref.get("poll", "—"))  # fmt: skip
    if held:
        queue_to_coordinators(session, config, f"member-jobs:{member.id}", "data.notice_jobs", now,
                              number=member.id, jobs=", ".join(f"J-{job.id}" for job in held))  # fmt: skip
    return queued


# --- erasing ---------------------------------------------------------------------


def _pattern(needles: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted(set(needles), key=len, reverse=True)
    return re.compile("|".join(rf"(?<!\w){re.escape(n)}(?!\w)" for n in ordered), re.IGNORECASE)


def erase_member(session: Session, member: Member, now: datetime) -> bool:
    """Step 2 of leaving: nothing personal remains, the rows stay (under the pseudonym).

    Idempotent and safe against a concurrent run: the rename is a conditional
    UPDATE, and only its winner goes on.
    """
    alias = pseudonym(member.id)
    if member.active or is_erased(member):
        return False
    matcher = erasure.matcher_for(session, member, alias)
    accounts = [identity.id for identity in member.identities]
    renamed = session.execute(
        update(Member)
        .where(Member.id == member.id, Member.name == member.name, Member.active.is_(False))
        .values(name=alias, language=None, notify="both", available=False, available_since=None,
                last_seen_at=None, idle_asked_at=None)
    )
    if not type_cast(CursorResult[Any], renamed).rowcount:
        return False
    mine = or_(OutboxMessage.member_id == member.id, OutboxMessage.identity_id.in_(accounts))
    session.execute(
        update(OutboxMessage).where(mine, OutboxMessage.status == "pending")
        .values(status="dead", last_error="not sent: the member left the co-op")
    )
    session.execute(
        update(OutboxMessage).where(mine)
        .values(text="", buttons=[], attachment=None, chat_id="", identity_id=None, last_error=None)
    )
    session.execute(delete(LinkCode).where(LinkCode.member_id == member.id))
    session.execute(delete(Identity).where(Identity.member_id == member.id))
    session.flush()
    erasure.scrub_database(session, matcher)
    session.expire_all()
    record(session, now, "member.erased", subject=session.get_one(Member, member.id), pseudonym=alias)
    return True


def erasure_due(session: Session, member: Member, now: datetime) -> bool:
    """True once the export is sent or undeliverable, or the grace time is over."""
    if member.active or member.left_at is None or is_erased(member):
        return False
    pending = session.scalar(
        select(func.count(OutboxMessage.id)).where(
            OutboxMessage.member_id == member.id,
            OutboxMessage.status == "pending",
            OutboxMessage.key.startswith(LEAVE_KEY.format(member=member.id), autoescape=True),
        )
    )
    return not pending or now - member.left_at >= EXPORT_GRACE


@sweep("privacy.erase")
def erase_departed(ctx: SweepContext) -> None:
    with ctx.sessions() as session:
        waiting = session.scalars(
            select(Member.id).where(
                Member.active.is_(False),
                Member.left_at.is_not(None),
                ~Member.name.startswith(PSEUDONYM_PREFIX, autoescape=True),
            )
        ).all()
    ctx.each(waiting, lambda number: f"#{number}", lambda session, number: _erase_if_due(session, number, ctx.now))


def _erase_if_due(session: Session, number: int, now: datetime) -> None:
    member = session.get(Member, number)
    if member is not None and erasure_due(session, member, now):
        erase_member(session, member, now)


# --- removal by vote ---------------------------------------------------------------


def parse_member_ref(text: str) -> str:
    """`remove_member=...`: a member's number, name or account; numbers become `#17`.

    Whether the member can be removed is `check_removal`'s part (the parse
    sees no database); a number too large to be anyone is refused here.
    """
    ref = " ".join(text.split())
    if not ref or len(ref) > 100:
        raise UsageError("data.remove_bad_ref")
    number = member_number(ref)
    return f"#{number}" if number is not None else ref


def check_removal(session: Session, config: Config, value: str, now: datetime) -> None:
    """What `remove_member` requires, checked when the poll is proposed and again when it passes:
    an active member, and not the co-op's last admin."""
    check_can_leave(session, member_by_ref(session, value), by_vote=True)


def remove_member(session: Session, config: Config, value: str, now: datetime, poll: Poll | None) -> None:
    """The binding action: the member leaves as by /leave, export first."""
    member = member_by_ref(session, value)
    if not member.active:
        return  # they left before the poll closed: nothing more to do
    start_leave(session, member, now, config, by_vote=True, poll=poll)


register_action("remove_member", parse_member_ref, remove_member, restricted=True, check=check_removal)
