"""`/fill S-31 take|decline`: the answer to a seat on an unpopular slot offered in turn.

The offer comes with two buttons that type this command; the rule that chose
the member (`coopbot.services.rosters.fairness`) and the seat's own rules
(`slots.sign_up`) are the services'. A refused seat (the slot filled up in
the meantime) is answered, not raised, so the offer's closing is kept and it
moves on to the next member.
"""

from __future__ import annotations

from coopbot.services.rosters import fairness, slots
from handlers.registry import Context, Reply, command

TAKE = ("take", "prendre", "accept", "accepter", "yes", "oui")
DECLINE = ("decline", "refuser", "no", "non")


@command("fill", area="fairness", aliases=("combler",))
def fill(ctx: Context) -> Reply:
    first, second = ctx.expect_args(2, 2)
    ref, word = (first, second.casefold()) if slots.is_ref(first) else (second, first.casefold())
    if word not in TAKE + DECLINE:
        raise ctx.usage()
    slot = slots.get(ctx.session, ref, lock=True)
    if word in DECLINE:
        fairness.decline(ctx.session, ctx.config, ctx.me, slot, ctx.now)
        return ctx.t("fairness.declined", slot=slots.code(slot))
    refused = fairness.take(ctx.session, ctx.config, ctx.me, slot, ctx.now)
    if refused is not None:
        return ctx.t(refused.key, **refused.params)
    return ctx.t("fairness.taken", slot=slots.describe(slot, ctx.lang, ctx.config.coop.tz))
