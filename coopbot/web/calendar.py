"""`GET /calendar/{token}.ics`: a member's calendar feed, as their calendar app fetches it.

No account and no cookie: the token in the address is the key
(`coopbot.services.rosters.calendar` says how it is made and revoked). An
unknown token, one replaced by `/calendar reset`, or one whose member left
or is no longer a coordinator (for the whole roster) gets the same 404, so
the answer says nothing about which it was.

The feed is read in a worker thread through `read_only`, like the public
page: it reads several tables, and a calendar app polling it must not stall
the event loop Telegram and Matrix share, nor wait for a writer on SQLite.
Nothing is kept between requests: each one sees the roster as it is.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from coopbot.db import read_only
from coopbot.i18n import t
from coopbot.services.rosters import calendar
from coopbot.web.server import BOT

if TYPE_CHECKING:
    from coopbot.app import CoopBot

#: The address holds a secret: no shared cache keeps it; the app may keep it a few minutes.
CACHE = "private, max-age=300"
ROUTE = calendar.PATH.replace("{token}", "{token:[A-Za-z0-9_-]{16,64}}")


async def feed(request: web.Request) -> web.Response:
    bot = request.app[BOT]
    secret = request.match_info["token"]

    def build() -> bytes | None:
        with read_only(bot.sessions) as session:
            found = calendar.feed_of(session, secret)
            if found is None:
                return None
            row, member = found
            return calendar.feed_ics(session, bot.config, row, member, bot.clock.now())

    body = await asyncio.to_thread(build)
    if body is None:
        raise web.HTTPNotFound(text=t(bot.config.coop.default_language, "calendar.not_found") + "\n")
    return web.Response(body=body, content_type="text/calendar", charset="utf-8",
                        headers={"Cache-Control": CACHE})  # fmt: skip


def add_calendar_routes(app: web.Application, bot: CoopBot) -> None:
    """The feeds' route (a route adder for `coopbot.web.server.make_app`)."""
    app[BOT] = bot
    app.router.add_get(ROUTE, feed)
