"""What each customer owes for a period: the orders delivered in it, and the total.

A delivered order's price is income of the period it was delivered in, once
(`ledger.record_delivery` writes one income row per job). A statement reads
those rows, so the customer's total and the co-op's books can never
disagree. At each close every customer with an order delivered in the
period gets their statement in the chat; the treasurer exports the same
lines as CSV for invoicing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from babel.dates import format_skeleton
from sqlalchemy import String, cast, literal, select
from sqlalchemy.orm import Session

from coopbot.chat import Outgoing
from coopbot.config import Config
from coopbot.i18n import t
from coopbot.models import Job, LedgerEntry, Member, Period
from coopbot.money import format_money, plain_amount
from coopbot.outbox import queue_to_member
from coopbot.services.dispatch.parsing import job_code

CSV_HEADER = ("order", "delivered_at", "pickup", "dropoff", "amount", "currency")


@dataclass(frozen=True)
class Line:
    job: Job
    delivered_at: datetime
    cents: int


def lines(session: Session, period_id: int, customer_id: int | None = None) -> list[Line]:
    """The orders delivered in a period (one customer's, or every customer's), oldest first."""
    query = (
        select(Job, LedgerEntry.created_at, LedgerEntry.amount_cents)
        .join(LedgerEntry, LedgerEntry.source_ref == literal("job:").concat(cast(Job.id, String)))
        .where(LedgerEntry.period_id == period_id, LedgerEntry.kind == "income", Job.customer_id.is_not(None))
        .order_by(LedgerEntry.created_at, Job.id)
    )
    if customer_id is not None:
        query = query.where(Job.customer_id == customer_id)
    return [Line(job, at, cents) for job, at, cents in session.execute(query)]


def statement_text(config: Config, lang: str, period: Period, found: list[Line]) -> str:
    currency = config.coop.currency
    shown = [
        t(lang, "orders.statement_line", job=job_code(line.job.id), day=_day(config, lang, line.delivered_at),
          dropoff=line.job.dropoff, price=format_money(line.cents, currency, lang))
        for line in found
    ]  # fmt: skip
    total = format_money(sum(line.cents for line in found), currency, lang)
    head = t(lang, "orders.statement", period=period.label, count=len(found), total=total)
    return "\n".join([head, *shown])


def _day(config: Config, lang: str, moment: datetime) -> str:
    return format_skeleton("MMMd", moment.astimezone(config.coop.tz), locale=lang)


def queue_statements(session: Session, config: Config, period: Period, now: datetime) -> int:
    """At the close: each customer's statement, once (keyed by period and customer)."""
    by_customer: dict[int, list[Line]] = {}
    for line in lines(session, period.id):
        assert line.job.customer_id is not None
        by_customer.setdefault(line.job.customer_id, []).append(line)
    queued = 0
    for customer_id, found in sorted(by_customer.items()):
        customer = session.get(Member, customer_id)
        if customer is None or not customer.active:
            continue
        lang = customer.language or config.coop.default_language
        text = statement_text(config, lang, period, found)
        queued += queue_to_member(session, customer, f"statement:{period.id}:{customer_id}", Outgoing(text), now)
    return queued


def orders_csv(config: Config, found: list[Line]) -> str:
    """One header line, UTF-8, amounts with two decimals: what an invoicing tool reads."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for line in found:
        delivered = line.delivered_at.astimezone(config.coop.tz).strftime("%Y-%m-%d %H:%M")
        writer.writerow((job_code(line.job.id), delivered, line.job.pickup, line.job.dropoff,
                         plain_amount(line.cents), config.coop.currency))  # fmt: skip
    return out.getvalue()
