"""Slots: publishing the co-op's plan, and members taking and leaving seats.

A slot is one stretch of one day that needs `seats` riders (`S-31`).
Coordinators publish and cancel them; any member signs up while a seat is
free, and signs off until `signoff_hours` before the start (a governed
setting: the co-op decides by vote how late one may drop out). After that a
rider can only hand the seat to someone who agrees (`swaps`), so a slot is
never emptied at the last minute behind the co-op's back.

Two members taking the last seat at once: the slot's row is locked first
(`FOR UPDATE` on PostgreSQL; SQLite runs one writer at a time), so one gets
the seat and the other a clear "full".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from coopbot.chat import Button, Outgoing
from coopbot.config import Config
from coopbot.errors import Conflict, NotAllowed, NotFound, UsageError
from coopbot.i18n import t
from coopbot.models import Member
from coopbot.models_rosters import Slot, SlotSignup
from coopbot.outbox import Notice, queue_many, queue_to_member
from coopbot.services.audit import record
from coopbot.services.members.accounts import active_members, at_least, language_of
from coopbot.services.polls import settings
from coopbot.services.rosters.parsing import SlotSpec
from coopbot.states import Role

SIGNOFF_KEY = "signoff_hours"
MOST_HOURS = 168
SLOT_CODE = re.compile(r"[Ss]-?([1-9][0-9]{0,8})")
#: Buttons under a weekly plan: one per slot a member may still take, at most this many.
MOST_BUTTONS = 12


def parse_hours(key: str, least: int = 0, most: int = MOST_HOURS) -> settings.ParseFn:
    """A whole number of hours (or minutes) in a range, as a vote would set it."""

    def parse(text: str) -> str:
        value = text.strip().lower().removesuffix("h").removesuffix("min").strip()
        if not value.isdigit() or not least <= int(value) <= most:
            raise settings.bad(key, f"{least}–{most}")
        return str(int(value))

    return parse


settings.register_setting(SIGNOFF_KEY, parse_hours(SIGNOFF_KEY), default="12")


def code(slot: Slot | int) -> str:
    return f"S-{slot if isinstance(slot, int) else slot.id}"


def is_ref(word: str) -> bool:
    return SLOT_CODE.fullmatch(word) is not None


def parse_ref(word: str) -> int:
    match = SLOT_CODE.fullmatch(word.strip())
    if match is None:
        raise UsageError("rosters.bad_code", typed=word[:20])
    return int(match.group(1))


def get(session: Session, ref: str, *, lock: bool = False) -> Slot:
    """The slot `S-31` names, locked for a change of seats when asked; a sentence if none."""
    return by_id(session, parse_ref(ref), lock=lock)


def by_id(session: Session, slot_id: int, *, lock: bool = False) -> Slot:
    query = select(Slot).where(Slot.id == slot_id).execution_options(populate_existing=True)
    slot = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if slot is None:
        raise NotFound("rosters.no_such_slot", slot=code(slot_id))
    return slot


def when(slot: Slot, lang: str, tz: ZoneInfo) -> str:
    """`Mon 7 Dec 11:30–14:30` (`lun. 7 déc. 11:30–14:30`) on the co-op's clock."""
    starts, ends = slot.starts_at.astimezone(tz), slot.ends_at.astimezone(tz)
    day = format_date(starts.date(), "EEE d MMM", locale=lang)
    return f"{day} {starts:%H:%M}–{ends:%H:%M}"


def describe(slot: Slot, lang: str, tz: ZoneInfo) -> str:
    """The slot as a notice names it: its code, day, hours and zone."""
    zone = f" · {t(lang, 'rosters.zone', zone=slot.zone)}" if slot.zone else ""
    return f"{code(slot)} {when(slot, lang, tz)}{zone}"


def require_coordinator(member: Member, command: str) -> None:
    if not at_least(member, Role.COORDINATOR):
        raise NotAllowed("rosters.coordinators_only", command=command)


