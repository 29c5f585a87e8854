"""The public page's routes: `/`, `/en`, `/fr`, each closed period's share chart, the stylesheet.

Anyone may read these, without an account: the co-op publishes its rules,
decisions, money and dispatch fairness (what exactly is itself a governed
setting, `public.*`). The contents come from `coopbot.services.public`;
this module only picks the reader's language, reads in a worker thread (a
page reads several tables and a chart is drawn by matplotlib, neither of
which may stall the event loop that Telegram and Matrix share) and answers.

`/` speaks the visitor's language (`Accept-Language`), else the co-op's;
`/en` and `/fr` are fixed, so a link can be shared in one language.

Everyone gets the same page in a language, so each page (and each chart) is
built once and served again (`Built`) until a table it was read from
changes or `KEPT_FOR` seconds pass, whichever is first; reads go through
`coopbot.db.read_only`, so building one waits for no writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from coopbot.clock import Clock
from coopbot.db import Commits, Stamp, commits, read_only, tables_read
from coopbot.i18n import LANGUAGES, normalise_language, t
from coopbot.services.public.page import read_page, sections_shown
from coopbot.services.public.periods import share_chart
from coopbot.storage.written import EVERYTHING
from coopbot.web import public_html

if TYPE_CHECKING:
    from coopbot.app import CoopBot

STATIC = Path(__file__).parent / "static"
#: Browsers and proxies may keep a page a minute; a closed period's chart never changes but
#: for a member who hides since, so an hour.
PAGE_CACHE = "public, max-age=60"
CHART_CACHE = "public, max-age=3600"
#: How long a built page or chart is served again, in seconds of `bot.clock`, while no
#: commit to a table it read is seen. Such a commit made in this process drops it at once
#: (`coopbot.db.Commits`),
#: so this bounds only what the commit count cannot see: a write by another process (a CLI
#: command), and the passing of time itself (a vote whose close is committed is seen at
#: once; the fairness section's period turns at midnight). The page says "as of" nothing
#: finer than a day, and browsers keep it a minute (`PAGE_CACHE`) anyway.
KEPT_FOR = 5.0
#: From this share of `KEPT_FOR` on, a copy still served has its successor built in the background.
#: Reason: when a copy expired, every request in that moment waited for the one build (15 ms
#: of Python, far more while it shares the interpreter with the requests), a tail in each
#: `KEPT_FOR` of `bench/web.py`'s page rounds. Renewed ahead, a steadily read page never expires.
RENEW_AT = 0.9
#: Past this many built pages and charts kept, the next one starts afresh (a bound on memory:
#: a chart's period label comes from the address, though only a closed period's is kept).
MOST_KEPT = 64


@dataclass(frozen=True)
class Read:
    """What a build read: its body (None: nothing to show), and the tables it was read from."""

    body: bytes | None
    tables: frozenset[str]


#: A build: `Read`, or a bare body, which counts as read from every table.
Build = Callable[[], "Read | bytes | None"]


@dataclass(frozen=True)
class _Copy:
    stamp: Stamp
    tables: frozenset[str]
    built_at: float
    body: bytes | None


class Built:
    """Pages and charts built from the database, kept while nothing they were read from has changed.

    Reason: every visitor gets the same page in a language, and building one
    took 12–14 ms of Python (a dozen queries and the rendering), so under load
    the page answered at 0.01x aiohttp's bare handler, with p99 of seconds. A
    copy is served again while no commit has written a table it was read from
    (`Commits.unchanged`, against the `Stamp` noted before it was read) and
    it is younger than `KEPT_FOR` by the bot's clock (a test moves the clock
    instead of sleeping). Counted as one generation, every commit dropped it:
    after an order round the outbox marks each message sent, so the page was
    built again all the time. Figure: `bench/web.py --rounds 2 --seconds 4`
    on the same busy machine, five runs counting every commit, seven counting
    the tables read: the page's round after an order round 302–643/s, then
    1,129–3,347/s; page p99 69–114 ms, then 17–49 ms (80 ms in one run, whose
    bare hello had a p99 of 69 ms).

    A copy in the last tenth of its life (`RENEW_AT`) is served while its
    successor is built. Requests that find no good copy while one is being
    built wait for it, and take it if nothing it read has changed since it
    began; otherwise they build again, together. Nothing absent (None: a
    chart of no closed period, or of periods turned private) is kept.
    """

    def __init__(self, clock: Clock, commits: Commits, kept_for: float = KEPT_FOR) -> None:
        self._clock = clock
        self._commits = commits
        self._kept_for = kept_for
        self._kept: dict[Hashable, _Copy] = {}
        self._building: dict[Hashable, asyncio.Future[_Copy]] = {}

    async def get(self, key: Hashable, build: Build) -> bytes | None:
        """The copy kept under `key` if still good, else `build()`'s, run in a worker thread."""
        copy = self._kept.get(key)
        if copy is not None and self._good(copy):
            age = self._clock.monotonic() - copy.built_at
            if age < self._kept_for:
                if age >= self._kept_for * RENEW_AT and key not in self._building:
                    self._start(key, build)  # its successor, built while this copy is still served
                return copy.body
        building = self._building.get(key)
        if building is not None:
            copy = await asyncio.shield(building)
            if self._good(copy):
                return copy.body
            if (newer := self._building.get(key)) is not None and newer is not building:
                return (await asyncio.shield(newer)).body  # begun after this request came
        return (await asyncio.shield(self._start(key, build))).body

    def _good(self, copy: _Copy) -> bool:
        return self._commits.unchanged(copy.stamp, copy.tables)

    def _start(self, key: Hashable, build: Build) -> asyncio.Future[_Copy]:
        stamp, started = self._commits.stamp(), self._clock.monotonic()
        task = asyncio.ensure_future(self._built(build, stamp, started))
        self._building[key] = task
        task.add_done_callback(lambda done: self._keep(key, done))
        return task

    @staticmethod
    async def _built(build: Build, stamp: Stamp, started: float) -> _Copy:
        read = await asyncio.to_thread(build)
        if not isinstance(read, Read):
            read = Read(read, frozenset({EVERYTHING}))
        return _Copy(stamp, read.tables, started, read.body)

    def _keep(self, key: Hashable, task: asyncio.Future[_Copy]) -> None:
        if self._building.get(key) is task:
            del self._building[key]
        if task.cancelled() or task.exception() is not None:
            return
        copy = task.result()
        if copy.body is None:
            return
        if len(self._kept) >= MOST_KEPT:
            self._kept.clear()
        self._kept[key] = copy


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
    loop_session = () if bot.loop_sessions is None else (bot.loop_sessions.session,)
    built = Built(bot.clock, commits(bot.sessions, *loop_session))

    def page_html(lang: str) -> Read:
        with read_only(bot.sessions) as session, tables_read(session) as tables:
            body = public_html.render(read_page(session, config, bot.clock.now(), lang)).encode()
        return Read(body, frozenset(tables))

    def chart_png(label: str, lang: str) -> Read:
        with read_only(bot.sessions) as session, tables_read(session) as tables:
            shown = sections_shown(session, config, bot.clock.now())["periods"]
            png = share_chart(session, config, label, lang) if shown else None
        return Read(png, frozenset(tables))

    async def answer_page(lang: str, *, negotiated: bool) -> web.Response:
        body = await built.get(("page", lang), lambda: page_html(lang))
        response = web.Response(body=body, content_type="text/html", charset="utf-8")
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
        png = await built.get(("chart", label, lang), lambda: chart_png(label, lang))
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
