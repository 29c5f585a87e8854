"""What the close says: each member's share in their language, the summary
and the chart for the co-op's rooms.

The messages are queued in the close's own transaction, so a crash either
loses the whole close (it runs again) or keeps every message (each one is
delivered once, by key). Member messages go through `outbox.queue_many`
in one batch: for a 10,000-member co-op a per-message round trip would
dominate the close.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from coopbot.charts import Bar, shares_png
from coopbot.chat import Outgoing
from coopbot.config import Config
from coopbot.i18n import t
from coopbot.models import Member, Period
from coopbot.money import format_milli, format_money, format_pct
from coopbot.outbox import Notice, queue_many, queue_to_rooms, recipients
from coopbot.services.shares import Outcome, Terms, share_bp

if TYPE_CHECKING:
    from coopbot.services.periods import Plan, Share


def date_range(period: Period, config: Config) -> tuple[str, str]:
    tz = config.coop.tz
    last = period.ends_at - timedelta(microseconds=1)
    return f"{period.starts_at.astimezone(tz):%Y-%m-%d}", f"{last.astimezone(tz):%Y-%m-%d}"


class Words:
    """The co-op's figures, formatted once per language for thousands of messages."""

    def __init__(self, config: Config, period: Period, terms: Terms, outcome: Outcome, lang: str) -> None:
        self.lang = lang
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


def member_text(words: Words, outcome: Outcome, share: Share) -> str:
    lang = words.lang
    tally = share.tally
    lines = [
        words.title,
        t(
            lang,
            "ledger.close_points",
            points=format_milli(tally.points, lang),
            total=words.total_points,
            share=format_pct(share_bp(tally.points, outcome.total_points), lang),
        ),
    ]
    if tally.adjustments:
        lines.append(t(lang, "ledger.close_adjustments", points=format_milli(tally.adjustments, lang)))
    lines.append(t(lang, "ledger.close_dividend", amount=words.money(share.dividend)))
    if share.base_pay:
        lines.append(
            t(
                lang,
                "ledger.close_base_pay",
                amount=words.money(share.base_pay),
                hours=format_milli(tally.hours, lang, places=2),
                deliveries=format_milli(tally.deliveries, lang),
            )
        )
        lines.append(t(lang, "ledger.close_total", amount=words.money(share.base_pay + share.dividend)))
    if share.pending:
        lines.append(t(lang, "ledger.close_pending", count=share.pending))
    if words.nothing:
        lines.append(words.nothing)
    lines.append(words.figures)
    return "\n".join(lines)


def summary_text(words: Words, plan: Plan) -> str:
    lines = [words.title]
    if plan.outcome.distributed:
        lines.append(
            t(
                words.lang,
                "ledger.close_summary_members",
                count=plan.sharing_members,
                dividend=words.money(plan.outcome.distributed),
                total=words.total_points,
            )
        )
    if words.nothing:
        lines.append(words.nothing)
    lines.append(words.figures)
    lines.append(t(words.lang, "ledger.close_summary_private"))
    return "\n".join(lines)


def chart(plan: Plan, words: Words) -> bytes | None:
    """The shares of the points, without the members who asked to be hidden."""
    total = plan.outcome.total_points
    if total <= 0:
        return None
    sharing = [share for share in plan.shares if share.tally.points > 0]
    hidden = sum(1 for share in sharing if share.hidden)
    bars = [
        Bar(share.name, share_bp(share.tally.points, total), words.money(share.dividend) if share.dividend else "")
        for share in sharing
        if not share.hidden
    ]
    if not bars:
        return None
    lang = words.lang
    return shares_png(
        bars,
        title=t(lang, "ledger.chart_title", period=plan.period.label),
        ylabel=t(lang, "ledger.chart_ylabel"),
        others_label=lambda count: t(lang, "ledger.chart_others", count=count),
        footnote=t(lang, "ledger.chart_hidden", count=hidden) if hidden else "",
    )


def queue_close(session: Session, config: Config, plan: Plan, now: datetime) -> int:
    """Queue every member's message and the rooms' summary; returns how many rows."""
    default = config.coop.default_language
    words: dict[str, Words] = {}

    def words_in(lang: str) -> Words:
        if lang not in words:
            words[lang] = Words(config, plan.period, plan.terms, plan.outcome, lang)
        return words[lang]

    key = f"period:{plan.period.id}"
    told = recipients(session, Member.active.is_(True))
    notices: list[Notice] = [
        (
            told[share.member_id],
            f"{key}:share:m{share.member_id}",
            Outgoing(member_text(words_in(share.language or default), plan.outcome, share)),
        )
        for share in plan.shares
        if share.active and share.member_id in told
    ]
    stored = queue_many(session, notices, now)
    room_words = words_in(default)
    png = chart(plan, room_words)
    attachment = (f"shares-{plan.period.label}.png", png, "image/png") if png else None
    summary = Outgoing(summary_text(room_words, plan), attachment=attachment)
    return stored + queue_to_rooms(session, config, f"{key}:summary", summary, now)
