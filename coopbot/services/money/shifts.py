"""Shifts: a rider clocks in and out, and the hours become points.

A shift's points are written once, under `shift:<id>` (see `ledger.add_once`),
in the period current when it is closed. A shift cannot start within a slot
whose hours the ledger already holds (`rosters.worked`): the same time would
count twice. A shift left open past
`max_shift_hours` is closed at the limit by a sweep, its points pending, and
the rider is asked to give its real end.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from coopbot.chat import Outgoing
from coopbot.config import Config
from coopbot.errors import Conflict, UsageError
from coopbot.i18n import t
from coopbot.models import Contribution, Member, Shift
from coopbot.models_rosters import Slot, SlotSignup
from coopbot.outbox import queue_to_member
from coopbot.scheduler import SweepContext, sweep
from coopbot.services.money.ledger import (
    add_once,
    contribution_code,
    current_period,
    period_of,
    weight_of,
    with_source_ref,
)
from coopbot.services.money.periods import rowcount
from coopbot.services.money.shares import MILLI, points_for, round_div
from coopbot.states import ContributionStatus, PeriodStatus


def open_shift(session: Session, member: Member) -> Shift | None:
    return session.scalars(
        select(Shift).where(Shift.member_id == member.id, Shift.ended_at.is_(None)).order_by(Shift.id.desc())
    ).first()


def max_shift(config: Config) -> timedelta:
    return timedelta(hours=config.periods.max_shift_hours)


def start_shift(session: Session, config: Config, member: Member, now: datetime, at: datetime | None = None) -> Shift:
    """Clock in now, or at a time a little earlier ("I forgot to start it")."""
    running = open_shift(session, member)
    if running is not None:
        raise Conflict("ledger.shift_already_open", since=local_hm(running.started_at, config))
    started = at or now
    if now - started > max_shift(config):
        raise UsageError("ledger.shift_start_too_early", hours=config.periods.max_shift_hours)
    counted = slot_counted_after(session, member, started)
    if counted is not None:
        raise Conflict("ledger.shift_start_in_slot", slot=f"S-{counted.id}", until=local_hm(counted.ends_at, config))
    shift = Shift(member_id=member.id, started_at=started)
    session.add(shift)
    session.flush()
    return shift


def slot_counted_after(session: Session, member: Member, started: datetime) -> Slot | None:
    """A slot of the member's whose hours the ledger already holds (`rosters.worked`) and that
    ends after `started`: a shift started then would count the same time twice."""
    return session.scalars(
        select(Slot).join(SlotSignup, SlotSignup.slot_id == Slot.id)
        .where(SlotSignup.member_id == member.id, SlotSignup.contribution_id.is_not(None), Slot.ends_at > started)
        .order_by(Slot.ends_at.desc()).limit(1)
    ).first()  # fmt: skip


def end_shift(
    session: Session, config: Config, member: Member, now: datetime, at: datetime | None = None
) -> tuple[Shift, Contribution | None]:
    """Clock out; or, with a time, correct the shift the bot closed at the limit."""
    running = open_shift(session, member)
    if running is None:
        if at is not None:
            return _correct_auto_closed(session, config, member, at)
        raise Conflict("ledger.no_open_shift")
    ended = at or now
    if ended <= running.started_at:
        raise UsageError("ledger.shift_end_before_start", since=local_hm(running.started_at, config))
    if ended - running.started_at > max_shift(config):
        raise UsageError("ledger.shift_too_long", hours=config.periods.max_shift_hours)
    closed = rowcount(
        session.execute(
            update(Shift)
            .where(Shift.id == running.id, Shift.ended_at.is_(None))
            .values(ended_at=ended)
            .execution_options(synchronize_session="fetch")
        )
    )
    if closed != 1:
        raise Conflict("ledger.no_open_shift")
    session.refresh(running)
    return running, _shift_contribution(session, config, running, now, status=ContributionStatus.APPROVED)


def shift_minutes(shift: Shift) -> int:
    if shift.ended_at is None:
        return 0
    return int((shift.ended_at - shift.started_at).total_seconds() // 60)


def _shift_contribution(
    session: Session, config: Config, shift: Shift, now: datetime, status: ContributionStatus
) -> Contribution | None:
    minutes = shift_minutes(shift)
    if minutes == 0:
        return None
    return hours_contribution(session, config, member_id=shift.member_id, minutes=minutes, ref=f"shift:{shift.id}",
                              source="shift", note="", status=status, now=now)  # fmt: skip


def hours_contribution(
    session: Session, config: Config, *, member_id: int, minutes: int, ref: str, source: str, note: str,
    status: ContributionStatus, now: datetime,
) -> Contribution:
    """Hours of riding as the ledger counts them, at the period's shift weight, written once under
    `ref`: a shift's, or a planned slot's (`rosters.worked`), so both count alike."""
    period = current_period(session, config, now)
    quantity = round_div(minutes * MILLI, 60)
    return add_once(
        session,
        Contribution,
        ref,
        lambda: Contribution(
            member_id=member_id,
            period_id=period.id,
            kind="shift",
            quantity_milli=quantity,
            points_milli=points_for(quantity, weight_of(period, "shift")),
            status=status,
            source=source,
            unit="hour",
            source_ref=ref,
            note=note,
            created_at=now,
            decided_at=now if status == ContributionStatus.APPROVED else None,
        ),
    )


def _correct_auto_closed(
    session: Session, config: Config, member: Member, at: datetime
) -> tuple[Shift, Contribution | None]:
    shift = session.scalars(
        select(Shift).where(Shift.member_id == member.id, Shift.auto_closed.is_(True)).order_by(Shift.id.desc())
    ).first()
    contribution = with_source_ref(session, Contribution, f"shift:{shift.id}") if shift else None
    if shift is None or contribution is None or contribution.status != ContributionStatus.PENDING:
        raise Conflict("ledger.no_open_shift")
    period = period_of(session, contribution)
    if period.status != PeriodStatus.OPEN:
        raise Conflict("ledger.decide_closed_period", ref=contribution_code(contribution), period=period.label)
    if at <= shift.started_at or at - shift.started_at > max_shift(config):
        since = local_hm(shift.started_at, config)
        raise UsageError("ledger.shift_fix_range", since=since, hours=config.periods.max_shift_hours)
    shift.ended_at = at
    minutes = shift_minutes(shift)
    contribution.quantity_milli = round_div(minutes * MILLI, 60)
    contribution.points_milli = points_for(contribution.quantity_milli, weight_of(period, "shift"))
    contribution.status = ContributionStatus.APPROVED
    contribution.decided_at = at
    contribution.note = "corrected by the rider"
    session.flush()
    return shift, contribution


def overlong_shifts(session: Session, config: Config, now: datetime) -> list[tuple[int, int]]:
    """(shift id, member id) of the shifts left open past the limit."""
    limit = now - max_shift(config)
    query = select(Shift.id, Shift.member_id).where(Shift.ended_at.is_(None), Shift.started_at <= limit)
    return [(shift_id, member_id) for shift_id, member_id in session.execute(query.order_by(Shift.id))]


def close_overlong_shifts(session: Session, config: Config, now: datetime) -> list[Shift]:
    """Shifts left open past the limit: closed at the limit, pending, rider asked to fix."""
    due = overlong_shifts(session, config, now)
    closed = (close_overlong_shift(session, config, shift_id, now) for shift_id, _ in due)
    return [shift for shift in closed if shift is not None]


def close_overlong_shift(session: Session, config: Config, shift_id: int, now: datetime) -> Shift | None:
    """One shift, closed at the limit once (a conditional UPDATE); None if someone else did."""
    shift = session.get_one(Shift, shift_id)
    ended = shift.started_at + max_shift(config)
    won = rowcount(
        session.execute(
            update(Shift)
            .where(Shift.id == shift.id, Shift.ended_at.is_(None))
            .values(ended_at=ended, auto_closed=True)
            .execution_options(synchronize_session="fetch")
        )
    )
    if won != 1:
        return None
    session.refresh(shift)
    _shift_contribution(session, config, shift, now, status=ContributionStatus.PENDING)
    member = session.get_one(Member, shift.member_id)
    lang = member.language or config.coop.default_language
    text = t(
        lang,
        "ledger.shift_auto_closed",
        since=local_hm(shift.started_at, config),
        until=local_hm(ended, config),
        hours=config.periods.max_shift_hours,
    )
    queue_to_member(session, member, f"shift:{shift.id}:auto-closed", Outgoing(text), now)
    return shift


@sweep("shift-limit")
def _shift_limit_sweep(ctx: SweepContext) -> None:
    """Shift by shift, each in its own transaction: one that cannot be closed never keeps the others open."""
    with ctx.sessions() as session:
        due = overlong_shifts(session, ctx.config, ctx.now)
    ctx.each(
        due,
        lambda item: f"#{item[1]}",
        lambda session, item: close_overlong_shift(session, ctx.config, item[0], ctx.now),
    )


def local_hm(moment: datetime, config: Config) -> str:
    return moment.astimezone(config.coop.tz).strftime("%H:%M")

