"""Swaps and giveaways: handing a seat on when life happens, never behind anyone's back.

`/swap S-31 Chloé` asks Chloé; the seat stays the asker's until she accepts,
and becomes hers only then, so nobody is left on a slot they did not agree
to: not Chloé (she said yes) and not the asker (they asked). `/giveaway S-31`
offers the seat to every member not riding that slot; the first to sign up
takes it and the giver is freed (`slots.sign_up`). Both work up to the start,
after the sign-off deadline too: that is what they are for.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from coopbot.chat import Button, Outgoing
from coopbot.config import Config
from coopbot.errors import Conflict, NotFound, UsageError
from coopbot.i18n import t
from coopbot.models import Member
from coopbot.models_rosters import Slot, SlotSignup
from coopbot.outbox import queue_to_member
from coopbot.services.members.accounts import is_customer, language_of
from coopbot.services.rosters.slots import (
    check_free,
    check_open,
    code,
    describe,
    seat_of,
    tell_free_members,
)


def stamp(now: datetime) -> str:
    """Part of a notice's key: a second ask after a decline is a new message, not a duplicate."""
    return f"{now.timestamp():.0f}"


def ask(session: Session, config: Config, asker: Member, slot: Slot, other: Member, now: datetime) -> None:
    """Ask `other` to take the asker's seat; they answer with a button or `/swap accept S-31`."""
    check_open(slot, now)
    seat = seat_of(session, slot, asker)
    if seat is None:
        raise Conflict("rosters.not_signed", slot=code(slot))
    if other.id == asker.id:
        raise UsageError("rosters.swap_self", slot=code(slot))
    if not other.active or is_customer(other):
        raise UsageError("rosters.swap_not_member", name=other.name)
    if seat_of(session, slot, other) is not None:
        raise Conflict("rosters.swap_already_on", name=other.name, slot=code(slot))
    seat.swap_to_id, seat.swap_asked_at = other.id, now
    lang = language_of(config, other)
    text = t(lang, "rosters.told_swap_asked", name=asker.name, slot=describe(slot, lang, config.coop.tz))
    buttons = (
        Button(t(lang, "rosters.button_accept"), f"/swap accept {code(slot)}", "👍"),
        Button(t(lang, "rosters.button_decline"), f"/swap decline {code(slot)}", "👎"),
    )
    queue_to_member(session, other, f"slot:{slot.id}:swap:{seat.id}:{stamp(now)}", Outgoing(text, buttons), now)


def asked_seat(session: Session, slot: Slot, member: Member) -> SlotSignup:
    """The seat on `slot` whose holder asked `member` to take it over."""
    seat = session.scalars(
        select(SlotSignup).where(SlotSignup.slot_id == slot.id, SlotSignup.swap_to_id == member.id)
        .order_by(SlotSignup.swap_asked_at).limit(1)
    ).one_or_none()  # fmt: skip
    if seat is None:
        raise NotFound("rosters.no_swap", slot=code(slot))
    return seat


def accept(session: Session, config: Config, member: Member, slot: Slot, now: datetime) -> Member:
    """The seat becomes `member`'s; returns the rider it freed, who is told."""
    seat = asked_seat(session, slot, member)
    check_open(slot, now)
    if seat_of(session, slot, member) is not None:
        raise Conflict("rosters.already_signed", slot=code(slot))
    check_free(session, slot, member)
    asker = session.get_one(Member, seat.member_id)
    seat.member_id, seat.signed_at = member.id, now
    seat.swap_to_id = seat.swap_asked_at = seat.given_away_at = None
    session.flush()
    lang = language_of(config, asker)
    text = t(lang, "rosters.told_swap_accepted", name=member.name, slot=describe(slot, lang, config.coop.tz))
    queue_to_member(session, asker, f"slot:{slot.id}:swapped:{seat.id}:{stamp(now)}", Outgoing(text), now)
    return asker


def decline(session: Session, config: Config, member: Member, slot: Slot, now: datetime) -> Member:
    """The seat stays its holder's, who is told; returns them."""
    seat = asked_seat(session, slot, member)
    asker = session.get_one(Member, seat.member_id)
    seat.swap_to_id = seat.swap_asked_at = None
    lang = language_of(config, asker)
    text = t(lang, "rosters.told_swap_declined", name=member.name, slot=describe(slot, lang, config.coop.tz))
    queue_to_member(session, asker, f"slot:{slot.id}:declined:{seat.id}:{stamp(now)}", Outgoing(text), now)
    return asker


def give_away(session: Session, config: Config, giver: Member, slot: Slot, now: datetime) -> int:
    """Offer the giver's seat to every member free at that time; how many were told."""
    check_open(slot, now)
    seat = seat_of(session, slot, giver)
    if seat is None:
        raise Conflict("rosters.not_signed", slot=code(slot))
    if seat.given_away_at is not None:
        raise Conflict("rosters.already_given", slot=code(slot))
    seat.given_away_at = now
    key = f"slot:{slot.id}:giveaway:{seat.id}:{stamp(now)}"
    return tell_free_members(session, config, slot, key, "rosters.told_giveaway", now, name=giver.name)
