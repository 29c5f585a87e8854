"""Files for the co-op's accountants: the ledger and the allocations as CSV.

UTF-8, one header line, one row per entry; amounts are plain decimals with
two places ("1250.00") and points with three, so a spreadsheet reads them as
numbers whatever its language. Times are in the co-op's timezone, with their
offset.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from coopbot.config import Config
from coopbot.errors import UsageError
from coopbot.models import Allocation, LedgerEntry, Member, Period
from coopbot.money import plain_amount, plain_milli
from coopbot.services.money.shares import FULL_BP, share_bp

LEDGER_HEADER: tuple[str, ...] = (
    "period",
    "entry",
    "date",
    "kind",
    "amount",
    "currency",
    "member_id",
    "member",
    "note",
    "source",
    "recorded_by",
)
ALLOCATION_HEADER: tuple[str, ...] = (
    "period",
    "member_id",
    "member",
    "points",
    "share_pct",
    "dividend",
    "base_pay",
    "total",
    "currency",
    "paid",
)


def periods_named(session: Session, label: str | None) -> list[Period]:
    query = select(Period).order_by(Period.starts_at)
    if label is not None:
        query = query.where(Period.label == label.strip())
    found = list(session.scalars(query))
    if label is not None and not found:
        known = ", ".join(p.label for p in session.scalars(select(Period).order_by(Period.starts_at)))
        raise UsageError("ledger.export_no_period", period=label[:30], known=known or "-")
    return found


def ledger_rows(session: Session, config: Config, label: str | None = None) -> Iterator[tuple[str, ...]]:
    """The money recorded in each period, then, once it is closed, each member's
    base pay as an expense line (kept in their allocation, listed here)."""
    tz = config.coop.tz
    recorder = aliased(Member)
    for period in periods_named(session, label):
        rows = session.execute(
            select(LedgerEntry, Member.name, recorder.name)
            .outerjoin(Member, Member.id == LedgerEntry.member_id)
            .outerjoin(recorder, recorder.id == LedgerEntry.created_by)
            .where(LedgerEntry.period_id == period.id)
            .order_by(LedgerEntry.id)
        )
        for entry, member_name, recorder_name in rows:
            yield (
                period.label,
                str(entry.id),
                entry.created_at.astimezone(tz).isoformat(timespec="seconds"),
                entry.kind,
                plain_amount(entry.amount_cents),
                config.coop.currency,
                str(entry.member_id or ""),
                member_name or "",
                entry.note,
                entry.source_ref or "",
                recorder_name or "",
            )
        yield from base_pay_rows(session, config, period)


def base_pay_rows(session: Session, config: Config, period: Period) -> Iterator[tuple[str, ...]]:
    if period.closed_at is None:
        return
    closed = period.closed_at.astimezone(config.coop.tz).isoformat(timespec="seconds")
    rows = session.execute(
        select(Allocation.member_id, Allocation.base_pay_cents, Member.name)
        .join(Member, Member.id == Allocation.member_id)
        .where(Allocation.period_id == period.id, Allocation.base_pay_cents != 0)
        .order_by(Allocation.member_id)
    )
    for member_id, cents, name in rows:
        yield (
            period.label,
            "",
            closed,
            "base_pay",
            plain_amount(cents),
            config.coop.currency,
            str(member_id),
            name,
            "",
            f"base_pay:{period.id}:{member_id}",
            "",
        )


def allocation_rows(session: Session, config: Config, label: str | None = None) -> Iterator[tuple[str, ...]]:
    for period in periods_named(session, label):
        total = int(period.totals.get("total_points_milli", 0))
        rows = session.execute(
            select(Allocation, Member.name)
            .join(Member, Member.id == Allocation.member_id)
            .where(Allocation.period_id == period.id)
            .order_by(Allocation.member_id)
        )
        for allocation, name in rows:
            bp = share_bp(allocation.points_milli, total) if allocation.points_milli > 0 else 0
            yield (
                period.label,
                str(allocation.member_id),
                name,
                plain_milli(allocation.points_milli),
                f"{bp // 100}.{bp % 100:02d}" if bp < FULL_BP else "100.00",
                plain_amount(allocation.dividend_cents),
                plain_amount(allocation.base_pay_cents),
                plain_amount(allocation.dividend_cents + allocation.base_pay_cents),
                config.coop.currency,
                "yes" if allocation.paid else "no",
            )


def write_csv(out: TextIO, header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> int:
    writer = csv.writer(out)
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count
