"""Who is offered a job, in which order, and what happens when nobody answers.

The rule that picks the next worker is a governed setting (`broadcast` or
`rotation`), and each step writes a `job_event` with the numbers that made
it, so `/why J-12` can show the ranking to anyone. Expiries and the "still
riding?" question are sweeps: conditional, idempotent, and run again at
start, so an offer that expired while the bot was down moves on then.

This module and `jobs` are the only code that changes a job's state, with
the helpers they share in `events` (which also says in which order rows
are locked).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload

from coopbot.chat import Button, Outgoing
from coopbot.config import Config
from coopbot.errors import NotAllowed
from coopbot.i18n import t
from coopbot.models import Contribution, Job, Member, Offer
from coopbot.models_rosters import Slot, SlotSignup
from coopbot.outbox import Notice, queue_many, queue_to_member, recipients
from coopbot.scheduler import SweepContext, sweep
from coopbot.services.dispatch.events import (
    CLAIMABLE,
    HELD,
    MEMBER,
    OFFER,
    describe,
    lock_job,
    note,
    offers_of,
    record_event,
    rowcount,
    tell,
)
from coopbot.services.dispatch.parsing import job_code
from coopbot.services.members.accounts import IS_MEMBER, is_customer, language_of
from coopbot.services.money import periods
from coopbot.services.polls import settings as settings_svc
from coopbot.states import ContributionStatus, JobStatus, OfferStatus

PASSED = (OfferStatus.DECLINED, OfferStatus.EXPIRED)
EXPIRY_BATCH = 200
#: Riders whose roster slot is running are offered a job first (a governed setting). On by
#: default: the co-op planned on them for that hour, and those riding off their slot are the
#: spare hands; it only orders the rotation, a broadcast still reaches everyone at once.
PREFER_KEY = "prefer_on_duty"

settings_svc.register_setting(PREFER_KEY, settings_svc.parse_bool(PREFER_KEY), default="true")


@dataclass(frozen=True)
class Candidate:
    """A worker as the rotation ranks them, with the numbers shown by /why."""

    member: Member
    points_milli: int
    idle_since: datetime | None
    #: The slot this worker rides now (`prefer_on_duty`), None when none is running.
    on_duty: int | None = None

    def detail(self, now: datetime) -> dict[str, Any]:
        idle = int((now - self.idle_since).total_seconds() // 60) if self.idle_since else None
        found = {"id": self.member.id, "name": self.member.name, "points_milli": self.points_milli,
                 "idle_minutes": idle}
        return found if self.on_duty is None else {**found, "on_duty": self.on_duty}


@dataclass(frozen=True)
class Outcome:
    """What one offering step did: `rotation` (to `names[0]`), `broadcast`, or `waiting`."""

    kind: str
    names: tuple[str, ...] = ()


# --- governed settings -----------------------------------------------------------


def offer_policy(session: Session, config: Config, now: datetime) -> str:
    return settings_svc.current(session, config, "offer_policy", now)


@dataclass(frozen=True)
class RotationRules:
    """What a rotation step reads of the settings, in one query: the timeout, and whether
    riders on a running slot come first."""

    timeout: timedelta
    prefer_on_duty: bool


def rotation_rules(session: Session, config: Config, now: datetime) -> RotationRules:
    read = settings_svc.InForce(config, settings_svc.voted(session, now, ("offer_timeout", PREFER_KEY)))
    return RotationRules(timedelta(seconds=int(read.value("offer_timeout"))), read.value(PREFER_KEY) == "true")


# --- ranking -------------------------------------------------------------------------


#: Built once, with their accounts in the same query: every offering step runs it (each order's
#: confirmation), and the second query for the accounts, with building the statement, cost as
#: much as the first (`bench/web.py`: 17 → 15 statements an order with the line in `offer_step`).
AVAILABLE = (
    select(Member).where(Member.active.is_(True), Member.available.is_(True), IS_MEMBER)
    .options(joinedload(Member.identities)).order_by(Member.id)
)


def available_members(session: Session) -> list[Member]:
    """The members who ride now; a customer is never offered a job, whatever their row says."""
    return list(session.scalars(AVAILABLE).unique())


def points_this_period(session: Session, member_ids: Iterable[int], now: datetime) -> dict[int, int]:
    """Points of the period containing `now` (rejected work does not count)."""
    period = periods.period_at(session, now)
    if period is None:
        return {}
    rows = session.execute(
        select(Contribution.member_id, func.coalesce(func.sum(Contribution.points_milli), 0))
        .where(Contribution.period_id == period.id, Contribution.member_id.in_(list(member_ids)),
               Contribution.status != ContributionStatus.REJECTED)
        .group_by(Contribution.member_id)
    )
    return {member_id: int(points) for member_id, points in rows}


def idle_since(member: Member) -> datetime | None:
    """Since when a worker has waited: becoming available or their last job, the later."""
    moments = [moment for moment in (member.available_since, member.last_job_at) if moment is not None]
    return max(moments) if moments else None


def on_duty(session: Session, member_ids: Iterable[int], now: datetime) -> dict[int, int]:
    """The slot each of these workers rides now (started, not ended, not cancelled): one query."""
    rows = session.execute(
        select(SlotSignup.member_id, func.min(Slot.id)).join(Slot, Slot.id == SlotSignup.slot_id)
        .where(Slot.cancelled_at.is_(None), Slot.starts_at <= now, Slot.ends_at > now,
               SlotSignup.member_id.in_(list(member_ids)))
        .group_by(SlotSignup.member_id)
    )
    return dict(rows.all())


def rank(session: Session, members: Sequence[Member], now: datetime, *, prefer_on_duty: bool = False
         ) -> list[Candidate]:
    """Fairest first: fewest points this period, then longest idle, then member number; with
    `prefer_on_duty`, the riders whose slot is running come before all the others."""
    ids = [m.id for m in members]
    points = points_this_period(session, ids, now)
    duty = on_duty(session, ids, now) if prefer_on_duty else {}
    candidates = [Candidate(m, points.get(m.id, 0), idle_since(m), duty.get(m.id)) for m in members]
    return sorted(candidates, key=lambda c: (c.on_duty is None, c.points_milli, c.idle_since or datetime.min.replace(
        tzinfo=now.tzinfo), c.member.id))


# --- offering ----------------------------------------------------------------------------


def offer_buttons(lang: str, job: Job) -> tuple[Button, ...]:
    code = job_code(job.id)
    return (
        Button(t(lang, "dispatch.button_accept"), f"/accept {code}", "✅"),
        Button(t(lang, "dispatch.button_decline"), f"/decline {code}", "❌"),
    )


def _open_offer(session: Session, config: Config, job: Job, rows: dict[int, Offer], member: Member,
                now: datetime, expires: datetime | None, **details: Any) -> Notice:
    """Open (or reopen) one worker's offer; returns the message to queue for them."""
    offer = rows.get(member.id)
    if offer is None:
        offer = Offer(job_id=job.id, member_id=member.id, offered_at=now)
        session.add(offer)
        rows[member.id] = offer
    offer.status, offer.offered_at, offer.expires_at = OfferStatus.OPEN, now, expires
    offer.rank, offer.details = job.round, details
    lang = language_of(config, member)
    text = t(lang, "dispatch.offer", job=describe(job, config, lang, now))
    if expires is not None:
        text += "\n" + t(lang, "dispatch.offer_rotation", minutes=_minutes(expires - now))
    key = f"job:{job.id}:offer:m{member.id}:{job.round}"
    return member, key, Outgoing(text, buttons=offer_buttons(lang, job))


