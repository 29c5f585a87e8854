"""What a period holds: each member's approved work, and the period's money.

Read in two shapes. The close needs three sums per member for everyone (points
for the dividend, shift hours and deliveries for base pay) in one pass over the
period's contributions, joined to the members, and nothing else: that pass is
most of its time. A
member's own view (`/contrib`, their share message) wants the detail by kind,
the corrections and what is still pending, for one member at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from coopbot.models import Contribution, LedgerEntry, Member
from coopbot.services.members.accounts import IS_MEMBER
from coopbot.states import ContributionStatus


@dataclass
class Tally:
    """One member's approved work in a period."""

    points: int = 0
    #: Part of `points` that corrects entries of earlier periods.
    adjustments: int = 0
    hours: int = 0
    deliveries: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Work(NamedTuple):
    """What the close reads of one member: points, and what base pay is paid on."""

    points: int
    hours: int
    deliveries: int


def tallies(session: Session, period_id: int, member_id: int | None = None) -> dict[int, Tally]:
    """Approved points per member and kind, with corrections, hours and deliveries."""
    corrections = func.sum(case((Contribution.corrects_id.is_not(None), Contribution.points_milli), else_=0))
    query = (
        select(
            Contribution.member_id,
            Contribution.kind,
            func.sum(Contribution.points_milli),
            func.sum(Contribution.quantity_milli),
            corrections,
        )
        .where(Contribution.period_id == period_id, Contribution.status == ContributionStatus.APPROVED)
        .group_by(Contribution.member_id, Contribution.kind)
    )
    if member_id is not None:
        query = query.where(Contribution.member_id == member_id)
    result: dict[int, Tally] = {}
    for member, kind, points, quantity, corrected in session.execute(query):
        tally = result.setdefault(member, Tally())
        tally.points += int(points)
        tally.adjustments += int(corrected)
        tally.by_kind[kind] = int(points)
        if kind == "shift":
            tally.hours += int(quantity)
        elif kind == "delivery":
            tally.deliveries += int(quantity)
    return result


def tally_of(session: Session, period_id: int, member_id: int) -> Tally:
    return tallies(session, period_id, member_id).get(member_id) or Tally()


class Worker(NamedTuple):
    """One member as the close sees them."""

    member_id: int
    name: str
    active: bool
    work: Work


def close_work(session: Session, period_id: int) -> list[Worker]:
    """Everyone the close concerns, by member id: every active member, and anyone
    who worked in the period (a member who left keeps what they earned), with their
    approved points, shift hours and deliveries, read in one pass. Never a customer:
    they pay the co-op, they get no share of its surplus."""

    def of_kind(kind: str) -> Any:
        return func.sum(case((Contribution.kind == kind, Contribution.quantity_milli), else_=0))

    done = (
        select(
            Contribution.member_id,
            func.sum(Contribution.points_milli).label("points"),
            of_kind("shift").label("hours"),
            of_kind("delivery").label("deliveries"),
        )
        .where(Contribution.period_id == period_id, Contribution.status == ContributionStatus.APPROVED)
        .group_by(Contribution.member_id)
        .subquery()
    )
    query = (
        select(Member.id, Member.name, Member.active, done.c.points, done.c.hours, done.c.deliveries)
        .outerjoin(done, done.c.member_id == Member.id)
        .where(or_(Member.active.is_(True), done.c.member_id.is_not(None)), IS_MEMBER)
        .order_by(Member.id)
    )
    return [
        Worker(member_id, name, active, Work(int(points or 0), int(hours or 0), int(deliveries or 0)))
        for member_id, name, active, points, hours, deliveries in session.execute(query)
    ]


def pending_counts(session: Session, period_id: int, member_id: int | None = None) -> dict[int, int]:
    query = (
        select(Contribution.member_id, func.count())
        .where(Contribution.period_id == period_id, Contribution.status == ContributionStatus.PENDING)
        .group_by(Contribution.member_id)
    )
    if member_id is not None:
        query = query.where(Contribution.member_id == member_id)
    return {member: int(count) for member, count in session.execute(query)}


def pending_points(session: Session, period_id: int) -> int:
    """Points still waiting for a coordinator in a period: shown beside the approved ones,
    counted in no share until approved."""
    pending = select(func.coalesce(func.sum(Contribution.points_milli), 0)).where(
        Contribution.period_id == period_id, Contribution.status == ContributionStatus.PENDING
    )
    return int(session.scalar(pending) or 0)


def not_approved(session: Session, period_id: int, member_id: int) -> list[Contribution]:
    """A member's entries of a period that count for nothing yet (pending) or never will
    (rejected), oldest first: what `/contrib` lists under the points."""
    return list(
        session.scalars(
            select(Contribution)
            .where(
                Contribution.period_id == period_id,
                Contribution.member_id == member_id,
                Contribution.status != ContributionStatus.APPROVED,
            )
            .order_by(Contribution.id)
        )
    )


def money(session: Session, period_id: int) -> dict[str, int]:
    """Cents per ledger kind: income, expense."""
    rows = session.execute(
        select(LedgerEntry.kind, func.sum(LedgerEntry.amount_cents))
        .where(LedgerEntry.period_id == period_id)
        .group_by(LedgerEntry.kind)
    )
    return {kind: int(total) for kind, total in rows}
