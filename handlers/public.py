"""`/public on|off`: whether the co-op's public page names you.

The page shows the co-op's rules, decisions and money to anyone; a member
appears there as "member #N" unless they chose to be named. It is each
member's own choice, never a coordinator's, and it never reveals an account.
"""

from __future__ import annotations

from coopbot.errors import UsageError
from handlers.registry import Context, Reply, command

SAY = {"on": True, "oui": True, "off": False, "non": False}


@command("public", area="public", aliases=("publique",))
def public(ctx: Context) -> Reply:
    ctx.expect_args(0, 1)
    me = ctx.me
    if ctx.args:
        choice = SAY.get(ctx.args[0].lower())
        if choice is None:
            raise UsageError("public.choice_unknown", word=ctx.args[0][:20])
        me.public_name = choice
    url = ctx.config.web.public_url or ctx.t("public.no_page_yet")
    return ctx.t("public.named_on" if me.public_name else "public.named_off", name=me.name, number=me.id, url=url)
