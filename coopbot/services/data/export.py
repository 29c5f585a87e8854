"""Everything the co-op holds about one member, in one zip: data.json and one CSV per table.

What a member gets with /mydata, first of all when they leave (`leaving`), and
what `coopbot export member` writes. Every row that concerns them, every
column of it (a column added later is exported too); other people appear only
by their member number, wherever their name or account would have been.

A customer's export is their profile, accounts, the messages sent to them,
the audit entries about them and their orders: what they ordered, where, at
what price and when, and the courier by first name only, as the orders were
told to them. A courier's number, accounts and the dispatch's workings
(offers, who declined) are the members' own data, not the customer's.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, selectinload

from coopbot.config import Config
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
from coopbot.money import plain_amount
from coopbot.services.data.erasure import map_strings, personal_strings
from coopbot.services.dispatch.parsing import job_code
from coopbot.services.members.accounts import is_customer, is_erased, pseudonym

ZIP_MIME = "application/zip"


@dataclass(frozen=True)
class Table:
    """One CSV file of the export, and one list in its data.json."""

    name: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


#: Columns never exported: codes stored as hashes, a webhook's sealed secret and a sealed IBAN (of use
#: to no one but the bot: the member's IBAN is in their export opened, as `bank_account`), and the
#: export's own attachment.
NOT_EXPORTED = {"code_hash", "proof_code_hash", "attachment", "buttons", "key", "chat_id", "identity_id", "sent_ref",
                "webhook_secret", "iban_sealed"}
#: A customer's orders as they were told them: the courier by first name, never by account.
ORDER_COLUMNS = ("code", "pickup", "dropoff", "note", "state", "price", "deadline", "ordered_at", "updated_at",
                 "courier")  # fmt: skip
#: The one column the hiding of other people leaves alone: the courier's first name is theirs to know.
SHOWN_AS_TOLD = {"courier"}


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

    messages = table("messages", OutboxMessage, OutboxMessage.member_id == me,
                     ("id", "platform", "private", "text", "attachment_name", "status", "created_at", "sent_at"))
    audit = table("audit", AuditEntry, or_(AuditEntry.actor_id == me, AuditEntry.subject_id == me))
    profile = [table("profile", Member, Member.id == me), table("identities", Identity, Identity.member_id == me)]
    if is_customer(member):
        return _hidden(session, member, [*profile, _orders(session, member, cell), audit, messages])
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
        *profile,
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
        audit,
        messages,
    ]
    return _hidden(session, member, tables)


def _orders(session: Session, customer: Member, cell: Callable[[str, Any], Any]) -> Table:
    """The customer's orders, oldest first: price with two decimals, the courier's first name."""
    found = session.execute(
        select(Job, Member).outerjoin(Member, Member.id == Job.assignee_id)
        .where(Job.customer_id == customer.id).order_by(Job.id)
    ).all()  # fmt: skip
    rows = [
        (job_code(job.id), job.pickup, job.dropoff, job.note, str(job.status),
         None if job.price_cents is None else plain_amount(job.price_cents), cell("deadline", job.deadline),
         cell("created_at", job.created_at), cell("updated_at", job.updated_at), _first_name(courier))
        for job, courier in found
    ]  # fmt: skip
    return Table("orders", ORDER_COLUMNS, rows)


def _first_name(courier: Member | None) -> str | None:
    """As a customer is told who took their order: the first name; a former member by pseudonym."""
    if courier is None:
        return None
    return pseudonym(courier.id) if is_erased(courier) else courier.name.split()[0]


def _hidden(session: Session, member: Member, tables: list[Table]) -> list[Table]:
    hide = _others_hider(session, member)
    return [
        Table(t.name, t.columns, [
            tuple(v if c in SHOWN_AS_TOLD else hide(v) for c, v in zip(t.columns, row, strict=True)) for row in t.rows
        ])
        for t in tables
    ]  # fmt: skip


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


def _pattern(needles: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted(set(needles), key=len, reverse=True)
    return re.compile("|".join(rf"(?<!\w){re.escape(n)}(?!\w)" for n in ordered), re.IGNORECASE)


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
    tables = member_tables(session, member, tz) + _bank_account(member, config)
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


def _bank_account(member: Member, config: Config) -> list[Table]:
    """The member's own IBAN, in full: it is theirs. Only when they gave one; if the server key no
    longer opens it, the export says so rather than fail."""
    from coopbot.secrets import KeyLost
    from coopbot.services.money.payouts import iban_of

    if not member.iban_sealed:
        return []
    try:
        iban = iban_of(config, member)
    except KeyLost:
        iban = "(sealed with a server key that is gone: type /iban again)"
    return [Table("bank_account", ("iban",), [(iban,)])]


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
