"""`/college`: which college a member votes in, in a co-op that votes by colleges.

Any member may ask which college they are in and what each college weighs;
an admin places a member in a college (the statutes say who belongs where,
so placing is an admin's act, audited). The rules are in
`coopbot.services.polls.colleges`.
"""

from __future__ import annotations

from coopbot.errors import NotAllowed
from coopbot.services.members.accounts import at_least, find_member
from coopbot.services.polls import colleges
from coopbot.states import Role
from handlers.registry import Context, Reply, command


@command("college", area="colleges", aliases=("collège", "collége"))
def college(ctx: Context) -> Reply:
    config = ctx.config
    if not colleges.enabled(config):
        return ctx.t("colleges.none")
    if not ctx.args:
        weights = ", ".join(f"{name} {weight:g}%" for name, weight in config.colleges.weights.items())
        return ctx.t("colleges.yours", college=colleges.college_of(config, ctx.me), weights=weights)
    if len(ctx.args) < 2:
        raise ctx.usage()
    if not at_least(ctx.me, Role.ADMIN):
        raise NotAllowed("colleges.only_admin")
    member = find_member(ctx.session, " ".join(ctx.args[:-1]))
    placed = colleges.place(ctx.session, config, ctx.me, member, ctx.args[-1], ctx.now)
    return ctx.t("colleges.placed", name=member.name, college=placed)
