"""No-shows: a rider not seen 15 minutes into their slot is asked where they are, and the
coordinators are told. Nothing else happens: no penalty, no mark, nothing in the ledger but
the hours the rider did ride (`worked`). The co-op decides by its own rules what a no-show means.

Why "seen" and not just "available": at the start the roster clock sets every rider
available (`reminders.start`), whether they are on their bike or still asleep. So the clock's
own doing is no sign the rider came. A rider has shown up when, since the slot began (give or
take the minute to which the bot notes when someone last wrote), they did something: wrote to
the bot or pressed a button (`/available`, `/away`, a reply to an offer), took a job, or have a
`/shift` running or covering the slot; or they were available already before the start, by
their own doing. So:

- a rider who goes `/away` during their slot, even in its first minutes, is not a no-show:
  they told the co-op, which is all the question would ask of them. They are not asked, the
  coordinators are not told, and their hours stop when they went away (`worked`);
- a rider seen nowhere 15 minutes in is asked privately, once (`noshow_asked_at`), with two
  buttons: *I'm riding* (`/available`) and *I can't come* (`/away`); and the coordinators
  are told in one line, once. A seat cannot be given away once its slot has begun
  (`slots.check_open`), so "I can't come" only stops offers;
- when the rider asked is next seen riding (available, and having written, taken a job or
  become available since the question), that moment becomes the start of their work in the
  slot (`started_at` moves to it) and the coordinators are told they are riding. A rider
  asked who never comes back worked nothing in the slot.

Fifteen minutes is fixed (issue 22), not a governed setting.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, exists, not_, or_, select, update
from sqlalchemy.orm import Session

from coopbot.chat import Button, Outgoing
from coopbot.config import Config
from coopbot.i18n import t
from coopbot.models import Member, Shift
from coopbot.models_rosters import Slot, SlotSignup
from coopbot.outbox import queue_to_coordinators, queue_to_member
from coopbot.services.members.accounts import language_of
from coopbot.services.rosters.slots import code, describe

#: How long into a slot a rider not seen is asked where they are.
NOSHOW_AFTER = timedelta(minutes=15)
#: The bot notes when a member last wrote to the minute (`coopbot.storage.visits.TOUCH_EVERY`): a message in
#: the minute before the start may be the one that counts.
SEEN_GRAIN = timedelta(minutes=1)


def seen_since_start(now: datetime) -> ColumnElement[bool]:
    """The rider of the joined seat showed a sign of life in their slot (see the module); to the
    minute, `seen_just_before` adds the minute before the start (SQL has no portable date sums)."""
    shift = exists().where(Shift.member_id == Member.id, Shift.started_at <= now,
                           or_(Shift.ended_at.is_(None), Shift.ended_at > Slot.starts_at))  # fmt: skip
    return or_(
        and_(Member.last_seen_at.is_not(None), Member.last_seen_at >= Slot.starts_at),
        and_(Member.last_job_at.is_not(None), Member.last_job_at >= Slot.starts_at),
        and_(Member.available.is_(True), Member.available_since.is_not(None), Member.available_since < Slot.starts_at),
        shift,
    )  # each NULL ruled out, so that NOT of it is never NULL


def seen_just_before(member: Member, slot: Slot) -> bool:
    since = slot.starts_at - SEEN_GRAIN
    return any(moment is not None and moment >= since for moment in (member.last_seen_at, member.last_job_at))


def running(now: datetime) -> list[ColumnElement[bool]]:
    return [Slot.cancelled_at.is_(None), Slot.starts_at <= now, Slot.ends_at > now]


def seats_of_riders() -> Select[int]:
    return (select(SlotSignup.id).join(Slot, Slot.id == SlotSignup.slot_id)
            .join(Member, Member.id == SlotSignup.member_id))  # fmt: skip


def due_noshows(session: Session, now: datetime, seat_id: int | None = None) -> list[int]:
    """Seats 15 minutes or more into a running slot whose rider has not been seen, not asked yet."""
    query = (
        select(SlotSignup.id, Member, Slot).join(Slot, Slot.id == SlotSignup.slot_id)
        .join(Member, Member.id == SlotSignup.member_id)
        .where(*running(now), Slot.starts_at <= now - NOSHOW_AFTER, SlotSignup.started_at.is_not(None),
               SlotSignup.noshow_asked_at.is_(None), Member.active.is_(True), not_(seen_since_start(now)))
    )  # fmt: skip
    if seat_id is not None:
        query = query.where(SlotSignup.id == seat_id)
    rows = session.execute(query.order_by(Slot.starts_at, SlotSignup.id)).all()
    return [seat for seat, member, slot in rows if not seen_just_before(member, slot)]


def ask_where(session: Session, config: Config, seat_id: int, now: datetime) -> bool:
    """Ask the rider where they are and tell the coordinators, once; False if they turned up meanwhile."""
    if not due_noshows(session, now, seat_id):
        return False
    won = session.execute(
        update(SlotSignup).where(SlotSignup.id == seat_id, SlotSignup.noshow_asked_at.is_(None))
        .values(noshow_asked_at=now)
    )  # fmt: skip
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return False
    seat = session.get_one(SlotSignup, seat_id)
    slot, member = session.get_one(Slot, seat.slot_id), session.get_one(Member, seat.member_id)
    lang = language_of(config, member)
    tz = config.coop.tz
    started = f"{slot.starts_at.astimezone(tz):%H:%M}"
    buttons = (Button(t(lang, "attendance.button_riding"), "/available", "🚲"),
               Button(t(lang, "attendance.button_cannot"), "/away", "❌"))  # fmt: skip
    text = t(lang, "attendance.asked", slot=describe(slot, lang, tz), time=started)
    queue_to_member(session, member, f"slot:{slot.id}:noshow:m{member.id}", Outgoing(text, buttons), now)
    default = config.coop.default_language
    queue_to_coordinators(session, config, f"slot:{slot.id}:noshow:s{seat.id}", "attendance.coordinators_asked",
                          now, name=member.name, slot=describe(slot, default, tz), time=started)  # fmt: skip
    return True


def first_sign_after(member: Member, moment: datetime) -> datetime | None:
    """The earliest thing the bot knows the member did after `moment`, if anything."""
    signs = [m for m in (member.last_seen_at, member.last_job_at, member.available_since) if m and m > moment]
    return min(signs) if signs else None


def due_arrivals(session: Session, now: datetime) -> list[int]:
    """Seats whose rider was asked where they were and is riding since, not noted yet."""
    asked = SlotSignup.noshow_asked_at
    since = or_(Member.last_seen_at > asked, Member.last_job_at > asked, Member.available_since > asked)
    return list(session.scalars(
        seats_of_riders().where(*running(now), asked.is_not(None), SlotSignup.started_at <= asked,
                                Member.available.is_(True), since)
        .order_by(Slot.starts_at, SlotSignup.id)
    ))  # fmt: skip


def note_arrival(session: Session, config: Config, seat_id: int, now: datetime) -> None:
    """The rider asked turned up: their work in the slot starts now, and the coordinators know."""
    seat = session.get_one(SlotSignup, seat_id)
    member = session.get_one(Member, seat.member_id)
    asked = seat.noshow_asked_at
    arrived = first_sign_after(member, asked) if asked and member.available else None
    if asked is None or arrived is None:
        return
    won = session.execute(
        update(SlotSignup).where(SlotSignup.id == seat_id, SlotSignup.started_at <= asked)
        .values(started_at=min(arrived, now))
    )  # fmt: skip
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return
    slot = session.get_one(Slot, seat.slot_id)
    tz = config.coop.tz
    queue_to_coordinators(session, config, f"slot:{slot.id}:arrived:s{seat.id}", "attendance.coordinators_arrived",
                          now, name=member.name, slot=code(slot),
                          time=f"{min(arrived, now).astimezone(tz):%H:%M}")  # fmt: skip
