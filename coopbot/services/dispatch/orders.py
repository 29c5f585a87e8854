"""A customer's order: a quote first, then a job like any other.

A gig platform dispatches first and prices later, in secret. Here the
customer reads the price and how it was reached before anything moves: an
order is a job in state `quoted`, holding the terms of its price and the
votes that set the rules, and nothing is offered to a courier until the
customer confirms it. A quote not confirmed within `quote_valid_minutes`
lapses. Once confirmed, the job goes through dispatch exactly as a
coordinator's does (same policy, one winner, the same `/why`).

A customer sees only their own orders: someone else's order is answered as
if it did not exist. A customer may cancel until pickup; after it, only a
coordinator can.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from coopbot.chat import Button
from coopbot.config import Config
from coopbot.errors import Conflict, NotFound, UsageError
from coopbot.i18n import t
from coopbot.models import Job, Member
from coopbot.outbox import queue_to_coordinators
from coopbot.scheduler import SweepContext, sweep
from coopbot.services.dispatch import price_rules
from coopbot.services.dispatch.events import JOB, lock_job, record_event, rowcount
from coopbot.services.dispatch.jobs import cancel as cancel_job
from coopbot.services.dispatch.offers import offer_step
from coopbot.services.dispatch.order_notices import hash_delivery_code, needs_code, tell_customer
from coopbot.services.dispatch.parsing import ARROW, JobSpec, job_code, parse_job
from coopbot.services.dispatch.webhooks import post_to_shop
from coopbot.services.polls import settings
from coopbot.services.text import typed
from coopbot.states import JobStatus
from coopbot.storage.small_writes import insert_loaded, supported

ORDERS_SHOWN = 15
#: Until pickup a customer may change their mind; after it the parcel is on its way.
CANCELLABLE = (JobStatus.QUOTED, JobStatus.OPEN, JobStatus.OFFERED, JobStatus.ASSIGNED)
LAPSE_BATCH = 200
#: The setting that says how a job is offered (`offers.offer_policy` reads it too).
OFFER_POLICY = "offer_policy"
#: What a quote reads of the settings, in one query: the price rules and the offer policy.
QUOTE_READS = (*price_rules.KEYS, OFFER_POLICY)
#: The confirmation's conditional UPDATE, built once; what it sets is the parameters given
#: besides `job_id` (the state, the time, the delivery code's hash when one is asked).
CONFIRM = update(JOB).where(JOB.c.id == bindparam("job_id"), JOB.c.status == JobStatus.QUOTED)


def parse_order(text: str, customer: Member, now: datetime, config: Config) -> JobSpec:
    """`PICKUP -> DROPOFF [by …] [note …]`, or `DROPOFF …` from the customer's own address."""
    line = text.strip()
    if not ARROW.search(line):
        if not customer.address:
            raise UsageError("orders.no_address")
        line = f"{customer.address} -> {line}"
    try:
        spec = parse_job(line, now, config.coop.tz)
    except UsageError as err:
        if err.key == "dispatch.bad_job":
            raise UsageError("orders.bad_order") from None
        raise
    if spec.price_cents is not None:
        raise UsageError("orders.no_price_option")
    return spec


def quote(session: Session, config: Config, customer: Member, spec: JobSpec, now: datetime,
          external_ref: str | None = None) -> Job:  # fmt: skip
    """Price an order by the rules in force; nothing is dispatched until it is confirmed.

    The price rules and the offer policy (which the job keeps) are read in one query.
    """
    read = settings.InForce(config, settings.voted(session, now, QUOTE_READS))
    in_force = price_rules.rules_of(read)
    priced = in_force.rules.quote(
        spec.pickup, spec.dropoff, now=now, deadline=spec.deadline, note=spec.note, timezone=config.coop.timezone
    )
    values = {
        "pickup": spec.pickup, "dropoff": spec.dropoff, "deadline": spec.deadline, "price_cents": priced.total,
        "note": spec.note, "status": JobStatus.QUOTED, "assignee_id": None, "created_by": customer.id,
        "customer_id": customer.id, "created_at": now, "updated_at": now, "policy": read.value(OFFER_POLICY),
        "round": 0, "quote": price_rules.record_of(priced, in_force),
        "quote_expires_at": now + timedelta(minutes=config.orders.quote_valid_minutes), "proof_code_hash": None,
        "proof_tries": 0, "proof_photo": None, "external_ref": external_ref,
    }  # fmt: skip
    job = _inserted(session, values)
    record_event(session, job, now, "quoted", actor=customer, price=priced.total)
    return job


def _inserted(session: Session, values: dict[str, Any]) -> Job:
    """The quoted job, written at once and held by the session as if read back.

    Reason: the ORM's flush of the new job was 8% of an order's create and
    confirm in the services (cProfile of 300 orders as `bench/web.py` sends
    them); written on the driver's cursor (`insert_loaded`), the row is the
    same, and so is the object every later step changes.
    """
    if not supported(session):
        job = Job(**values)
        session.add(job)
        session.flush()
        return job
    session.flush()
    return insert_loaded(session, Job, values)


def quote_buttons(lang: str, job: Job) -> tuple[Button, ...]:
    code = job_code(job.id)
    return (
        Button(t(lang, "orders.button_confirm"), f"/confirm {code}", "✅"),
        Button(t(lang, "orders.button_cancel"), f"/cancel {code}", "❌"),
    )