def _minutes(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return str(seconds // 60) if seconds % 60 == 0 else f"{seconds / 60:.1f}"


def offer_step(session: Session, config: Config, job: Job, now: datetime, *, quiet: bool = False) -> Outcome:
    """Offer a locked job to the next worker (rotation) or to everyone available.

    Rotation ranks the available workers who have not passed on it yet; when
    none are left, everyone available (those who passed included, except who
    already passed on that broadcast) gets it and the coordinators are told.
    """
    rows = offers_of(session, job) if job.round else {}  # a job never offered has no offers yet
    available = [m for m in available_members(session)
                 if rows.get(m.id) is None or rows[m.id].status != OfferStatus.OPEN]
    fresh = [m for m in available if m.id not in rows or rows[m.id].status == OfferStatus.CLOSED]
    job.round += 1
    job.updated_at = now
    if job.policy == "rotation" and fresh:
        rules = rotation_rules(session, config, now)
        ranked = rank(session, fresh, now, prefer_on_duty=rules.prefer_on_duty)
        chosen = ranked[0].member
        timeout = rules.timeout
        notice = _open_offer(session, config, job, rows, chosen, now, now + timeout, **ranked[0].detail(now))
        queue_many(session, [notice], now)
        job.status = JobStatus.OFFERED
        record_event(session, job, now, "offered", member=chosen, policy="rotation", round=job.round,
                     timeout=int(timeout.total_seconds()), candidates=[c.detail(now) for c in ranked],
                     prefer_on_duty=rules.prefer_on_duty)
        return Outcome("rotation", (chosen.name,))
    if job.policy == "rotation":
        targets = [m for m in available if m.id not in rows or rows[m.id].status == OfferStatus.CLOSED
                   or (rows[m.id].status in PASSED and not rows[m.id].details.get("fallback"))]
    else:
        targets = fresh
    if not targets:
        job.status = JobStatus.OPEN
        passed = sum(1 for offer in rows.values() if offer.status in PASSED)
        event = record_event(session, job, now, "unclaimed", policy=job.policy, round=job.round, passed=passed)
        if not quiet:
            note(session, config, event, now, "dispatch.note_unclaimed", job=job_code(job.id), passed=passed)
        return Outcome("waiting")
    fallback = job.policy == "rotation"
    queue_many(session, [_open_offer(session, config, job, rows, member, now, None, fallback=fallback)
                         for member in targets], now)
    job.status = JobStatus.OFFERED
    names = tuple(m.name for m in targets)
    event = record_event(session, job, now, "fallback" if fallback else "offered", policy="broadcast",
                         round=job.round, candidates=[{"id": m.id, "name": m.name} for m in targets])
    if fallback:
        note(session, config, event, now, "dispatch.note_fallback", job=job_code(job.id), count=len(targets))
    return Outcome("broadcast", names)


def close_offers(session: Session, config: Config, job: Job, now: datetime, text_key: str,
                 **params: Any) -> None:
    """Close every open offer of the job and tell those workers why, in a few statements.

    The workers are read as plain rows (`outbox.recipients`), not members:
    the winner of a race pays for telling the 200 others.
    """
    still_open = (OFFER.c.job_id == job.id) & (OFFER.c.status == OfferStatus.OPEN)
    told = recipients(session, MEMBER.c.id.in_(select(OFFER.c.member_id).where(still_open)))
    session.execute(update(OFFER).where(still_open).values(status=OfferStatus.CLOSED))
    texts: dict[str, Outgoing] = {}
    notices: list[Notice] = []
    for recipient in told.values():
        lang = recipient.language or config.coop.default_language
        if lang not in texts:
            texts[lang] = Outgoing(t(lang, text_key, job=job_code(job.id), **params))
        notices.append((recipient, f"job:{job.id}:closed:m{recipient.member_id}:{job.round}", texts[lang]))
    queue_many(session, notices, now)


def pass_offer(session: Session, config: Config, job: Job, offer: Offer, member: Member, now: datetime,
               kind: str, **details: Any) -> None:
    """A worker declined or let the offer expire: next worker, or tell the coordinators."""
    offer.status = OfferStatus(kind)
    record_event(session, job, now, kind, member=member, round=job.round, **details)
    remaining = session.scalar(select(func.count(Offer.id))
                               .where(Offer.job_id == job.id, Offer.status == OfferStatus.OPEN))
    if job.status == JobStatus.OFFERED and not remaining:
        offer_step(session, config, job, now)


# --- availability ---------------------------------------------------------------------------


def set_available(session: Session, config: Config, member: Member, now: datetime) -> tuple[bool, int]:
    """(was already available, jobs offered now). Saying yes again keeps one's place."""
    if is_customer(member):
        raise NotAllowed("customers.no_work")
    already = member.available
    member.idle_asked_at, member.last_seen_at = None, now
    if already:
        return True, 0
    member.available, member.available_since = True, now
    session.flush()
    offered = 0
    waiting = session.scalars(select(Job.id).where(Job.status.in_(CLAIMABLE)).order_by(Job.id)).all()
    for job_id in waiting:
        job = lock_job(session, job_id)
        offer = session.scalars(select(Offer).where(Offer.job_id == job.id, Offer.member_id == member.id)).first()
        status = offer.status if offer else None
        if job.status == JobStatus.OPEN:
            passed_once = offer is not None and status in PASSED and not offer.details.get("fallback")
            eligible = status in (None, OfferStatus.CLOSED) or (job.policy == "rotation" and passed_once)
            if eligible and offer_step(session, config, job, now).kind != "waiting":
                offered += 1
        elif status in (None, OfferStatus.CLOSED) and _broadcasting(session, job):
            notice = _open_offer(session, config, job, offers_of(session, job), member, now, None, late=True)
            queue_many(session, [notice], now)
            record_event(session, job, now, "offered", member=member, policy="broadcast", round=job.round,
                         candidates=[{"id": member.id, "name": member.name}], late=True)
            offered += 1
    return False, offered


def _broadcasting(session: Session, job: Job) -> bool:
    """An offered job whose open offers have no expiry: anyone available may take it."""
    return session.scalar(select(func.count(Offer.id)).where(
        Offer.job_id == job.id, Offer.status == OfferStatus.OPEN, Offer.expires_at.is_not(None))) == 0


def set_away(session: Session, config: Config, member: Member, now: datetime, reason: str = "away") -> list[Job]:
    """Stop offers; open offers pass to the next worker. Returns the jobs still held."""
    member.available, member.idle_asked_at = False, None
    open_offers = session.scalars(select(Offer.job_id).where(Offer.member_id == member.id,
                                                            Offer.status == OfferStatus.OPEN)).all()
    for job_id in open_offers:
        job = lock_job(session, job_id)
        offer = offers_of(session, job).get(member.id)
        if offer is not None and offer.status == OfferStatus.OPEN:
            pass_offer(session, config, job, offer, member, now, "declined", reason=reason)
    return held_jobs(session, member)


def held_jobs(session: Session, member: Member) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.assignee_id == member.id, Job.status.in_(HELD))
                                .order_by(Job.deadline.is_(None), Job.deadline, Job.id)))


