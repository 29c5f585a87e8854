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

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, bindparam, case, cast, func, literal_column, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from coopbot.charts import MAX_BARS, Bar, shares_png
from coopbot.chat import Outgoing
from coopbot.config import Config
from coopbot.i18n import t
from coopbot.models import Allocation, Contribution, Member, OutboxMessage, Period
from coopbot.money import format_milli, format_money, format_pct
from coopbot.outbox import queue_rendered, queue_to_rooms, renderer
from coopbot.services.members.accounts import shown_name
from coopbot.services.money import statements
from coopbot.services.money.shares import Outcome, Terms, share_bp
from coopbot.states import ContributionStatus, PeriodStatus
from coopbot.storage import claim_read, rows_read
from coopbot.storage.statements import AnySelect

if TYPE_CHECKING:
    from coopbot.services.money.close import Plan

SHARE = "period_share"
SUMMARY = "period_summary"
#: Closed periods' words kept at once (`words_of`): a close's messages need one per language.
MOST_WORDS = 16
_WORDS: dict[tuple[Any, ...], Words] = {}


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


@dataclass(frozen=True)
class ShareFigures:
    """One member's numbers in a closed period's share message: their allocation and their work."""

    points_milli: int
    dividend_cents: int
    base_pay_cents: int
    #: Approved points that correct entries of earlier periods.
    adjustments: int
    hours: int
    deliveries: int
    #: Entries still waiting for a coordinator.
    pending: int


#: Numbers written into the statement, and its constants as named parameters (`_CONSTANTS`):
#: it is read on the driver's cursor (`share_figures`), which knows only the parameters passed.
_ZERO: ColumnElement[int] = literal_column("0")
_ONE: ColumnElement[int] = literal_column("1")
_CONSTANTS = {"approved": ContributionStatus.APPROVED.value, "pending": ContributionStatus.PENDING.value,
              "shift": "shift", "delivery": "delivery"}  # fmt: skip


def _approved(value: Any) -> Any:
    return func.coalesce(func.sum(case((Contribution.status == bindparam("approved"), value), else_=_ZERO)), _ZERO)


def _of_kind(kind: str) -> Any:
    return _approved(case((Contribution.kind == bindparam(kind), Contribution.quantity_milli), else_=_ZERO))


def _work_columns() -> list[Any]:
    """A member's work in a period, as a share message shows it: approved corrections, hours, deliveries, pending."""
    return [
        _approved(case((Contribution.corrects_id.is_not(None), Contribution.points_milli), else_=_ZERO))
        .label("adjusted"),
        _of_kind("shift").label("hours"),
        _of_kind("delivery").label("deliveries"),
        func.coalesce(func.sum(case((Contribution.status == bindparam("pending"), _ONE), else_=_ZERO)), _ZERO)
        .label("pending"),
    ]  # fmt: skip


_WORK = (
    select(*_work_columns())
    .where(Contribution.member_id == bindparam("member"), Contribution.period_id == bindparam("period"))
    .subquery()
)
#: The period's columns a share message's words are kept under (`words_of`): its stored
#: figures as their JSON text.
_PERIOD = (Period.label, Period.status, cast(Period.totals, Text), cast(Period.settings, Text))
#: Built once: it runs for every share message, 10,000 of them after a big co-op's close.
SHARE_ROW = (
    select(Allocation.points_milli, Allocation.dividend_cents, Allocation.base_pay_cents, Member.language,
           _WORK.c.adjusted, _WORK.c.hours, _WORK.c.deliveries, _WORK.c.pending, *_PERIOD)
    .join_from(Allocation, Member, Member.id == Allocation.member_id)
    .join(Period, Period.id == Allocation.period_id)
    .join(_WORK, true())
    .where(Allocation.period_id == bindparam("period"), Allocation.member_id == bindparam("member"))
)  # fmt: skip
#: `share_rows` statements by how many members they read.
_SHARE_ROWS: dict[int, AnySelect] = {}
#: The most members one statement reads (`share_figures_many`): far over a delivery pass's rows.
MOST_SHARES = 256


