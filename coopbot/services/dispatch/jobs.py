"""Jobs: posting them, the one claim that wins, and moving a job to its end.

Claiming is one conditional UPDATE checked by its row count: whoever's UPDATE
matches first owns the job, on SQLite and PostgreSQL alike, and the others
are told who took it. Who gets offered what lives in `offers`; this module
and that one are the only code that changes a job's state, with the
helpers they share in `events`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from coopbot.chat import Button, Outgoing, Photo
from coopbot.config import Config
from coopbot.errors import Conflict, CoopError, NotAllowed, NotFound, UsageError
from coopbot.i18n import t
from coopbot.models import Job, JobEvent, Member, Offer
from coopbot.outbox import queue_to_coordinators, queue_to_member
from coopbot.services.dispatch import proof_photos
from coopbot.services.dispatch.events import (
    CLAIMABLE,
    HELD,
    JOB,
    LIVE,
    MEMBER,
    OFFER,
    TERMINAL,
    describe,
    lock_job,
    note,
    offers_of,
    record_event,
    rowcount,
    tell,
)
from coopbot.services.dispatch.offers import Outcome, close_offers, offer_policy, offer_step, pass_offer
from coopbot.services.dispatch.order_notices import check_proof, tell_customer
from coopbot.services.dispatch.parsing import JobSpec, job_code
from coopbot.services.dispatch.webhooks import post_to_shop
from coopbot.services.members.accounts import ROLE_RANK, is_customer, language_of
from coopbot.services.money import ledger
from coopbot.services.text import typed
from coopbot.states import JobStatus, OfferStatus, Role
from coopbot.storage import as_loaded, claim_read, claim_write
from coopbot.storage.visits import write_last_job
from coopbot.storage.written import note_written

#: A job as a claim sees it: (status, assignee id, assignee's name, this member's offer status).
State = tuple[JobStatus, int | None, str | None, OfferStatus | None]
_MY_OPEN_OFFER = ((OFFER.c.job_id == bindparam("job")) & (OFFER.c.member_id == bindparam("member"))
                  & (OFFER.c.status == OfferStatus.OPEN))
#: The claim, built once: it runs for every tap of every rider.
CLAIM = (update(JOB)
         .where(JOB.c.id == bindparam("job"), (JOB.c.status == JobStatus.OPEN) | (JOB.c.status == JobStatus.OFFERED),
                select(OFFER.c.id).where(_MY_OPEN_OFFER).exists())
         .values(status=JobStatus.ASSIGNED, assignee_id=bindparam("assignee"), updated_at=bindparam("now")))
TAKE_OFFER = update(OFFER).where(_MY_OPEN_OFFER).values(status=OfferStatus.ACCEPTED)
WHY_NOT = (select(JOB.c.status, JOB.c.assignee_id, MEMBER.c.name, OFFER.c.status)
           .select_from(JOB.outerjoin(MEMBER, MEMBER.c.id == JOB.c.assignee_id)
                        .outerjoin(OFFER, (OFFER.c.job_id == JOB.c.id) & (OFFER.c.member_id == bindparam("member"))))
           .where(JOB.c.id == bindparam("job")))

#: Reasons are shown in one chat line to the coordinators and in /why.
MAX_REASON = 300



def is_coordinator(member: Member) -> bool:
    return ROLE_RANK.get(member.role, 0) >= ROLE_RANK[Role.COORDINATOR]


def work_buttons(lang: str, job: Job) -> tuple[Button, ...]:
    code = job_code(job.id)
    if job.status == JobStatus.PICKED_UP:
        return (Button(t(lang, "dispatch.button_deliver"), f"/deliver {code}", "🏁"),)
    return (
        Button(t(lang, "dispatch.button_pickup"), f"/pickup {code}", "📦"),
        Button(t(lang, "dispatch.button_deliver"), f"/deliver {code}", "🏁"),
        Button(t(lang, "dispatch.button_release"), f"/release {code}", "↩️"),
    )


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound("dispatch.no_such_job", job=job_code(job_id))
    return job


def member_name(session: Session, member_id: int | None) -> str:
    member = session.get(Member, member_id) if member_id is not None else None
    return member.name if member is not None else "?"


# --- posting -------------------------------------------------------------------------------


def post_jobs(session: Session, config: Config, actor: Member, specs: Sequence[JobSpec],
              now: datetime) -> list[tuple[Job, Outcome]]:
    """Create jobs and offer each at once by the policy in force."""
    policy = offer_policy(session, config, now)
    posted = []
    for spec in specs:
        job = Job(pickup=spec.pickup, dropoff=spec.dropoff, deadline=spec.deadline,
                  price_cents=spec.price_cents, note=spec.note, status=JobStatus.OPEN, created_by=actor.id,
                  created_at=now, updated_at=now, policy=policy, round=0)
        session.add(job)
        session.flush()
        record_event(session, job, now, "created", actor=actor, policy=policy)
        posted.append((job, offer_step(session, config, job, now, quiet=True)))
    codes = ", ".join(job_code(job.id) for job, _ in posted)
    waiting = [job_code(job.id) for job, outcome in posted if outcome.kind == "waiting"]
    key = "dispatch.note_posted_waiting" if waiting else "dispatch.note_posted"
    queue_to_coordinators(session, config, f"job:{posted[0][0].id}:posted", key, now, name=actor.name,
                          jobs=codes, waiting=", ".join(waiting))
    return posted


# --- claiming ----------------------------------------------------------------------------


def accept(session: Session, config: Config, member: Member, job_id: int, now: datetime) -> Job:
    """The worker's open offer becomes the job, or the refusal is raised (see `claim`)."""
    claimed = claim(session, config, member, job_id, now)
    if isinstance(claimed, CoopError):
        raise claimed
    return claimed


