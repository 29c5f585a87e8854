"""Platform-free message types shared by every transport and every handler.

A transport turns a Telegram update or a Matrix event into an `Incoming`, and
an `Outgoing` into a platform message. Nothing else in coopbot knows which
platform a member is talking from, which is what lets one command behave the
same everywhere.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Protocol


@dataclass(frozen=True)
class Button:
    """A shortcut for a command: pressing it is the same as typing `command`.

    `emoji` is what the Matrix transport uses as a reaction; Telegram shows
    `label` on an inline keyboard button.
    """

    label: str
    command: str
    emoji: str = ""


@dataclass(frozen=True)
class MenuEntry:
    """A command as a platform's command menu offers it (`Commands.menu`).

    `help_key` is the catalogue key of its one-line help: the transport writes
    it in each language its menu is set for.
    """

    name: str
    help_key: str


@dataclass(frozen=True)
class Photo:
    """An image a person sent, already downloaded (and decrypted) by their transport.

    The core never fetches anything from a platform: by the time a handler sees
    the photo, it is bytes and a mime type, the same from every platform.
    """

    data: bytes = dataclass_field(repr=False)
    mime: str = "image/jpeg"


@dataclass(frozen=True)
class Incoming:
    """One thing a person said or pressed, on any platform."""

    platform: str
    user_id: str
    chat_id: str
    is_private: bool
    text: str = ""
    display_name: str = ""
    language: str | None = None
    #: For a button press or a reaction: the command the button stands for.
    button: str | None = None
    #: The platform's id of this update/event, used to process it only once.
    event_id: str | None = None
    #: For a button press: the id of the bot message that carried the button.
    message_ref: str | None = None
    #: The name this bot goes by where `/command@name` addresses one bot among several
    #: (Telegram's username). A command addressed to any other name is not for us; on a
    #: platform without one (None), every command addressed by name is someone else's.
    bot_name: str | None = None
    #: A photo sent with the message (its caption is `text`): a courier's proof of delivery.
    photo: Photo | None = None
    #: The text of the message this one replies to, when the platform says (a photo sent in
    #: reply to the bot's job message names the job there).
    reply_text: str = ""

    def __post_init__(self) -> None:
        """Text is NFC from here on: `Zoé` typed with a combining accent is the same name, the
        same address and the same word to erase as `Zoé` typed with one key."""
        for field in ("text", "display_name", "button"):
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, unicodedata.normalize("NFC", value))

    @property
    def command_text(self) -> str:
        return self.button if self.button is not None else self.text


@dataclass(frozen=True)
class Outgoing:
    """Something the bot says.

    `private` means it must only ever reach the member's private chat: asked
    in a group, the transport-neutral core sends it privately and leaves a
    short note in the group. `edit` asks the transport to replace the message
    whose button was pressed instead of posting a new one.
    """

    text: str
    buttons: tuple[Button, ...] = ()
    private: bool = False
    edit: bool = False
    #: Optional attachment: (file name, bytes, mime type), e.g. a chart or a zip.
    attachment: tuple[str, bytes, str] | None = None
    #: A poll a platform can show natively (Matrix: MSC3381); the text stands for it elsewhere.
    poll: NativePoll | None = None


@dataclass(frozen=True)
class NativePoll:
    """A disclosed choice poll as a platform's own poll widget, or the end of one.

    Answers are numbered from 1 as the options are; a response choosing some of
    them is the member typing `/vote CODE 1,3`, so every rule of voting holds.
    """

    code: str
    question: str
    answers: tuple[str, ...]
    max_selections: int
    ended: bool = False


@dataclass(frozen=True)
class Address:
    """Where an outbox message goes: a member's private chat or a room."""

    platform: str
    chat_id: str
    private: bool


class SendError(Exception):
    """A transport could not deliver a message."""


class TransientSendError(SendError):
    """Try again later: a network error, a 5xx, or a rate limit.

    `retry_after` is the number of seconds the platform asked us to wait, if
    it said; `scope` is "chat" when only that chat must wait and "all" when
    the whole transport must pause.
    """

    def __init__(self, message: str, retry_after: float | None = None, scope: str = "chat") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.scope = scope


class UnreachableError(SendError):
    """The person blocked the bot or never opened a chat: do not retry."""


class RefusedError(SendError):
    """The receiver refused this message for good (a shop's server answering 404 or 410):
    retrying would get the same answer, so it is set aside at once for a person to look at,
    and can be sent again (`coopbot outbox retry`) once the cause is fixed."""


IncomingHandler = Callable[[Incoming], Awaitable[None]]


class Transport(Protocol):
    """What the core needs from a platform.

    `start` begins receiving and calls `on_incoming` for every message; the
    core replies with `reply`. Notifications to anyone else go through the
    outbox, which calls `send`.
    """

    platform: str

    async def start(self, on_incoming: IncomingHandler) -> None: ...

    async def stop(self) -> None: ...

    async def reply(self, incoming: Incoming, messages: list[Outgoing]) -> None: ...

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        """Deliver one message; return the platform's message id.

        Raise TransientSendError to be retried and UnreachableError when the
        recipient cannot be reached at all. `key` is the outbox idempotency
        key; transports that support it (Matrix transaction ids) use it so a
        retried send is never shown twice.
        """
        ...

    def pacing(self) -> Pacing: ...


@dataclass(frozen=True)
class Pacing:
    """A platform's sending limits, enforced by the outbox."""

    per_second: float = 30.0
    private_chat_interval: float = 1.0
    group_per_minute: int = 20
