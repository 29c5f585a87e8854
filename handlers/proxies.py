"""`/proxy`: giving one's vote to another member, for one poll or until revoked.

The rules (who may hold how many, what stays secret) are in
`coopbot.services.polls.proxies`; this only reads what the member typed.
The answer is private: who holds whose vote is logged for every member to
audit, but a chat room does not need to hear it.
"""

from __future__ import annotations

import re

from coopbot.chat import Outgoing
from coopbot.services.members.accounts import find_member
from coopbot.services.polls import proxies
from coopbot.services.polls import voting as polls
from coopbot.services.polls.texts import code
from handlers.registry import Context, Reply, command

POLL_CODE = re.compile(r"[Pp]-?[1-9][0-9]{0,8}")
OFF = ("off", "none", "stop", "aucun", "aucune", "arrêt", "arret", "fin")


def is_poll_ref(word: str) -> bool:
    """`P-9` or `p9` names a poll; anything else (`#9` too) names the member who holds the vote."""
    return POLL_CODE.fullmatch(word) is not None


@command("proxy", area="proxies", aliases=("procuration",))
def proxy(ctx: Context) -> Reply:
    me, args = ctx.me, ctx.args
    if not args:
        return Outgoing(standing_text(ctx), private=not ctx.incoming.is_private)
    if len(args) == 1 and args[0].casefold() in OFF:
        ended = proxies.revoke(ctx.session, me, ctx.now)
        return Outgoing(ctx.t("proxies.revoked", count=ended), private=not ctx.incoming.is_private)
    poll = polls.get(ctx.session, args[0]) if is_poll_ref(args[0]) else None
    name = " ".join(args[1:] if poll is not None else args)
    if not name:
        raise ctx.usage()
    holder = find_member(ctx.session, name)
    proxies.give(ctx.session, ctx.config, me, holder, poll, ctx.now)
    if poll is not None:
        text = ctx.t("proxies.given_poll", name=holder.name, poll=code(poll))
    else:
        text = ctx.t("proxies.given", name=holder.name)
    return Outgoing(text, private=not ctx.incoming.is_private)


def standing_text(ctx: Context) -> str:
    given, held = proxies.standing(ctx.session, ctx.me)
    if not given and not held:
        return ctx.t("proxies.none", most=proxies.limit(ctx.session, ctx.config, ctx.now))
    lines = [ctx.t("proxies.title")]
    lines += [ctx.t("proxies.line_given", name=name, reach=reach(ctx, poll_id)) for name, poll_id in given]
    lines += [ctx.t("proxies.line_held", name=name, reach=reach(ctx, poll_id)) for name, poll_id in held]
    return "\n".join(lines)


def reach(ctx: Context, poll_id: int | None) -> str:
    return ctx.t("proxies.reach_poll", poll=code(poll_id)) if poll_id is not None else ctx.t("proxies.reach_all")
