"""The roster tables: the slots a co-op plans and who signed up for each.

Kept apart from `coopbot.models` (which imports them at its end, so Alembic
and `Base.metadata` see them) so that the planning area stays readable on its
own. Same rules as every table: times in UTC, the co-op's timezone applied
only when a member reads or types a time (`coopbot.services.rosters`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from coopbot.models import Base


class Slot(Base):
    """A stretch of time the co-op needs `seats` riders for (`S-31`); one row per day.

    A slot is never deleted: a cancelled one keeps its signups and says why,
    so whoever had planned their day around it can be told and can ask.
    """

    __tablename__ = "slot"

    id: Mapped[int] = mapped_column(primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    seats: Mapped[int] = mapped_column(Integer)
    #: A delivery zone the slot covers (`zone B`), None for the whole co-op.
    zone: Mapped[str | None] = mapped_column(String(30))
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[int] = mapped_column(ForeignKey("member.id"))
    created_at: Mapped[datetime]
    #: When members were told the slot was still short (`short_hours` before it): once only.
    short_told_at: Mapped[datetime | None]


class SlotSignup(Base):
    """One rider's seat on a slot: they said they would ride it.

    The swap columns hold a seat's pending change, so that nobody is ever
    put on a slot they did not agree to: the seat stays its holder's until
    the member asked accepts (`swap_to_id`), or until someone takes it up
    after its holder offered it to everyone (`given_away_at`).
    """

    __tablename__ = "slot_signup"
    __table_args__ = (UniqueConstraint("slot_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    signed_at: Mapped[datetime]
    #: The member asked to take this seat over (`/swap S-31 Chloé`), and when.
    swap_to_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    swap_asked_at: Mapped[datetime | None]
    #: The holder offered the seat to every member (`/giveaway S-31`): the first to sign up takes it.
    given_away_at: Mapped[datetime | None]
    #: When the slot started for this rider and they were set available: once only.
    started_at: Mapped[datetime | None]
    #: When the rider, not available 15 minutes into the slot, was asked where they are: once only.
    noshow_asked_at: Mapped[datetime | None]
    #: When the slot's work ended for this rider, and how many minutes they worked in it.
    ended_at: Mapped[datetime | None]
    worked_minutes: Mapped[int | None] = mapped_column(Integer)
    #: The shift contribution the slot's hours became in the ledger.
    contribution_id: Mapped[int | None] = mapped_column(ForeignKey("contribution.id"))


class SlotOffer(Base):
    """A seat on a short, unpopular slot offered to one member in turn (the fairness rule).

    Like a job's rotation offer: one member at a time, until `expires_at`,
    ranked by how few unpopular slots they took this period; `details` keeps
    the ranking as it stood, so `/why S-31` shows why this member came first.
    """

    __tablename__ = "slot_offer"

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    offered_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    #: taken | declined | expired | withdrawn; None while the offer stands.
    answer: Mapped[str | None] = mapped_column(String(20))
    answered_at: Mapped[datetime | None]
    #: The member's place in the ranking, counted from 1.
    rank: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any]]


class CalendarFeed(Base):
    """A member's private iCalendar address (`/calendar`): their own slots, or, for a
    coordinator, the whole roster. Only the token's hash is stored; the token is derived
    from the server key and `generation`, so `/calendar` can show the same address again,
    and `/calendar reset` (a new generation) makes the old one answer 404."""

    __tablename__ = "calendar_feed"
    __table_args__ = (UniqueConstraint("member_id", "scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    #: "mine" or "all".
    scope: Mapped[str] = mapped_column(String(10))
    generation: Mapped[int] = mapped_column(Integer, default=1)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