def share_rows(size: int) -> AnySelect:
    """`SHARE_ROW` for `size` members at once, each row led by its member's id; built once per size.

    The members are `size` parameters of their own (`member0`…), not an expanding
    list: SQLAlchemy rewrites an expanding list at each execution, which cost a
    quarter of the statement's CPU (PostgreSQL, 3 members: 200–260 µs, 150–190 µs
    like this). The allocations are found by member, never by period
    (`period_id + 0` keeps the planner off that index): just after a close
    PostgreSQL has no statistics for the period's new rows, guessed a few dozen,
    and read all 10,000 to keep 30 (5–8 ms a statement with the plan it settles
    on once prepared; 0.8 ms by member).
    """
    statement = _SHARE_ROWS.get(size)
    if statement is None:
        members: list[BindParameter[int]] = [bindparam(f"member{number}") for number in range(size)]
        works = (
            select(Contribution.member_id, *_work_columns())
            .where(Contribution.member_id.in_(members), Contribution.period_id == bindparam("period"))
            .group_by(Contribution.member_id)
            .subquery()
        )
        statement = _SHARE_ROWS[size] = (
            select(Allocation.member_id, Allocation.points_milli, Allocation.dividend_cents, Allocation.base_pay_cents,
                   Member.language, *(func.coalesce(column, _ZERO) for column in list(works.c)[1:]), *_PERIOD)
            .join_from(Allocation, Member, Member.id == Allocation.member_id)
            .join(Period, Period.id == Allocation.period_id)
            .outerjoin(works, works.c.member_id == Allocation.member_id)
            .where(Allocation.member_id.in_(members), Allocation.period_id + _ZERO == bindparam("period"))
        )  # fmt: skip
    return statement


@dataclass(frozen=True)
class StoredPeriod:
    """A period as its words are kept: what they are written from, as stored."""

    id: int
    label: str
    status: str
    totals: str
    settings: str

    @classmethod
    def of(cls, period: Period) -> StoredPeriod:
        return cls(period.id, period.label, period.status, json.dumps(period.totals, sort_keys=True),
                   json.dumps(period.settings, sort_keys=True))  # fmt: skip


Found = tuple[ShareFigures, str | None, StoredPeriod]


def share_figures(session: Session, period_id: int, member_id: int) -> Found | None:
    """A member's share figures, their language and the period, in one statement; None if no share.

    Reason: written once per member when the outbox sends the close's messages,
    these were six statements through the ORM (the period, the allocation, the
    member, the period's tally by kind, the pending entries), most of a share
    message's cost. Here one statement, read on the driver's cursor as a tap's
    claim is (`coopbot.storage.claim_read`): all its values are numbers and
    text the driver gives as they are. Figure (CPU per message, 1,000 after a
    close, SQLite): 167 µs for this statement through SQLAlchemy's execution,
    86 µs on the cursor; a whole share message, about 10 ms before (mostly
    Babel and the ORM) and 0.26–0.31 ms now (`bench/period_close.py`).
    """
    row = claim_read(session.connection(), SHARE_ROW, {"period": period_id, "member": member_id, **_CONSTANTS})
    if row is None:
        return None
    return _found(period_id, row)


def share_figures_many(session: Session, period_id: int, member_ids: Collection[int]) -> dict[int, Found]:
    """`share_figures` for several members of one period, in one statement (up to
    `MOST_SHARES` of them): by member id, leaving out those with no share.

    Reason: after a close, the outbox writes the share messages of the rows each
    delivery pass starts together (`Renderers.render_all`, about 3 at a time on
    Telegram), and read one by one each was a round trip, which kept PostgreSQL
    over issue 20's target (`bench/period_close.py`). Read on the driver's
    cursor (`coopbot.storage.rows_read`), as `share_figures` is.
    """
    ids, found = sorted(set(member_ids)), dict[int, Found]()
    for first in range(0, len(ids), MOST_SHARES):
        chunk = ids[first : first + MOST_SHARES]
        params = {"period": period_id, **_CONSTANTS, **{f"member{n}": member for n, member in enumerate(chunk)}}
        for member_id, *rest in rows_read(session.connection(), share_rows(len(chunk)), params):
            found[int(member_id)] = _found(period_id, rest)
    return found


def _found(period_id: int, row: Sequence[Any]) -> Found:
    points, dividend, base_pay, language, adjusted, hours, deliveries, pending, *period = row
    figures = ShareFigures(int(points), int(dividend), int(base_pay), int(adjusted), int(hours), int(deliveries),
                           int(pending))  # fmt: skip
    return figures, language, StoredPeriod(period_id, *period)


def share_text(session: Session, config: Config, period: Period, allocation: Allocation, lang: str) -> str:
    """A member's share of a closed period with the whole calculation: the close's
    message to them, and `/share PERIOD` later (the same words, from the same rows)."""
    found = share_figures(session, period.id, allocation.member_id)
    if found is None:  # pragma: no cover - the caller read the allocation in this transaction
        raise LookupError(f"no share of period {period.label} for member {allocation.member_id}")
    return share_lines(words_of(session, config, period, lang), found[0])


