"""How Telegram's updates reach the bot, and when Telegram is told they were handled.

Telegram forgets an update once the bot confirms it: with polling, by asking
getUpdates for an `offset` past it; with a webhook, by answering its POST with
200. python-telegram-bot's own Updater confirms a batch as soon as it asks for
the next one, and its webhook answers 200 before the update is handled, so a
crash in between loses what a member said. Here an update is confirmed only
once it has been handled, its transaction committed and its answer sent: a
crash replays it, and the router's receipt (keyed by bot and update id) makes
the replay harmless.

Polling keeps the chats independent: updates are handled concurrently (one
chat's in order), and while a slow one (a reply waiting out a flood limit)
holds the offset back, the others are still fetched, with a short poll every
`QUIET` seconds instead of the long one.

A photo (a courier's proof of delivery) is fetched here too, before the
update reaches the core: the largest size Telegram offers, through the Bot
API's own getFile and file download, so the core only ever sees bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import telegram
from aiohttp import web
from telegram import Message, Update
from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseUpdateProcessor

from coopbot.chat import Photo
from coopbot.transports.telegram.messages import retry_seconds

log = logging.getLogger(__name__)

#: While an update is still being handled, how long the next poll waits for it to finish.
QUIET = 1.0
#: How long `stop()` lets the updates in hand finish.
STOP_WAIT = 30.0
MAX_BACKOFF = 30.0
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

Process = Callable[[Update], Awaitable[None]]


async def photo_of(bot: telegram.Bot, message: Message) -> Photo | None:
    """The photo a message carries, downloaded: the largest size (Telegram sends every photo as
    JPEG), or an image sent as a file. None when there is none, or it cannot be fetched: the
    member is then answered as if they had sent no photo, and told what is missing."""
    if message.photo:
        file_id, mime = max(message.photo, key=lambda size: size.width * size.height).file_id, "image/jpeg"
    elif message.document is not None and (message.document.mime_type or "").startswith("image/"):
        file_id, mime = message.document.file_id, message.document.mime_type or "image/jpeg"
    else:
        return None
    try:
        found = await bot.get_file(file_id)
        return Photo(bytes(await found.download_as_bytearray()), mime)
    except (TelegramError, OSError) as exc:
        log.warning("Telegram: could not download a photo (%s)", exc)
        return None


class PerChatUpdates(BaseUpdateProcessor):
    """A chat's updates are handled in order; other chats do not wait for a slow one (a flood wait)."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        async with self._locks[chat.id if chat is not None else 0]:
            await coroutine

    async def initialize(self) -> None: ...

    async def shutdown(self) -> None: ...


@dataclass
class Polling:
    """getUpdates in a loop; the offset never passes an update not yet handled."""

    bot: telegram.Bot
    process: Process
    allowed_updates: Sequence[str]
    #: Long-poll timeout of getUpdates, in seconds.
    timeout: int = 10
    _in_flight: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    #: The highest update id handed out in this run: anything at or below it is in hand or done.
    _highest: int | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # A webhook left set (another mode, another install) makes getUpdates fail with 409.
        await self.bot.delete_webhook(drop_pending_updates=False)
        self._task = asyncio.create_task(self._run(), name="telegram-polling")

    async def stop(self) -> None:
        """Stop fetching, let the updates in hand finish, then confirm them."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._in_flight:
            await asyncio.wait(list(self._in_flight.values()), timeout=STOP_WAIT)
        if self._highest is not None:
            # Spares the next start a replay; the receipts would make it harmless anyway.
            with contextlib.suppress(Exception):
                await self.bot.get_updates(offset=self.offset(), timeout=0, limit=1)

    def offset(self) -> int | None:
        """The first update Telegram must keep: the oldest in hand, else the next one."""
        if self._in_flight:
            return min(self._in_flight)
        return None if self._highest is None else self._highest + 1

    async def _run(self) -> None:
        failures = 0
        while True:
            if self._in_flight:
                await asyncio.wait(list(self._in_flight.values()), timeout=QUIET)
            try:
                updates = await self.bot.get_updates(
                    offset=self.offset(),
                    timeout=0 if self._in_flight else self.timeout,
                    allowed_updates=list(self.allowed_updates),
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the network, Telegram, a 409 from a second instance: keep trying
                failures += 1
                await asyncio.sleep(_backoff(exc, failures))
                continue
            failures = 0
            for update in updates:
                if self._highest is None or update.update_id > self._highest:
                    self._highest = update.update_id
                    self._start(update)

    def _start(self, update: Update) -> None:
        task = asyncio.create_task(self._handle(update))
        self._in_flight[update.update_id] = task
        task.add_done_callback(lambda _: self._in_flight.pop(update.update_id, None))

    async def _handle(self, update: Update) -> None:
        try:
            await self.process(update)
        except Exception:
            log.exception("Telegram: handling update %s failed", update.update_id)


def _backoff(exc: Exception, failures: int) -> float:
    if isinstance(exc, RetryAfter):
        return retry_seconds(exc)
    log.warning("Telegram: getUpdates failed (%s); retrying", exc)
    return min(MAX_BACKOFF, 0.5 * 2.0**failures)


@dataclass
class Webhook:
    """Telegram POSTs each update here; the answer (200) waits until it has been handled."""

    bot: telegram.Bot
    process: Process
    allowed_updates: Sequence[str]
    url: str
    listen: str
    port: int
    secret: str
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/" + urlparse(self.url).path.lstrip("/"), self._receive)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=STOP_WAIT)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.listen, self.port).start()
        await self.bot.set_webhook(
            self.url, secret_token=self.secret, allowed_updates=list(self.allowed_updates), drop_pending_updates=False
        )

    async def stop(self) -> None:
        """Stop listening; POSTs being handled are finished (Telegram resends the rest)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), self.bot)
        except Exception as exc:  # not JSON, or not an update: Telegram would not send it
            log.warning("Telegram: the webhook received something that is not an update (%s)", exc)
            return web.Response(status=400)
        try:
            await self.process(update)
        except Exception:
            log.exception("Telegram: handling update %s failed", update.update_id)
        return web.Response(status=200)
