"""What the shops' API asks of orders beyond the chat: an order given field by field,
the shop's own reference, and a shop's orders by state.

In chat an order is one typed line, read by `orders.parse_order`. A shop's
software sends fields instead, and a field must never be re-read as a line
(a drop-off "12 rue by the Canal" would lose its end to the `by` keyword).
So the fields become the very `JobSpec` the typed line becomes, with the same
rules: the customer's own address when no pickup is given (refused the same
way without one), addresses cleaned and cut like typed ones, a deadline read
like the chat's (`12:30`, `2026-12-01 12:30`) or as ISO 8601 with an offset,
never in the past. The quote, the confirmation and the cancellation are then
`orders.quote`, `orders.confirm` and `orders.cancel`, unchanged: the API
prices and dispatches exactly as the chat does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.errors import UsageError
from coopbot.models import Job, Member
from coopbot.services.dispatch import orders
from coopbot.services.dispatch.parsing import MAX_FIELD, JobSpec, parse_deadline
from coopbot.services.text import typed
from coopbot.states import JobStatus

MAX_REF = 100
MAX_LISTED = 200
#: ISO 8601 with a date and a time joined by "T": read as an exact moment, which needs its offset.
ISO_MOMENT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T")


def spec_of(customer: Member, config: Config, now: datetime, *, dropoff: str, pickup: str | None = None,
            deadline: str | None = None, note: str | None = None) -> JobSpec:  # fmt: skip
    """The order the fields describe, by the rules of a typed `/order` line."""
    if pickup is None or not pickup.strip():
        if not customer.address:
            raise UsageError("api.no_address")
        pickup = customer.address
    cleaned_pickup, cleaned_dropoff = typed(pickup, MAX_FIELD), typed(dropoff, MAX_FIELD)
    if not cleaned_dropoff:
        raise UsageError("api.field_missing", field="dropoff")
    if not cleaned_pickup:
        raise UsageError("api.field_missing", field="pickup")
    return JobSpec(pickup=cleaned_pickup, dropoff=cleaned_dropoff, note=typed(note or "", MAX_FIELD),
                   deadline=read_deadline(deadline, now, config) if deadline else None)  # fmt: skip


def read_deadline(text: str, now: datetime, config: Config) -> datetime:
    """`2026-12-01T12:30:00+01:00` (an offset is required: a shop's server and the co-op may
    not share a time zone), or what the chat reads: `12:30`, `2026-12-01 12:30`."""
    text = text.strip()
    if not ISO_MOMENT.match(text):
        return parse_deadline(text, now, config.coop.tz)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError("dispatch.bad_deadline", deadline=text[:30]) from None
    if moment.tzinfo is None:
        raise UsageError("api.deadline_offset", deadline=text[:30])
    if moment <= now:
        raise UsageError("dispatch.deadline_past", deadline=text[:30])
    return moment


def order(session: Session, config: Config, customer: Member, spec: JobSpec, now: datetime,
          external_ref: str | None = None) -> Job:  # fmt: skip
    """A quote, as `/order` makes it, carrying the shop's own reference."""
    ref = typed(external_ref, MAX_REF) or None if external_ref else None
    return orders.quote(session, config, customer, spec, now, ref)


def orders_in(session: Session, customer: Member, states: Sequence[JobStatus], limit: int,
              before: int | None = None) -> list[Job]:  # fmt: skip
    """The customer's own orders, newest first, in any of `states` (all when empty), older than
    the order numbered `before` when given: `orders.orders_of` with a filter and a cursor."""
    query = select(Job).where(Job.customer_id == customer.id)
    if states:
        query = query.where(Job.status.in_(states))
    if before is not None:
        query = query.where(Job.id < before)
    return list(session.scalars(query.order_by(Job.id.desc()).limit(min(limit, MAX_LISTED))))

