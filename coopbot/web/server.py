"""The web door's server: one aiohttp application in the bot's event loop.

Why aiohttp: it is already in the process (matrix-nio's HTTP client, and the
Telegram webhook), it is asynchronous, so it runs in the loop that Telegram,
Matrix and the outbox share, and a web request then reaches the same bot,
services and database as a chat message, with no second server process to
deploy, supervise or keep in step.

What every answer gets, whatever route made it:

- security headers (`SECURITY_HEADERS`): no script runs, nothing is framed,
  no referrer leaves, types are not sniffed. They are added when a response
  is prepared (`on_response_prepare`), so aiohttp's own 404, 405 and 413 get
  them too, not only the answers of our handlers;
- a cap on request bodies (`[web] max_body_kib`): a declared length over it
  is refused with 413 before any handler runs, and a body sent without a
  length is cut at the same size by aiohttp when a handler reads it;
- anything a handler did not expect is logged with its stack trace and
  answered 500 with one sentence: the visitor learns nothing of the code.

Routes besides health come from route adders, `(app, bot) -> None`, which
`coopbot.runner` hands to `WebServer`: this module imports none of them, so
the API and the public page can be added, or tested, one at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from coopbot.errors import ConfigError
from coopbot.transports import Connected

if TYPE_CHECKING:
    from coopbot.app import CoopBot

log = logging.getLogger(__name__)

RouteAdder = Callable[[web.Application, "CoopBot"], None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The bot a handler serves: `request.app[BOT]`.
BOT: web.AppKey[CoopBot] = web.AppKey("bot")
#: The largest request body accepted, in bytes.
MAX_BODY: web.AppKey[int] = web.AppKey("max_body", int)

SECURITY_HEADERS = {
    # No inline script, nor any script at all: the pages are plain HTML and CSS.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
#: `/readyz` gives up on a database that has not answered `SELECT 1` by then.
READY_TIMEOUT = 5.0
#: Requests still being answered at stop get this long to finish.
STOP_WAIT = 10.0
REASON_LENGTH = 200


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response, including those aiohttp writes itself (404, 405, 413)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


@web.middleware
async def unexpected_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A bug answers 500 in one sentence; its stack trace goes to the log, never to the visitor."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("web: %s %s failed", request.method, request.path)
        return web.Response(status=500, text="Something went wrong on our side; it has been logged.\n")


@web.middleware
async def capped_body(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a declared body over the cap before a handler (or aiohttp) reads any of it."""
    limit = request.app[MAX_BODY]
    if request.content_length is not None and request.content_length > limit:
        response = web.Response(status=413, text=f"Request bodies are limited to {limit // 1024} KiB.\n")
        response.force_close()  # the unread body is not drained: the connection ends here
        return response
    return await handler(request)


async def healthz(request: web.Request) -> web.Response:
    """The process runs and its event loop answers."""
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and every chat transport is connected; else 503 and why."""
    bot = request.app[BOT]
    reasons = []
    try:
        await asyncio.wait_for(asyncio.to_thread(_select_one, bot.sessions), timeout=READY_TIMEOUT)
    except TimeoutError:
        reasons.append(f"database: no answer within {READY_TIMEOUT:g} s")
    except Exception as exc:
        reasons.append(f"database: {_short(exc)}")
    for name, transport in bot.transports.items():
        if not (isinstance(transport, Connected) and transport.connected):
            reasons.append(f"{name}: not connected")
    if reasons:
        return web.Response(status=503, text="".join(f"{reason}\n" for reason in reasons))
    return web.Response(text="ready\n")


def _select_one(sessions: sessionmaker[Session]) -> None:
    """In a worker thread, as handlers do on PostgreSQL: a slow database must not stall the loop."""
    with sessions() as session:
        session.execute(text("SELECT 1"))


def _short(exc: Exception) -> str:
    """The driver's own first line (SQLAlchemy's adds the statement and a link)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{type(cause).__name__}: {first}"[:REASON_LENGTH]


def make_app(bot: CoopBot, routes: Sequence[RouteAdder] = ()) -> web.Application:
    """The application: middlewares, headers, health, then whatever each route adder adds."""
    max_body = bot.config.web.max_body_kib * 1024
    app = web.Application(middlewares=[unexpected_errors, capped_body], client_max_size=max_body)
    app[BOT] = bot
    app[MAX_BODY] = max_body
    app.on_response_prepare.append(add_security_headers)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    for add_routes in routes:
        add_routes(app, bot)
    return app


class WebServer:
    """`make_app` served on `[web] listen` and `port`; `port` is the bound one once started."""

    def __init__(
        self, bot: CoopBot, routes: Sequence[RouteAdder] = (), *, listen: str | None = None, port: int | None = None
    ) -> None:
        self.bot = bot
        self.routes = tuple(routes)
        self.listen = listen if listen is not None else bot.config.web.listen
        self.port = port if port is not None else bot.config.web.port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.listen}]" if ":" in self.listen else self.listen
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        # No access log: the reverse proxy keeps one, and the bot's log holds no visitor's address.
        runner = web.AppRunner(make_app(self.bot, self.routes), access_log=None, shutdown_timeout=STOP_WAIT)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.listen, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"web: cannot listen on {self.listen} port {self.port} ({exc.strerror or exc}); "
                "check web.listen and web.port"
            ) from exc
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("web door listening on %s", self.url)

    async def stop(self) -> None:
        """Stop listening; requests in hand get `STOP_WAIT` seconds to finish."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
