"""Closing a period: what each member's share is, written once with every message it owes.

The close reads the period's work (`work.close_work`) and money, settles the
surplus by the terms frozen into the period (`shares.settle`), and writes one
allocation per member and the messages (`notices.queue_close`) in the same
transaction as the flip from `open` to `closed`, so a crash loses the whole
close or keeps all of it. A period is closed by the `period-close` sweep once
it has ended (also after downtime), or by `coopbot ledger close`; `preview`
is the dry run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session, sessionmaker

from coopbot.config import Config
from coopbot.db import transaction
from coopbot.models import Allocation, Period
from coopbot.scheduler import SweepContext, sweep
from coopbot.services.audit import record
from coopbot.services.money import notices, shares
from coopbot.services.money.periods import current_period, rowcount, terms_of
from coopbot.services.money.shares import Outcome, Terms
from coopbot.services.money.work import close_work, money
from coopbot.states import PeriodStatus
from coopbot.storage import bulk_insert, without_cycle_collection

ALLOCATION = cast(Table, Allocation.__table__)


class Share(NamedTuple):
    """What the close gives one member (a tuple: the close makes one per member)."""

    member_id: int
    name: str
    active: bool
    points: int
    base_pay: int
    dividend: int


@dataclass(frozen=True)
class Plan:
    """Everything a close decides, computed without writing (also the dry run)."""

    period: Period
    terms: Terms
    outcome: Outcome
    shares: list[Share]

    @property
    def sharing_members(self) -> int:
        return sum(1 for share in self.shares if share.dividend > 0)


def plan_close(session: Session, config: Config, period: Period) -> Plan:
    terms = terms_of(period)
    # Everyone who worked in the period shares in it, including a member who
    # left mid-period (issue 9: they keep what they earned; nobody messages them).
    people = close_work(session, period.id)
    base = [shares.base_pay(person.work.hours, person.work.deliveries, terms) for person in people]
    figures = money(session, period.id)
    outcome = shares.settle(
        figures.get("income", 0),
        figures.get("expense", 0),
        sum(base),
        {person.member_id: person.work.points for person in people},
        terms,
    )
    dividends = outcome.dividends
    plan_shares = [
        Share(member_id, name, active, work.points, pay, dividends[member_id])
        for (member_id, name, active, work), pay in zip(people, base, strict=True)
    ]
    return Plan(period, terms, outcome, plan_shares)


def close_period(sessions: sessionmaker[Session], config: Config, period_id: int, now: datetime) -> Plan | None:
    """Close one period, once: allocations and every message in one transaction.

    The conditional UPDATE is the lock: of two closers (two processes, or a
    retry after a crash) only the one that flips `open` to `closed` goes on;
    the other returns None and writes nothing.
    """
    with without_cycle_collection(), transaction(sessions) as session:
        won = rowcount(
            session.execute(
                update(Period)
                .where(Period.id == period_id, Period.status == PeriodStatus.OPEN)
                .values(status=PeriodStatus.CLOSED, closed_at=now)
            )
        )
        if won != 1:
            return None
        period = session.get_one(Period, period_id)
        session.refresh(period)
        plan = plan_close(session, config, period)
        _write(session, plan)
        notices.queue_close(session, config, plan, now)
        period.totals = {
            **plan.outcome.as_totals(),
            "members": len(plan.shares),
            "sharing_members": plan.sharing_members,
        }
        record(
            session,
            now,
            "period.closed",
            period=period.label,
            surplus_cents=plan.outcome.surplus,
            dividend_cents=plan.outcome.distributed,
        )
    return plan


def _write(session: Session, plan: Plan) -> None:
    """One allocation per member: their dividend and their base pay. The ledger's
    base pay lines are read from these (`coopbot.services.money.exports`), not stored twice."""
    period_id = plan.period.id
    allocations = [
        {
            "period_id": period_id,
            "member_id": share.member_id,
            "points_milli": share.points,
            "dividend_cents": share.dividend,
            "base_pay_cents": share.base_pay,
            "paid": False,
        }
        for share in plan.shares
    ]
    bulk_insert(session, ALLOCATION, allocations)


def due_periods(sessions: sessionmaker[Session], now: datetime) -> list[tuple[int, str]]:
    """(id, label) of every open period that has ended, oldest first."""
    with sessions() as session:
        query = select(Period.id, Period.label).where(Period.status == PeriodStatus.OPEN, Period.ends_at <= now)
        return [(period_id, label) for period_id, label in session.execute(query.order_by(Period.ends_at))]


def close_due(sessions: sessionmaker[Session], config: Config, now: datetime) -> list[Plan]:
    """Close every open period that has ended (a close missed while down runs now).

    For `coopbot ledger close`: a failure stops it, for the admin to see.
    """
    due = due_periods(sessions, now)
    closed = [plan for period_id, _ in due if (plan := close_period(sessions, config, period_id, now)) is not None]
    with transaction(sessions) as session:
        current_period(session, config, now)
    return closed


@sweep("period-close")
def _period_close_sweep(ctx: SweepContext) -> None:
    """As `close_due`, period by period: one whose close fails rests and is retried, and the
    current period still opens."""
    ctx.each_alone(
        due_periods(ctx.sessions, ctx.now),
        lambda item: item[1],
        lambda item: close_period(ctx.sessions, ctx.config, item[0], ctx.now),
    )
    with transaction(ctx.sessions) as session:
        current_period(session, ctx.config, ctx.now)


def preview(session: Session, config: Config, now: datetime) -> Plan:
    """The close of the due period, or of the current one as if it ended now; writes nothing."""
    due = session.scalars(
        select(Period).where(Period.status == PeriodStatus.OPEN, Period.ends_at <= now)
        .order_by(Period.ends_at).limit(1)
    ).first()
    return plan_close(session, config, due or current_period(session, config, now))
