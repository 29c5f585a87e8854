"""Work and money in chat: shifts, logged work, approvals, income and expenses,
the current period and each member's past shares.

Parsing and wording live here; the rules (who may approve what, how points
are counted, what a close gives) live in `coopbot.services.money`: `ledger`,
`shifts`, `periods` and `close`. Points and shares are personal, so the commands
that show them answer privately.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from coopbot.chat import Button, Outgoing
from coopbot.config import Config
from coopbot.errors import NotAllowed, UsageError
from coopbot.i18n import term
from coopbot.models import Allocation, Period
from coopbot.money import format_milli, format_money, format_pct, parse_amount, parse_quantity
from coopbot.services.members.accounts import at_least
from coopbot.services.money import ledger as svc
from coopbot.services.money import payouts, periods, shifts
from coopbot.services.money.close import plan_close
from coopbot.services.money.notices import allocation_of, nothing_text, share_text, shares_of
from coopbot.services.money.shares import share_bp
from coopbot.services.money.work import not_approved, pending_points, tally_of
from coopbot.services.refs import echo
from coopbot.services.rosters.worked import SlotHours, slot_hours
from coopbot.states import ContributionStatus, PeriodStatus, Role
from handlers.registry import Context, Reply, command

MAX_PENDING_SHOWN = 20
MAX_SHARES_SHOWN = 12
AMOUNT_HEAD = re.compile(r"^[€$£]?[0-9]{1,3}$")
AMOUNT_GROUP = re.compile(r"^[0-9]{3}([.,][0-9]{1,2})?[€$£]?$")
CORRECTS = ("--corrects", "--corrige")


def money(ctx: Context, cents: int) -> str:
    return format_money(cents, ctx.config.coop.currency, ctx.lang)


def points(ctx: Context, milli: int) -> str:
    return format_milli(milli, ctx.lang)


# --- shifts --------------------------------------------------------------------------


@command("shift", area="ledger", aliases=("service",))
def shift(ctx: Context) -> Reply:
    args = ctx.expect_args(0, 2)
    me = ctx.me
    if not args:
        running = shifts.open_shift(ctx.session, me)
        if running is None:
            return ctx.t("ledger.shift_none")
        minutes = int((ctx.now - running.started_at).total_seconds() // 60)
        return ctx.t(
            "ledger.shift_running",
            since=shifts.local_hm(running.started_at, ctx.config),
            hours=format_milli(minutes * 1000 // 60, ctx.lang, places=2),
        )
    action = args[0].lower()
    at = _clock(ctx, args[1]) if len(args) == 2 else None
    if action in ("start", "début", "debut"):
        started = shifts.start_shift(ctx.session, ctx.config, me, ctx.now, at)
        return ctx.t("ledger.shift_started", since=shifts.local_hm(started.started_at, ctx.config))
    if action in ("end", "stop", "fin"):
        was_open = shifts.open_shift(ctx.session, me) is not None
        ended, contribution = shifts.end_shift(ctx.session, ctx.config, me, ctx.now, at)
        since = shifts.local_hm(ended.started_at, ctx.config)
        until = shifts.local_hm(ended.ended_at or ctx.now, ctx.config)
        if contribution is None:
            return ctx.t("ledger.shift_too_short", since=since, until=until)
        return ctx.t(
            "ledger.shift_ended" if was_open else "ledger.shift_fixed",
            since=since,
            until=until,
            hours=format_milli(contribution.quantity_milli, ctx.lang, places=2),
            points=points(ctx, contribution.points_milli),
            ref=svc.contribution_code(contribution),
        )
    raise ctx.usage()


def _clock(ctx: Context, text: str) -> datetime:
    moment = parse_clock(text, ctx.config, ctx.now)
    if moment is None:
        raise UsageError("ledger.shift_bad_time", text=text[:20])
    return moment


def parse_clock(text: str, config: Config, now: datetime) -> datetime | None:
    """'18:30', '18h30', '18h' → the latest such moment (co-op time) not after now."""
    match = re.fullmatch(r"([0-9]{1,2})(?:[:h]([0-9]{2})?)?", text.strip().lower())
    if match is None:
        return None
    hour, minute = int(match[1]), int(match[2] or 0)
    if hour > 23 or minute > 59:
        return None
    local = now.astimezone(config.coop.tz)
    moment = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if moment > local:
        moment = (moment - timedelta(days=1)).replace(hour=hour, minute=minute)
    return moment.astimezone(UTC)


# --- logging work ------------------------------------------------------------------------


@command("log", area="ledger", aliases=("noter",))
def log(ctx: Context) -> Reply:
    words = ctx.rest.split()
    if words and words[0].lower() in CORRECTS:
        return _correction(ctx, words[1:])
    if len(words) < 2:
        raise ctx.usage()
    quantity = parse_quantity(words[0])
    kind, rest = words[1], words[2:]
    if quantity is None:
        quantity = parse_quantity(words[1])
        kind = words[0]
        if quantity is None:
            raise UsageError("ledger.log_bad_quantity", text=echo(words[0]))
    milli, unit = quantity
    contribution = svc.log_work(ctx.session, ctx.config, ctx.me, milli, unit, kind, " ".join(rest), ctx.now)
    return ctx.t("ledger.logged", ref=svc.contribution_code(contribution), what=svc.describe(contribution, ctx.lang))


def _correction(ctx: Context, words: list[str]) -> Reply:
    me = ctx.me
    if not at_least(me, Role.COORDINATOR):
        raise NotAllowed("ledger.corrects_coordinators_only")
    if len(words) < 2:
        raise UsageError("ledger.corrects_missing")
    ref, rest = words[0], words[1:]
    quantity = parse_quantity(rest[0])
    if quantity is None:
        raise UsageError("ledger.log_bad_quantity", text=echo(rest[0]))
    kind = None
    rest = rest[1:]
    period = svc.current_period(ctx.session, ctx.config, ctx.now)
    if rest and rest[0].lower() in periods.terms_of(period).weights:
        kind, rest = rest[0], rest[1:]
    milli, unit = quantity
    correction = svc.log_correction(ctx.session, ctx.config, me, ref, milli, unit, kind, " ".join(rest), ctx.now)
    original = svc.original_of(ctx.session, correction)
    return ctx.t(
        "ledger.corrected",
        ref=svc.contribution_code(correction),
        name=svc.owner_of(ctx.session, correction).name,
        what=svc.describe(correction, ctx.lang),
        period=period.label,
        original=svc.contribution_code(original),
    )


@command("approve", area="ledger", role=Role.COORDINATOR, aliases=("approuver",))
def approve(ctx: Context) -> Reply:
    if not ctx.args:
        return _pending_list(ctx)
    lines = []
    for ref in ctx.args:
        contribution = svc.decide(ctx.session, ctx.config, ctx.me, ref, True, ctx.now)
        lines.append(
            ctx.t(
                "ledger.approved",
                ref=svc.contribution_code(contribution),
                name=svc.owner_of(ctx.session, contribution).name,
                what=svc.describe(contribution, ctx.lang),
            )
        )
    return "\n".join(lines)


@command("reject", area="ledger", role=Role.COORDINATOR, aliases=("rejeter",))
def reject(ctx: Context) -> Reply:
    words = ctx.rest.split(maxsplit=1)
    if not words:
        raise ctx.usage()
    contribution = svc.decide(ctx.session, ctx.config, ctx.me, words[0], False, ctx.now, " ".join(words[1:]))
    owner = svc.owner_of(ctx.session, contribution)
    return ctx.t("ledger.rejected", ref=svc.contribution_code(contribution), name=owner.name,
                 reason=contribution.reject_reason)


def _pending_list(ctx: Context) -> Reply:
    pending = svc.pending_for_approval(ctx.session, ctx.me)
    if not pending:
        return ctx.t("ledger.pending_none")
    lines = [ctx.t("ledger.pending_title", count=len(pending))]
    buttons = []
    for contribution, owner, decidable in pending[:MAX_PENDING_SHOWN]:
        code = svc.contribution_code(contribution)
        lines.append(ctx.t("ledger.pending_line", ref=code, name=owner.name, what=svc.describe(contribution, ctx.lang)))
        if decidable:
            buttons.append(Button(ctx.t("ledger.approve_button", ref=code), f"/approve {code}", "✅"))
    return Outgoing("\n".join(lines), buttons=tuple(buttons[:10]))


# --- money ------------------------------------------------------------------------------


def split_amount(rest: str) -> tuple[str, str]:
    """'1 250,00 restaurant contracts' → ('1 250,00', 'restaurant contracts')."""
    words = rest.split()
    if not words:
        return "", ""
    taken = 1
    if AMOUNT_HEAD.match(words[0]):
        while taken < len(words) and AMOUNT_GROUP.match(words[taken]):
            taken += 1
    if taken < len(words) and words[taken] in ("€", "$", "£", "EUR", "USD", "GBP", "CHF"):
        taken += 1
    return " ".join(words[:taken]), " ".join(words[taken:])


def _money(ctx: Context, kind: str) -> Reply:
    amount_text, note = split_amount(ctx.rest)
    if not amount_text:
        raise ctx.usage()
    cents = parse_amount(amount_text)
    entry = svc.record_money(ctx.session, ctx.config, ctx.me, kind, cents, note, ctx.now)
    period = svc.period_of(ctx.session, entry)
    return ctx.t(f"ledger.{kind}_recorded", amount=money(ctx, cents), period=period.label, note=entry.note)


@command("income", area="ledger", role=Role.COORDINATOR, aliases=("recette",))
def income(ctx: Context) -> Reply:
    return _money(ctx, "income")


@command("expense", area="ledger", role=Role.COORDINATOR, aliases=("depense", "dépense"))
def expense(ctx: Context) -> Reply:
    return _money(ctx, "expense")


# --- what a member sees ---------------------------------------------------------------------


@command("contrib", area="ledger", private=True, aliases=("contributions",))
def contrib(ctx: Context) -> Reply:
    ctx.expect_args(0, 0)
    me = ctx.me
    period = svc.current_period(ctx.session, ctx.config, ctx.now)
    tally = tally_of(ctx.session, period.id, me.id)
    entries = not_approved(ctx.session, period.id, me.id)
    pending = [c for c in entries if c.status == ContributionStatus.PENDING]
    rejected = [c for c in entries if c.status == ContributionStatus.REJECTED]
    seats = slot_hours(ctx.session, me.id, period.starts_at, period.ends_at)
    planned = [_slot_line(ctx, seats)] if seats.slots else []
    if not tally.by_kind and not entries:
        return "\n".join([ctx.t("ledger.contrib_none", period=period.label), *planned])
    lines = [ctx.t("ledger.contrib_title", period=period.label)]
    by_kind = tally.by_kind.items()
    lines += sorted(ctx.t("ledger.contrib_kind", kind=kind, points=points(ctx, value)) for kind, value in by_kind)
    lines.append(
        ctx.t(
            "ledger.contrib_totals",
            approved=points(ctx, tally.points),
            pending=points(ctx, sum(c.points_milli for c in pending)),
        )
    )
    for title, group in (("ledger.contrib_pending_title", pending), ("ledger.contrib_rejected_title", rejected)):
        if group:
            lines.append(ctx.t(title))
            lines += [f"{svc.contribution_code(c)} {svc.describe(c, ctx.lang)}" for c in group]
    return "\n".join(lines + planned)


def _slot_line(ctx: Context, seats: SlotHours) -> str:
    """Hours of the member's seats this period, slots to come included, against those worked."""

    def hours(minutes: int) -> str:
        return format_milli(minutes * 1000 // 60, ctx.lang, places=2)

    return ctx.t("ledger.contrib_slots", planned=hours(seats.planned), slots=seats.slots, worked=hours(seats.worked))


@command("period", area="ledger", private=True, aliases=("periode", "période"))
def period(ctx: Context) -> Reply:
    ctx.expect_args(0, 0)
    current = svc.current_period(ctx.session, ctx.config, ctx.now)
    plan = plan_close(ctx.session, ctx.config, current)
    terms, outcome = plan.terms, plan.outcome
    tz = ctx.config.coop.tz
    weights = ", ".join(
        sorted(
            ctx.t("ledger.period_weight", kind=kind, weight=format_milli(value, ctx.lang))
            for kind, value in terms.weights.items()
        )
    )  # in the reader's alphabetical order of the kinds' words
    lines = [
        ctx.t(
            "ledger.period_title",
            period=current.label,
            start=f"{current.starts_at.astimezone(tz):%Y-%m-%d %H:%M}",
            end=f"{current.ends_at.astimezone(tz):%Y-%m-%d %H:%M}",
            tz=ctx.config.coop.timezone,
            status=term(ctx.lang, "states.period", current.status),
        ),
        ctx.t(
            "ledger.period_money",
            income=money(ctx, outcome.income),
            expenses=money(ctx, outcome.expenses),
            base_pay=money(ctx, outcome.base_pay),
            net=money(ctx, outcome.net),
        ),
        ctx.t("ledger.period_threshold", threshold=money(ctx, terms.equity_threshold_cents)),
        ctx.t(
            "ledger.period_split",
            reserve=format_pct(terms.legal_reserve_bp, ctx.lang),
            fund=format_pct(terms.development_fund_bp, ctx.lang),
            dividend=format_pct(terms.dividend_bp, ctx.lang),
        ),
        ctx.t(
            "ledger.period_base_rates",
            per_hour=money(ctx, terms.base_pay_per_hour_cents),
            per_delivery=money(ctx, terms.base_pay_per_delivery_cents),
        ),
        ctx.t("ledger.period_weights", weights=weights),
        ctx.t(
            "ledger.period_points",
            total=points(ctx, outcome.total_points),
            members=sum(1 for s in plan.shares if s.points > 0),
            pending=points(ctx, pending_points(ctx.session, current.id)),
        ),
    ]
    mine = next((s for s in plan.shares if s.member_id == ctx.me.id), None)
    if mine is not None:
        lines.append(
            ctx.t(
                "ledger.period_yours",
                points=points(ctx, mine.points),
                share=format_pct(share_bp(mine.points, outcome.total_points), ctx.lang),
                dividend=money(ctx, mine.dividend),
                base_pay=money(ctx, mine.base_pay),
            )
        )
    why = nothing_text(outcome, ctx.lang, ctx.config.coop.currency)
    if why:
        lines.append(ctx.t("ledger.period_nothing_yet", why=why))
    return "\n".join(lines)


@command("share", area="ledger", private=True, aliases=("part", "parts"))
def share(ctx: Context) -> Reply:
    args = ctx.expect_args(0, 1)
    me = ctx.me
    if args:
        return _one_share(ctx, args[0])
    rows = shares_of(ctx.session, me.id, MAX_SHARES_SHOWN)
    if not rows:
        current = svc.current_period(ctx.session, ctx.config, ctx.now)
        return ctx.t("ledger.share_none", period=current.label)
    lines = [ctx.t("ledger.share_title")]
    for allocation, closed in rows:
        lines.append(_share_line(ctx, allocation, closed))
    return "\n".join(lines)


def _share_line(ctx: Context, allocation: Allocation, closed: Period) -> str:
    total = int(closed.totals.get("total_points_milli", 0))
    paid = payouts.paid_status(ctx.config, allocation, ctx.lang)
    line = ctx.t(
        "ledger.share_line",
        period=closed.label,
        points=points(ctx, allocation.points_milli),
        share=format_pct(share_bp(allocation.points_milli, total), ctx.lang),
        dividend=money(ctx, allocation.dividend_cents),
        base_pay=money(ctx, allocation.base_pay_cents),
    )
    return f"{line[:-1]}, {paid}." if paid and line.endswith(".") else line


def _one_share(ctx: Context, label: str) -> Reply:
    closed = periods.period_by_label(ctx.session, label)
    if closed is None or closed.status != PeriodStatus.CLOSED:
        raise UsageError("ledger.share_unknown", period=label[:30])
    allocation = allocation_of(ctx.session, closed.id, ctx.me.id)
    if allocation is None:
        return ctx.t("ledger.share_not_in", period=closed.label)
    text = share_text(ctx.session, ctx.config, closed, allocation, ctx.lang)
    paid = payouts.paid_status(ctx.config, allocation, ctx.lang)
    return f"{text}\n{ctx.t('payouts.share_status', status=paid)}" if paid else text


@command("hide", area="ledger", aliases=("masquer",))
def hide(ctx: Context) -> Reply:
    ctx.expect_args(0, 0)
    me = ctx.me
    me.hide_in_charts = not me.hide_in_charts
    return ctx.t("ledger.hide_on" if me.hide_in_charts else "ledger.hide_off")
