"""Long-running modes: `coopbot run` and `coopbot chat`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import pickle
import signal
from typing import TYPE_CHECKING, NoReturn, TextIO

from sqlalchemy import make_url

from coopbot import platforms
from coopbot.app import CoopBot
from coopbot.config import Config, config_warnings
from coopbot.db import check_driver, make_engine, transaction, upgrade
from coopbot.errors import CoopError, NotFound
from coopbot.i18n import t
from coopbot.models import Member
from coopbot.ops import running
from coopbot.services.members import accounts as members_svc
from coopbot.transports.console import ConsoleTransport, Conversation

if TYPE_CHECKING:
    from coopbot.metrics import MetricsServer
    from coopbot.web.server import RouteAdder, WebServer

log = logging.getLogger(__name__)


def add_configured_transports(bot: CoopBot) -> None:
    """Each platform switched on in the configuration; its client library loads only now."""
    for platform in platforms.chat_platforms():
        if platform.enabled(bot.config):
            bot.add_transport(platform.build(bot.config, bot))


def add_webhook_sender(bot: CoopBot) -> None:
    """The shops' webhooks go out from `coopbot run` whatever else runs: with or without the web
    door (a shop ordering in the chat gets them too, and they go out to the shop's server, not
    in through ours) and with any chat platform or none. Not from `coopbot chat`, the demo or a
    one-off command: one process posts them, so two never post the same step at once."""
    from coopbot.webhook_sender import WebhookSender

    bot.add_transport(WebhookSender(bot.sessions, bot.config))


def web_routes() -> list[RouteAdder]:
    """The web door's routes besides health, one adder per module of `coopbot.web`.

    The one place a module's routes are added: imported here, when the server starts,
    so that `coopbot --help` and a bot without the web door never load them.
    """
    from coopbot import metrics
    from coopbot.web import api, calendar, public

    return [api.add, public.add_public_routes, calendar.add_calendar_routes, metrics.add_metrics_route]


async def start_web(bot: CoopBot, out: TextIO) -> WebServer | None:
    """The web door, when `[web] enabled`: aiohttp's server side loads only now."""
    if not bot.config.web.enabled:
        return None
    from coopbot.web.server import WebServer

    server = WebServer(bot, web_routes())
    await server.start()
    out.write(f"The web door is listening on {server.url}\n")
    out.flush()
    return server


def upgrade_apart(url: str) -> bool:
    """Upgrade the database in a short-lived child process, if it can be reached from one.

    The migrations need alembic, mako and the migration scripts, about 11 MiB that would
    otherwise stay in the memory of a bot meant to run for months. The child is forked
    before the bot starts any thread, with `os.fork` rather than `multiprocessing` (whose
    modules would stay too: 1.5 MiB). Whatever the child raises is raised here. A database
    in memory lives in this process alone: False, and the caller upgrades it here.
    """
    in_memory = url.startswith("sqlite") and make_url(url).database in (None, "", ":memory:")
    if in_memory or not hasattr(os, "fork"):
        return False
    check_driver(url)  # a missing driver is said here, as by every other command
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's coverage is not collected
        os.close(reading)
        _upgrade_in_child(url, writing)
    os.close(writing)
    with os.fdopen(reading, "rb") as pipe:
        raised = pipe.read()
    os.waitpid(child, 0)
    if raised:
        raise pickle.loads(raised)
    return True


def _upgrade_in_child(url: str, writing: int) -> NoReturn:  # pragma: no cover - runs in the child
    status = 0
    try:
        _upgrade(url)
    except BaseException as exc:
        status = 1
        try:
            told = pickle.dumps(exc)
        except Exception:
            told = pickle.dumps(RuntimeError(f"upgrading the database failed: {exc!r}"))
        os.write(writing, told)
    finally:
        os._exit(status)


