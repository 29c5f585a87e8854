"""What Telegram accepts as a message, and what its refusals mean.

Telegram counts a message's length in UTF-16 code units, not characters (an
emoji is two), and refuses anything over 4096, or a caption over 1024. A
long answer is cut by `coopbot.splitting`, the one splitter of the bot (at a
sentence end, else a space), so each piece still reads well; the buttons go
under the last piece, where the member finishes reading.

A part goes as one Bot API call through PTB's `Bot.do_api_request`, which
answers with Telegram's JSON: only the message id is read from it, where
`Bot.send_message` would build a `Message` of every field, 0.2 ms of CPU a send
(1.1-1.3 → 1.0-1.1 ms, measured as in `connections`). PTB warns that
`send_message` exists; that warning, and only it, is silenced (`quiet_direct_calls`).

When Telegram refuses, the outbox needs one of two words: try again later
(and when, and whether only this chat must wait), or this chat cannot be
reached. Anything else is a refusal of the message itself.
"""

from __future__ import annotations

import html
import logging
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, InputFile, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBUserWarning

from coopbot.chat import Button, Outgoing, TransientSendError, UnreachableError
from coopbot.splitting import split_text, utf16_units
from coopbot.transports.telegram import PLATFORM

log = logging.getLogger(__name__)

TEXT_LIMIT = PLATFORM.max_length
CAPTION_LIMIT = 1024
PHOTO_TYPES = ("image/png", "image/jpeg")
#: Telegram's words for a chat that is gone for good.
GONE = ("chat not found", "user is deactivated", "bot was kicked")


@dataclass
class Part:
    """One Telegram message: text, or a file with its caption, and perhaps the buttons."""

    text: str = ""
    attachment: tuple[str, bytes, str] | None = None
    buttons: tuple[Button, ...] = ()


def parts_of(message: Outgoing) -> list[Part]:
    """An attachment (captioned when the text is short enough), then text of at most 4096 units."""
    texts = split_text(message.text, TEXT_LIMIT) if message.text.strip() else []
    parts: list[Part] = []
    if message.attachment is not None:
        caption = texts.pop(0) if len(texts) == 1 and utf16_units(texts[0]) <= CAPTION_LIMIT else ""
        parts.append(Part(caption, message.attachment))
    parts += [Part(text) for text in texts]
    if parts:
        parts[-1].buttons = message.buttons
    return parts


@dataclass(frozen=True)
class Request:
    """One Bot API call, made before its pacer slot is taken, so that nothing is left between
    the slot and the request; a reply's retries send it again as it is."""

    method: str
    params: dict[str, Any]


def request_of(chat_id: int, part: Part, markup: InlineKeyboardMarkup | None, reply_to: int | None) -> Request:
    """What `Bot.send_message`, `send_photo` or `send_document` would send for the part."""
    params: dict[str, Any] = {"chat_id": chat_id, "parse_mode": ParseMode.HTML}
    if markup is not None:
        params["reply_markup"] = markup
    if reply_to is not None:
        params["reply_parameters"] = ReplyParameters(reply_to, allow_sending_without_reply=True)
    body = html.escape(part.text, quote=False)
    if part.attachment is None:
        return Request("sendMessage", {**params, "text": body})
    name, data, mime = part.attachment
    if body:
        params["caption"] = body
    if mime in PHOTO_TYPES:
        return Request("sendPhoto", {**params, "photo": InputFile(data, filename=name)})
    return Request("sendDocument", {**params, "document": InputFile(data, filename=name)})


async def sent_id(bot: Bot, request: Request) -> int:
    """Send; the id of the message Telegram made. An answer without one cannot be read, and
    raises ValueError: the message may well have been shown, so it is not Telegram's "try again"."""
    answer = await bot.do_api_request(request.method, request.params)
    message_id = answer.get("message_id") if isinstance(answer, dict) else None
    if type(message_id) is not int:
        raise ValueError(f"Telegram's answer to {request.method} has no message id: {answer!r:.200}")
    return message_id


def quiet_direct_calls() -> None:
    """Silence PTB's advice to use `send_message` (and the like) instead of `do_api_request`."""
    warnings.filterwarnings(
        "ignore", r"Please use 'Bot\.send(Message|Photo|Document)' instead", PTBUserWarning, append=False
    )


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
    # do_api_request calls a 401 or 404 EndPointNotFound, once the bot knows itself: the token.
    if isinstance(exc, InvalidToken | EndPointNotFound):
        return TransientSendError(f"Telegram refused the bot token: {exc}", 60.0, scope="all")
    if isinstance(exc, NetworkError) and not isinstance(exc, BadRequest):  # 5xx, timeouts, no network
        return TransientSendError(str(exc))
    return None


def retry_seconds(exc: RetryAfter) -> float:
    """PTB 22 warns when `retry_after` is read as a number; read it either way, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return float(value.total_seconds()) if isinstance(value, timedelta) else float(value)
