"""`/slots`, `/signup`, `/signoff`, `/myslots`, `/swap`, `/giveaway`: planning the week together.

The rules (who may publish, until when one may sign off, how a seat changes
hands) are in `coopbot.services.rosters`; this reads what was typed and words
the answer. The weekly plan carries a button per slot one may still take, so
signing up is one tap; the typed command does the same.
"""

from __future__ import annotations

from coopbot.chat import Outgoing
from coopbot.errors import UsageError
from coopbot.services.members.accounts import find_member
from coopbot.services.rosters import slots, swaps
from coopbot.services.rosters.parsing import parse_spec
from handlers.registry import Context, Reply, command

NEXT = ("next", "suivante", "prochaine")
ADD = ("add", "ajouter")
CANCEL = ("cancel", "annuler")
ACCEPT = ("accept", "accepter", "oui", "yes")
DECLINE = ("decline", "refuser", "non", "no")


@command("slots", area="rosters", aliases=("creneaux", "créneaux"))
def slots_command(ctx: Context) -> Reply:
    if not ctx.args:
        return plan(ctx, 0)
    head = ctx.args[0].casefold()
    if head in NEXT and len(ctx.args) == 1:
        return plan(ctx, 1)
    if head in ADD:
        return add(ctx)
    if head in CANCEL:
        return cancel(ctx)
    raise ctx.usage()


def plan(ctx: Context, weeks_ahead: int) -> Reply:
    monday = slots.week_start(ctx.now, ctx.config.coop.tz, weeks_ahead)
    return slots.plan(ctx.session, ctx.config, ctx.me, ctx.lang, monday, ctx.now)


def add(ctx: Context) -> Reply:
    slots.require_coordinator(ctx.me, "/slots add")
    spec = parse_spec(ctx.args[1:], ctx.now.astimezone(ctx.config.coop.tz).date())
    made = slots.publish(ctx.session, ctx.config, ctx.me, spec, ctx.now)
    first, last = slots.code(made[0]), slots.code(made[-1])
    codes = first if len(made) == 1 else ctx.t("rosters.range", first=first, last=last)
    return ctx.t("rosters.published", count=len(made), codes=codes, first=first, seats=spec.seats)


def cancel(ctx: Context) -> Reply:
    slots.require_coordinator(ctx.me, "/slots cancel")
    if len(ctx.args) < 2:
        raise ctx.usage()
    slot = slots.get(ctx.session, ctx.args[1], lock=True)
    reason = " ".join(ctx.args[2:]).strip()
    if not reason:
        raise UsageError("rosters.cancel_reason", slot=slots.code(slot))
    told = slots.cancel(ctx.session, ctx.config, ctx.me, slot, reason, ctx.now)
    return ctx.t("rosters.cancelled_done", slot=slots.code(slot), count=told)


@command("signup", area="rosters")
def signup(ctx: Context) -> Reply:
    (ref,) = ctx.expect_args(1, 1)
    slot = slots.get(ctx.session, ref, lock=True)
    freed = slots.sign_up(ctx.session, ctx.config, ctx.me, slot, ctx.now)
    text = ctx.t("rosters.signed_up", slot=slots.describe(slot, ctx.lang, ctx.config.coop.tz))
    if freed is not None:
        text += " " + ctx.t("rosters.took_giveaway", name=freed.name)
    return text


@command("signoff", area="rosters")
def signoff(ctx: Context) -> Reply:
    (ref,) = ctx.expect_args(1, 1)
    slot = slots.get(ctx.session, ref, lock=True)
    slots.sign_off(ctx.session, ctx.config, ctx.me, slot, ctx.now)
    return ctx.t("rosters.signed_off", slot=slots.code(slot))


@command("myslots", area="rosters", aliases=("mescreneaux",))
def myslots(ctx: Context) -> Reply:
    ctx.expect_args(0, 0)
    mine = slots.mine(ctx.session, ctx.me, ctx.now)
    private = not ctx.incoming.is_private
    if not mine:
        return Outgoing(ctx.t("rosters.mine_none"), private=private)
    tz = ctx.config.coop.tz
    lines = [ctx.t("rosters.mine_title")]
    for slot in mine:
        described = slots.describe(slot, ctx.lang, tz)
        if slot.cancelled_at is not None:
            lines.append(ctx.t("rosters.mine_cancelled", slot=described, reason=slot.cancel_reason or ""))
        else:
            lines.append(ctx.t("rosters.mine_line", slot=described))
    return Outgoing("\n".join(lines), private=private)


@command("swap", area="rosters")
def swap(ctx: Context) -> Reply:
    args = ctx.expect_args(2)
    head = args[0].casefold()
    if head in ACCEPT + DECLINE and len(args) == 2:
        slot = slots.get(ctx.session, args[1], lock=True)
        if head in ACCEPT:
            asker = swaps.accept(ctx.session, ctx.config, ctx.me, slot, ctx.now)
            return ctx.t("rosters.swap_accepted", name=asker.name,
                         slot=slots.describe(slot, ctx.lang, ctx.config.coop.tz))  # fmt: skip
        asker = swaps.decline(ctx.session, ctx.config, ctx.me, slot, ctx.now)
        return ctx.t("rosters.swap_declined", name=asker.name, slot=slots.code(slot))
    if not slots.is_ref(args[0]):
        raise ctx.usage()
    slot = slots.get(ctx.session, args[0], lock=True)
    other = find_member(ctx.session, " ".join(args[1:]))
    swaps.ask(ctx.session, ctx.config, ctx.me, slot, other, ctx.now)
    return ctx.t("rosters.swap_asked", name=other.name, slot=slots.code(slot))


@command("giveaway", area="rosters")
def giveaway(ctx: Context) -> Reply:
    (ref,) = ctx.expect_args(1, 1)
    slot = slots.get(ctx.session, ref, lock=True)
    told = swaps.give_away(ctx.session, ctx.config, ctx.me, slot, ctx.now)
    return ctx.t("rosters.given_away", slot=slots.code(slot), count=told)