def claim(session: Session, config: Config, member: Member, job_id: int, now: datetime) -> Job | CoopError:
    """The worker's open offer becomes the job: exactly one accept wins. A refusal is returned.

    Most taps of a race arrive once the job is taken: they cost one read.
    The claim itself is the conditional UPDATE; whoever's UPDATE matches
    owns the job (and takes its offer, and has the job's row back, in the
    same statement on PostgreSQL: `storage.statements.claim_write`), and a
    tap that lost between its read and its claim reads again to say who won.
    Either way a refused tap has written nothing, so its refusal is
    returned, not raised: the caller answers it and commits what the tap's
    transaction holds already (the update's receipt, when the rider was last
    seen) instead of rolling back and writing those again in a second
    transaction, which cost the 199 losers of a race more than their read.
    Only a claim that wrote and then could not finish raises.
    """
    if not member.active:
        return NotAllowed("registry.not_member")
    connection = session.connection()
    mine = {"job": job_id, "member": member.id}
    state = _state(connection, mine)
    if _claimable(state):
        claimed, taken = claim_write(connection, CLAIM, TAKE_OFFER, {**mine, "assignee": member.id, "now": now})
        if claimed is not None:
            note_written(session, "job", "offer")  # run past the session: `coopbot.storage.written`
            if taken != 1:
                raise Conflict("dispatch.offer_expired", job=job_code(job_id))  # the caller rolls back
            job = as_loaded(session, Job, claimed)
            if job is None:  # held already: read again over what it held
                job = session.get_one(Job, job_id, populate_existing=True)
            else:
                session.add(job)
            _after_claim(session, config, job, member, now, member, "accepted")
            return job
        state = _state(connection, mine)
    return _refusal(job_id, member, state)


def _state(connection: Connection, mine: dict[str, int]) -> State | None:
    """The job as this member's tap sees it; every tap of a race runs it, most stop after it."""
    return cast("State | None", claim_read(connection, WHY_NOT, mine))


def _claimable(state: State | None) -> bool:
    return state is not None and state[0] in CLAIMABLE and state[3] == OfferStatus.OPEN


def _refusal(job_id: int, member: Member, state: State | None) -> CoopError:
    """Why this member cannot have the job, from (status, assignee, assignee's name, my offer)."""
    code = job_code(job_id)
    if state is None:
        return NotFound("dispatch.no_such_job", job=code)
    status, assignee, name, offer = state
    if status not in CLAIMABLE:
        if assignee == member.id and status in HELD:
            return Conflict("dispatch.already_yours", job=code)
        if status in (*HELD, JobStatus.DELIVERED):
            return Conflict("dispatch.already_taken", job=code, name=name)
        return Conflict(f"dispatch.job_{status}", job=code)
    if offer in (OfferStatus.EXPIRED, OfferStatus.DECLINED):
        return Conflict(f"dispatch.offer_{offer}", job=code)
    return Conflict("dispatch.not_offered", job=code)


def why_not(session: Session, job_id: int, member: Member) -> CoopError:
    return _refusal(job_id, member, _state(session.connection(), {"job": job_id, "member": member.id}))


def _after_claim(session: Session, config: Config, job: Job, member: Member, now: datetime,
                 actor: Member, kind: str) -> None:
    close_offers(session, config, job, now, "dispatch.taken_by", name=member.name)
    write_last_job(session, member, now)
    event = record_event(session, job, now, kind, actor=actor, member=member)
    note(session, config, event, now, f"dispatch.note_{kind}", job=job_code(job.id), name=member.name,
         actor=actor.name)
    tell_customer(session, config, job, event, "taken", now, courier=member)


