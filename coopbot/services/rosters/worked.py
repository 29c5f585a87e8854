"""Hours worked on a slot, into the ledger as shift hours: what rosters pay into the co-op's shares.

How a seat's worked time is measured. The database keeps when a rider became available
(`available_since`) but not when they went away, so the roster clock, which looks every few
seconds, notes it on the seat:

- work begins at the slot's start (the bot's own delay in starting it is not the rider's);
  for a rider asked where they were (`attendance`), when they were next seen riding, and a
  rider asked who never came worked nothing;
- work ends at the slot's end, or when the clock first saw the rider not available during
  the slot (`ended_at`, within seconds of their `/away`, or of the idle question setting them
  away). A rider who comes back within the slot takes up their seat again: the clock forgets
  that end, so a pause in the middle of a slot counts as worked (one start and one end are
  kept per seat; a coordinator who wants a long pause left out corrects the entry);
- time outside the slot never counts here: riding on after the end is a `/shift`'s to count.

At the slot's end, once per seat (`worked_minutes`, written by a conditional UPDATE), the
minutes become a shift contribution of the rider (`kind` shift, in hours, at the period's
shift weight, like `/shift end`), written once under `slot:<seat id>` (`ledger.add_once`).
It is approved by the slot itself when the worked time is within `slot_tolerance_minutes`
(a governed setting, default 15) of the planned time; otherwise it waits for a coordinator's
`/approve` or `/reject`, as logged work does, and the coordinators are told.

No double counting with `/shift`: when the rider has a shift of their own overlapping the slot
(open or closed), the shift wins and the slot writes nothing to the ledger; the seat still
keeps its worked minutes (`/contrib` shows them); and a shift cannot be started back inside
a slot already counted (`money.shifts.start_shift`). A rider who worked nothing gets no entry
and `worked_minutes` 0. A cancelled slot counts nothing. A bot down for more than a day after
a slot leaves that slot's seats unmeasured (their hours are corrected by hand), so that old
seats are never paid into a later period by surprise.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.models import Contribution, Member, Shift
from coopbot.models_rosters import Slot, SlotSignup
from coopbot.money import format_milli
from coopbot.outbox import queue_to_coordinators
from coopbot.services.money.ledger import contribution_code
from coopbot.services.money.shares import MILLI, round_div
from coopbot.services.money.shifts import hours_contribution
from coopbot.services.polls import settings
from coopbot.services.rosters.attendance import running, seats_of_riders
from coopbot.services.rosters.slots import describe, parse_hours
from coopbot.states import ContributionStatus

TOLERANCE_KEY = "slot_tolerance_minutes"
#: Seats of slots that ended longer ago than this are left as they are (see the module).
FINISH_WINDOW = timedelta(days=1)

settings.register_setting(TOLERANCE_KEY, parse_hours(TOLERANCE_KEY, 0, 1440), default="15")


def minutes_between(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds() // 60))


def planned_minutes(slot: Slot) -> int:
    return minutes_between(slot.starts_at, slot.ends_at)


# --- during the slot: when a rider stops, and comes back ------------------------------


def due_stops(session: Session, now: datetime) -> list[int]:
    """Seats on a running slot whose rider is not available, their stop not noted yet."""
    return list(session.scalars(
        seats_of_riders().where(*running(now), SlotSignup.started_at.is_not(None), SlotSignup.ended_at.is_(None),
                                or_(Member.available.is_(False), Member.active.is_(False)))
        .order_by(Slot.starts_at, SlotSignup.id)
    ))  # fmt: skip


def note_stop(session: Session, seat_id: int, now: datetime) -> None:
    session.execute(update(SlotSignup).where(SlotSignup.id == seat_id, SlotSignup.ended_at.is_(None))
                    .values(ended_at=now))  # fmt: skip


def due_returns(session: Session, now: datetime) -> list[int]:
    """Seats on a running slot whose rider stopped and is available again since."""
    return list(session.scalars(
        seats_of_riders().where(*running(now), SlotSignup.ended_at.is_not(None), Member.active.is_(True),
                                Member.available.is_(True), Member.available_since >= SlotSignup.ended_at)
        .order_by(Slot.starts_at, SlotSignup.id)
    ))  # fmt: skip


def note_return(session: Session, seat_id: int) -> None:
    """The rider took up their seat again: the end noted is forgotten (their pause counts)."""
    seat = session.get_one(SlotSignup, seat_id)
    member = session.get_one(Member, seat.member_id)
    stopped = seat.ended_at
    if stopped is None or not member.available or member.available_since is None or member.available_since < stopped:
        return
    session.execute(update(SlotSignup).where(SlotSignup.id == seat_id, SlotSignup.ended_at == stopped)
                    .values(ended_at=None))  # fmt: skip


# --- at the end: the minutes, and the ledger ------------------------------------------


def worked_minutes(seat: SlotSignup, slot: Slot) -> int:
    """The seat's minutes by the rule in the module's docstring."""
    if seat.started_at is None:
        return 0
    asked = seat.noshow_asked_at
    if asked is not None and seat.started_at <= asked:
        return 0
    begin = slot.starts_at if asked is None else max(seat.started_at, slot.starts_at)
    end = min(seat.ended_at or slot.ends_at, slot.ends_at)
    return minutes_between(begin, end)


def due_finishes(session: Session, now: datetime) -> list[int]:
    """Seats of slots ended within the day, not measured yet."""
    return list(session.scalars(
        select(SlotSignup.id).join(Slot, Slot.id == SlotSignup.slot_id)
        .where(Slot.cancelled_at.is_(None), Slot.ends_at <= now, Slot.ends_at > now - FINISH_WINDOW,
               SlotSignup.worked_minutes.is_(None))
        .order_by(Slot.ends_at, SlotSignup.id)
    ))  # fmt: skip


def shift_overlaps(session: Session, member_id: int, slot: Slot) -> bool:
    """The rider logged a `/shift` of their own over some of the slot: it counts, the slot does not."""
    return session.scalars(
        select(Shift.id).where(Shift.member_id == member_id, Shift.started_at < slot.ends_at,
                               or_(Shift.ended_at.is_(None), Shift.ended_at > slot.starts_at)).limit(1)
    ).first() is not None  # fmt: skip


def tolerance(session: Session, config: Config, now: datetime) -> int:
    return int(settings.current(session, config, TOLERANCE_KEY, now))


def finish(session: Session, config: Config, seat_id: int, now: datetime) -> Contribution | None:
    """Measure a seat once and write its hours to the ledger; the entry, if one was written."""
    seat = session.get_one(SlotSignup, seat_id)
    slot = session.get_one(Slot, seat.slot_id)
    minutes = worked_minutes(seat, slot)
    ended = min(seat.ended_at or slot.ends_at, slot.ends_at)
    won = session.execute(
        update(SlotSignup).where(SlotSignup.id == seat_id, SlotSignup.worked_minutes.is_(None))
        .values(worked_minutes=minutes, ended_at=ended)
    )  # fmt: skip
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return None
    if minutes == 0 or shift_overlaps(session, seat.member_id, slot):
        return None
    contribution = slot_contribution(session, config, seat, slot, minutes, now)
    seat.contribution_id = contribution.id
    if contribution.status == ContributionStatus.PENDING:
        ask_coordinators(session, config, contribution, slot)
    return contribution


def slot_contribution(
    session: Session, config: Config, seat: SlotSignup, slot: Slot, minutes: int, now: datetime
) -> Contribution:
    """The slot's hours as `/shift end` writes a shift's: approved unless far from the plan."""
    close = abs(minutes - planned_minutes(slot)) <= tolerance(session, config, now)
    return hours_contribution(session, config, member_id=seat.member_id, minutes=minutes, ref=f"slot:{seat.id}",
                              source="slot", note=f"S-{slot.id}", now=now,
                              status=ContributionStatus.APPROVED if close else ContributionStatus.PENDING)  # fmt: skip


def ask_coordinators(session: Session, config: Config, contribution: Contribution, slot: Slot) -> None:
    """Worked far from planned: the coordinators decide with the usual `/approve` and `/reject`."""
    lang = config.coop.default_language
    member = session.get_one(Member, contribution.member_id)
    ref = contribution_code(contribution)
    queue_to_coordinators(
        session, config, f"contribution:{contribution.id}:slot", "attendance.hours_to_approve", contribution.created_at,
        name=member.name, slot=describe(slot, lang, config.coop.tz), ref=ref,
        worked=format_milli(contribution.quantity_milli, lang, places=2),
        planned=format_milli(round_div(planned_minutes(slot) * MILLI, 60), lang, places=2),
    )  # fmt: skip


# --- what /contrib shows ---------------------------------------------------------------


class SlotHours(NamedTuple):
    """A member's seats on the slots of a stretch of time: how many, planned and worked minutes."""

    slots: int
    planned: int
    worked: int


def slot_hours(session: Session, member_id: int, starts: datetime, ends: datetime) -> SlotHours:
    """Seats on slots starting in [starts, ends), cancelled ones left out, slots to come included."""
    rows = session.execute(
        select(Slot.starts_at, Slot.ends_at, SlotSignup.worked_minutes).join(Slot, Slot.id == SlotSignup.slot_id)
        .where(SlotSignup.member_id == member_id, Slot.cancelled_at.is_(None), Slot.starts_at >= starts,
               Slot.starts_at < ends)
    ).all()  # fmt: skip
    planned = sum(minutes_between(start, end) for start, end, _ in rows)
    return SlotHours(len(rows), planned, sum(worked or 0 for _, _, worked in rows))
