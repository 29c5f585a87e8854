"""What the close says: each member's share in their language, the summary
and the chart for the co-op's rooms.

The close only queues the rows, in its own transaction, so a crash either
loses the whole close (it runs again) or keeps every message (each one is
delivered once, by key). Each text is written when it is sent, by the
renderers below, from the rows the close stored: a 10,000-member close
then formats nothing, and a member who switched language since reads
their share in the new one. `/share PERIOD` shows the same words.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from coopbot.charts import Bar, shares_png
from coopbot.chat import Outgoing
from coopbot.config import Config
from coopbot.i18n import t
from coopbot.models import Allocation, Member, OutboxMessage, Period
from coopbot.money import format_milli, format_money, format_pct
from coopbot.outbox import queue_rendered, queue_to_rooms, renderer
from coopbot.services.members.accounts import shown_name
from coopbot.services.money import statements
from coopbot.services.money.shares import Outcome, Terms, share_bp
from coopbot.services.money.work import pending_counts, tally_of

if TYPE_CHECKING:
    from coopbot.services.money.close import Plan

SHARE = "period_share"
SUMMARY = "period_summary"


def date_range(period: Period, config: Config) -> tuple[str, str]:
    tz = config.coop.tz
    last = period.ends_at - timedelta(microseconds=1)
    return f"{period.starts_at.astimezone(tz):%Y-%m-%d}", f"{last.astimezone(tz):%Y-%m-%d}"


class Words:
    """A closed period's figures in one language, from what its close stored."""

    def __init__(self, config: Config, period: Period, lang: str) -> None:
        terms, outcome = Terms.from_snapshot(period.settings), Outcome.from_totals(period.totals)
        self.lang = lang
        self.outcome = outcome
        self.currency = config.coop.currency
        start, end = date_range(period, config)
        self.title = t(lang, "ledger.close_title", period=period.label, start=start, end=end)
        self.total_points = format_milli(outcome.total_points, lang)
        self.figures = figures_text(terms, outcome, lang, self.currency)
        self.nothing = nothing_text(outcome, lang, self.currency)

    def money(self, cents: int) -> str:
        return format_money(cents, self.currency, self.lang)


def figures_text(terms: Terms, outcome: Outcome, lang: str, currency: str) -> str:
    def m(cents: int) -> str:
        return format_money(cents, currency, lang)

    buckets = outcome.buckets
    return t(
        lang,
        "ledger.close_figures",
        income=m(outcome.income),
        expenses=m(outcome.expenses),
        base_pay=m(outcome.base_pay),
        net=m(outcome.net),
        threshold=m(outcome.threshold),
        surplus=m(outcome.surplus),
        reserve=m(buckets.legal_reserve),
        reserve_pct=format_pct(terms.legal_reserve_bp, lang),
        fund=m(buckets.development_fund),
        fund_pct=format_pct(terms.development_fund_bp, lang),
        dividend=m(buckets.dividend),
        dividend_pct=format_pct(terms.dividend_bp, lang),
        total=format_milli(outcome.total_points, lang),
    )


def nothing_text(outcome: Outcome, lang: str, currency: str) -> str:
    if not outcome.nothing_because:
        return ""
    return t(
        lang,
        f"ledger.close_nothing_{outcome.nothing_because}",
        net=format_money(outcome.net, currency, lang),
        threshold=format_money(outcome.threshold, currency, lang),
        dividend=format_money(outcome.buckets.dividend, currency, lang),
    )


def share_text(session: Session, config: Config, period: Period, allocation: Allocation, lang: str) -> str:
    """A member's share of a closed period with the whole calculation: the close's
    message to them, and `/share PERIOD` later (the same words, from the same rows)."""
    words = Words(config, period, lang)
    tally = tally_of(session, period.id, allocation.member_id)
    pending = pending_counts(session, period.id, allocation.member_id).get(allocation.member_id, 0)
    dividend, base_pay = allocation.dividend_cents, allocation.base_pay_cents
    lines = [
        words.title,
        t(
            lang,
            "ledger.close_points",
            points=format_milli(allocation.points_milli, lang),
            total=words.total_points,
            share=format_pct(share_bp(allocation.points_milli, words.outcome.total_points), lang),
        ),
    ]
    if tally.adjustments:
        lines.append(t(lang, "ledger.close_adjustments", points=format_milli(tally.adjustments, lang)))
    lines.append(t(lang, "ledger.close_dividend", amount=words.money(dividend)))
    if base_pay:
        lines.append(
            t(
                lang,
                "ledger.close_base_pay",
                amount=words.money(base_pay),
                hours=format_milli(tally.hours, lang, places=2),
                deliveries=format_milli(tally.deliveries, lang),
            )
        )
        lines.append(t(lang, "ledger.close_total", amount=words.money(base_pay + dividend)))
    if pending:
        lines.append(t(lang, "ledger.close_pending", count=pending))
    if words.nothing:
        lines.append(words.nothing)
    lines.append(words.figures)
    return "\n".join(lines)