def decline(session: Session, config: Config, member: Member, job_id: int, now: datetime) -> Job:
    job = lock_job(session, job_id)
    offer = offers_of(session, job).get(member.id)
    if offer is None or offer.status != OfferStatus.OPEN:
        raise why_not(session, job_id, member)
    pass_offer(session, config, job, offer, member, now, "declined")
    return job


# --- moving an assigned job --------------------------------------------------------------


def _may_move(session: Session, actor: Member, job: Job) -> None:
    if job.assignee_id == actor.id or is_coordinator(actor):
        return
    if job.status in HELD:
        raise NotAllowed("dispatch.not_yours", job=job_code(job.id), name=member_name(session, job.assignee_id))
    raise NotAllowed("dispatch.not_assigned", job=job_code(job.id))


def _wrong_state(session: Session, actor: Member, job: Job, kind: str) -> Conflict:
    code = job_code(job.id)
    if job.status in TERMINAL:
        return Conflict(f"dispatch.job_{job.status}", job=code)
    if job.status in CLAIMABLE:
        return Conflict("dispatch.not_assigned", job=code)
    _may_move(session, actor, job)
    if kind == "delivered":
        return Conflict("dispatch.pickup_first", job=code)
    if kind == "picked_up":
        return Conflict("dispatch.already_picked_up", job=code)
    return Conflict("dispatch.release_picked_up", job=code)


def _move(session: Session, config: Config, actor: Member, job_id: int, now: datetime, *,
          allowed: tuple[JobStatus, ...], to: JobStatus, kind: str, **details: Any) -> Job:
    """Change a held job's state for its assignee (or a coordinator), conditionally."""
    job = lock_job(session, job_id)
    if job.status not in allowed:
        raise _wrong_state(session, actor, job, kind)
    _may_move(session, actor, job)
    assignee = session.get_one(Member, job.assignee_id)
    values: dict[str, Any] = {"status": to, "updated_at": now}
    if to == JobStatus.OPEN:
        values["assignee_id"] = None
    moved = rowcount(session, update(JOB).where(JOB.c.id == job.id, JOB.c.status == job.status,
                                                 JOB.c.assignee_id == assignee.id).values(**values))
    if moved != 1:
        raise Conflict("dispatch.changed", job=job_code(job.id))
    session.refresh(job)
    event = record_event(session, job, now, kind, actor=actor, member=assignee, **details)
    reason = details.get("reason", "")
    note(session, config, event, now, f"dispatch.note_{kind}", job=job_code(job.id), name=assignee.name,
         actor=actor.name, reason=reason)
    if actor.id != assignee.id:
        tell(session, config, assignee, f"job:{job.id}:ev{event.id}", now, f"dispatch.told_{kind}",
             job=job_code(job.id), actor=actor.name, reason=reason)
    tell_customer(session, config, job, event, kind, now, courier=assignee, reason=reason)
    if kind != "picked_up":
        assignee.last_job_at = now
    return job


def pickup(session: Session, config: Config, actor: Member, job_id: int, now: datetime) -> Job:
    return _move(session, config, actor, job_id, now, allowed=(JobStatus.ASSIGNED,), to=JobStatus.PICKED_UP,
                 kind="picked_up")


def deliver(session: Session, config: Config, actor: Member, job_id: int, now: datetime,
            code: str | None = None, photo: Photo | None = None) -> tuple[Job, int]:  # fmt: skip
    """Delivered: the rider's points and the job's price are recorded in the same transaction.

    A customer's order that asks for proof (the recipient's code, a photo) is
    delivered only with it. The photo is written to disk only once the job is
    known to move (picked up, by its courier), so a refusal leaves no file.
    """
    job = lock_job(session, job_id)
    if job.status != JobStatus.PICKED_UP:
        raise _wrong_state(session, actor, job, "delivered")
    _may_move(session, actor, job)
    proof = check_proof(config, job, code, photo is not None)
    if proof == "photo" and photo is not None:
        job.proof_photo = proof_photos.keep(config, job.id, photo)
        session.flush()
    job = _move(session, config, actor, job_id, now, allowed=(JobStatus.PICKED_UP,), to=JobStatus.DELIVERED,
                kind="delivered", **({"proof": proof} if proof else {}))
    if job.proof_photo is not None:
        proof_photos.show_coordinators(session, config, job, now)
    contribution = ledger.record_delivery(session, config, job, now)
    return job, contribution.points_milli if contribution is not None else 0


def fail(session: Session, config: Config, actor: Member, job_id: int, reason: str, now: datetime) -> Job:
    """The coordinators act on the reason, so a job is never failed without one they can read."""
    reason = typed(reason, MAX_REASON)
    if not reason:
        raise UsageError("dispatch.fail_reason_missing", job=job_code(job_id))
    return _move(session, config, actor, job_id, now, allowed=HELD, to=JobStatus.FAILED, kind="failed", reason=reason)


