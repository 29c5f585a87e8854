"""Column types the tables share, kept apart from the tables themselves.

`coopbot.models` re-exports `UtcDateTime`: the migrations name it there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


State = TypeVar("State", bound=StrEnum)


class StateColumn(TypeDecorator[State]):
    """A state kept as the very string stored before it had an enum (no CHECK, no native
    type, so no migration), read back as the enum member so nobody compares spellings."""

    impl = String
    cache_ok = True

    def __init__(self, states: type[State], length: int = 20) -> None:
        super().__init__(length)
        self.states = states

    def process_bind_param(self, value: State | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.states(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> State | None:
        return None if value is None else self.states(value)
