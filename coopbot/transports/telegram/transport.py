"""Telegram, through python-telegram-bot: updates become `Incoming`, `Outgoing` become messages.

The transport knows nothing of the co-op's rules. It keeps what is Telegram's
own: `/cmd@botname` in groups, HTML escaping, the 4096-character limit,
inline keyboards whose 64-byte `callback_data` must carry a command, the
callback spinner that must always be stopped, and the errors Telegram
answers with, turned into the outbox's words (retry later, or unreachable).
`pacing()` says the limits; every message sent, a reply or the outbox's, takes
a slot from the one pacer the outbox shares with the transport (`use_pacer`),
a reply first. PTB's own rate limiter would pause every chat on one chat's 429.

`build_telegram_transport` is the one place the Application is built: `coopbot run`
and the tests (against a fake Bot API) talk to Telegram the same way, each request
on a connection of its own (`connections`); a message sent is read for its id alone. Updates
come in through `telegram_intake`, which tells Telegram an update was handled
only once it was; PTB's Updater would confirm them before.

A reply is the member's answer and is never given up lightly, nor all at once:
whatever goes wrong with one message (Telegram refuses it, the answer cannot be
read), the failure is logged and the next message of the reply is still sent;
an edit that fails becomes a new message. Only a chat that cannot be reached at
all ends the reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import telegram
from sqlalchemy.orm import Session, sessionmaker
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from coopbot.chat import (
    Address,
    Button,
    Incoming,
    MenuEntry,
    Outgoing,
    Pacing,
    TransientSendError,
    UnreachableError,
)
from coopbot.config import Config, TelegramSection
from coopbot.errors import ConfigError
from coopbot.i18n import LANGUAGES, normalise_language, t
from coopbot.models import TransportState
from coopbot.splitting import split_text
from coopbot.transports.pacing import Pacer
from coopbot.transports.telegram import PLATFORM
from coopbot.transports.telegram.connections import bot_request
from coopbot.transports.telegram.intake import PerChatUpdates, Polling, Webhook, photo_of
from coopbot.transports.telegram.messages import TEXT_LIMIT, Part, Request, as_send_error, parts_of, request_of, sent_id

if TYPE_CHECKING:
    from coopbot.app import CoopBot

log = logging.getLogger(__name__)
TELEGRAM = PLATFORM.name

CALLBACK_LIMIT = 64
TOAST_LIMIT = 200
#: Tries of one message of a reply when Telegram says "try again" (a 5xx, a 429), REPLY_BACKOFF
#: apart, doubling (7.75 s in all): a member's answer is not given up on a bad second.
REPLY_ATTEMPTS = 6
REPLY_BACKOFF = 0.25
#: Replies (not the outbox) wait this long at most when Telegram says "retry after".
REPLY_MAX_WAIT = 30.0
#: On one chat's limits, which are counted on start times: two requests started 1 s apart
#: can reach Telegram closer together. The overall limit needs none (see coopbot.transports.pacing).
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
    # getUpdates' own read timeout is this plus the long-poll timeout.
    builder = builder.get_updates_read_timeout(request_timeout).get_updates_write_timeout(request_timeout)
    builder = builder.get_updates_connect_timeout(request_timeout).get_updates_pool_timeout(request_timeout)
    builder = builder.request(bot_request(request_timeout)).concurrent_updates(PerChatUpdates(32))
    # No Updater: it would confirm updates before they are handled (see telegram_intake).
    return builder.updater(None).build()


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
    sessions, menu = (bot.sessions, bot.commands.menu()) if bot else (None, [])
    return TelegramTransport(config, application, sessions=sessions, webhook_secret=secret, menu=menu)


@dataclass
class _Context:
    """What a reply needs to know about the update it answers."""

    message_id: int | None = None
    query_id: str | None = None
    answered: bool = False
    toast: str = ""


@dataclass
class TelegramTransport:
    config: Config
    application: TelegramApp
    sessions: sessionmaker[Session] | None = None
    webhook_secret: str | None = None
    #: The command menu, handed over by the core: strangers' and members' commands.
    menu: list[MenuEntry] = field(default_factory=list)
    platform: str = TELEGRAM
    #: Long-poll timeout of getUpdates, in seconds.
    poll_timeout: int = 10
    _on_incoming: Callable[[Incoming], Awaitable[None]] | None = None
    _contexts: dict[str, _Context] = field(default_factory=dict)
    #: Outbox key → (parts of a long message delivered, last message ref): a retry sends only the rest.
    _progress: dict[str, tuple[int, str]] = field(default_factory=dict)
    _long_callbacks: dict[str, str] = field(default_factory=dict)
    _warned_groups: set[int] = field(default_factory=set)
    _username: str = ""
    _intake: Polling | Webhook | None = None
    _receiving: bool = False
    _pacer: Pacer | None = None

    @property
    def section(self) -> TelegramSection:
        return self.config.telegram

    @property
    def connected(self) -> bool:
        """Once polling runs or the webhook is set, until stopped (for the web door's `/readyz`)."""
        return self._receiving

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
        allowed = ["message", "callback_query"]
        section = self.section
        if section.mode == "webhook":
            assert self.webhook_secret is not None
            self._intake = Webhook(
                self.bot, self._process, allowed, section.webhook_url, section.webhook_listen,
                section.webhook_port, self.webhook_secret,
            )  # fmt: skip
        else:
            self._intake = Polling(self.bot, self._process, allowed, self.poll_timeout)
        await self._intake.start()
        self._receiving = True
        log.info("Telegram: @%s is listening (%s)", self._username, self.section.mode)

    async def stop(self) -> None:
        """Stop fetching, finish the updates in hand (then confirm them), close."""
        self._receiving = False
        if self._intake is not None:
            await self._intake.stop()
            self._intake = None
        await self.application.shutdown()

    async def _process(self, update: Update) -> None:
        """One update through PTB's handlers, in its chat's turn; returns once it is handled."""
        app = self.application
        await app.update_processor.process_update(update, app.process_update(update))

    def pacing(self) -> Pacing:
        """The configured limits; one chat's less a margin: evenly spaced requests can still reach
        Telegram bunched up (a busy event loop, the network), and a burst costs a 429. The overall
        limit is counted until each answer, which holds it exactly (`Pacer.slot`)."""
        section, low, high = self.section, 1 - PACING_MARGIN, 1 + PACING_MARGIN
        per_minute = max(1, int(section.group_per_minute * low))
        return Pacing(section.per_second, section.private_chat_interval * high, per_minute)

    def use_pacer(self, pacer: Pacer) -> None:
        """The outbox's pacer for Telegram: replies and deliveries then share one limit."""
        self._pacer = pacer

    @property
    def pacer(self) -> Pacer:
        if self._pacer is None:  # a transport without an outbox still keeps Telegram's limits
            self._pacer = Pacer(self.pacing())
        return self._pacer

    async def _paced(self, chat_id: int, private: bool, call: Callable[[], Awaitable[T]], *, reply: bool) -> T:
        """One request to Telegram in its slot: a reply's first, a delivery's after the replies waiting."""
        async with self.pacer.slot(str(chat_id), private, reply=reply):
            return await call()

    async def _set_commands(self) -> None:
        """The command menu, in English, in French, and for every other language the default."""
        shown = [entry for entry in self.menu if COMMAND_NAME.fullmatch(entry.name)]
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
        """The platform-free form of an update, or None for what the co-op should not see.

        The receipt key names the bot as well as the update: a new bot, or the same bot on a
        self-hosted Bot API server, counts its updates from 1 again. (Receipts written before,
        as `tg:<update id>`, cannot match and simply expire.)
        """
        event_id = f"{self.bot.id}:{update.update_id}"
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
        text = (message.text or message.caption or "").strip()
        if not private and not text.startswith(("/", "!")):
            return None, None
        if not self._listening(message):
            if not self._for_another_bot(text):
                await self._unconfigured_group(message)
            return None, None
        ctx = _Context(None if private else message.message_id)
        replied = message.reply_to_message
        photo = await photo_of(self.bot, message)
        return _incoming(user, message, event_id, text=text, bot_name=self._username or None, photo=photo,
                         reply_text=(replied.text or replied.caption or "") if replied else ""), ctx

    def _for_another_bot(self, text: str) -> bool:
        """`/cmd@otherbot`: the router ignores it (it knows `bot_name`); no hint is owed either."""
        head = text.split(maxsplit=1)[0] if text else ""
        return "@" in head and head.partition("@")[2].lower() != self._username

    def _listening(self, message: Message) -> bool:
        groups = (*self.section.group_chat_ids, *self.section.coordinator_chat_ids)
        return message.chat.type == "private" or message.chat.id in groups

    async def _unconfigured_group(self, message: Message) -> None:
        """Say once per run how to make a group the co-op's, so the installer learns its id."""
        if (chat_id := message.chat.id) not in self._warned_groups:
            self._warned_groups.add(chat_id)
            lang = self._lang(message.from_user.language_code if message.from_user else None)
            text = t(lang, "telegram.unconfigured_group", chat_id=chat_id, coop=self.config.coop.name)
            try:
                send = partial(self.bot.send_message, chat_id, html.escape(text, quote=False), parse_mode="HTML")
                await self._paced(chat_id, False, send, reply=True)
            except Exception as exc:
                log.warning("Telegram: could not tell group %s how to configure it: %r", chat_id, exc)

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
                message_id = int(incoming.message_ref.split(":")[1])
                if not await self._edit(chat_id, incoming.is_private, message_id, edits[0]):
                    to_send.insert(0, edits[0])
            if not incoming.is_private:
                # In a group the toast is the presser's own answer; the message is everyone's.
                toast = next((m for m in to_send if not m.edit and not m.buttons and not m.attachment), None)
                if toast is not None and len(toast.text) <= TOAST_LIMIT:
                    to_send.remove(toast)
                    ctx.toast = toast.text
            await self._answer(ctx)
        for message in to_send:
            if not await self._reply_with(chat_id, incoming.is_private, message, ctx):
                return

    async def _reply_with(self, chat_id: int, private: bool, message: Outgoing, ctx: _Context) -> bool:
        """Send one message of a reply; False when the chat cannot be reached at all.

        A part that fails ends this message (the rest would not make sense without it) but not
        the reply: the next message is still sent.
        """
        for part in parts_of(message):
            try:
                request = await self._request(chat_id, part, ctx.message_id)
                await self._with_retries(chat_id, private, partial(sent_id, self.bot, request))
            except TelegramError as exc:
                if isinstance(as_send_error(exc), UnreachableError):
                    log.warning("Telegram: chat %s cannot be reached; reply dropped: %s", chat_id, exc)
                    return False
                log.warning("Telegram: a reply to %s was not delivered: %s", chat_id, exc)
                return True
            except Exception:  # an answer that cannot be read, a bug: the next message still goes
                log.exception("Telegram: a reply to %s failed", chat_id)
                return True
        return True

    async def _edit(self, chat_id: int, private: bool, message_id: int, message: Outgoing) -> bool:
        """Replace the pressed message; False when it was not, and the answer should be sent instead.

        After a failure that leaves it unknown whether the edit happened (an unreadable answer),
        the answer is sent anyway: seen twice is better than never seen.
        """
        pieces = split_text(message.text, TEXT_LIMIT)
        if len(pieces) != 1:
            return False
        try:
            body, markup = html.escape(pieces[0], quote=False), await self._keyboard(message.buttons)
            edit = partial(self.bot.edit_message_text, body, chat_id, message_id, reply_markup=markup)
            await self._with_retries(chat_id, private, partial(edit, parse_mode="HTML"))
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return True
            log.info("Telegram: could not edit %s:%s (%s); sending instead", chat_id, message_id, exc)
            return False
        except Exception as exc:
            log.warning("Telegram: editing %s:%s failed (%r); sending instead", chat_id, message_id, exc)
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
        except Exception:
            log.exception("Telegram: answering a button press failed")

    async def _with_retries(self, chat_id: int, private: bool, call: Callable[[], Awaitable[T]]) -> T:
        """A reply is retried a little (the person is waiting); the outbox retries notifications.

        What is not worth retrying, and the last failure, is raised for the caller to sort out.
        Only Telegram's own "try again" is retried: after an answer that cannot be read, the
        message may well have been shown. A "retry after" holds the chat in the pacer, so the
        outbox waits too, and the retry takes its slot when the wait is over.
        """
        for attempt in range(REPLY_ATTEMPTS - 1):
            try:
                return await self._paced(chat_id, private, call, reply=True)
            except TelegramError as exc:
                error = as_send_error(exc)
                if not isinstance(error, TransientSendError) or (error.retry_after or 0) > REPLY_MAX_WAIT:
                    raise
                self.pacer.obey(str(chat_id), error)
                if error.retry_after is None:
                    await asyncio.sleep(REPLY_BACKOFF * 2**attempt)
        return await self._paced(chat_id, private, call, reply=True)

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        """Deliver an outbox message, resuming after the parts a failed attempt already sent."""
        chat_id = int(address.chat_id)
        done, ref = self._progress.get(key, (0, ""))
        for number, part in enumerate(parts_of(message)):
            if number < done:
                continue
            request = await self._request(chat_id, part, None)
            try:
                sent = await self._paced(chat_id, address.private, partial(sent_id, self.bot, request), reply=False)
            except TelegramError as exc:
                error = as_send_error(exc)
                if error is None:
                    raise
                if isinstance(error, UnreachableError):
                    self._progress.pop(key, None)
                raise error from exc
            ref = f"{chat_id}:{sent}"
            self._progress[key] = (number + 1, ref)
        self._progress.pop(key, None)
        return ref

    async def _request(self, chat_id: int, part: Part, reply_to: int | None) -> Request:
        return request_of(chat_id, part, await self._keyboard(part.buttons), reply_to)

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
            row = session.get(TransportState, (TELEGRAM, f"cb:{digest}"))
            if row is None and command is not None:
                session.add(TransportState(platform=TELEGRAM, key=f"cb:{digest}", value=command))
            return row.value if row else command


def _incoming(user: telegram.User, message: Message, event_id: str, **fields: Any) -> Incoming:
    return Incoming(
        TELEGRAM, str(user.id), str(message.chat.id), message.chat.type == "private",
        display_name=user.full_name, language=user.language_code, event_id=event_id, **fields,
    )  # fmt: skip


def _menu_line(lang: str, key: str, name: str) -> str:
    with contextlib.suppress(KeyError):
        return t(lang, key).strip()[:256] or name
    return name
