"""Leaving the co-op: the member's export first, then the erasure of everything personal
(also when a poll removes them).

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

The export itself (what it holds, and how others are hidden in it) is `export`.

A customer leaves the same way: export, then erasure. They hold no job and no
office, so nothing keeps them; their orders stay in the books under the
pseudonym, and the coordinators are told of any order still on its way.

Replying with the export and erasing in the same transaction would not be
safe: a reply is not durable (a crash after the commit loses the export
while the data is gone), and a removal by poll has no chat to reply to.
Rows keep their member number, so past periods add up exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from typing import cast as type_cast

from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.orm import Session

from coopbot.chat import Address, Outgoing
from coopbot.config import Config
from coopbot.errors import Conflict, CoopError, UsageError
from coopbot.i18n import t
from coopbot.models import Identity, Job, LinkCode, Member, OutboxMessage, Poll
from coopbot.models_rosters import CalendarFeed
from coopbot.outbox import queue, queue_to_coordinators, reachable_identities
from coopbot.platforms import live as live_platforms
from coopbot.scheduler import SweepContext, sweep
from coopbot.services.audit import record
from coopbot.services.data import erasure
from coopbot.services.data.export import export_zip
from coopbot.services.dispatch import offers
from coopbot.services.dispatch.parsing import job_code
from coopbot.services.members.accounts import (
    PSEUDONYM_PREFIX,
    active_members,
    is_customer,
    is_erased,
    member_by_ref,
    pseudonym,
)
from coopbot.services.money import shifts
from coopbot.services.polls.settings import register_action
from coopbot.services.refs import member_number
from coopbot.services.rosters import slots
from coopbot.states import JobStatus, Role

LEAVE_KEY = "leave:{member}:"
EXPORT_GRACE = timedelta(days=1)
#: A leaving customer's orders the coordinators must see to: confirmed and not yet finished.
UNDER_WAY = (JobStatus.OPEN, JobStatus.OFFERED, JobStatus.ASSIGNED, JobStatus.PICKED_UP)


# --- leaving ---------------------------------------------------------------------


def check_can_leave(session: Session, member: Member, *, by_vote: bool = False) -> None:
    """Refuse what would leave the co-op stuck; a removal by vote only keeps the last admin."""
    if not member.active:
        raise Conflict("data.already_left", number=member.id)
    if is_customer(member):
        return  # a customer holds no job and no office: nothing can keep them
    if member.role == Role.ADMIN and len(active_members(session, Role.ADMIN)) <= 1:
        raise Conflict("data.last_admin_removal" if by_vote else "data.last_admin")
    held = offers.held_jobs(session, member)
    if held and not by_vote:
        raise Conflict("data.jobs_in_hand", jobs=", ".join(f"J-{job.id}" for job in held), count=len(held))


def start_leave(session: Session, member: Member, now: datetime, config: Config, *, by_vote: bool = False,
                poll: Poll | None = None, platforms: Iterable[str] = ()) -> int:  # fmt: skip
    """Step 1 of leaving: stop the work, deactivate, drop pending messages and calendar addresses,
    queue the export.

    A running shift ends now so its hours count; open offers pass to the next
    worker (`_stop_work`). Returns how many export messages were queued; erasure (step 2) is
    the `privacy.erase` sweep's job once they are delivered.
    """
    check_can_leave(session, member, by_vote=by_vote)
    customer = is_customer(member)
    held = [] if customer else _stop_work(session, config, member, now)
    export = export_zip(session, member, now, config)
    reason = "removed" if by_vote else "left"
    area = "customers" if customer else "data"
    text = t(member.language or config.coop.default_language, f"{area}.export_{reason}", coop=config.coop.name)
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.member_id == member.id, OutboxMessage.status == "pending")
        .values(status="dead", last_error="not sent: the member left the co-op")
    )
    live = {platform.name for platform in live_platforms(config)} | set(platforms)
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
    session.execute(delete(CalendarFeed).where(CalendarFeed.member_id == member.id))
    member.active, member.left_at, member.available, member.available_since = False, now, False, None
    poll_ref = {"poll": f"P-{poll.id}"} if poll is not None else {}
    record(session, now, f"member.{reason}", actor=None if by_vote else member, subject=member, **poll_ref)
    queue_to_coordinators(session, config, f"member-{reason}:{member.id}", f"{area}.notice_{reason}", now,
                          name=member.name, number=member.id, poll=poll_ref.get("poll", "—"))  # fmt: skip
    if held:
        queue_to_coordinators(session, config, f"member-jobs:{member.id}", "data.notice_jobs", now,
                              number=member.id, jobs=", ".join(f"J-{job.id}" for job in held),
                              count=len(held))  # fmt: skip
    under_way = _orders_under_way(session, member) if customer else []
    if under_way:
        queue_to_coordinators(session, config, f"customer-orders:{member.id}", "customers.notice_orders", now,
                              number=member.id, jobs=", ".join(under_way), count=len(under_way))  # fmt: skip
    return queued


def _stop_work(session: Session, config: Config, member: Member, now: datetime) -> list[Job]:
    """A leaving member's work ends: a running shift ends now so its hours count, their seats on
    slots to come are freed, open offers pass to the next worker. Returns the jobs they still hold."""
    slots.release(session, member, now)
    if shifts.open_shift(session, member) is not None:
        try:
            with session.begin_nested():
                shifts.end_shift(session, config, member, now)
        except CoopError:
            pass  # too long to count as is: the shift-limit sweep closes it for review
    return offers.set_away(session, config, member, now, reason="left")


def _orders_under_way(session: Session, customer: Member) -> list[str]:
    found = session.scalars(
        select(Job.id).where(Job.customer_id == customer.id, Job.status.in_(UNDER_WAY)).order_by(Job.id)
    )
    return [job_code(job_id) for job_id in found]


# --- erasing ---------------------------------------------------------------------


def erase_member(session: Session, member: Member, now: datetime) -> bool:
    """Step 2 of leaving: nothing personal remains, the rows stay (under the pseudonym).

    Idempotent and safe against a concurrent run: the rename is a conditional
    UPDATE, and only its winner goes on.

    Photos proving their deliveries (as courier or as customer) are left as
    they are: a photo's file is named by its job and a random token, not by
    anyone, and it goes like every other when `[orders] proof_retention_days`
    is over (`dispatch.proof_photos`). A message carrying one that is still
    pending for them is dropped with their other pending messages.
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
                last_seen_at=None, idle_asked_at=None, address=None, webhook_url=None, webhook_secret=None,
                iban_sealed=None)
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