# --- publishing and cancelling --------------------------------------------------------


def publish(session: Session, config: Config, actor: Member, spec: SlotSpec, now: datetime) -> list[Slot]:
    """One slot per day the spec covers; days already begun are left out, not refused."""
    require_coordinator(actor, "/slots add")
    moments = spec.moments(config.coop.tz)
    if not moments:
        raise UsageError("rosters.no_days")
    future = [(starts, ends) for starts, ends in moments if starts > now]
    if not future:
        raise UsageError("rosters.all_past")
    slots = [Slot(starts_at=starts, ends_at=ends, seats=spec.seats, zone=spec.zone, created_by=actor.id,
                  created_at=now) for starts, ends in future]  # fmt: skip
    session.add_all(slots)
    session.flush()
    record(session, now, "slots.published", actor=actor, first=code(slots[0]), last=code(slots[-1]),
           count=len(slots), seats=spec.seats)  # fmt: skip
    return slots


def cancel(session: Session, config: Config, actor: Member, slot: Slot, reason: str, now: datetime) -> int:
    """Cancel a slot and tell each rider who had signed up for it; how many were told."""
    require_coordinator(actor, "/slots cancel")
    if slot.cancelled_at is not None:
        raise Conflict("rosters.already_cancelled", slot=code(slot))
    if slot.ends_at <= now:
        raise Conflict("rosters.over", slot=code(slot))
    slot.cancelled_at, slot.cancel_reason = now, reason[:500]
    riders = signed_members(session, slot)
    notices = [
        (member, f"slot:{slot.id}:cancelled:m{member.id}",
         Outgoing(t(language_of(config, member), "rosters.told_cancelled",
                    slot=describe(slot, language_of(config, member), config.coop.tz), reason=slot.cancel_reason)))
        for member in riders
    ]  # fmt: skip
    queue_many(session, notices, now)
    record(session, now, "slots.cancelled", actor=actor, slot=code(slot), riders=len(riders))
    return len(riders)


# --- reading the plan -----------------------------------------------------------------


@dataclass(frozen=True)
class Seats:
    """A slot as the weekly plan shows it: how many seats are taken, and whether one is the reader's."""

    slot: Slot
    taken: int
    mine: bool

    @property
    def free(self) -> int:
        return max(0, self.slot.seats - self.taken)


def week_start(now: datetime, tz: ZoneInfo, weeks_ahead: int = 0) -> date:
    """The Monday of this week on the co-op's calendar (or of a later one)."""
    today = now.astimezone(tz).date()
    return today - timedelta(days=today.weekday()) + timedelta(weeks=weeks_ahead)


def week(session: Session, config: Config, member: Member | None, monday: date) -> list[Seats]:
    """The week's slots from Monday 00:00 to the next Monday, cancelled ones left out."""
    tz = config.coop.tz
    first = datetime.combine(monday, datetime.min.time(), tzinfo=tz)
    last = datetime.combine(monday + timedelta(weeks=1), datetime.min.time(), tzinfo=tz)
    slots = list(session.scalars(
        select(Slot).where(Slot.starts_at >= first, Slot.starts_at < last, Slot.cancelled_at.is_(None))
        .order_by(Slot.starts_at, Slot.id)
    ))  # fmt: skip
    ids = [slot.id for slot in slots]
    counted = session.execute(
        select(SlotSignup.slot_id, func.count(SlotSignup.id)).where(SlotSignup.slot_id.in_(ids))
        .group_by(SlotSignup.slot_id)
    )  # fmt: skip
    taken: dict[int, int] = {row[0]: row[1] for row in counted}
    mine = set() if member is None else set(session.scalars(
        select(SlotSignup.slot_id).where(SlotSignup.slot_id.in_(ids), SlotSignup.member_id == member.id)
    ))  # fmt: skip
    return [Seats(slot, taken.get(slot.id, 0), slot.id in mine) for slot in slots]


