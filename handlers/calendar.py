"""`/calendar`, `/calendar reset`: one's slots as an address a calendar app subscribes to.

The address is a secret (anyone with it reads the slots), so the command is
private: asked in a group, it answers in the member's private chat. `reset`
replaces it, and the old one stops at once. The rules (who gets the whole
roster, how the address is made) are in `coopbot.services.rosters.calendar`.
"""

from __future__ import annotations

from coopbot.services.rosters import calendar
from handlers.registry import Context, Reply, command

RESET = ("reset", "new", "nouveau", "nouvelle", "réinitialiser", "reinitialiser")


@command("calendar", area="calendar", aliases=("calendrier", "agenda"), private=True)
def calendar_command(ctx: Context) -> Reply:
    args = ctx.expect_args(0, 1)
    if args and args[0].casefold() not in RESET:
        raise ctx.usage()
    if not calendar.served(ctx.config):
        return ctx.t("calendar.no_web")
    if args:
        tokens = calendar.reset(ctx.session, ctx.config, ctx.me, ctx.now)
    else:
        tokens = calendar.tokens(ctx.session, ctx.config, ctx.me, ctx.now)
    lines = [ctx.t("calendar.reset_done")] if args else []
    lines.append(ctx.t("calendar.yours", url=calendar.url(ctx.config, tokens[calendar.MINE])))
    if calendar.ALL in tokens:
        lines.append(ctx.t("calendar.roster", url=calendar.url(ctx.config, tokens[calendar.ALL])))
    lines.append(ctx.t("calendar.keep_private"))
    return "\n\n".join(lines)