# --- the scheduler's part -------------------------------------------------------------------


@sweep("dispatch.offers")
def expire_offers(ctx: SweepContext) -> None:
    """Rotation offers past their time pass to the next worker, also after a restart.

    Offers resting after a failure are left out of the batch, so they cannot fill it.
    """
    resting = [offer_id for offer_id, _ in ctx.resting()]
    with ctx.sessions() as session:
        due = [(offer_id, job_id) for offer_id, job_id in session.execute(
            select(Offer.id, Offer.job_id).where(Offer.status == OfferStatus.OPEN, Offer.expires_at.is_not(None),
                                                 Offer.expires_at <= ctx.now, Offer.id.not_in(resting))
            .order_by(Offer.expires_at, Offer.id).limit(EXPIRY_BATCH))]
    ctx.each(due, lambda item: job_code(item[1]),
             lambda session, item: expire_offer(session, ctx.config, *item, ctx.now))


def expire_offer(session: Session, config: Config, offer_id: int, job_id: int, now: datetime) -> None:
    """One offer past its time: its worker is told, the job passes to the next one."""
    job = lock_job(session, job_id)
    offer = session.get(Offer, offer_id, populate_existing=True)
    if offer is None or offer.status != OfferStatus.OPEN:
        return
    member = session.get_one(Member, offer.member_id)
    tell(session, config, member, f"job:{job.id}:expired:m{member.id}:{offer.rank}", now,
         "dispatch.offer_timed_out", job=job_code(job.id))
    pass_offer(session, config, job, offer, member, now, "expired")