def share_lines(words: Words, share: ShareFigures) -> str:
    lang = words.lang
    dividend, base_pay = share.dividend_cents, share.base_pay_cents
    lines = [
        words.title,
        t(
            lang,
            "ledger.close_points",
            points=format_milli(share.points_milli, lang),
            total=words.total_points,
            share=format_pct(share_bp(share.points_milli, words.outcome.total_points), lang),
        ),
    ]
    if share.adjustments:
        lines.append(t(lang, "ledger.close_adjustments", points=format_milli(share.adjustments, lang)))
    lines.append(t(lang, "ledger.close_dividend", amount=words.money(dividend)))
    if base_pay:
        lines.append(
            t(
                lang,
                "ledger.close_base_pay",
                amount=words.money(base_pay),
                hours=format_milli(share.hours, lang, places=2),
                deliveries=format_milli(share.deliveries, lang),
            )
        )
        lines.append(t(lang, "ledger.close_total", amount=words.money(base_pay + dividend)))
    if share.pending:
        lines.append(t(lang, "ledger.close_pending", count=share.pending))
    if words.nothing:
        lines.append(words.nothing)
    lines.append(words.figures)
    return "\n".join(lines)


def words_of(session: Session, config: Config, period: Period | StoredPeriod, lang: str) -> Words:
    """A closed period's words in one language, written once for all its members' messages.

    Reason: the title and the figures (a dozen amounts) are the same in every
    member's message of a language, and were half of each message's cost. A
    closed period never changes (corrections go to the next one), so they are
    kept, keyed by everything they are written from; an open period's are
    written afresh.
    """
    stored, whole = (period, None) if isinstance(period, StoredPeriod) else (StoredPeriod.of(period), period)
    if stored.status != PeriodStatus.CLOSED:
        return Words(config, whole or session.get_one(Period, stored.id), lang)
    key = (stored, lang, config.coop.currency, str(config.coop.tz))
    words = _WORDS.get(key)
    if words is None:
        if len(_WORDS) >= MOST_WORDS:
            _WORDS.clear()
        words = _WORDS[key] = Words(config, whole or session.get_one(Period, stored.id), lang)
    return words


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
    """The shares of the points, without the members who asked to be hidden.

    Only the largest shares get a bar of their own (`charts.MAX_BARS`); the
    others are one bar. So the members are read as plain rows, not loaded
    whole, and only the shown bars' dividends are written out: at 10,000
    members, loading them all and formatting every dividend cost seconds.
    """
    total = words.outcome.total_points
    if total <= 0:
        return None
    sharing = session.execute(
        select(Allocation.points_milli, Allocation.dividend_cents, Member.id, Member.name, Member.role,
               Member.hide_in_charts)
        .join(Member, Member.id == Allocation.member_id)
        .where(Allocation.period_id == period.id, Allocation.points_milli > 0)
    ).all()  # fmt: skip
    lang = words.lang
    shown = [
        (share_bp(points, total), shown_name(Member(id=member_id, name=name, role=role), lang), dividend)
        for points, dividend, member_id, name, role, hide in sharing
        if not hide
    ]
    if not shown:
        return None
    shown.sort(key=lambda bar: (-bar[0], bar[1]))  # as `shares_png` orders them: the first ones get a bar
    bars = [Bar(name, bp, words.money(dividend) if dividend and n < MAX_BARS else "")
            for n, (bp, name, dividend) in enumerate(shown)]  # fmt: skip
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


def _share_messages(
    session: Session, config: Config, argument: str, rows: Sequence[OutboxMessage]
) -> list[Outgoing | Exception]:
    """The share messages of one period's rows, their figures read in one statement."""
    found = share_figures_many(session, int(argument), {row.member_id for row in rows if row.member_id is not None})
    written: list[Outgoing | Exception] = []
    for row in rows:
        try:
            share = found.get(row.member_id) if row.member_id is not None else None
            written.append(_share_of(session, config, argument, row, share))
        except Exception as exc:  # this row's, not the others'
            written.append(exc)
    return written


@renderer(SHARE, many=_share_messages)
def _share_message(session: Session, config: Config, argument: str, row: OutboxMessage) -> Outgoing:
    found = share_figures(session, int(argument), row.member_id) if row.member_id is not None else None
    return _share_of(session, config, argument, row, found)


def _share_of(session: Session, config: Config, argument: str, row: OutboxMessage, found: Found | None) -> Outgoing:
    if found is None:
        raise LookupError(f"no share of period {argument} for outbox message {row.id}")
    share, language, period = found
    return Outgoing(share_lines(words_of(session, config, period, language or config.coop.default_language), share))


@renderer(SUMMARY)
def _summary_message(session: Session, config: Config, argument: str, row: OutboxMessage) -> Outgoing:
    period = session.get_one(Period, int(argument))
    words = Words(config, period, config.coop.default_language)
    png = chart(session, period, words)
    attachment = (f"shares-{period.label}.png", png, "image/png") if png else None
    return Outgoing(summary_text(words, period), attachment=attachment)