def plan(session: Session, config: Config, reader: Member | None, lang: str, monday: date,
         now: datetime) -> Outgoing:
    """The week's plan as `/slots` shows it (and the co-op's room, `reader` None): each slot
    with seats taken and free, the reader's marked, a sign-up button under each open one."""
    tz = config.coop.tz
    day = format_date(monday, "EEEE d MMMM", locale=lang)
    seats = week(session, config, reader, monday)
    if not seats:
        return Outgoing(t(lang, "rosters.week_empty", day=day))
    lines = [t(lang, "rosters.week_title", day=day)]
    for one in seats:
        line = t(lang, "rosters.line", slot=describe(one.slot, lang, tz), taken=one.taken, seats=one.slot.seats,
                 free=one.free)  # fmt: skip
        lines.append(line + t(lang, "rosters.line_mine") if one.mine else line)
    return Outgoing("\n".join(lines), signup_buttons(lang, seats, now))


def signup_buttons(lang: str, plan: list[Seats], now: datetime) -> tuple[Button, ...]:
    """A button for each slot the reader may still take, so a plan is one tap from a seat."""
    open_ones = [s for s in plan if not s.mine and s.free and s.slot.starts_at > now][:MOST_BUTTONS]
    return tuple(Button(t(lang, "rosters.button_signup", slot=code(s.slot)), f"/signup {code(s.slot)}")
                 for s in open_ones)  # fmt: skip


def signed_members(session: Session, slot: Slot) -> list[Member]:
    return list(session.scalars(
        select(Member).join(SlotSignup, SlotSignup.member_id == Member.id).where(SlotSignup.slot_id == slot.id)
        .order_by(SlotSignup.signed_at, SlotSignup.id)
    ))  # fmt: skip


def seat_of(session: Session, slot: Slot, member: Member) -> SlotSignup | None:
    return session.scalars(
        select(SlotSignup).where(SlotSignup.slot_id == slot.id, SlotSignup.member_id == member.id)
    ).one_or_none()


def overlapping(slot: Slot) -> list[ColumnElement[bool]]:
    """Conditions for the slots, not cancelled, that share some time with `slot` (itself included)."""
    return [Slot.cancelled_at.is_(None), Slot.starts_at < slot.ends_at, Slot.ends_at > slot.starts_at]


def busy_during(session: Session, slot: Slot) -> set[int]:
    """Members riding `slot` or a slot at the same time: not asked to ride it, not seated twice."""
    return set(session.scalars(
        select(SlotSignup.member_id).join(Slot, Slot.id == SlotSignup.slot_id).where(*overlapping(slot))
    ))  # fmt: skip


def check_free(session: Session, slot: Slot, member: Member) -> None:
    """A rider is on one slot at a time: a second one at the same hours is refused, naming the first."""
    clash = session.scalars(
        select(Slot.id).join(SlotSignup, SlotSignup.slot_id == Slot.id)
        .where(SlotSignup.member_id == member.id, Slot.id != slot.id, *overlapping(slot)).limit(1)
    ).one_or_none()  # fmt: skip
    if clash is not None:
        raise Conflict("rosters.clash", slot=code(slot), other=code(clash))


def taken(session: Session, slot: Slot) -> int:
    return int(session.scalar(select(func.count(SlotSignup.id)).where(SlotSignup.slot_id == slot.id)) or 0)


def mine(session: Session, member: Member, now: datetime) -> list[Slot]:
    """The member's slots not over yet, soonest first (cancelled ones too: they must know)."""
    return list(session.scalars(
        select(Slot).join(SlotSignup, SlotSignup.slot_id == Slot.id)
        .where(SlotSignup.member_id == member.id, Slot.ends_at > now).order_by(Slot.starts_at, Slot.id)
    ))  # fmt: skip


# --- taking and leaving a seat --------------------------------------------------------


