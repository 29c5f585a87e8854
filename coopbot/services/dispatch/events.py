"""What jobs and offers share: a job's states, its record of events, and the words about it.

Every change of a job writes a `job_event` (`record_event`) with who, when
and why, which is what `/why J-12` reads; the worker concerned is told
(`tell`) and the coordinators get one line (`note`). Rows are locked member
first (the router touches the member), then the job (`lock_job`), then its
offers, so taps and sweeps do not deadlock. Only `jobs` and `offers` change
a job's state, through these helpers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update

from coopbot.chat import Button, Outgoing
from coopbot.config import Config
from coopbot.errors import NotFound
from coopbot.i18n import t
from coopbot.models import Job, JobEvent, Member, Offer
from coopbot.money import format_money
from coopbot.outbox import queue_to_coordinators, queue_to_member
from coopbot.services.dispatch.parsing import job_code, when
from coopbot.services.members.accounts import language_of
from coopbot.states import JobStatus
from coopbot.storage.small_writes import insert_returning_id, supported

CLAIMABLE = (JobStatus.OPEN, JobStatus.OFFERED)
HELD = (JobStatus.ASSIGNED, JobStatus.PICKED_UP)
LIVE = (*CLAIMABLE, *HELD)
TERMINAL = (JobStatus.DELIVERED, JobStatus.FAILED, JobStatus.CANCELLED)
#: Claims and offer changes go through the tables, not the ORM: cheaper, and
#: no stale objects to synchronise (ORM objects are reloaded after).
JOB = cast(Table, Job.__table__)
OFFER = cast(Table, Offer.__table__)
JOB_EVENT = cast(Table, JobEvent.__table__)
MEMBER = cast(Table, Member.__table__)


def describe(job: Job, config: Config, lang: str, now: datetime) -> str:
    """`J-12 Boulangerie Martin → 12 rue Oberkampf · by 12:30 · €6.50 · note: fragile`."""
    text = t(lang, "dispatch.job_line", code=job_code(job.id), pickup=job.pickup, dropoff=job.dropoff)
    if job.deadline is not None:
        text += t(lang, "dispatch.job_deadline", deadline=when(job.deadline, now, config.coop.tz))
    if job.price_cents is not None:
        text += t(lang, "dispatch.job_price", price=format_money(job.price_cents, config.coop.currency, lang))
    if job.note:
        text += t(lang, "dispatch.job_note", note=job.note)
    if job.customer is not None:
        text += t(lang, "orders.job_customer", customer=job.customer.name)
    return text


def rowcount(session: Session, statement: Update, params: dict[str, Any] | None = None) -> int:
    """How many rows a conditional UPDATE changed: 1 means this caller won."""
    return cast(CursorResult[Any], session.execute(statement, params)).rowcount


def record_event(session: Session, job: Job, now: datetime, kind: str, *, actor: Member | None = None,
                 member: Member | None = None, **details: Any) -> JobEvent:
    """Every change of a job, with who, when and why: what `/why` reads.

    The row is written at once (pending changes first, so it follows them), on
    the driver's cursor (`insert_returning_id`), and the event returned is not
    held by the session: it is written, and nothing changes it after.
    Reason: each event was a flush of its own through the ORM's unit of work,
    several times the cost of its INSERT, and an order a shop creates and
    confirms writes three (figures in `coopbot.storage.small_writes`).
    """
    values = {"job_id": job.id, "at": now, "actor_id": actor.id if actor else None,
              "kind": kind, "member_id": member.id if member else None, "details": details}  # fmt: skip
    session.flush()
    if not supported(session):
        event = JobEvent(**values)
        session.add(event)
        session.flush()
        return event
    return JobEvent(id=insert_returning_id(session, JOB_EVENT, values), **values)


def tell(session: Session, config: Config, member: Member, key: str, now: datetime, text_key: str,
         buttons: tuple[Button, ...] = (), **params: Any) -> None:
    lang = language_of(config, member)
    queue_to_member(session, member, key, Outgoing(t(lang, text_key, **params), buttons=buttons), now)


def note(session: Session, config: Config, event: JobEvent, now: datetime, text_key: str,
         **params: Any) -> None:
    """One short line per change for the coordinators, keyed by the event."""
    queue_to_coordinators(session, config, f"job:{event.job_id}:ev{event.id}", text_key, now, **params)


#: Built once, as every step of every job runs them: building a statement cost about as much
#: as running it (`coopbot.storage.statements` says the same of a message's own statements).
LOCK_JOB = select(Job).where(Job.id == bindparam("job_id")).with_for_update().execution_options(
    populate_existing=True)  # fmt: skip
OFFERS_OF = select(Offer).where(Offer.job_id == bindparam("job_id")).execution_options(populate_existing=True)


def lock_job(session: Session, job_id: int) -> Job:
    job = session.scalars(LOCK_JOB, {"job_id": job_id}).one_or_none()
    if job is None:
        raise NotFound("dispatch.no_such_job", job=job_code(job_id))
    return job


def offers_of(session: Session, job: Job) -> dict[int, Offer]:
    return {offer.member_id: offer for offer in session.scalars(OFFERS_OF, {"job_id": job.id})}
