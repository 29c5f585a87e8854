"""Telegram, through python-telegram-bot: updates become `Incoming`, `Outgoing` become messages.

The transport knows nothing of the co-op's rules. It keeps what is Telegram's
own: `/cmd@botname` in groups, HTML escaping, the 4096-character limit,
inline keyboards whose 64-byte `callback_data` must carry a command, the
callback spinner that must always be stopped, and the errors Telegram
answers with, turned into the outbox's words (retry later, or unreachable).
Pacing is the outbox's job (`pacing()` says the limits); PTB's own rate
limiter would pause every chat on one chat's 429.

`build_telegram_transport` is the one place the Application is built: `coopbot run`
and the tests (against a fake Bot API) talk to Telegram the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import logging
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

import telegram
from sqlalchemy.orm import Session, sessionmaker
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, ReplyParameters, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, BaseUpdateProcessor, ContextTypes, TypeHandler

from coopbot.chat import Address, Button, Incoming, Outgoing, Pacing, TransientSendError, UnreachableError
from coopbot.config import Config, TelegramSection
from coopbot.errors import ConfigError
from coopbot.i18n import LANGUAGES, normalise_language, t
from coopbot.models import TransportState

if TYPE_CHECKING:
    from coopbot.app import CoopBot

log = logging.getLogger(__name__)

PLATFORM = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_LIMIT = 64
TOAST_LIMIT = 200
PHOTO_TYPES = ("image/png", "image/jpeg")
REPLY_ATTEMPTS = 3
#: Replies (not the outbox) wait this long at most when Telegram says "retry after".
REPLY_MAX_WAIT = 30.0
#: Telegram's words for a chat that is gone for good.
GONE = ("chat not found", "user is deactivated", "bot was kicked")
PACING_MARGIN = 0.05
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")

T = TypeVar("T")
TelegramApp = Application[Any, Any, Any, Any, Any, Any]


def build_application(section: TelegramSection, token: str, *, request_timeout: float = 10.0) -> TelegramApp:
    """The Application `coopbot run` uses, pointed at `api_base_url` (Telegram or a local server)."""
    base = section.api_base_url.rstrip("/")
    file_base = base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file"
    builder = ApplicationBuilder().token(token).base_url(base).base_file_url(file_base)
    builder = builder.read_timeout(request_timeout).write_timeout(request_timeout).connect_timeout(request_timeout)
    return builder.pool_timeout(request_timeout).concurrent_updates(PerChatUpdates(32)).build()


def build_telegram_transport(
    config: Config, bot: CoopBot | None = None, *, request_timeout: float = 10.0
) -> TelegramTransport:
    section = config.telegram
    secret = None
    if section.mode == "webhook":
        secret = os.environ.get(section.webhook_secret_env, "")
        if not SECRET_TOKEN.fullmatch(secret):
            env = section.webhook_secret_env
            raise ConfigError(
                f"telegram.webhook_secret_env: webhook mode needs {env} set to 1-256 letters, digits, _, -"
            )
        if not section.webhook_url:
            raise ConfigError("telegram.webhook_url: webhook mode needs the public https URL Telegram posts to")
    application = build_application(section, section.token(), request_timeout=request_timeout)
    return TelegramTransport(config, application, sessions=bot.sessions if bot else None, webhook_secret=secret)


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
class _Context:
    """What a reply needs to know about the update it answers."""

    message_id: int | None = None
    query_id: str | None = None
    answered: bool = False
    toast: str = ""


@dataclass
class _Part:
    text: str = ""
    attachment: tuple[str, bytes, str] | None = None
    buttons: tuple[Button, ...] = ()


@dataclass
class TelegramTransport:
    config: Config
    application: TelegramApp
    sessions: sessionmaker[Session] | None = None
    webhook_secret: str | None = None
    platform: str = PLATFORM
    #: Long-poll timeout of getUpdates, in seconds.
    poll_timeout: int = 10
    _on_incoming: Callable[[Incoming], Awaitable[None]] | None = None
    _contexts: dict[str, _Context] = field(default_factory=dict)
    #: Outbox key → (parts of a long message delivered, last message ref): a retry sends only the rest.
    _progress: dict[str, tuple[int, str]] = field(default_factory=dict)
    _long_callbacks: dict[str, str] = field(default_factory=dict)
    _warned_groups: set[int] = field(default_factory=set)
    _username: str = ""

    @property
    def section(self) -> TelegramSection:
        return self.config.telegram

    @property
    def bot(self) -> telegram.Bot:
        bot: telegram.Bot = self.application.bot
        return bot

    async def start(self, on_incoming: Callable[[Incoming], Awaitable[None]]) -> None:
        self._on_incoming = on_incoming
        app = self.application
        app.add_handler(TypeHandler(Update, self._on_update))
        await app.initialize()
        self._username = (app.bot.username or "").lower()
        await self._set_commands()
        await app.start()
        assert app.updater is not None
        allowed = ["message", "callback_query"]
        if (section := self.section).mode == "webhook":
            url, path = section.webhook_url, urlparse(section.webhook_url).path.lstrip("/")
            listen, port, secret = section.webhook_listen, section.webhook_port, self.webhook_secret
            await app.updater.start_webhook(
                listen, port, path, webhook_url=url, secret_token=secret, allowed_updates=allowed
            )
        else:
            await app.updater.start_polling(
                timeout=self.poll_timeout, allowed_updates=allowed, drop_pending_updates=False
            )
        log.info("Telegram: @%s is listening (%s)", self._username, self.section.mode)

    async def stop(self) -> None:
        """Stop fetching (confirming the offset), finish the updates in hand, close."""
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    def pacing(self) -> Pacing:
        """The configured limits less a margin: evenly spaced requests can still reach Telegram
        bunched up (a busy event loop, the network), and a burst over the limit costs a 429."""
        section, low, high = self.section, 1 - PACING_MARGIN, 1 + PACING_MARGIN
        per_minute = max(1, int(section.group_per_minute * low))
        return Pacing(section.per_second * low, section.private_chat_interval * high, per_minute)

    async def _set_commands(self) -> None:
        """The command menu, in English, in French, and for every other language the default."""
        from handlers.registry import COMMANDS

        shown = [c for c in COMMANDS.values() if c.role in (None, "member") and COMMAND_NAME.fullmatch(c.name)]
        default = self.config.coop.default_language
        for code in (*LANGUAGES, None):
            lang = code or default
            menu = [BotCommand(c.name, _menu_line(lang, c.help_key, c.name)) for c in shown][:100]
            try:
                await self.bot.set_my_commands(menu, language_code=code)
            except TelegramError as exc:
                log.warning("Telegram: could not set the %s command menu: %s", lang, exc)

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        incoming, ctx = await self.to_incoming(update)
        if incoming is None or self._on_incoming is None:
            if ctx is not None and ctx.query_id is not None:
                await self._answer(ctx)
            return
        assert incoming.event_id is not None
        self._contexts[incoming.event_id] = ctx or _Context()
        try:
            await self._on_incoming(incoming)
        finally:
            pending = self._contexts.pop(incoming.event_id)
            if pending.query_id is not None and not pending.answered:
                await self._answer(pending)

    async def to_incoming(self, update: Update) -> tuple[Incoming | None, _Context | None]:
        """The platform-free form of an update, or None for what the co-op should not see."""
        event_id = f"tg:{update.update_id}"
        query = update.callback_query
        if query is not None:
            ctx = _Context(query_id=query.id)
            message = query.message
            if message is None or not isinstance(message, Message) or not self._listening(message):
                return None, ctx
            command = await self._command_for(query.data or "")
            if command is None:
                ctx.toast = t(self._lang(query.from_user.language_code), "telegram.button_expired")
                return None, ctx
            ref = f"{message.chat.id}:{message.message_id}"
            return _incoming(query.from_user, message, event_id, button=command, message_ref=ref), ctx
        message = update.message
        user = message.from_user if message else None
        if message is None or user is None or user.is_bot:
            return None, None
        private = message.chat.type == "private"
        text = self._strip_botname(message.text or message.caption or "")
        if text is None or (not private and not text.startswith(("/", "!"))):
            return None, None
        if not self._listening(message):
            await self._unconfigured_group(message)
            return None, None
        return _incoming(user, message, event_id, text=text), _Context(None if private else message.message_id)

    def _strip_botname(self, text: str) -> str | None:
        """`/cmd@ourbot args` → `/cmd args`; None when the command is addressed to another bot."""
        head, sep, rest = text.strip().partition(" ")
        if head[:1] not in ("/", "!") or "@" not in head:
            return text.strip()
        name, _, botname = head.partition("@")
        if self._username and botname.lower() != self._username:
            return None
        return name + sep + rest

    def _listening(self, message: Message) -> bool:
        groups = (*self.section.group_chat_ids, *self.section.coordinator_chat_ids)
        return message.chat.type == "private" or message.chat.id in groups

    async def _unconfigured_group(self, message: Message) -> None:
        """Say once per run how to make a group the co-op's, so the installer learns its id."""
        if (chat_id := message.chat.id) not in self._warned_groups:
            self._warned_groups.add(chat_id)
            lang = self._lang(message.from_user.language_code if message.from_user else None)
            text = t(lang, "telegram.unconfigured_group", chat_id=chat_id, coop=self.config.coop.name)
            with contextlib.suppress(TelegramError):
                await self.bot.send_message(chat_id, html.escape(text, quote=False), parse_mode="HTML")

    def _lang(self, code: str | None) -> str:
        return normalise_language(code) or self.config.coop.default_language

    async def reply(self, incoming: Incoming, messages: list[Outgoing]) -> None:
        """Answer where the member spoke; a button press edits the message that carried it."""
        ctx = self._contexts.get(incoming.event_id or "") or _Context()
        chat_id = int(incoming.chat_id)
        to_send = list(messages)
        if ctx.query_id is not None and incoming.message_ref is not None:
            edits = [m for m in to_send if m.edit and m.attachment is None]
            if edits:
                to_send.remove(edits[0])
                if not await self._edit(chat_id, int(incoming.message_ref.split(":")[1]), edits[0]):
                    to_send.insert(0, edits[0])
            if not incoming.is_private:
                # In a group the toast is the presser's own answer; the message is everyone's.
                toast = next((m for m in to_send if not m.edit and not m.buttons and not m.attachment), None)
                if toast is not None and len(toast.text) <= TOAST_LIMIT:
                    to_send.remove(toast)
                    ctx.toast = toast.text
            await self._answer(ctx)
        for part in [part for message in to_send for part in self._parts(message)]:
            if await self._with_retries(partial(self._send_part, chat_id, part, ctx)) is None:
                return

    async def _edit(self, chat_id: int, message_id: int, message: Outgoing) -> bool:
        """Replace the pressed message; False when Telegram will not edit it (too old, a photo...)."""
        pieces = _split(message.text, TEXT_LIMIT)
        if len(pieces) != 1:
            return False
        body, markup = html.escape(pieces[0], quote=False), await self._keyboard(message.buttons)
        call = partial(self.bot.edit_message_text, body, chat_id, message_id, parse_mode="HTML", reply_markup=markup)
        try:
            await self._with_retries(call, raise_bad_request=True)
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return True
            log.info("Telegram: could not edit %s:%s (%s); sending instead", chat_id, message_id, exc)
            return False
        return True

    async def _answer(self, ctx: _Context) -> None:
        if ctx.answered or ctx.query_id is None:
            return
        ctx.answered = True
        text = ctx.toast[:TOAST_LIMIT] or None
        try:
            await self.bot.answer_callback_query(ctx.query_id, text=text, show_alert=bool(text and len(text) > 60))
        except TelegramError as exc:
            log.info("Telegram: could not answer a button press: %s", exc)

    async def _with_retries(self, call: Callable[[], Awaitable[T]], *, raise_bad_request: bool = False) -> T | None:
        """A reply is retried a little (the person is waiting); the outbox retries notifications."""
        for attempt in range(REPLY_ATTEMPTS):
            try:
                return await call()
            except TelegramError as exc:
                if raise_bad_request and isinstance(exc, BadRequest):
                    raise
                error = as_send_error(exc)
                wait = error.retry_after if isinstance(error, TransientSendError) else None
                last = attempt == REPLY_ATTEMPTS - 1
                if not isinstance(error, TransientSendError) or last or (wait or 0) > REPLY_MAX_WAIT:
                    log.warning("Telegram: reply not delivered: %s", exc)
                    return None
                await asyncio.sleep(wait if wait is not None else 0.5 * 2**attempt)
        return None

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        """Deliver an outbox message, resuming after the parts a failed attempt already sent."""
        chat_id = int(address.chat_id)
        done, ref = self._progress.get(key, (0, ""))
        for number, part in enumerate(self._parts(message)):
            if number < done:
                continue
            try:
                sent = await self._send_part(chat_id, part, _Context())
            except TelegramError as exc:
                error = as_send_error(exc)
                if error is None:
                    raise
                if isinstance(error, UnreachableError):
                    self._progress.pop(key, None)
                raise error from exc
            ref = f"{chat_id}:{sent.message_id}"
            self._progress[key] = (number + 1, ref)
        self._progress.pop(key, None)
        return ref

    def _parts(self, message: Outgoing) -> list[_Part]:
        """What one Outgoing becomes on Telegram: an attachment, then text of at most 4096 characters."""
        texts = _split(message.text, TEXT_LIMIT) if message.text.strip() else []
        parts: list[_Part] = []
        if message.attachment is not None:
            caption = texts.pop(0) if len(texts) == 1 and _units(texts[0]) <= CAPTION_LIMIT else ""
            parts.append(_Part(caption, message.attachment))
        parts += [_Part(text) for text in texts]
        if parts:
            parts[-1].buttons = message.buttons
        return parts

    async def _send_part(self, chat_id: int, part: _Part, ctx: _Context) -> Message:
        bot, body = self.bot, html.escape(part.text, quote=False)
        common: dict[str, Any] = {"reply_markup": await self._keyboard(part.buttons), "parse_mode": ParseMode.HTML}
        if ctx.message_id is not None:
            common["reply_parameters"] = ReplyParameters(ctx.message_id, allow_sending_without_reply=True)
        if part.attachment is None:
            return await bot.send_message(chat_id, body, **common)
        name, data, mime = part.attachment
        upload = InputFile(data, filename=name)
        if mime in PHOTO_TYPES:
            return await bot.send_photo(chat_id, upload, caption=body or None, **common)
        return await bot.send_document(chat_id, upload, caption=body or None, **common)

    async def _keyboard(self, buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
        """One row per two buttons, three when they are short (vote choices)."""
        if not buttons:
            return None
        width = 3 if all(len(b.label) <= 12 for b in buttons) else 2
        data = [await self._callback_data(b.command) for b in buttons]
        keys = [
            InlineKeyboardButton(f"{b.emoji} {b.label}".strip(), callback_data=data[i]) for i, b in enumerate(buttons)
        ]
        return InlineKeyboardMarkup([keys[i : i + width] for i in range(0, len(keys), width)])

    async def _callback_data(self, command: str) -> str:
        """The command itself when it fits in 64 bytes, else a key to it kept in the database."""
        if len(command.encode()) <= CALLBACK_LIMIT:
            return command
        digest = hashlib.sha256(command.encode()).hexdigest()[:32]
        if digest not in self._long_callbacks:
            self._long_callbacks[digest] = command
            if self.sessions is not None:
                await asyncio.to_thread(self._store_callback, digest, command)
        return "#" + digest

    async def _command_for(self, data: str) -> str | None:
        if not data.startswith("#"):
            return data or None
        digest = data[1:]
        if digest not in self._long_callbacks and self.sessions is not None:
            stored = await asyncio.to_thread(self._store_callback, digest)
            if stored is not None:
                self._long_callbacks[digest] = stored
        return self._long_callbacks.get(digest)

    def _store_callback(self, digest: str, command: str | None = None) -> str | None:
        """Keep (with `command`) or find a long command under its digest, across restarts."""
        assert self.sessions is not None
        with self.sessions() as session, session.begin():
            row = session.get(TransportState, (PLATFORM, f"cb:{digest}"))
            if row is None and command is not None:
                session.add(TransportState(platform=PLATFORM, key=f"cb:{digest}", value=command))
            return row.value if row else command


def _incoming(user: telegram.User, message: Message, event_id: str, **fields: Any) -> Incoming:
    return Incoming(
        PLATFORM, str(user.id), str(message.chat.id), message.chat.type == "private",
        display_name=user.full_name, language=user.language_code, event_id=event_id, **fields,
    )  # fmt: skip


def as_send_error(exc: TelegramError) -> TransientSendError | UnreachableError | None:
    """Telegram's answer in the outbox's words; None when Telegram refused the message itself."""
    text = str(exc).lower()
    if isinstance(exc, RetryAfter):
        return TransientSendError(str(exc), retry_seconds(exc), scope="chat")
    if isinstance(exc, ChatMigrated):
        log.error("Telegram: a group became supergroup %s; put that id in group_chat_ids", exc.new_chat_id)
        return UnreachableError(f"the group became supergroup {exc.new_chat_id}: put that id in group_chat_ids")
    if isinstance(exc, Forbidden) or (isinstance(exc, BadRequest) and any(g in text for g in GONE)):
        return UnreachableError(str(exc))
    if isinstance(exc, InvalidToken):
        return TransientSendError(f"Telegram refused the bot token: {exc}", 60.0, scope="all")
    if isinstance(exc, NetworkError) and not isinstance(exc, BadRequest):  # 5xx, timeouts, no network
        return TransientSendError(str(exc))
    return None


def retry_seconds(exc: RetryAfter) -> float:
    """PTB 22 warns when `retry_after` is read as a number; read it either way, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _split(text: str, limit: int) -> list[str]:
    """Cut at line ends into pieces Telegram accepts (it counts UTF-16 code units)."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        rest = line
        while _units(current + rest) > limit:
            if current:
                pieces.append(current)
                current = ""
                continue
            cut = _fit(rest, limit)
            pieces.append(rest[:cut])
            rest = rest[cut:]
        current += rest
    pieces.append(current)
    return [piece.rstrip("\n") for piece in pieces if piece.strip()]


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 units."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


def _menu_line(lang: str, key: str, name: str) -> str:
    with contextlib.suppress(KeyError):
        return t(lang, key).strip()[:256] or name
    return name
