"""Writing the rows a delivery pass loads (`Renderers.render_all`): each row gets its
message or its own error, in order, and a batch renderer writes its rows at once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from coopbot.chat import Outgoing
from coopbot.config import Config
from coopbot.models import OutboxMessage
from coopbot.outbox_render import Renderers, renderer
from tests.conftest import make_config

#: Each call of the batch renderer: its argument and the ids of its rows.
BATCHES: list[tuple[str, list[int]]] = []


def _greetings(session: Session, config: Config, argument: str, rows: Sequence[OutboxMessage]) -> list[Outgoing]:
    BATCHES.append((argument, [row.id for row in rows]))
    return [Outgoing(f"{argument} {row.member_id}, together") for row in rows]


@renderer("greet", many=_greetings)
def _greet(session: Session, config: Config, argument: str, row: OutboxMessage) -> Outgoing:
    return Outgoing(f"{argument} {row.member_id}")


@renderer("picky")
def _picky(session: Session, config: Config, argument: str, row: OutboxMessage) -> Outgoing:
    if row.member_id == 13:
        raise LookupError("not for 13")
    return Outgoing(f"{argument} {row.member_id}, one by one")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(f"sqlite:///{tmp_path / 'unused.sqlite3'}")


def row(row_id: int, render: str | None, member_id: int = 1) -> OutboxMessage:
    return OutboxMessage(id=row_id, member_id=member_id, render=render, text=f"stored {row_id}", buttons=[])


def test_each_row_gets_its_message_or_its_own_error_in_order(config: Config) -> None:
    BATCHES.clear()
    rows = [row(1, "picky:Hi", 12), row(2, None), row(3, "picky:Hi", 13), row(4, "nobody:x"), row(5, "picky:Yo", 14)]
    written = Renderers([_greet, _picky]).render_all(Session(), config, rows)
    assert [message.text for message in written if isinstance(message, Outgoing)] == [
        "Hi 12, one by one", "stored 2", "Yo 14, one by one"
    ]  # fmt: skip
    assert isinstance(written[2], LookupError) and str(written[2]) == "not for 13"
    assert isinstance(written[3], KeyError) and written[3].args == ("nobody",)
    assert [type(message) for message in written] == [Outgoing, Outgoing, LookupError, KeyError, Outgoing]
    assert BATCHES == []


def test_a_batch_renderer_writes_the_rows_of_each_argument_at_once(config: Config) -> None:
    BATCHES.clear()
    rows = [row(1, "greet:Hi", 7), row(2, "greet:Yo", 8), row(3, None), row(4, "greet:Hi", 9), row(5, "picky:Hi", 10)]
    renderers = Renderers([_greet, _picky])
    written = renderers.render_all(Session(), config, rows)
    assert [message.text for message in written if isinstance(message, Outgoing)] == [
        "Hi 7, together", "Yo 8", "stored 3", "Hi 9, together", "Hi 10, one by one"
    ]  # fmt: skip
    assert BATCHES == [("Hi", [1, 4])]  # a row alone in its group is written by the single form
    assert renderers.render(Session(), config, rows[0]).text == "Hi 7"  # one row alone: the single form
    with pytest.raises(KeyError):
        renderers.render(Session(), config, row(6, "nobody:x"))


def _broken_batch(session: Session, config: Config, argument: str, rows: Sequence[OutboxMessage]) -> list[Outgoing]:
    raise RuntimeError("the batch hit a bug")


@renderer("broken", many=_broken_batch)
def _broken(session: Session, config: Config, argument: str, row: OutboxMessage) -> Outgoing:
    return Outgoing("alone")


def test_a_batch_that_fails_fails_its_own_rows_only(config: Config) -> None:
    rows = [row(1, "broken:x"), row(2, "picky:Hi", 5), row(3, "broken:x"), row(4, "broken:y")]
    written = Renderers([_broken, _picky]).render_all(Session(), config, rows)
    assert [str(message) if isinstance(message, Exception) else message.text for message in written] == [
        "the batch hit a bug", "Hi 5, one by one", "the batch hit a bug", "alone"
    ]  # fmt: skip
