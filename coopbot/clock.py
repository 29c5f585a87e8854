"""Time, injected: production reads the wall clock, tests move a fake one.

Everything is timezone-aware. Stored datetimes are UTC; the co-op's own
timezone is used to read and show times to members.

Besides the date, a clock gives the outbox its notion of elapsed time: a
`monotonic()` reading in seconds, `sleep()` for pacing, and `wait_for()` for
an idle loop's "until poked, or a while". On the fake clock those never take
real time: a sleep jumps the seconds ahead at once, without moving the date
(pacing is about a platform's rate, not the co-op's calendar), and a wait
ends when its event is set or a test moves the clock past its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float:
        """Seconds, for measuring intervals: never goes back."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        """Until `event` is set (True) or `timeout` seconds of this clock have passed (False)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=timeout)
        return event.is_set()


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        #: Seconds passed in sleeps: they count in `monotonic()`, not in the date.
        self._slept = 0.0
        #: Waiters to tell when the clock moves: each is woken once, and waits again if need be.
        self._moved: list[asyncio.Future[None]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._now.timestamp() + self._slept

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        self._tell_moved()
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when
        self._tell_moved()

    async def sleep(self, seconds: float) -> None:
        """Over at once: the seconds jump ahead, the date stays; other tasks get their turn."""
        self._slept += max(0.0, seconds)
        self._tell_moved()
        await asyncio.sleep(0)

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        """Until `event` is set, or the clock is moved `timeout` seconds on (by a test, or a sleep)."""
        deadline = self.monotonic() + timeout
        waiting = asyncio.ensure_future(event.wait())
        try:
            while not waiting.done() and self.monotonic() < deadline:
                moved = asyncio.get_running_loop().create_future()
                self._moved.append(moved)
                try:
                    await asyncio.wait((waiting, moved), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    with contextlib.suppress(ValueError):  # already told, or never
                        self._moved.remove(moved)
        finally:
            waiting.cancel()
        return event.is_set()

    def _tell_moved(self) -> None:
        moved, self._moved = self._moved, []
        for waiter in moved:
            loop = waiter.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle, waiter)


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
