"""Unpopular slots shared by a published rule, not by who happens to read the chat first.

When a slot the co-op finds unpopular (`unpopular_slots`, a governed
setting: by default Sundays and nights) is still short `fill_hours` before it
starts, and the co-op keeps `fill_policy` at `fair`, the sweep `rosters.fill`
offers a seat to one member at a time, for `fill_offer_minutes`: first to the
member who took the fewest unpopular slots this accounting period, then the
fewest hours of slots, then the lowest member number. A decline or a timeout
moves it to the next; it stops when the slot is full or starts. Each offer
keeps the ranking as it stood (`SlotOffer.details`), so `/why S-31` shows why
that member came first, as `/why J-12` does for a job.

Why `fair` by default: the rule only decides who is asked first, privately;
nobody is ever put on a slot without taking it, and `/signup` stays open to
all (first come). Without it, the nights fall to the same few who always
answer the call; a co-op that prefers the open call alone votes `off`.

An offer is a question, not a seat: a member's own `/signup` while someone
holds the offer still wins, and the sweep withdraws the offer at its next
tick (the slot's row, locked by both, keeps the two apart).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from coopbot.chat import Button, Outgoing
from coopbot.config import Config
from coopbot.errors import Conflict, CoopError, NotFound
from coopbot.i18n import t
from coopbot.models import Member, Setting
from coopbot.models_rosters import Slot, SlotOffer, SlotSignup
from coopbot.outbox import queue_to_member
from coopbot.scheduler import SweepContext, sweep
from coopbot.services.members.accounts import active_members, language_of
from coopbot.services.money.periods import period_bounds
from coopbot.services.polls import settings
from coopbot.services.rosters import slots
from coopbot.services.rosters.parsing import CLOCK_PATTERN, DAY_NAMES, WEEKDAYS, parse_days

RULE_KEY = "unpopular_slots"
POLICY_KEY = "fill_policy"
HOURS_KEY = "fill_hours"
MINUTES_KEY = "fill_offer_minutes"
KEYS = (RULE_KEY, POLICY_KEY, HOURS_KEY, MINUTES_KEY)
FAIR, OFF = "fair", "off"
TAKEN, DECLINED, EXPIRED, WITHDRAWN = "taken", "declined", "expired", "withdrawn"
CLOCK = re.compile(CLOCK_PATTERN)
AFTER, BEFORE = ("after", "après", "apres"), ("before", "avant")
RULE_EXAMPLE = "sun, after 21:00"


# --- what makes a slot unpopular -----------------------------------------------------------


@dataclass(frozen=True)
class Unpopular:
    """The co-op's rule: these days of the week, nights from `after` (and any slot ending
    past midnight), early mornings starting before `before`; each part optional."""

    days: frozenset[int] = frozenset()
    after: time | None = None
    before: time | None = None

    def canonical(self) -> str:
        parts = [WEEKDAYS[day] for day in sorted(self.days)]
        parts += [f"after {self.after:%H:%M}"] if self.after is not None else []
        parts += [f"before {self.before:%H:%M}"] if self.before is not None else []
        return ", ".join(parts)

    def reasons(self, slot: Slot, tz: ZoneInfo) -> list[tuple[str, str]]:
        """Why the rule finds `slot` unpopular, as (reason, its value); empty when it does not."""
        starts, ends = slot.starts_at.astimezone(tz), slot.ends_at.astimezone(tz)
        found = []
        if starts.weekday() in self.days:
            found.append(("day", WEEKDAYS[starts.weekday()]))
        if self.after is not None and starts.time() >= self.after:
            found.append(("after", f"{self.after:%H:%M}"))
        elif self.after is not None and ends.date() > starts.date() and ends.time() != time(0, 0):
            found.append(("midnight", ""))
        if self.before is not None and starts.time() < self.before:
            found.append(("before", f"{self.before:%H:%M}"))
        return found


def read_clock(word: str) -> time:
    match = CLOCK.fullmatch(word)
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise settings.bad(RULE_KEY, RULE_EXAMPLE)
    return time(int(match.group(1)), int(match.group(2)))


def read_rule(text: str) -> Unpopular:
    """`sun, after 21:00`, `sat-sun`, `dim, après 21h00, avant 07:00`: days, `after`, `before`."""
    words = [word for word in re.split(r"[,\s]+", text.strip().lower()) if word]
    days: set[int] = set()
    after: time | None = None
    before: time | None = None
    while words:
        word = words.pop(0)
        if word in AFTER + BEFORE:
            if not words or (word in AFTER and after is not None) or (word in BEFORE and before is not None):
                raise settings.bad(RULE_KEY, RULE_EXAMPLE)
            moment = read_clock(words.pop(0))
            after, before = (moment, before) if word in AFTER else (after, moment)
        elif word.split("-")[0] in DAY_NAMES:
            try:
                days |= parse_days(word)
            except CoopError:
                raise settings.bad(RULE_KEY, RULE_EXAMPLE) from None
        else:
            raise settings.bad(RULE_KEY, RULE_EXAMPLE)
    if not days and after is None and before is None:
        raise settings.bad(RULE_KEY, RULE_EXAMPLE)
    return Unpopular(frozenset(days), after, before)


def parse_rule(text: str) -> str:
    return read_rule(text).canonical()


def parse_policy(text: str) -> str:
    value = text.strip().lower()
    if value not in (FAIR, OFF):
        raise settings.bad(POLICY_KEY, f"{FAIR} | {OFF}")
    return value


settings.register_setting(RULE_KEY, settings.clearable(parse_rule), default="sun, after 21:00")
settings.register_setting(POLICY_KEY, parse_policy, default=FAIR)
settings.register_setting(HOURS_KEY, slots.parse_hours(HOURS_KEY, 1), default="48")
settings.register_setting(MINUTES_KEY, slots.parse_hours(MINUTES_KEY, 5, 1440), default="60")


@dataclass(frozen=True)
class FillRules:
    """The four settings in force, read at once, with the change behind each (None: the default)."""

    policy: str
    hours: int
    minutes: int
    rule_text: str
    changes: dict[str, Setting | None]

    @property
    def rule(self) -> Unpopular:
        return read_rule(self.rule_text) if self.rule_text else Unpopular()


def rules_in_force(session: Session, config: Config, now: datetime) -> FillRules:
    read = settings.InForce(config, settings.voted(session, now, KEYS))
    return FillRules(read.value(POLICY_KEY), int(read.value(HOURS_KEY)), int(read.value(MINUTES_KEY)),
                     read.value(RULE_KEY), {key: read.row(key) for key in KEYS})  # fmt: skip


# --- the ranking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """A member as the fairness rule ranks them for one slot, with the numbers `/why` shows."""

    member: Member
    unpopular: int
    minutes: int

    def detail(self) -> dict[str, Any]:
        return {"id": self.member.id, "name": self.member.name, "unpopular": self.unpopular,
                "minutes": self.minutes}  # fmt: skip


def period_of(config: Config, slot: Slot) -> tuple[datetime, datetime, str]:
    """The accounting period the slot falls in: the one its fairness is counted over."""
    return period_bounds(config.periods.schedule, config.coop.tz, slot.starts_at)


def rank(session: Session, config: Config, slot: Slot, members: Iterable[Member], rule: Unpopular) -> list[Standing]:
    """Fewest unpopular slots taken this period first, then fewest hours of slots, then member number."""
    members = list(members)
    first, last, _ = period_of(config, slot)
    rows = session.execute(
        select(SlotSignup.member_id, Slot).join(Slot, Slot.id == SlotSignup.slot_id)
        .where(Slot.cancelled_at.is_(None), Slot.starts_at >= first, Slot.starts_at < last,
               SlotSignup.member_id.in_([m.id for m in members]))
    ).all()  # fmt: skip
    unpopular: dict[int, int] = {}
    minutes: dict[int, int] = {}
    for member_id, taken in rows:
        minutes[member_id] = minutes.get(member_id, 0) + int((taken.ends_at - taken.starts_at).total_seconds() // 60)
        if rule.reasons(taken, config.coop.tz):
            unpopular[member_id] = unpopular.get(member_id, 0) + 1
    standings = [Standing(m, unpopular.get(m.id, 0), minutes.get(m.id, 0)) for m in members]
    return sorted(standings, key=lambda s: (s.unpopular, s.minutes, s.member.id))


# --- the sweep --------------------------------------------------------------------------------


def standing_offers(session: Session, slot: Slot) -> list[SlotOffer]:
    return list(session.scalars(
        select(SlotOffer).where(SlotOffer.slot_id == slot.id, SlotOffer.answer.is_(None)).order_by(SlotOffer.id)
    ))  # fmt: skip


def wanted(session: Session, config: Config, slot: Slot, rules: FillRules, now: datetime) -> bool:
    """Whether the rule still looks for a rider: unpopular, short, not started, within `fill_hours`."""
    return (rules.policy == FAIR and slot.cancelled_at is None and now < slot.starts_at
            and slot.starts_at <= now + timedelta(hours=rules.hours) and slots.taken(session, slot) < slot.seats
            and bool(rules.rule.reasons(slot, config.coop.tz)))  # fmt: skip


def due_slots(session: Session, config: Config, now: datetime) -> list[int]:
    """Slots with an offer to settle, or with none standing that want one (short, unpopular, within
    `fill_hours`): a slot whose offer still waits on its member costs no lock at each tick."""
    seats = select(func.count(SlotSignup.id)).where(SlotSignup.slot_id == Slot.id).correlate(Slot).scalar_subquery()
    holder_seated = select(SlotSignup.id).where(SlotSignup.slot_id == Slot.id,
                                                SlotSignup.member_id == SlotOffer.member_id).exists()  # fmt: skip
    stale = or_(SlotOffer.expires_at <= now, Slot.starts_at <= now, Slot.cancelled_at.is_not(None),
                seats >= Slot.seats, holder_seated)  # fmt: skip
    rows = session.execute(
        select(SlotOffer.slot_id, stale).join(Slot, Slot.id == SlotOffer.slot_id).where(SlotOffer.answer.is_(None))
    ).all()
    waiting = {slot_id for slot_id, _ in rows}
    settle_now = {slot_id for slot_id, due in rows if due}
    rules = rules_in_force(session, config, now)
    if rules.policy != FAIR or not rules.rule_text:
        return sorted(settle_now)
    short = session.scalars(
        select(Slot).where(Slot.cancelled_at.is_(None), Slot.starts_at > now,
                           Slot.starts_at <= now + timedelta(hours=rules.hours), seats < Slot.seats,
                           Slot.id.not_in(waiting))
    )  # fmt: skip
    rule = rules.rule
    return sorted(settle_now | {slot.id for slot in short if rule.reasons(slot, config.coop.tz)})


def settle(session: Session, config: Config, slot: Slot, offer: SlotOffer, now: datetime) -> None:
    """Close an offer that no longer stands: its member took the seat, time is up, or the slot
    no longer needs anyone (full, started, cancelled); the member is told, once."""
    member = session.get_one(Member, offer.member_id)
    if slots.seat_of(session, slot, member) is not None:
        answer(offer, TAKEN, now)
    elif (slot.cancelled_at is not None or slot.starts_at <= now or not member.active
          or slots.taken(session, slot) >= slot.seats):  # fmt: skip
        answer(offer, WITHDRAWN, now)
        tell(session, config, member, slot, offer, "fairness.told_withdrawn", now)
    elif offer.expires_at <= now:
        answer(offer, EXPIRED, now)
        tell(session, config, member, slot, offer, "fairness.told_expired", now)


def answer(offer: SlotOffer, what: str, now: datetime) -> None:
    offer.answer, offer.answered_at = what, now


def tell(session: Session, config: Config, member: Member, slot: Slot, offer: SlotOffer, key: str,
         now: datetime) -> None:  # fmt: skip
    lang = language_of(config, member)
    text = t(lang, key, slot=slots.describe(slot, lang, config.coop.tz))
    queue_to_member(session, member, f"slot:{slot.id}:fill:{offer.id}:{offer.answer}", Outgoing(text), now)


def offer_next(session: Session, config: Config, slot: Slot, rules: FillRules, now: datetime) -> SlotOffer | None:
    """Offer a seat on the locked `slot` to the member the rule ranks first among those not asked yet."""
    asked = set(session.scalars(select(SlotOffer.member_id).where(SlotOffer.slot_id == slot.id)))
    busy = slots.busy_during(session, slot)
    free = [m for m in active_members(session) if m.id not in busy and m.id not in asked]
    if not free:
        return None
    _, _, period = period_of(config, slot)
    ranked = rank(session, config, slot, free, rules.rule)
    first = ranked[0]
    offer = SlotOffer(slot_id=slot.id, member_id=first.member.id, offered_at=now,
                      expires_at=now + timedelta(minutes=rules.minutes), rank=len(asked) + 1,
                      details={"policy": FAIR, "rule": rules.rule_text, "period": period, "minutes": rules.minutes,
                               "candidates": [s.detail() for s in ranked]})  # fmt: skip
    session.add(offer)
    session.flush()
    lang = language_of(config, first.member)
    text = t(lang, "fairness.offer", slot=slots.describe(slot, lang, config.coop.tz), count=first.unpopular,
             minutes=rules.minutes, code=slots.code(slot))  # fmt: skip
    buttons = (Button(t(lang, "fairness.button_take"), f"/fill {slots.code(slot)} take", "✅"),
               Button(t(lang, "fairness.button_decline"), f"/fill {slots.code(slot)} decline", "❌"))  # fmt: skip
    queue_to_member(session, first.member, f"slot:{slot.id}:fill:m{first.member.id}", Outgoing(text, buttons), now)
    return offer


def fill_step(session: Session, config: Config, slot_id: int, now: datetime) -> None:
    """One slot: settle the offers that no longer stand, then offer to the next member if it is still wanted."""
    slot = slots.by_id(session, slot_id, lock=True)
    for offer in standing_offers(session, slot):
        settle(session, config, slot, offer, now)
    move_on(session, config, slot, now)


def move_on(session: Session, config: Config, slot: Slot, now: datetime) -> SlotOffer | None:
    """The next offer, unless one still stands or nobody is wanted any more."""
    if any(offer.answer is None for offer in standing_offers(session, slot)):
        return None
    rules = rules_in_force(session, config, now)
    return offer_next(session, config, slot, rules, now) if wanted(session, config, slot, rules, now) else None


@sweep("rosters.fill")
def fill_unpopular(ctx: SweepContext) -> None:
    """Short unpopular slots offered one member at a time; timed-out and stale offers closed."""
    with ctx.sessions() as session:
        due = due_slots(session, ctx.config, ctx.now)
    ctx.each(due, slots.code, lambda session, slot_id: fill_step(session, ctx.config, slot_id, ctx.now))


# --- the member's answer ----------------------------------------------------------------------


def offer_of(session: Session, slot: Slot, member: Member, now: datetime) -> SlotOffer:
    """The member's offer standing on `slot`; a sentence saying what became of it otherwise."""
    latest = session.scalars(
        select(SlotOffer).where(SlotOffer.slot_id == slot.id, SlotOffer.member_id == member.id)
        .order_by(SlotOffer.id.desc()).limit(1)
    ).one_or_none()  # fmt: skip
    if latest is None:
        raise NotFound("fairness.not_offered", slot=slots.code(slot))
    if latest.answer is None and latest.expires_at <= now:
        raise Conflict("fairness.answered_expired", slot=slots.code(slot))
    if latest.answer is not None:
        raise Conflict(f"fairness.answered_{latest.answer}", slot=slots.code(slot))
    return latest