def allocation_of(session: Session, period_id: int, member_id: int) -> Allocation | None:
    """What a closed period gave one member; None if they were not in it."""
    return session.scalars(
        select(Allocation).where(Allocation.period_id == period_id, Allocation.member_id == member_id)
    ).first()


def shares_of(session: Session, member_id: int, limit: int) -> list[tuple[Allocation, Period]]:
    """A member's shares of the closed periods, the latest first: only a close writes them."""
    rows = session.execute(
        select(Allocation, Period)
        .join(Period, Period.id == Allocation.period_id)
        .where(Allocation.member_id == member_id)
        .order_by(Period.ends_at.desc())
        .limit(limit)
    )
    return [(allocation, period) for allocation, period in rows]


def summary_text(words: Words, period: Period) -> str:
    lines = [words.title]
    distributed = int(period.totals.get("distributed", 0))
    if distributed:
        lines.append(
            t(
                words.lang,
                "ledger.close_summary_members",
                count=int(period.totals.get("sharing_members", 0)),
                dividend=words.money(distributed),
                total=words.total_points,
            )
        )
    if words.nothing:
        lines.append(words.nothing)
    lines.append(words.figures)
    lines.append(t(words.lang, "ledger.close_summary_private"))
    return "\n".join(lines)


def chart(session: Session, period: Period, words: Words) -> bytes | None:
    """The shares of the points, without the members who asked to be hidden."""
    total = words.outcome.total_points
    if total <= 0:
        return None
    sharing = session.execute(
        select(Allocation.points_milli, Allocation.dividend_cents, Member)
        .join(Member, Member.id == Allocation.member_id)
        .where(Allocation.period_id == period.id, Allocation.points_milli > 0)
    ).all()
    lang = words.lang
    bars = [
        Bar(shown_name(member, lang), share_bp(points, total), words.money(dividend) if dividend else "")
        for points, dividend, member in sharing
        if not member.hide_in_charts
    ]
    if not bars:
        return None
    hidden = len(sharing) - len(bars)
    return shares_png(
        bars,
        title=t(lang, "ledger.chart_title", period=period.label),
        ylabel=t(lang, "ledger.chart_ylabel"),
        others_label=lambda count: t(lang, "ledger.chart_others", count=count),
        footnote=t(lang, "ledger.chart_hidden", count=hidden) if hidden else "",
    )


def queue_close(session: Session, config: Config, plan: Plan, now: datetime) -> int:
    """Queue every active member's share message and the rooms' summary; returns how many rows.

    Only the rows are written here, in the close's transaction: each text (and
    the chart) is written when it is sent, from the allocations this same
    transaction stores, so a 10,000-member close formats nothing.
    """
    period_id = plan.period.id
    key = f"period:{period_id}"
    allocated = select(Allocation.member_id).where(Allocation.period_id == period_id)
    stored = queue_rendered(session, allocated, f"{key}:share", f"{SHARE}:{period_id}", now)
    stored += statements.queue_statements(session, config, plan.period, now)
    return stored + queue_to_rooms(
        session, config, f"{key}:summary", Outgoing(""), now, render=f"{SUMMARY}:{period_id}"
    )


@renderer(SHARE)
def _share_message(session: Session, config: Config, argument: str, row: OutboxMessage) -> Outgoing:
    period = session.get_one(Period, int(argument))
    allocation = allocation_of(session, period.id, row.member_id) if row.member_id is not None else None
    if allocation is None:
        raise LookupError(f"no share of period {period.label} for outbox message {row.id}")
    member = session.get_one(Member, allocation.member_id)
    return Outgoing(share_text(session, config, period, allocation, member.language or config.coop.default_language))


@renderer(SUMMARY)
def _summary_message(session: Session, config: Config, argument: str, row: OutboxMessage) -> Outgoing:
    period = session.get_one(Period, int(argument))
    words = Words(config, period, config.coop.default_language)
    png = chart(session, period, words)
    attachment = (f"shares-{period.label}.png", png, "image/png") if png else None
    return Outgoing(summary_text(words, period), attachment=attachment)