def release(session: Session, config: Config, actor: Member, job_id: int, now: datetime) -> tuple[Job, Outcome]:
    """Back to open and offered again, as a new round where the releaser comes last."""
    releaser = get_job(session, job_id).assignee_id
    job = _move(session, config, actor, job_id, now, allowed=(JobStatus.ASSIGNED,), to=JobStatus.OPEN, kind="released")
    for offer in offers_of(session, job).values():
        offer.status = OfferStatus.DECLINED if offer.member_id == releaser else OfferStatus.CLOSED
        offer.details = {"released": True} if offer.member_id == releaser else {}
    session.flush()
    return job, offer_step(session, config, job, now)


def assign(session: Session, config: Config, actor: Member, job_id: int, target: Member, now: datetime) -> Job:
    """A coordinator gives the job to someone; whoever had it or was offered it is told."""
    if is_customer(target):
        raise NotAllowed("customers.no_work")
    job = lock_job(session, job_id)
    previous = job.assignee_id
    if job.status in TERMINAL:
        raise Conflict(f"dispatch.job_{job.status}", job=job_code(job.id))
    if job.status == JobStatus.PICKED_UP:
        raise Conflict("dispatch.assign_picked_up", job=job_code(job.id), name=member_name(session, previous))
    if previous == target.id:
        raise Conflict("dispatch.already_assigned_to", job=job_code(job.id), name=target.name)
    rowcount(session, update(JOB).where(JOB.c.id == job.id, JOB.c.status == job.status)
              .values(status=JobStatus.ASSIGNED, assignee_id=target.id, updated_at=now))
    session.refresh(job)
    if previous is not None:
        before = session.get_one(Member, previous)
        tell(session, config, before, f"job:{job.id}:unassigned:m{previous}:{job.round}", now,
             "dispatch.told_reassigned", job=job_code(job.id), actor=actor.name, name=target.name)
    session.execute(TAKE_OFFER, {"job": job.id, "member": target.id})  # their own offer is not "taken by them"
    _after_claim(session, config, job, target, now, actor, "assigned")
    lang = language_of(config, target)
    text = t(lang, "dispatch.told_assigned", actor=actor.name, job=describe(job, config, lang, now))
    queue_to_member(session, target, f"job:{job.id}:assigned:m{target.id}:{job.round}",
                    Outgoing(text, buttons=work_buttons(lang, job)), now)
    return job


def cancel(session: Session, config: Config, actor: Member, job_id: int, reason: str, now: datetime) -> Job:
    job = lock_job(session, job_id)
    if job.status in TERMINAL:
        raise Conflict(f"dispatch.job_{job.status}", job=job_code(job.id))
    rowcount(session, update(JOB).where(JOB.c.id == job.id, JOB.c.status == job.status)
              .values(status=JobStatus.CANCELLED, updated_at=now))
    session.refresh(job)
    close_offers(session, config, job, now, "dispatch.offer_cancelled")
    assignee = session.get(Member, job.assignee_id) if job.assignee_id else None
    event = record_event(session, job, now, "cancelled", actor=actor, member=assignee, reason=typed(reason, MAX_REASON))
    note(session, config, event, now, "dispatch.note_cancelled", job=job_code(job.id), actor=actor.name)
    if assignee is not None and assignee.id != actor.id:
        tell(session, config, assignee, f"job:{job.id}:ev{event.id}", now, "dispatch.told_cancelled",
             job=job_code(job.id), actor=actor.name, reason=reason[:300])
    if actor.id != job.customer_id:
        tell_customer(session, config, job, event, "cancelled", now, reason=typed(reason, MAX_REASON))
    else:  # the customer knows, having done it; their server learns it like every other step
        post_to_shop(session, config, job, event, now)
    return job


# --- reading ---------------------------------------------------------------------------------


def offered_to(session: Session, member: Member) -> list[Job]:
    return list(session.scalars(
        select(Job).join(Offer, Offer.job_id == Job.id)
        .where(Offer.member_id == member.id, Offer.status == OfferStatus.OPEN, Job.status.in_(CLAIMABLE))
        .order_by(Job.deadline.is_(None), Job.deadline, Job.id)))


def live_jobs(session: Session) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.status.in_(LIVE))
                                .order_by(Job.deadline.is_(None), Job.deadline, Job.id)))


def history(session: Session, job_id: int) -> tuple[Job, list[JobEvent], dict[int, str]]:
    """The job, its events in order, and the names of everyone they mention."""
    job = get_job(session, job_id)
    events = list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)))
    ids = {i for e in events for i in (e.actor_id, e.member_id) if i is not None}
    names = {m.id: m.name for m in session.scalars(select(Member).where(Member.id.in_(ids)))} if ids else {}
    return job, events, names
