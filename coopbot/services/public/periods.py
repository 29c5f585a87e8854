"""Each closed period's figures, and its share chart drawn for the public.

The figures are the summary the co-op's rooms got at the close
(`notices.summary_text`), from the totals the close stored: income,
expenses, base pay, threshold, the three buckets, the dividend and how many
members shared it. The chart is the rooms' chart with every bar labelled by
member number instead of name; members who asked to be left out of the
charts (`/hide`) are left out here too, and the text alternative only
says how many are not shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from coopbot.charts import MAX_BARS, Bar, shares_png
from coopbot.config import Config
from coopbot.i18n import t
from coopbot.models import Allocation, Member, Period
from coopbot.money import format_pct
from coopbot.services.money.notices import Words, summary_text
from coopbot.services.money.shares import share_bp
from coopbot.services.public.records import public_name
from coopbot.states import PeriodStatus

CLOSED_PERIODS = 12


@dataclass(frozen=True)
class PeriodFigures:
    label: str
    #: The summary as the rooms read it at the close: its title first.
    lines: tuple[str, ...]
    #: The chart's text alternative; empty when there is no chart (nobody had points).
    chart_alt: str


@dataclass(frozen=True)
class Shares:
    """Who is drawn, largest share first, and how many asked not to be."""

    bars: list[Bar]
    hidden: int


def closed_periods(session: Session, config: Config, lang: str, limit: int = CLOSED_PERIODS) -> list[PeriodFigures]:
    """The latest closed periods, the latest first, each with its figures and chart text."""
    periods = session.scalars(
        select(Period).where(Period.status == PeriodStatus.CLOSED).order_by(Period.ends_at.desc()).limit(limit)
    )
    found = []
    for period in periods:
        words = Words(config, period, lang)
        lines = summary_text(words, period).split("\n")
        shares = public_shares(session, period, words)
        alt = chart_alt(lang, period.label, shares) if shares.bars else ""
        found.append(PeriodFigures(period.label, tuple(lines), alt))
    return found


def closed_period(session: Session, label: str) -> Period | None:
    return session.scalars(
        select(Period).where(Period.label == label, Period.status == PeriodStatus.CLOSED)
    ).one_or_none()


def public_shares(session: Session, period: Period, words: Words) -> Shares:
    """Each sharing member's part of the points, by number, without those who hide."""
    total = words.outcome.total_points
    if total <= 0:
        return Shares([], 0)
    sharing = session.execute(
        select(Allocation.points_milli, Allocation.dividend_cents, Member)
        .join(Member, Member.id == Allocation.member_id)
        .where(Allocation.period_id == period.id, Allocation.points_milli > 0)
        .order_by(Member.id)
    ).all()
    bars = [
        Bar(public_name(member, words.lang), share_bp(points, total), words.money(dividend) if dividend else "")
        for points, dividend, member in sharing
        if not member.hide_in_charts
    ]
    bars.sort(key=lambda bar: (-bar.share_bp, bar.name))
    return Shares(bars, len(sharing) - len(bars))


def chart_alt(lang: str, label: str, shares: Shares) -> str:
    """The chart in words, for whoever does not see it: each share as drawn, then how many hide."""
    shown = shares.bars[:MAX_BARS]
    parts = [t(lang, "public.chart_share", name=bar.name, share=format_pct(bar.share_bp, lang)) for bar in shown]
    rest = shares.bars[MAX_BARS:]
    if rest:
        others = t(lang, "ledger.chart_others", count=len(rest))
        parts.append(t(lang, "public.chart_share", name=others, share=format_pct(sum(b.share_bp for b in rest), lang)))
    text = t(lang, "public.chart_alt", period=label, shares="; ".join(parts))
    if shares.hidden:
        text += " " + t(lang, "ledger.chart_hidden", count=shares.hidden)
    return text


def share_chart(session: Session, config: Config, label: str, lang: str) -> bytes | None:
    """The PNG of a closed period's shares as the public sees them; None when there is none."""
    period = closed_period(session, label)
    if period is None:
        return None
    words = Words(config, period, lang)
    shares = public_shares(session, period, words)
    if not shares.bars:
        return None
    return shares_png(
        shares.bars,
        title=t(lang, "ledger.chart_title", period=period.label),
        ylabel=t(lang, "ledger.chart_ylabel"),
        others_label=lambda count: t(lang, "ledger.chart_others", count=count),
        footnote=t(lang, "ledger.chart_hidden", count=shares.hidden) if shares.hidden else "",
    )
