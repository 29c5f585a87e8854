"""The terminal as a chat platform: `coopbot chat`, `coopbot demo`, fast tests.

It goes through exactly the same router and outbox as Telegram and Matrix;
only the rendering differs. Buttons are shown as the command they stand for,
so a person at the terminal can type them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from coopbot.chat import Address, Incoming, IncomingHandler, Outgoing, Pacing, Photo


@dataclass
class Delivered:
    chat_id: str
    private: bool
    message: Outgoing


@dataclass
class ConsoleTransport:
    out: TextIO | None = sys.stdout
    names: dict[str, str] = field(default_factory=dict)
    #: Every message sent or replied, for the demo's summary and for tests.
    log: list[Delivered] = field(default_factory=list)
    platform: str = "console"
    _counter: int = 0

    async def start(self, on_incoming: IncomingHandler) -> None:
        return None

    async def stop(self) -> None:
        return None

    @property
    def connected(self) -> bool:
        """The terminal is always there (for the web door's `/readyz`)."""
        return True

    def pacing(self) -> Pacing:
        return Pacing(per_second=1000.0, private_chat_interval=0.0, group_per_minute=60000)

    async def reply(self, incoming: Incoming, messages: list[Outgoing]) -> None:
        for message in messages:
            self._show(incoming.chat_id, incoming.is_private, message, to=incoming.user_id)

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        return self._show(address.chat_id, address.private, message, to=address.chat_id)

    def _show(self, chat_id: str, private: bool, message: Outgoing, *, to: str) -> str:
        self._counter += 1
        self.log.append(Delivered(chat_id, private, message))
        if self.out is not None:
            self.out.write(render(message, self.names.get(to, to) if private else f"#{chat_id}") + "\n")
            self.out.flush()
        return str(self._counter)


def render(message: Outgoing, where: str) -> str:
    lines = message.text.splitlines() or [""]
    head = f"  bot → {where}: "
    body = head + lines[0] + "".join("\n" + " " * len(head) + line for line in lines[1:])
    if message.buttons:
        body += "\n" + " " * len(head) + "  ".join(f"[{b.label} → {b.command}]" for b in message.buttons)
    if message.attachment is not None:
        body += "\n" + " " * len(head) + f"📎 {message.attachment[0]}"  # no words: the same in every language
    return body


class Conversation:
    """Talk to a bot as named people, the way `chat`, `demo` and tests do.

    Each line is an `Incoming` from the console platform whose user id is the
    person's handle; after each line the outbox is drained so notifications
    to others appear in order.
    """

    def __init__(self, bot: Bot, console: ConsoleTransport, out: TextIO | None = None) -> None:
        self.bot = bot
        self.console = console
        self.out = out
        self._events = 0

    async def say(
        self,
        who: str,
        text: str,
        *,
        private: bool = True,
        room: str = "coop",
        button: str | None = None,
        language: str | None = None,
        photo: Photo | None = None,
        reply_text: str = "",
    ) -> list[Outgoing]:
        """`who` says `text` (with `photo`, `text` is its caption; `reply_text` is the message replied to)."""
        self._events += 1
        if self.out is not None:
            where = "" if private else f" (in #{room})"
            shown = button or text
            if photo is not None:
                shown = f"📷 {shown}".rstrip()
            self.out.write(f"{self.console.names.get(who, who)}{where}: {shown}\n")
        incoming = Incoming(
            platform="console",
            user_id=who,
            chat_id=who if private else room,
            is_private=private,
            text=text if button is None else "",
            display_name=self.console.names.get(who, who),
            language=language,
            button=button,
            event_id=f"console:{id(self)}:{self._events}",
            photo=photo,
            reply_text=reply_text,
        )
        before = len(self.console.log)
        await self.bot.on_incoming(incoming)
        await self.bot.outbox.drain()
        return [d.message for d in self.console.log[before:]]


class Bot(Protocol):
    """The part of CoopBot a conversation needs (kept apart to avoid an import cycle)."""

    async def on_incoming(self, incoming: Incoming) -> None: ...

    @property
    def outbox(self) -> Drainable: ...


class Drainable(Protocol):
    async def drain(self, timeout: float = 30.0) -> None: ...
