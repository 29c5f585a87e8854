"""What Telegram accepts as a message, and what its refusals mean.

Telegram counts a message's length in UTF-16 code units, not characters (an
emoji is two), and refuses anything over 4096, or a caption over 1024. A
long answer is cut by `coopbot.splitting`, the one splitter of the bot (at a
sentence end, else a space), so each piece still reads well; the buttons go
under the last piece, where the member finishes reading.

When Telegram refuses, the outbox needs one of two words: try again later
(and when, and whether only this chat must wait), or this chat cannot be
reached. Anything else is a refusal of the message itself.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from datetime import timedelta

from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError

from coopbot.chat import Button, Outgoing, TransientSendError, UnreachableError
from coopbot.splitting import split_text, utf16_units
from coopbot.transports.telegram import PLATFORM

log = logging.getLogger(__name__)

TEXT_LIMIT = PLATFORM.max_length
CAPTION_LIMIT = 1024
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
    return float(value.total_seconds()) if isinstance(value, timedelta) else float(value)
