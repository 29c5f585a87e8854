"""Messages written when they are sent, not when they are queued.

A row queued with `render="name:argument"` (`coopbot.outbox_rows.queue_rendered`)
stores no text: its renderer writes it at delivery, from what the database
holds then. Service modules declare renderers with `@renderer("name")`; the
bot collects them once, at start (`collect_renderers`), and its `Outbox` writes
each row with them (`Renderers.render`). Queueing needs none of this: only the
name travels with the row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session

from coopbot import services
from coopbot.chat import Button, Outgoing
from coopbot.config import Config
from coopbot.declared import Mark, Named, Registry
from coopbot.models import OutboxMessage

#: Writes a message at delivery: (session, config, argument, row) -> the message.
Renderer = Callable[[Session, Config, str, OutboxMessage], Outgoing]
RENDERER: Mark[Named[Renderer]] = Mark("renderer", Named)


def renderer(name: str) -> Callable[[Renderer], Renderer]:
    """Declare how rows queued with `render="name:argument"` are written."""

    def declare(fn: Renderer) -> Renderer:
        return RENDERER.put(fn, Named(name, fn))

    return declare


class Renderers(Registry[Named[Renderer]]):
    """The renderers one bot's outbox writes messages with."""

    def __init__(self, functions: Iterable[Renderer] = ()) -> None:
        super().__init__(RENDERER, functions)

    def render(self, session: Session, config: Config, row: OutboxMessage) -> Outgoing:
        """The row's message: stored, or written now by its renderer (KeyError if there is none)."""
        if row.render is None:
            return message_of(row)
        name, _, argument = row.render.partition(":")
        declared = self.lookup(name)
        if declared is None:
            raise KeyError(name)
        return declared.fn(session, config, argument, row)


def collect_renderers() -> Renderers:
    """Every renderer the service modules declare (they are the only ones that do)."""
    return Renderers(RENDERER.declared_in(services))


def message_of(row: OutboxMessage) -> Outgoing:
    """A stored row's message, as it was queued."""
    attachment = None
    if row.attachment is not None and row.attachment_name:
        attachment = (row.attachment_name, row.attachment, row.attachment_mime or "application/octet-stream")
    buttons = tuple(Button(label, command, emoji) for label, command, emoji in row.buttons)
    return Outgoing(row.text, buttons=buttons, attachment=attachment)