def own_order(session: Session, customer: Member, job_id: int, *, lock: bool = False) -> Job:
    """The customer's own order; anyone else's is answered as if it did not exist."""
    job = lock_job(session, job_id) if lock else session.get(Job, job_id)
    if job is None or job.customer_id != customer.id:
        raise NotFound("orders.no_such_order", job=job_code(job_id))
    return job


def confirm(session: Session, config: Config, customer: Member, job_id: int, now: datetime) -> tuple[Job, str | None]:
    """Dispatch a quoted order; returns the code the recipient will give the courier, when one is asked."""
    job = own_order(session, customer, job_id, lock=True)
    code = job_code(job.id)
    if job.status == JobStatus.QUOTED and job.quote_expires_at is not None and job.quote_expires_at <= now:
        _lapse(session, config, job, now)
        raise Conflict("orders.quote_lapsed", job=code)
    if job.status == JobStatus.LAPSED:
        raise Conflict("orders.quote_lapsed", job=code)
    if job.status != JobStatus.QUOTED:
        raise Conflict("orders.already_confirmed", job=code)
    delivery_code = f"{secrets.randbelow(10_000):04d}" if needs_code(config) else None
    values: dict[str, Any] = {"status": JobStatus.OPEN, "updated_at": now}
    if delivery_code is not None:
        values["proof_code_hash"] = hash_delivery_code(job.id, delivery_code)
    if rowcount(session, CONFIRM, {**values, "job_id": job.id}) != 1:
        raise Conflict("orders.already_confirmed", job=code)
    _written(job, values)
    post_to_shop(session, config, job, record_event(session, job, now, "confirmed", actor=customer), now)
    outcome = offer_step(session, config, job, now, quiet=True)
    key = "orders.note_ordered_waiting" if outcome.kind == "waiting" else "orders.note_ordered"
    queue_to_coordinators(session, config, f"job:{job.id}:ordered", key, now, customer=customer.name, job=code)
    return job, delivery_code


def _written(job: Job, values: dict[str, Any]) -> None:
    """The job as the conditional UPDATE left it, without reading it back.

    Reason: `session.refresh` read the whole row again, a query in every
    confirm: 3% of an order's create and confirm (cProfile of 300 orders as
    `bench/web.py` sends them, 7% of the confirm); the job is locked
    (`lock_job`) and the UPDATE wrote exactly `values`, so the row now holds
    them. They are set as the committed state, so the ORM has nothing to flush.
    """
    for name, value in values.items():
        set_committed_value(job, name, value)


def cancel(session: Session, config: Config, customer: Member, job_id: int, reason: str, now: datetime) -> Job:
    """Cancelled by the customer, until pickup; a quote simply goes, a job is cancelled as a coordinator would."""
    job = own_order(session, customer, job_id, lock=True)
    if job.status == JobStatus.PICKED_UP:
        raise Conflict("orders.cancel_after_pickup", job=job_code(job.id))
    if job.status not in CANCELLABLE:
        raise Conflict("orders.not_cancellable", job=job_code(job.id), status=job.status)
    if job.status == JobStatus.QUOTED:
        job.status, job.updated_at = JobStatus.CANCELLED, now
        event = record_event(session, job, now, "cancelled", actor=customer, reason=typed(reason, 300))
        post_to_shop(session, config, job, event, now)
        return job
    return cancel_job(session, config, customer, job.id, reason, now)


def set_price(session: Session, config: Config, actor: Member, job_id: int, cents: int, reason: str,
              now: datetime) -> tuple[Job, int | None]:  # fmt: skip
    """A coordinator's price, with who and why, shown in `/why` and told to the customer.

    Refused once the job is delivered: its price is then income of the period.
    """
    reason = typed(reason, 300)
    if not reason:
        raise UsageError("orders.price_reason_missing", job=job_code(job_id))
    job = lock_job(session, job_id)
    if job.status in (JobStatus.DELIVERED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.LAPSED):
        raise Conflict("orders.price_too_late", job=job_code(job.id), status=job.status)
    before = job.price_cents
    job.price_cents, job.updated_at = cents, now
    event = record_event(session, job, now, "price_set", actor=actor, price=cents, before=before, reason=reason)
    tell_customer(session, config, job, event, "price", now, price=cents, reason=reason)
    return job, before


def orders_of(session: Session, customer: Member, limit: int = ORDERS_SHOWN) -> list[Job]:
    """Newest first."""
    query = select(Job).where(Job.customer_id == customer.id).order_by(Job.id.desc()).limit(limit)
    return list(session.scalars(query))


def _lapse(session: Session, config: Config, job: Job, now: datetime) -> None:
    if rowcount(session, update(JOB).where(JOB.c.id == job.id, JOB.c.status == JobStatus.QUOTED)
                .values(status=JobStatus.LAPSED, updated_at=now)) == 1:  # fmt: skip
        session.refresh(job)
        post_to_shop(session, config, job, record_event(session, job, now, "lapsed"), now)


@sweep("orders.lapse")
def lapse_quotes(ctx: SweepContext) -> None:
    """Quotes not confirmed in time lapse: a later confirm would use a price no longer in force."""
    with ctx.sessions() as session:
        due = list(session.scalars(
            select(Job.id).where(Job.status == JobStatus.QUOTED, Job.quote_expires_at <= ctx.now).limit(LAPSE_BATCH)
        ))  # fmt: skip
    ctx.each(due, job_code, lambda session, job_id: _lapse(session, ctx.config, session.get_one(Job, job_id), ctx.now))