@sweep("dispatch.idle")
def ask_idle(ctx: SweepContext) -> None:
    """Ask quiet available workers if they still ride; no answer in time sets them away."""
    with ctx.sessions() as session:
        busy = set(session.scalars(select(Job.assignee_id).where(Job.status.in_(HELD))))
        due = [(m.id, action) for m in session.scalars(
            select(Member).where(Member.active.is_(True), Member.available.is_(True), IS_MEMBER))
            if (action := _idle_action(ctx, m)) is not None and not (action == "ask" and m.id in busy)]
    ctx.each(due, lambda item: f"#{item[0]}", lambda session, item: _idle_step(ctx, session, *item))


def _idle_step(ctx: SweepContext, session: Session, member_id: int, action: str) -> None:
    """One quiet worker: ask them, forget the question (they did something), or set them away."""
    member = session.get_one(Member, member_id, populate_existing=True)
    if not member.available or _idle_action(ctx, member) != action:
        return
    if action == "reset":
        member.idle_asked_at = None
    elif action == "ask" and not held_jobs(session, member) and rowcount(session, (
            update(MEMBER).where(MEMBER.c.id == member.id, MEMBER.c.idle_asked_at.is_(None))
            .values(idle_asked_at=ctx.now))) == 1:
        lang = language_of(ctx.config, member)
        buttons = (Button(t(lang, "dispatch.button_still"), "/available", "👍"),
                   Button(t(lang, "dispatch.button_away"), "/away", "🛑"))
        queue_to_member(session, member, f"idle:m{member.id}:{ctx.now.isoformat()}",
                        Outgoing(t(lang, "dispatch.still_available"), buttons=buttons), ctx.now)
    elif action == "away":
        asked = member.idle_asked_at
        set_away(session, ctx.config, member, ctx.now, reason="idle")
        tell(session, ctx.config, member, f"idle:m{member.id}:away:{asked}", ctx.now,
             "dispatch.set_away_idle")


def _idle_action(ctx: SweepContext, member: Member) -> str | None:
    """`ask`, `reset` (they did something since we asked), `away`, or nothing to do."""
    moments = [m for m in (member.available_since, member.last_seen_at, member.last_job_at) if m]
    last = max(moments) if moments else ctx.now
    asked = member.idle_asked_at
    if asked is None:
        return "ask" if last <= ctx.now - timedelta(minutes=ctx.config.dispatch.idle_minutes) else None
    if last > asked:
        return "reset"
    if asked <= ctx.now - timedelta(minutes=ctx.config.dispatch.idle_answer_minutes):
        return "away"
    return None
