"""Customers' orders in chat: order, read the quote, confirm or cancel, follow them.

A thin layer over `coopbot.services.dispatch.orders`: it reads the order's
words, calls the service, and words the answer. The quote is the stored
record of how the price was reached, explained by `price_rules.explain`, so
what the customer reads before confirming is what `/why` shows afterwards.
"""

from __future__ import annotations

from coopbot.chat import Outgoing
from coopbot.errors import UsageError
from coopbot.models import Job
from coopbot.money import format_money
from coopbot.services.dispatch import orders as svc
from coopbot.services.dispatch import price_rules
from coopbot.services.dispatch.events import describe
from coopbot.services.dispatch.parsing import job_code, parse_job_ref, parse_price, when
from coopbot.states import JobStatus, Role
from handlers.registry import Context, Reply, command


def _money(ctx: Context, cents: int) -> str:
    return format_money(cents, ctx.config.coop.currency, ctx.lang)


def quote_text(ctx: Context, job: Job) -> str:
    """The quote as the customer reads it: the order, the price term by term, until when it holds."""
    explained = price_rules.explain(ctx.lang, job.quote or {}, ctx.config.coop.currency)
    valid = when(job.quote_expires_at, ctx.now, ctx.config.coop.tz) if job.quote_expires_at else ""
    return ctx.t("orders.quote", job=describe(job, ctx.config, ctx.lang, ctx.now), price=explained, until=valid,
                 code=job_code(job.id))  # fmt: skip


@command("order", area="orders", role=Role.CUSTOMER, aliases=("commande", "commander"))
def order(ctx: Context) -> Reply:
    if not ctx.rest.strip():
        raise ctx.usage()
    spec = svc.parse_order(ctx.rest, ctx.me, ctx.now, ctx.config)
    job = svc.quote(ctx.session, ctx.config, ctx.me, spec, ctx.now)
    return Outgoing(quote_text(ctx, job), buttons=svc.quote_buttons(ctx.lang, job))


@command("confirm", area="orders", role=Role.CUSTOMER, aliases=("confirmer",))
def confirm(ctx: Context) -> Reply:
    job_id = _order_id(ctx)
    job, code = svc.confirm(ctx.session, ctx.config, ctx.me, job_id, ctx.now)
    text = ctx.t("orders.confirmed", job=job_code(job.id), price=_money(ctx, job.price_cents or 0))
    if code is not None:
        text += "\n" + ctx.t("orders.give_code", code=code, job=job_code(job.id))
    return text


@command("orders", area="orders", role=Role.CUSTOMER, aliases=("commandes",))
def orders(ctx: Context) -> Reply:
    ctx.expect_args(0, 0)
    mine = svc.orders_of(ctx.session, ctx.me)
    if not mine:
        return ctx.t("orders.none_yet")
    lines = [ctx.t("orders.list_title", count=len(mine))]
    for job in mine:
        lines.append(ctx.t("orders.list_line", job=job_code(job.id), dropoff=job.dropoff, status=job.status,
                           price=_money(ctx, job.price_cents or 0)))  # fmt: skip
    return "\n".join(lines)


@command("price", area="orders", role=Role.COORDINATOR, aliases=("prixfixe",))
def price(ctx: Context) -> Reply:
    """A coordinator's price for one order, with the reason the customer will read."""
    if len(ctx.args) < 3:
        raise ctx.usage()
    job_id, cents = parse_job_ref(ctx.args[0]), parse_price(ctx.args[1])
    reason = ctx.rest.split(None, 2)[2]
    job, _ = svc.set_price(ctx.session, ctx.config, ctx.me, job_id, cents, reason, ctx.now)
    return ctx.t("orders.price_set", job=job_code(job.id), price=_money(ctx, cents))


def _order_id(ctx: Context) -> int:
    """The order named, or the customer's only quote waiting for an answer."""
    if ctx.args:
        return parse_job_ref(ctx.args[0])
    waiting = [job for job in svc.orders_of(ctx.session, ctx.me) if job.status == JobStatus.QUOTED]
    if len(waiting) == 1:
        return waiting[0].id
    raise UsageError("orders.which_order")