def check_open(slot: Slot, now: datetime) -> None:
    if slot.cancelled_at is not None:
        raise Conflict("rosters.cancelled", slot=code(slot), reason=slot.cancel_reason or "")
    if slot.starts_at <= now:
        raise Conflict("rosters.started", slot=code(slot))


def sign_up(session: Session, config: Config, member: Member, slot: Slot, now: datetime) -> Member | None:
    """Give `member` a seat on `slot` (locked by the caller); returns the rider they freed, if any.

    A seat given away (`/giveaway`) is taken first, even on a slot with seats
    free: its holder asked to be freed, and the newcomer frees them.
    """
    check_open(slot, now)
    if seat_of(session, slot, member) is not None:
        raise Conflict("rosters.already_signed", slot=code(slot))
    check_free(session, slot, member)
    offered = session.scalars(
        select(SlotSignup).where(SlotSignup.slot_id == slot.id, SlotSignup.given_away_at.is_not(None))
        .order_by(SlotSignup.given_away_at, SlotSignup.id).limit(1)
    ).one_or_none()  # fmt: skip
    if offered is not None:
        giver = session.get_one(Member, offered.member_id)
        offered.member_id, offered.signed_at = member.id, now
        offered.given_away_at = offered.swap_to_id = offered.swap_asked_at = None
        lang = language_of(config, giver)
        text = t(lang, "rosters.told_given_taken", name=member.name, slot=describe(slot, lang, config.coop.tz))
        queue_to_member(session, giver, f"slot:{slot.id}:given:{offered.id}:{now.timestamp():.0f}", Outgoing(text),
                        now)  # fmt: skip
        return giver
    if taken(session, slot) >= slot.seats:
        raise Conflict("rosters.full", slot=code(slot))
    session.add(SlotSignup(slot_id=slot.id, member_id=member.id, signed_at=now))
    session.flush()
    return None


def signoff_hours(session: Session, config: Config, now: datetime) -> int:
    return int(settings.current(session, config, SIGNOFF_KEY, now))


def sign_off(session: Session, config: Config, member: Member, slot: Slot, now: datetime) -> None:
    """Free `member`'s seat, until `signoff_hours` before the start; after that only a swap."""
    seat = seat_of(session, slot, member)
    if seat is None:
        raise Conflict("rosters.not_signed", slot=code(slot))
    if slot.cancelled_at is None:
        check_open(slot, now)
        hours = signoff_hours(session, config, now)
        if now > slot.starts_at - timedelta(hours=hours):
            raise NotAllowed("rosters.signoff_too_late", slot=code(slot), count=hours)
    session.delete(seat)
    session.flush()


def release(session: Session, member: Member, now: datetime) -> list[int]:
    """A member who leaves the co-op gives up every seat on a slot not yet started (the ids).

    Nobody expects them any more, and the slot shows the seat free for others.
    """
    seats = session.scalars(
        select(SlotSignup).join(Slot, Slot.id == SlotSignup.slot_id)
        .where(SlotSignup.member_id == member.id, Slot.starts_at > now)
    ).all()  # fmt: skip
    freed = [seat.slot_id for seat in seats]
    for seat in seats:
        session.delete(seat)
    session.flush()
    return freed


def tell_free_members(
    session: Session, config: Config, slot: Slot, key: str, sentence: str, now: datetime, **params: object
) -> int:
    """Ask every active member free then (not on this slot, nor on another at those hours) to take
    a seat, each with a sign-up button and once under `key`; how many were asked."""
    riding = busy_during(session, slot)
    notices: list[Notice] = []
    for member in active_members(session):
        if member.id in riding:
            continue
        lang = language_of(config, member)
        text = t(lang, sentence, slot=describe(slot, lang, config.coop.tz), **params)
        button = Button(t(lang, "rosters.button_signup", slot=code(slot)), f"/signup {code(slot)}")
        notices.append((member, f"{key}:m{member.id}", Outgoing(text, (button,))))
    queue_many(session, notices, now)
    return len(notices)
