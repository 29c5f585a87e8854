"""Money out: `/iban` (where a member's shares go), `/payouts` (what a period has paid),
`/funds` (what the co-op keeps, and what the members voted to spend).

An IBAN is personal and can move money, so `/iban` answers only in private.
One typed in a group has already been read by the whole group: it is not
saved (a number everyone saw is not one to pay into without asking again),
and the member is told, privately, to type it in the private chat. The reply
shows it masked; the full number is only ever in the member's own export and
the treasurer's bank file. The rules are in `coopbot.services.money.payouts`.
"""

from __future__ import annotations

from coopbot.money import format_money
from coopbot.services.money import funds, payouts
from coopbot.states import Role
from handlers.registry import Context, Reply, command


@command("iban", area="payouts", private=True, aliases=("rib",))
def iban(ctx: Context) -> Reply:
    me = ctx.me
    typed = ctx.rest.strip()
    if typed and not ctx.incoming.is_private:
        return ctx.t("payouts.iban_in_group")
    if typed:
        return ctx.t("payouts.iban_saved", iban=payouts.set_iban(ctx.session, ctx.config, me, typed, ctx.now))
    current = payouts.iban_of(ctx.config, me)
    if current is None:
        return ctx.t("payouts.iban_none")
    return ctx.t("payouts.iban_current", iban=payouts.masked(current))


@command("payouts", area="payouts", role=Role.COORDINATOR, private=True, aliases=("versements",))
def payouts_totals(ctx: Context) -> Reply:
    args = ctx.expect_args(0, 1)
    period = payouts.closed_period(ctx.session, args[0]) if args else payouts.latest_closed(ctx.session)
    if period is None:
        return ctx.t("payouts.payouts_none")
    sums = payouts.totals(ctx.session, period)
    currency = ctx.config.coop.currency
    lines = [
        ctx.t("payouts.payouts_title", period=period.label),
        ctx.t("payouts.payouts_paid", paid=sums.paid, amount=format_money(sums.paid_cents, currency, ctx.lang)),
        ctx.t("payouts.payouts_unpaid", unpaid=sums.unpaid,
              amount=format_money(sums.unpaid_cents, currency, ctx.lang)),
    ]  # fmt: skip
    if sums.without_iban:
        lines.append(ctx.t("payouts.payouts_without_iban", count=sums.without_iban))
    return "\n".join(lines)


@command("funds", area="funds", aliases=("fonds",))
def funds_held(ctx: Context) -> Reply:
    """Every member may see what the co-op keeps: the funds are theirs to spend by vote."""
    args = ctx.expect_args(0, 1)
    everything = bool(args) and args[0].casefold() in ("all", "tout", "tous")
    if args and not everything:
        raise ctx.usage()
    return funds.funds_text(ctx.session, ctx.config, ctx.lang, everything=everything)
