"""Messages written when they are sent, not when they are queued.

A row queued with `render="name:argument"` (`coopbot.outbox_rows.queue_rendered`)
stores no text: its renderer writes it at delivery, from what the database
holds then. Service modules declare renderers with `@renderer("name")`; the
bot collects them once, at start (`collect_renderers`), and its `Outbox` writes
the rows it loads with them (`Renderers.render_all`). Queueing needs none of
this: only the name travels with the row.

A renderer may also declare a batch form (`@renderer("name", many=...)`) that
writes every row of one argument at once. Reason: a delivery pass loads all the
rows it starts in one transaction, and after a period closes they are mostly
share messages of that one period; written row by row, each was one round trip
to the database, which on PostgreSQL alone missed issue 20's target
(`bench/period_close.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from coopbot import services
from coopbot.chat import Button, Outgoing
from coopbot.config import Config
from coopbot.declared import Mark, Registry
from coopbot.models import OutboxMessage

#: Writes a message at delivery: (session, config, argument, row) -> the message.
Renderer = Callable[[Session, Config, str, OutboxMessage], Outgoing]
#: Writes the messages of rows queued with the same name and argument, at once:
#: (session, config, argument, rows) -> for each row in order, its message or the
#: exception that kept it from being written (one row's failure loses no other's).
RendererMany = Callable[[Session, Config, str, Sequence[OutboxMessage]], Sequence[Outgoing | Exception]]


@dataclass(frozen=True)
class Declared:
    """A renderer: its name, how it writes one row, and, if it has one, its batch form."""

    name: str
    fn: Renderer
    many: RendererMany | None = None


RENDERER: Mark[Declared] = Mark("renderer", Declared)


def renderer(name: str, *, many: RendererMany | None = None) -> Callable[[Renderer], Renderer]:
    """Declare how rows queued with `render="name:argument"` are written; `many`, if
    given, writes the rows of one argument at once and must give the same messages."""

    def declare(fn: Renderer) -> Renderer:
        return RENDERER.put(fn, Declared(name, fn, many))

    return declare


class Renderers(Registry[Declared]):
    """The renderers one bot's outbox writes messages with."""

    def __init__(self, functions: Iterable[Renderer] = ()) -> None:
        super().__init__(RENDERER, functions)

    def render(self, session: Session, config: Config, row: OutboxMessage) -> Outgoing:
        """The row's message: stored, or written now by its renderer (KeyError if there is none)."""
        if row.render is None:
            return message_of(row)
        name, _, argument = row.render.partition(":")
        return self._declared(name).fn(session, config, argument, row)

    def render_all(self, session: Session, config: Config, rows: Sequence[OutboxMessage]) -> list[Outgoing | Exception]:
        """Each row's message in order, or the exception that kept it from being written.

        Rows queued with the same name and argument are written together, by
        the renderer's batch form if it has one (one call for them all), else
        one by one; a row alone in its group is written by the single form,
        which may do one row more cheaply (SHARE's reads on the driver's
        cursor). A renderer's exception stands for its own row only (for all of
        a batch's rows if the batch form raises); an unknown name gives a
        KeyError, as `render` raises.
        """
        results: dict[int, Outgoing | Exception] = {}
        groups: dict[str, list[int]] = {}
        for number, row in enumerate(rows):
            if row.render is None:
                try:
                    results[number] = message_of(row)
                except Exception as exc:
                    results[number] = exc
            else:
                groups.setdefault(row.render, []).append(number)
        for render, numbers in groups.items():
            name, _, argument = render.partition(":")
            group = [rows[number] for number in numbers]
            results.update(zip(numbers, self._group(session, config, name, argument, group), strict=True))
        return [results[number] for number in range(len(rows))]

    def _group(
        self, session: Session, config: Config, name: str, argument: str, rows: Sequence[OutboxMessage]
    ) -> list[Outgoing | Exception]:
        """The messages of rows queued with the same name and argument."""
        declared = self.lookup(name)
        if declared is None:
            return [KeyError(name)] * len(rows)
        if declared.many is None or len(rows) == 1:
            return [_written(declared.fn, session, config, argument, row) for row in rows]
        try:
            written = list(declared.many(session, config, argument, rows))
        except Exception as exc:
            return [exc] * len(rows)
        if len(written) != len(rows):
            return [ValueError(f"renderer {name!r} wrote {len(written)} messages for {len(rows)} rows")] * len(rows)
        return written

    def _declared(self, name: str) -> Declared:
        declared = self.lookup(name)
        if declared is None:
            raise KeyError(name)
        return declared


def _written(fn: Renderer, session: Session, config: Config, argument: str, row: OutboxMessage) -> Outgoing | Exception:
    try:
        return fn(session, config, argument, row)
    except Exception as exc:
        return exc


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
