"""The co-op's money tables: periods, work, the ledger, shares and the funds.

Kept apart from `coopbot.models` (which re-exports them) only so that each
module stays readable in one sitting; they are the same metadata and the same
rules: money in integer cents, points in integer thousandths, times in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from coopbot.columns import StateColumn
from coopbot.models import Base
from coopbot.states import ContributionStatus, PeriodStatus


class Period(Base):
    __tablename__ = "period"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(30), unique=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[PeriodStatus] = mapped_column(StateColumn(PeriodStatus), default=PeriodStatus.OPEN)
    #: Percentages, weights, threshold and base pay in force for this period.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    closed_at: Mapped[datetime | None]
    totals: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Shift(Base):
    __tablename__ = "shift"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    auto_closed: Mapped[bool] = mapped_column(Boolean, default=False)


class Contribution(Base):
    """A member's work, in points; never edited after its period closes."""

    __tablename__ = "contribution"
    #: A member's own entries in one period (their share message, /contrib), found
    #: without walking the whole period's.
    __table_args__ = (Index("ix_contribution_member_period", "member_id", "period_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    period_id: Mapped[int] = mapped_column(ForeignKey("period.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    quantity_milli: Mapped[int] = mapped_column(BigInteger)
    points_milli: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[ContributionStatus] = mapped_column(
        StateColumn(ContributionStatus), default=ContributionStatus.PENDING
    )
    #: job | shift | manual | vote | correction
    source: Mapped[str] = mapped_column(String(20))
    #: "hour" or "item": what `quantity_milli` counts.
    unit: Mapped[str] = mapped_column(String(10), default="item")
    #: e.g. "job:12" or "shift:3"; unique so a delivery counts once.
    source_ref: Mapped[str | None] = mapped_column(String(50), unique=True)
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("contribution.id"))
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    decided_at: Mapped[datetime | None]
    reject_reason: Mapped[str | None] = mapped_column(String(500))


class LedgerEntry(Base):
    """Money in or out of a period, in cents, as coordinators record it. Each
    member's base pay is kept in their allocation (the ledger export lists it)."""

    __tablename__ = "ledger_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("period.id"), index=True)
    #: income | expense
    kind: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(String(500), default="")
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    created_at: Mapped[datetime]
    source_ref: Mapped[str | None] = mapped_column(String(50), unique=True)


class Allocation(Base):
    __tablename__ = "allocation"
    #: Also the index a period's allocations are read by.
    __table_args__ = (UniqueConstraint("period_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("period.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    points_milli: Mapped[int] = mapped_column(BigInteger)
    dividend_cents: Mapped[int] = mapped_column(BigInteger)
    base_pay_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    paid: Mapped[bool] = mapped_column(Boolean, default=False)
    paid_at: Mapped[datetime | None]  #: the day it was paid (`coopbot payouts mark`), at noon UTC
    paid_method: Mapped[str | None] = mapped_column(String(10))  #: sepa, cash or other


# --- the co-op's funds ---------------------------------------------------------------


class FundSpending(Base):
    """Money taken out of a fund the co-op keeps, by a binding vote (`services.money.funds`).

    What the closes put into the funds is already in each period's totals;
    only what leaves them needs a row. One poll spends at most once.
    """

    __tablename__ = "fund_spending"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: development_fund (the legal reserve is never spent by a vote)
    fund: Mapped[str] = mapped_column(String(30))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    #: What it buys: the poll's question.
    purpose: Mapped[str] = mapped_column(String(500))
    payee: Mapped[str | None] = mapped_column(String(100))
    poll_id: Mapped[int | None] = mapped_column(ForeignKey("poll.id"), unique=True)
    spent_at: Mapped[datetime] = mapped_column(index=True)
