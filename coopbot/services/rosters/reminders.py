"""The roster's clock: reminders, the start of a slot, and calls for riders when one is short.

Declared as the sweep `rosters.remind`, run every few seconds and once at
start. For each seat on a slot in the next day it does what is due:

- the day before (24 hours ahead, for seats taken before then) and
  `remind_minutes` before the start (a governed setting, default 60), a
  private reminder. Each is sent once: its outbox key names the slot, the
  kind and the rider, and a key already queued is never queued again;
- at the start, the rider is set available for jobs as `/available` does
  (`dispatch.offers.set_available`, the same rules and the same offers of
  waiting jobs), once: `started_at` on the seat is set by the same
  transaction, so a rider who goes `/away` during their slot stays away;
- during the slot, a rider not seen 15 minutes in is asked where they are, and
  the moments a rider stops and comes back are noted on the seat (`attendance`,
  `worked`);
- at its end, each seat's worked minutes are measured once and become shift
  hours in the ledger (`worked`, the governed `slot_tolerance_minutes`);
- at its end (within the hour after), a rider still available is asked
  whether to stay, with the same buttons as the idle question (`/available`,
  `/away`), once by its outbox key;
- from Sunday 18:00 on the co-op's clock, the coming week's plan is posted
  to the co-op's rooms, with a sign-up button under each open slot, once
  (its outbox key names the week);
- `short_hours` before a slot (a governed setting, default 24) still short
  of riders, the members not on it are asked once, and so are the
  coordinators (`short_told_at` on the slot makes it once).

A bot that was down catches up at its next start: a reminder whose moment
passed is sent if the slot has not begun, a start if it has not ended.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from coopbot.chat import Button, Outgoing
from coopbot.config import Config
from coopbot.i18n import t
from coopbot.models import Member, OutboxMessage
from coopbot.models_rosters import Slot, SlotSignup
from coopbot.outbox import queue_to_coordinators, queue_to_member, queue_to_rooms
from coopbot.scheduler import SweepContext, sweep
from coopbot.services.dispatch.offers import set_available
from coopbot.services.members.accounts import language_of
from coopbot.services.polls import settings
from coopbot.services.rosters import attendance, worked
from coopbot.services.rosters.plan_image import week_image
from coopbot.services.rosters.slots import (
    code,
    describe,
    parse_hours,
    plan,
    signed_members,
    tell_free_members,
    week,
    week_start,
)

REMIND_KEY = "remind_minutes"
SHORT_KEY = "short_hours"
#: The day-before reminder comes this long before the start.
DAY_BEFORE = timedelta(hours=24)
#: Reminder keys start so: `slot-remind:{slot}:{kind}:m{member}` (then the platform).
PREFIX = "slot-remind:"
EVE, SOON, END = "eve", "soon", "end"
#: The coming week's plan goes to the co-op's rooms this long before its Monday (Sunday 18:00),
#: or later that Monday if the bot was down.
POST_BEFORE = timedelta(hours=6)
#: A rider still available is asked whether to stay within this long after their slot ends.
END_WINDOW = timedelta(hours=1)

settings.register_setting(REMIND_KEY, parse_hours(REMIND_KEY, 0, 1440), default="60")
settings.register_setting(SHORT_KEY, parse_hours(SHORT_KEY), default="24")


def minutes(session: Session, config: Config, key: str, now: datetime) -> int:
    return int(settings.current(session, config, key, now))


def reminder_key(slot_id: int, kind: str, member_id: int) -> str:
    return f"{PREFIX}{slot_id}:{kind}:m{member_id}"


def sent_reminders(session: Session, now: datetime) -> set[str]:
    """Reminder keys already queued lately, without their platform: one query per tick."""
    keys = session.scalars(
        select(OutboxMessage.key).where(OutboxMessage.key.like(f"{PREFIX}%"),
                                        OutboxMessage.created_at >= now - 2 * DAY_BEFORE)
    )  # fmt: skip
    return {key.rsplit(":", 1)[0] for key in keys}


def due_reminders(session: Session, config: Config, now: datetime) -> list[tuple[int, str]]:
    """(seat id, kind) for each reminder due now and not sent yet."""
    before = timedelta(minutes=minutes(session, config, REMIND_KEY, now))
    rows = session.execute(
        select(SlotSignup.id, SlotSignup.member_id, SlotSignup.signed_at, Slot.id, Slot.starts_at)
        .join(Slot, Slot.id == SlotSignup.slot_id)
        .where(Slot.cancelled_at.is_(None), Slot.starts_at > now, Slot.starts_at <= now + DAY_BEFORE)
        .order_by(Slot.starts_at, SlotSignup.id)
    ).all()  # fmt: skip
    sent = sent_reminders(session, now)
    due = []
    for seat_id, member_id, signed_at, slot_id, starts_at in rows:
        if now >= starts_at - before:
            kind = SOON
        elif signed_at <= starts_at - DAY_BEFORE:
            kind = EVE
        else:
            continue
        if reminder_key(slot_id, kind, member_id) not in sent:
            due.append((seat_id, kind))
    return due


def remind(session: Session, config: Config, item: tuple[int, str], now: datetime) -> None:
    seat_id, kind = item
    seat = session.get(SlotSignup, seat_id)
    if seat is None:
        return
    slot, member = session.get_one(Slot, seat.slot_id), session.get_one(Member, seat.member_id)
    lang = language_of(config, member)
    key = "rosters.remind_eve" if kind == EVE else "rosters.remind_soon"
    local = slot.starts_at.astimezone(config.coop.tz)
    text = t(lang, key, slot=describe(slot, lang, config.coop.tz), time=f"{local:%H:%M}")
    queue_to_member(session, member, reminder_key(slot.id, kind, member.id), Outgoing(text), now)


def due_starts(session: Session, now: datetime) -> list[int]:
    return list(session.scalars(
        select(SlotSignup.id).join(Slot, Slot.id == SlotSignup.slot_id)
        .where(*attendance.running(now), SlotSignup.started_at.is_(None))
        .order_by(Slot.starts_at, SlotSignup.id)
    ))  # fmt: skip


def start(session: Session, config: Config, seat_id: int, now: datetime) -> None:
    """The slot began for this rider: set them available, once, and tell them."""
    won = session.execute(
        update(SlotSignup).where(SlotSignup.id == seat_id, SlotSignup.started_at.is_(None)).values(started_at=now)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return
    seat = session.get_one(SlotSignup, seat_id)
    slot, member = session.get_one(Slot, seat.slot_id), session.get_one(Member, seat.member_id)
    if not member.active:
        return
    seen = member.last_seen_at
    set_available(session, config, member, now)
    member.last_seen_at = seen  # the bot setting them available is no sign the rider came (`attendance`)
    lang = language_of(config, member)
    ends = slot.ends_at.astimezone(config.coop.tz)
    text = t(lang, "rosters.started_now", slot=code(slot), time=f"{ends:%H:%M}")
    queue_to_member(session, member, f"slot:{slot.id}:start:m{member.id}", Outgoing(text), now)


def due_ends(session: Session, now: datetime) -> list[int]:
    """Seats whose slot ended within the hour, started for their rider, not asked yet."""
    rows = session.execute(
        select(SlotSignup.id, SlotSignup.member_id, Slot.id).join(Slot, Slot.id == SlotSignup.slot_id)
        .where(Slot.cancelled_at.is_(None), Slot.ends_at <= now, Slot.ends_at > now - END_WINDOW,
               SlotSignup.started_at.is_not(None))
        .order_by(Slot.ends_at, SlotSignup.id)
    ).all()  # fmt: skip
    sent = sent_reminders(session, now)
    return [seat_id for seat_id, member_id, slot_id in rows if reminder_key(slot_id, END, member_id) not in sent]


def ask_to_stay(session: Session, config: Config, seat_id: int, now: datetime) -> None:
    """The slot is over: a rider still available says whether they keep riding (nothing changes if not)."""
    seat = session.get_one(SlotSignup, seat_id)
    member = session.get_one(Member, seat.member_id)
    if not member.available:
        return
    lang = language_of(config, member)
    buttons = (Button(t(lang, "dispatch.button_still"), "/available", "👍"),
               Button(t(lang, "dispatch.button_away"), "/away", "🛑"))  # fmt: skip
    text = t(lang, "rosters.ended", slot=code(seat.slot_id))
    queue_to_member(session, member, reminder_key(seat.slot_id, END, member.id), Outgoing(text, buttons), now)


def due_short(session: Session, config: Config, now: datetime) -> list[int]:
    """Slots starting within `short_hours` with fewer riders than seats, not announced yet."""
    hours = minutes(session, config, SHORT_KEY, now)
    if hours == 0:
        return []
    seats = (
        select(func.count(SlotSignup.id)).where(SlotSignup.slot_id == Slot.id).correlate(Slot).scalar_subquery()
    )
    return list(session.scalars(
        select(Slot.id).where(Slot.cancelled_at.is_(None), Slot.short_told_at.is_(None), Slot.starts_at > now,
                              Slot.starts_at <= now + timedelta(hours=hours), seats < Slot.seats)
        .order_by(Slot.starts_at, Slot.id)
    ))  # fmt: skip


def call_for_riders(session: Session, config: Config, slot_id: int, now: datetime) -> None:
    """Tell the members free at that time (not on this slot or another then), and the coordinators, once."""
    won = session.execute(
        update(Slot).where(Slot.id == slot_id, Slot.short_told_at.is_(None)).values(short_told_at=now)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return
    slot = session.get_one(Slot, slot_id)
    free = slot.seats - len(signed_members(session, slot))
    told = tell_free_members(session, config, slot, f"slot:{slot.id}:short", "rosters.told_short", now, count=free)
    default = config.coop.default_language
    queue_to_coordinators(session, config, f"slot:{slot.id}:short-coordinators", "rosters.coordinators_short", now,
                          slot=describe(slot, default, config.coop.tz), count=free, told=told)  # fmt: skip


def due_weeks(config: Config, now: datetime) -> list[date]:
    """The Mondays whose plan is due in the rooms now: from Sunday 18:00 to the end of that Monday."""
    tz = config.coop.tz
    due = []
    for monday in (week_start(now, tz), week_start(now, tz, 1)):
        opens = datetime.combine(monday, time(), tzinfo=tz)
        if opens - POST_BEFORE <= now < opens + timedelta(days=1):
            due.append(monday)
    return due


def post_week(session: Session, config: Config, monday: date, now: datetime) -> None:
    """The week's plan to the co-op's rooms, in the co-op's language, with its picture; an empty
    week is not posted."""
    seats = week(session, config, None, monday)
    if not seats:
        return
    lang = config.coop.default_language
    message = plan(session, config, None, lang, monday, now)
    drawn = week_image(seats, monday, lang, config.coop.tz)
    message = replace(message, attachment=(f"slots-{monday.isoformat()}.png", drawn.png, "image/png"))
    queue_to_rooms(session, config, f"slots-week:{monday.isoformat()}", message, now)


@sweep("rosters.remind")
def roster_clock(ctx: SweepContext) -> None:
    """Calls for riders first (a short slot is the most urgent), then starts, who came and who
    stopped, reminders, the end of each seat's work, and the question at the end."""
    with ctx.sessions() as session:
        short = due_short(session, ctx.config, ctx.now)
        starts = due_starts(session, ctx.now)
        reminders = due_reminders(session, ctx.config, ctx.now)
        ends = due_ends(session, ctx.now)
    ctx.each(short, code, lambda session, slot_id: call_for_riders(session, ctx.config, slot_id, ctx.now))
    ctx.each(starts, lambda seat_id: f"seat #{seat_id}", lambda session, seat_id: start(session, ctx.config, seat_id,
                                                                                         ctx.now))  # fmt: skip
    watch_seats(ctx)
    ctx.each(reminders, lambda item: f"seat #{item[0]} ({item[1]})",
             lambda session, item: remind(session, ctx.config, item, ctx.now))  # fmt: skip
    ctx.each(due_weeks(ctx.config, ctx.now), lambda monday: f"week of {monday.isoformat()}",
             lambda session, monday: post_week(session, ctx.config, monday, ctx.now))  # fmt: skip
    with ctx.sessions() as session:
        finishes = worked.due_finishes(session, ctx.now)
    ctx.each(finishes, lambda seat_id: f"seat #{seat_id} (hours)",
             lambda session, seat_id: worked.finish(session, ctx.config, seat_id, ctx.now))  # fmt: skip
    ctx.each(ends, lambda seat_id: f"seat #{seat_id} (end)",
             lambda session, seat_id: ask_to_stay(session, ctx.config, seat_id, ctx.now))  # fmt: skip


def watch_seats(ctx: SweepContext) -> None:
    """During running slots: riders asked who turned up, riders not seen 15 minutes in, riders who
    stopped or came back. Read after the starts, so a seat started this tick is seen as it is now."""
    with ctx.sessions() as session:
        arrivals = attendance.due_arrivals(session, ctx.now)
        noshows = attendance.due_noshows(session, ctx.now)
        stops = worked.due_stops(session, ctx.now)
        returns = worked.due_returns(session, ctx.now)
    ctx.each(arrivals, lambda seat_id: f"seat #{seat_id} (arrived)",
             lambda session, seat_id: attendance.note_arrival(session, ctx.config, seat_id, ctx.now))  # fmt: skip
    ctx.each(noshows, lambda seat_id: f"seat #{seat_id} (not seen)",
             lambda session, seat_id: attendance.ask_where(session, ctx.config, seat_id, ctx.now))  # fmt: skip
    ctx.each(stops, lambda seat_id: f"seat #{seat_id} (stopped)",
             lambda session, seat_id: worked.note_stop(session, seat_id, ctx.now))  # fmt: skip
    ctx.each(returns, lambda seat_id: f"seat #{seat_id} (back)", worked.note_return)