def _upgrade(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


async def run_forever(config: Config, out: TextIO) -> int:
    """`coopbot run`. On PostgreSQL with a chat platform, one of any number of processes
    (`coopbot.ops.running`); otherwise the one process of its database, which a lock
    file beside a SQLite database enforces (a second one refuses to start)."""
    for warning in config_warnings(config):
        out.write(f"warning: {warning}\n")
    out.flush()  # the child that upgrades the database must not inherit unwritten output
    if running.is_postgres(config.database.url) and any(p.enabled(config) for p in platforms.chat_platforms()):
        return await run_led(config, out)
    lock = running.hold_sqlite(config)
    try:
        return await run_alone(config, out)
    finally:
        if lock is not None:
            lock.release()


async def run_alone(config: Config, out: TextIO) -> int:
    bot = CoopBot(config, migrate=not upgrade_apart(config.database.url))
    running.watch_operations(bot)
    add_configured_transports(bot)
    chat = list(bot.transports)
    add_webhook_sender(bot)
    if not chat:
        out.write("No Telegram or Matrix configured: running in the console.\n")
        with transaction(bot.sessions) as session:
            # An admin if there is one, to run the co-op from; else any member.
            talkers = members_svc.active_members(session, "admin") or members_svc.active_members(session)
        if not talkers:
            raise NotFound("cli.no_members")
        running.became_leader(bot, out, "the only process of this database")
        return await chat_loop(config, f"#{talkers[0].id}", None, out, bot=bot, web=True)
    stop = _stop_on_signals()
    await bot.start()
    web_server = metrics_server = None
    try:
        # After the bot, so /readyz never answers for a bot not yet started; stopped before it.
        web_server = await start_web(bot, out)
        metrics_server = await start_metrics(config, out)
        running.became_leader(bot, out, "the only process of this database")
        out.write(f"coopbot is running on {', '.join(chat)}. Stop with Ctrl-C.\n")
        await stop.wait()
    finally:
        if metrics_server is not None:
            await metrics_server.stop()
        if web_server is not None:
            await web_server.stop()
        await bot.stop()
    return 0


async def run_led(config: Config, out: TextIO) -> int:
    """One of several processes on one PostgreSQL: every one serves the webhook and the web
    door; the elected leader polls, syncs, sweeps and delivers (`coopbot.ops.running`)."""
    from coopbot.ops.leadership import PgLeadership

    url = config.database.url
    check_driver(url)
    migrated = running.upgrade_under_lock(url, functools.partial(upgrade_apart, url))
    bot = CoopBot(config, migrate=not migrated)
    running.watch_operations(bot)
    everywhere = [p for p in platforms.chat_platforms() if p.enabled(config) and not running.leader_only(config, p)]
    for platform in everywhere:
        bot.add_transport(platform.build(config, bot))
    add_webhook_sender(bot)
    shared = list(bot.transports.values())
    names = [p.name for p in platforms.chat_platforms() if p.enabled(config)]
    stop = _stop_on_signals()
    leadership = PgLeadership(
        url, check_seconds=config.leadership.check_seconds, retry_seconds=config.leadership.retry_seconds
    )
    web_server = metrics_server = None
    try:
        for transport in shared:
            await transport.start(bot.on_incoming)
        web_server = await start_web(bot, out)
        metrics_server = await start_metrics(config, out)
        out.write(
            f"coopbot is running on {', '.join(names)}, one of the processes sharing this PostgreSQL "
            "(the leader polls, sweeps and delivers; the others wait to take over). Stop with Ctrl-C.\n"
        )
        out.flush()
        await running.lead_or_follow(bot, leadership, stop, out)
    finally:
        if metrics_server is not None:
            await metrics_server.stop()
        if web_server is not None:
            await web_server.stop()
        for transport in shared:
            with contextlib.suppress(Exception):
                await transport.stop()
        await asyncio.to_thread(leadership.dispose)
        bot.dispose()
    return 0


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def start_metrics(config: Config, out: TextIO) -> MetricsServer | None:
    """`/metrics` on its own port when `[metrics] enabled` and the web door is off (the web
    door serves it otherwise)."""
    if not config.metrics.enabled or config.web.enabled:
        return None
    from coopbot.metrics import MetricsServer

    server = MetricsServer(config.metrics.listen, config.metrics.port)
    await server.start()
    out.write(f"Metrics are served on {server.url}\n")
    out.flush()
    return server


def console_identity(bot: CoopBot, ref: str) -> tuple[str, str]:
    """The console handle of a member, created on first use."""
    with transaction(bot.sessions) as session:
        member: Member = members_svc.find_member(session, ref)
        console, now = platforms.CONSOLE.name, bot.clock.now()
        identity = members_svc.add_identity(session, member, console, str(member.id), now, member.name)
        return identity.external_id, member.name


async def chat_loop(
    config: Config, ref: str, stdin: TextIO | None, out: TextIO, *, bot: CoopBot | None = None, web: bool = False
) -> int:
    """Read lines, answer them as the bot; `as NAME` switches who is talking.

    `web`: also serve the web door when `[web] enabled` (`coopbot run` in the terminal, not `coopbot chat`).
    """
    bot = bot or CoopBot(config)
    console = ConsoleTransport(out=out)
    bot.add_transport(console)
    try:
        handle, name = console_identity(bot, ref)
    except NotFound as exc:
        if exc.key != "members.no_such_member":
            raise
        # On the server's command line the list is `coopbot member list`, not /members.
        raise NotFound("cli.no_such_member", **exc.params) from exc
    console.names[handle] = name
    conversation = Conversation(bot, console)
    await bot.start()
    web_server = None
    try:
        web_server = await start_web(bot, out) if web else None
        out.write(f"Talking to {config.coop.name}'s bot as {name}. Type /help; 'as NAME' to switch; Ctrl-D to quit.\n")
        while True:
            line = await asyncio.to_thread(_read_line, stdin)
            if line is None:
                break
            line = line.strip()
            if not line:
                continue
            if line.lower().startswith("as "):
                try:
                    handle, name = console_identity(bot, line[3:])
                except CoopError as exc:
                    out.write(f"  {t(config.coop.default_language, exc.key, **exc.params)}\n")
                    continue
                console.names[handle] = name
                out.write(f"  (now talking as {name})\n")
                continue
            await conversation.say(handle, line)
    finally:
        if web_server is not None:
            await web_server.stop()
        await bot.stop()
    return 0


def _read_line(stdin: TextIO | None) -> str | None:
    if stdin is None:
        try:
            return input()
        except EOFError:
            return None
    line = stdin.readline()
    return line or None
