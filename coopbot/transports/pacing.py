"""How requests to one platform are spaced: one pacer per platform, shared by
the outbox's deliveries and the replies to what members type.

A platform's overall limit ("30 messages a second") counts every request it
receives, whoever made it, and on Telegram a request refused with a 429 still
counts. Were replies sent beside the outbox, a broadcast at the limit plus
members typing would go over it, and the refusals would feed on themselves.
So every request takes a slot here, and a reply takes the next one free: the
outbox waits while a reply does, so a member typing never waits behind 2,000
announcements.

The limit is counted as the platform counts it, on arrival. A request arrives
after it starts and before its answer comes back, so it counts from its start
until one second after its answer: however late requests start or bunch up
on the way (a busy event loop, the HTTP client's queue), no second of
arrivals then holds more than the limit, with no margin to guess.

Times are the clock's seconds (`Clock.monotonic`): on a test's fake clock,
pacing takes no real time. `coopbot --help` finds the platforms by importing
every module of this package, so this one imports asyncio only when pacing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import asyncio

    from coopbot.chat import Pacing, TransientSendError
    from coopbot.clock import Clock

#: How long a request waiting for an event (a slot's answer, a reply ahead) sleeps at most
#: before looking again: a bound, not a poll; the event normally wakes it first.
RECHECK = 1.0


def _event() -> asyncio.Event:
    import asyncio

    return asyncio.Event()


def _system_clock() -> Clock:
    from coopbot.clock import SystemClock

    return SystemClock()


@runtime_checkable
class PacedTransport(Protocol):
    """A transport that takes a slot from its platform's pacer for every request it makes,
    replies included (so the outbox leaves the overall limit to it)."""

    def use_pacer(self, pacer: Pacer) -> None: ...


@dataclass
class Pacer:
    """Spaces requests to one platform: overall rate, per-chat interval, pauses.

    The outbox plans ahead with `reserve` (slots in increasing order, at most one in
    every `1 / per_second` seconds; a chat asked to wait holds back only its own
    messages), and every request, planned or not, passes through `slot` right before
    it goes, where the limits are checked on real times.
    """

    pacing: Pacing
    next_global: float = 0.0
    paused_until: float = 0.0
    chat_ready: dict[str, float] = field(default_factory=dict)
    chat_started: dict[str, float] = field(default_factory=dict)
    chat_hold: dict[str, float] = field(default_factory=dict)
    clock: Clock = field(default_factory=_system_clock)
    #: Requests started and not yet answered, and when the answered ones were (last second).
    open: int = 0
    answered: deque[float] = field(default_factory=deque)
    replies_waiting: int = 0
    _changed: asyncio.Event = field(default_factory=_event)

    @property
    def limit(self) -> int:
        return max(1, int(self.pacing.per_second))

    def interval(self, private: bool) -> float:
        if private:
            return self.pacing.private_chat_interval
        return 60.0 / self.pacing.group_per_minute

    def ready_at(self, chat_id: str) -> float:
        return max(self.chat_ready.get(chat_id, 0.0), self.paused_until)

    def reserve(self, chat_id: str, private: bool, now: float) -> float:
        slot = max(now, self.next_global, self.ready_at(chat_id))
        self.next_global = slot + 1.0 / self.pacing.per_second
        self.chat_ready[chat_id] = slot + self.interval(private)
        return slot

    def hold_chat(self, chat_id: str, until: float) -> None:
        self.chat_ready[chat_id] = max(self.chat_ready.get(chat_id, 0.0), until)
        self.chat_hold[chat_id] = max(self.chat_hold.get(chat_id, 0.0), until)

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)

    def obey(self, chat_id: str, error: TransientSendError) -> None:
        """The platform's "retry after": this chat, or all of them, wait that long, then go
        on at the paced rate (every request still takes its slot)."""
        if error.retry_after is None:
            return
        until = self.clock.monotonic() + error.retry_after
        if error.scope == "all":
            self.pause(until)
        else:
            self.hold_chat(chat_id, until)

    @asynccontextmanager
    async def slot(self, chat_id: str, private: bool, *, reply: bool = False) -> AsyncIterator[None]:
        """Hold one request's place in the limit from its start until its answer (or failure).

        A reply goes before every delivery waiting and keeps only what the platform ordered
        (a pause, a chat's "retry after"), not the chat's interval: the member is waiting,
        and a platform allows a chat a short burst. It still counts in the chat's interval,
        so the outbox's next message to that chat waits for it.
        """
        await self._take(chat_id, private, reply)
        try:
            yield
        finally:
            self.open -= 1
            self.answered.append(self.clock.monotonic())
            self._signal()

    async def _take(self, chat_id: str, private: bool, reply: bool) -> None:
        """Wait for this request's turn. A reply counts as waiting (and holds the deliveries
        back) only while the limit alone stops it: not while its chat is told to wait."""
        waiting = False
        try:
            while True:
                now = self.clock.monotonic()
                held = self._held(chat_id, private, reply, now)
                if held > 0:
                    if waiting:
                        waiting = False
                        self.replies_waiting -= 1
                        self._signal()
                    await self.clock.sleep(held)
                    continue
                if reply and not waiting:
                    waiting = True
                    self.replies_waiting += 1
                wait = self._until_free(reply, now)
                if wait is not None and wait <= 0:
                    self.open += 1
                    self.chat_started[chat_id] = now
                    return
                if wait is None:
                    await self.clock.wait_for(self._changed, RECHECK)
                else:
                    await self.clock.sleep(wait)
        finally:
            if waiting:
                self.replies_waiting -= 1
                self._signal()

    def _held(self, chat_id: str, private: bool, reply: bool, now: float) -> float:
        """Seconds this chat must still wait: a pause, its "retry after", and for a delivery its interval."""
        waits = [self.paused_until - now, self.chat_hold.get(chat_id, 0.0) - now]
        if not reply:
            waits.append(self.chat_started.get(chat_id, -math.inf) + self.interval(private) - now)
        return max(waits)

    def _until_free(self, reply: bool, now: float) -> float | None:
        """Seconds until the limit has room, or None until something else happens first (an
        answer, when every slot of the second awaits one; for a delivery, the replies ahead)."""
        while self.answered and self.answered[0] <= now - 1.0:
            self.answered.popleft()
        if not reply and self.replies_waiting:
            return None
        if self.open + len(self.answered) < self.limit:
            return 0.0
        return self.answered[0] + 1.0 - now if self.answered else None

    def _signal(self) -> None:
        """Wake every request waiting for an event; they look again, and the next ones wait anew."""
        changed, self._changed = self._changed, _event()
        changed.set()
