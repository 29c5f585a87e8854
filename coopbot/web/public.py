"""The public page's routes: `/`, `/en`, `/fr`, each closed period's share chart, the stylesheet.

Anyone may read these, without an account: the co-op publishes its rules,
decisions, money and dispatch fairness (what exactly is itself a governed
setting, `public.*`). The contents come from `coopbot.services.public`;
this module only picks the reader's language, reads in a worker thread (a
page reads several tables and a chart is drawn by matplotlib, neither of
which may stall the event loop that Telegram and Matrix share) and answers.

`/` speaks the visitor's language (`Accept-Language`), else the co-op's;
`/en` and `/fr` are fixed, so a link can be shared in one language.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from coopbot.i18n import LANGUAGES, normalise_language, t
from coopbot.services.public.page import read_page, sections_shown
from coopbot.services.public.periods import share_chart
from coopbot.web import public_html

if TYPE_CHECKING:
    from coopbot.app import CoopBot

STATIC = Path(__file__).parent / "static"
#: Browsers and proxies may keep a page a minute; a closed period's chart never changes but
#: for a member who hides since, so an hour.
PAGE_CACHE = "public, max-age=60"
CHART_CACHE = "public, max-age=3600"


def preferred_language(header: str, default: str) -> str:
    """The first language of `Accept-Language` we speak, by its weights; else `default`."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        code, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        lang = normalise_language(code.strip())
        if lang is not None and weight > 0:
            ranked.append((-weight, position, lang))
    return min(ranked)[2] if ranked else default


def add_public_routes(app: web.Application, bot: CoopBot) -> None:
    """Add the public page to `app` (a route adder for `coopbot.web.server.make_app`)."""
    config = bot.config
    stylesheet = (STATIC / "style.css").read_bytes()

    def page_html(lang: str) -> str:
        with bot.sessions() as session:
            return public_html.render(read_page(session, config, bot.clock.now(), lang))

    def chart_png(label: str, lang: str) -> bytes | None:
        with bot.sessions() as session:
            if not sections_shown(session, config, bot.clock.now())["periods"]:
                return None
            return share_chart(session, config, label, lang)

    async def answer_page(lang: str, *, negotiated: bool) -> web.Response:
        text = await asyncio.to_thread(page_html, lang)
        response = web.Response(text=text, content_type="text/html", charset="utf-8")
        response.headers["Content-Language"] = lang
        response.headers["Cache-Control"] = PAGE_CACHE
        if negotiated:
            response.headers["Vary"] = "Accept-Language"
        return response

    async def home(request: web.Request) -> web.Response:
        header = request.headers.get("Accept-Language", "")
        return await answer_page(preferred_language(header, config.coop.default_language), negotiated=True)

    async def in_language(request: web.Request) -> web.Response:
        return await answer_page(request.match_info["lang"], negotiated=False)

    async def chart(request: web.Request) -> web.Response:
        lang = normalise_language(request.query.get("lang")) or config.coop.default_language
        label = request.match_info["label"]
        png = await asyncio.to_thread(chart_png, label, lang)
        if png is None:
            raise web.HTTPNotFound(text=t(lang, "public.not_found", period=label[:40]))
        return web.Response(body=png, content_type="image/png", headers={"Cache-Control": CHART_CACHE})

    async def style(request: web.Request) -> web.Response:
        return web.Response(body=stylesheet, content_type="text/css", charset="utf-8",
                            headers={"Cache-Control": CHART_CACHE})  # fmt: skip

    app.router.add_get("/", home)
    app.router.add_get("/{lang:" + "|".join(LANGUAGES) + "}", in_language)
    app.router.add_get("/periods/{label}/shares.png", chart)
    app.router.add_get(public_html.STYLESHEET, style)