def take(session: Session, config: Config, member: Member, slot: Slot, now: datetime) -> CoopError | None:
    """Take the offered seat by the rules of `/signup`; a refusal closes the offer and moves it on.

    Returned rather than raised, so that closing the offer is kept when the seat is refused.
    """
    offer = offer_of(session, slot, member, now)
    try:
        slots.sign_up(session, config, member, slot, now)
    except CoopError as refused:
        answer(offer, WITHDRAWN, now)
        move_on(session, config, slot, now)
        return refused
    answer(offer, TAKEN, now)
    return None


def decline(session: Session, config: Config, member: Member, slot: Slot, now: datetime) -> None:
    """The member passes: the next one in the ranking is asked at once."""
    answer(offer_of(session, slot, member, now), DECLINED, now)
    move_on(session, config, slot, now)


# --- `/why S-31` ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    """A slot's story as `/why S-31` tells it: who published it, who rides it, every offer."""

    slot: Slot
    publisher: str
    riders: list[str]
    offers: list[SlotOffer]
    names: dict[int, str]
    rules: FillRules
    reasons: list[tuple[str, str]]


def story(session: Session, config: Config, slot: Slot, now: datetime) -> Story:
    rules = rules_in_force(session, config, now)
    offers = list(session.scalars(select(SlotOffer).where(SlotOffer.slot_id == slot.id).order_by(SlotOffer.id)))
    ids = {offer.member_id for offer in offers} | {slot.created_by}
    names = dict(session.execute(select(Member.id, Member.name).where(Member.id.in_(ids))).all())
    riders = [member.name for member in slots.signed_members(session, slot)]
    return Story(slot, names.get(slot.created_by, ""), riders, offers, names, rules,
                 rules.rule.reasons(slot, config.coop.tz))  # fmt: skip
