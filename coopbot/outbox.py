"""Durable outgoing messages: queued in the same transaction as the change
that caused them, delivered by a loop that paces, retries and survives a
restart.

Each row has an idempotency key, so queueing the same notice twice (a close
run twice, an announcement resumed) stores it once. Delivery is at least
once, and "more than once" is bounded by design:

- a crash: a message is marked sent only once the platform has answered, and
  holds one of its platform's MAX_IN_FLIGHT slots until that is committed, so
  a kill -9 resends at most MAX_IN_FLIGHT messages per platform (on Matrix
  the transaction id, derived from the key, even hides those; in a room, one
  such message may carry the lines joined to it, `coopbot.outbox_load`);
- a failure: each kind has its bound (TRANSIENT_FOR, UNEXPECTED_ATTEMPTS; an
  unreachable person stops it at once), after which the message is set aside
  as `failed` (`coopbot outbox failed`, `retry`) and the coordinators are
  told once (`coopbot.outbox_failures`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session, sessionmaker

from coopbot import metrics
from coopbot.chat import Address, RefusedError, TransientSendError, Transport, UnreachableError
from coopbot.clock import Clock
from coopbot.config import Config
from coopbot.models import OutboxMessage
from coopbot.outbox_failures import (
    BASE_BACKOFF,
    FAILED_PREFIX,
    REFUSED,
    TRANSIENT,
    TRANSIENT_FOR,
    UNEXPECTED,
    UNEXPECTED_ATTEMPTS,
    Failures,
    backoff,
    recipient_of,
)
from coopbot.outbox_load import LEAVE_PREFIX, Head, Loaded, Loader, Next
from coopbot.outbox_render import Renderer, Renderers, message_of, renderer
from coopbot.outbox_rows import (
    Notice,
    Reach,
    Recipient,
    outbox_row,
    queue,
    queue_many,
    queue_rendered,
    queue_to_coordinators,
    queue_to_member,
    queue_to_rooms,
    reachable_identities,
    recipients,
    room_addresses,
    store_new,
    took_queued,
)
from coopbot.transports.pacing import PacedTransport, Pacer

#: The queueing API; the row mechanics it rests on are in `coopbot.outbox_rows`, and messages
#: written when sent in `coopbot.outbox_render`.
__all__ = [
    "BASE_BACKOFF", "FAILED_PREFIX", "LEAVE_PREFIX", "MAX_IN_FLIGHT", "TRANSIENT_FOR", "UNEXPECTED_ATTEMPTS",
    "Notice", "Outbox", "Pacer", "Reach", "Recipient", "Renderer", "Renderers", "backoff", "message_of",
    "outbox_row", "queue", "queue_many", "queue_rendered", "queue_to_coordinators", "queue_to_member",
    "queue_to_rooms", "reachable_identities", "recipient_of", "recipients", "renderer", "room_addresses",
    "store_new", "took_queued",
]

log = logging.getLogger(__name__)

#: Sends per platform awaiting an answer at once, and so THE CRASH-DUPLICATE BOUND: a message
#: keeps its slot until "sent" is committed (`_send_at`, `_settle`), so a kill -9 can resend only
#: messages holding a slot. Telegram answers in 50-300 ms: 8 keep up with its 30 messages a
#: second, and beyond that the HTTP client only queues them, its pool slowing as the queue grows.
MAX_IN_FLIGHT = 8
#: Seconds between two passes of the delivery loop at least (a pass plans a second ahead).
PASS_GAP = 0.1
#: Rows of one chat loaded at once when its platform takes its messages back to back.
CHAT_BATCH = 16

# --- delivery ----------------------------------------------------------------


def _in_thread(record: Callable[..., None], *args: object) -> Callable[[], Awaitable[None]]:
    return partial(asyncio.to_thread, record, *args)


class Outbox:
    """The delivery loop. One per deployment; `deliver_due` is one pass."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        config: Config,
        transports: dict[str, Transport],
        *,
        renderers: Renderers | None = None,
        horizon: float = 1.0,
        batch: int = 500,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.config = config
        self.transports = transports
        #: How rows queued with `render=` are written (the bot's, collected at start). None, for
        #: an outbox that only sends stored messages, is none at all: such a row would fail.
        self.renderers = renderers if renderers is not None else Renderers()
        self.horizon = horizon
        self.batch = batch
        #: Sends per platform awaiting an answer at once (MAX_IN_FLIGHT; the demo sends one at a time).
        self.max_in_flight = max_in_flight
        self._pacers: dict[str, Pacer] = {}
        self.failures = Failures(sessions, clock, config)
        self.loader = Loader(self.renderers, config, clock, self.failures)
        #: Whether a kind of transport takes its requests' slots itself (a runtime Protocol
        #: check costs a tenth of a millisecond: once per kind, not per message).
        self._self_paced: dict[type, bool] = {}
        #: Sent messages whose "sent" waits for the next commit (`_record_sent`), and that commit.
        self._to_mark: list[tuple[tuple[int, ...], str, asyncio.Future[None]]] = []
        self._marking: asyncio.Task[None] | None = None
        self._inflight: set[int] = set()
        #: Chats with a message in flight: one at a time per chat keeps them in order.
        self._busy_chats: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Messages the platform took whose "sent" is not committed yet (`_settle`).
        self._settling: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        #: When `run` stops, sends not begun stay pending (for the next run or leader); begun ones end.
        self._halting = False

    def _in_flight(self, platform: str) -> asyncio.Semaphore:
        """At most MAX_IN_FLIGHT sends await a platform's answer: beyond that the HTTP
        client only queues them, and its connection pool slows down as the queue grows."""
        if platform not in self._semaphores:
            self._semaphores[platform] = asyncio.Semaphore(self.max_in_flight)
        return self._semaphores[platform]

    def pacer(self, platform: str) -> Pacer:
        """The platform's one pacer; a transport that paces its own requests (its replies
        too) is handed it, so the overall limit counts both."""
        if platform not in self._pacers:
            transport = self.transports[platform]
            self._pacers[platform] = Pacer(transport.pacing(), clock=self.clock)
            if isinstance(transport, PacedTransport):
                transport.use_pacer(self._pacers[platform])
        return self._pacers[platform]

    def _slot(self, address: Address) -> AbstractAsyncContextManager[None]:
        """Where the outbox takes a request's slot itself: for a transport that does not."""
        kind = type(self.transports[address.platform])
        if kind not in self._self_paced:
            self._self_paced[kind] = isinstance(self.transports[address.platform], PacedTransport)
        if self._self_paced[kind]:
            return contextlib.nullcontext()
        return self.pacer(address.platform).slot(address.chat_id, address.private)

    def poke(self) -> None:
        """Something was queued: look now rather than at the next tick. Safe from any
        thread (handlers and sweeps run in worker threads)."""
        if self._loop is None or self._loop.is_closed():
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _pending_rows(self) -> list[Head]:
        if not self.transports:
            return []
        with self.sessions() as session:
            return self.loader.heads(session, list(self.transports), self.batch + len(self._busy_chats))

    async def deliver_due(self) -> int:
        """Start sending every due message whose slot falls within the horizon.

        A chat's messages leave in the order they were queued: one waiting for
        a retry, or still in flight, holds back those queued after it. What the
        pass starts is loaded in one transaction (`coopbot.outbox_load`).
        """
        rows = await asyncio.to_thread(self._pending_rows)
        starting: list[tuple[Head, float]] = []
        held = set(self._busy_chats)
        for head in rows:
            chat = head.chat
            if chat in held or head.row_id in self._inflight:
                held.add(chat)
                continue
            pacer = self.pacer(chat[0])
            now = self.clock.monotonic()
            if not head.due or pacer.ready_at(chat[1]) > now + self.horizon:
                held.add(chat)
                continue
            if pacer.next_global > now + self.horizon:
                break
            starting.append((head, self._reserve(head.row_id, chat, head.private, now)))
            held.add(chat)
        if starting:  # a task at once: `drain` and `run` wait for what a pass began
            self._spawn(self._start(starting))
        return len(starting)

    async def _start(self, starting: list[tuple[Head, float]]) -> None:
        """Load what a pass starts, then send each chat's message at its slot."""
        try:
            loaded = await self._load([head for head, _ in starting])
        except Exception:
            log.exception("outbox: loading %d messages failed; the next pass will try again", len(starting))
            self._inflight.difference_update(head.row_id for head, _ in starting)
            self._busy_chats.difference_update(head.chat for head, _ in starting)
            return
        for (head, slot), message in zip(starting, loaded, strict=True):
            self._spawn(self._chat_run(head, slot, message))

    def _reserve(self, row_id: int, chat: tuple[str, str], private: bool, now: float) -> float:
        """Take the row's slot and its chat until it is answered."""
        self._inflight.add(row_id)
        self._busy_chats.add(chat)
        return self.pacer(chat[0]).reserve(chat[1], private, now)

    async def _load(self, heads: list[Head]) -> list[Loaded | None]:
        """The rows' messages in one transaction; if that fails, each in its own, so that one
        row whose text breaks the transaction does not hold back the others."""
        try:
            return await asyncio.to_thread(self._load_rows, heads)
        except Exception:
            if len(heads) == 1:
                raise
            log.exception("outbox: loading %d messages at once failed; loading them one by one", len(heads))
        loaded: list[Loaded | None] = []
        for head in heads:
            try:
                loaded += await asyncio.to_thread(self._load_rows, [head])
            except Exception:
                log.exception("outbox: loading message %s failed; the next pass will try again", head.row_id)
                loaded.append(None)
        return loaded

    def _load_rows(self, heads: list[Head]) -> list[Loaded | None]:
        spaced = [self.pacer(head.chat[0]).interval(head.private) >= PASS_GAP for head in heads]
        with self.sessions() as session, session.begin():
            return self.loader.rows(session, heads, spaced)

    def _load_chat(self, chat: tuple[str, str]) -> list[Next]:
        with self.sessions() as session, session.begin():
            return self.loader.chat_next(session, chat[0], chat[1], CHAT_BATCH)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, timeout: float = 30.0) -> None:
        """Deliver until nothing is due or in flight (used by demo, chat and tests).

        Pass after pass: each starts what is due, then waits until all it started
        were answered, so the next one finds their chats free. The same queue so
        goes out in the same passes however long each send takes. `timeout` is in
        real seconds: a bound for a platform that never answers.
        """
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            started = await self.deliver_due()
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=remaining)
            elif not started:
                return

    async def recorded(self) -> None:
        """Until every message a platform has taken is committed as sent."""
        while self._settling:
            await asyncio.wait(set(self._settling))

    async def run(self, stop: asyncio.Event, idle: float = 0.5) -> None:
        """Deliver until `stop`: a pass when poked, or after `idle` seconds of the clock.

        Passes are PASS_GAP apart at least: every answer pokes, and a pass reads the queue, so a
        broadcast would otherwise spend a quarter of its CPU reading it 40 times a second.
        """
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._wake.clear()  # before the pass: what is queued during it is seen at once after
            began = self.clock.monotonic()
            try:
                await self.deliver_due()
            except Exception:
                log.exception("outbox pass failed; trying again shortly")
            await self.clock.wait_for(self._wake, began + idle - self.clock.monotonic())
            if (gap := began + PASS_GAP - self.clock.monotonic()) > 0 and not stop.is_set():
                await self.clock.sleep(gap)
        self._halting = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)
        self._halting = False  # a `drain` after the run (the demo, tests) sends again

    async def _chat_run(self, head: Head, slot: float, loaded: Loaded | None) -> None:
        """Send a chat's message; then, on a platform that lets a chat take messages back to back,
        its next ones too, without waiting for a pass.

        Reason: passes are PASS_GAP apart, and a chat sends one message at a time, so a chat
        whose platform lets it send faster than passes come (the console, a shop's webhooks)
        was held to one message a pass: `bench/web.py`'s orders waited 30-45 s for their
        notices to the courier and the coordinators' room. A platform that spaces a chat's
        messages further apart than passes (Telegram, Matrix) is left to the passes."""
        chat, settling = head.chat, set[asyncio.Task[None]]()
        try:
            going_on = await self._send_at(head.row_id, slot, chat[0], loaded, settling) and head.more
            if self.pacer(chat[0]).interval(head.private) < PASS_GAP:
                while going_on and not self._halting:
                    going_on = await self._follow_on(chat, head.private, settling)
        finally:
            self._busy_chats.discard(chat)
            self.poke()

    async def _follow_on(self, chat: tuple[str, str], private: bool, settling: set[asyncio.Task[None]]) -> bool:
        """Send the chat's next few due messages, loaded at once; False once the chat must wait.
        The ones sent before are committed "sent" first, so that none is read again as pending."""
        if settling:
            await asyncio.wait(settling)
            settling.clear()
        try:
            coming = await asyncio.to_thread(self._load_chat, chat)
        except Exception:
            log.exception("outbox: reading the next messages of %s failed; the next pass will", chat)
            return False
        for row in coming:
            pacer, now = self.pacer(chat[0]), self.clock.monotonic()
            ready = max(pacer.ready_at(chat[1]), pacer.next_global)
            if self._halting or not row.due or ready > now + self.horizon:
                return False
            slot = self._reserve(row.row_id, chat, private, now)
            if not await self._send_at(row.row_id, slot, chat[0], row.loaded, settling):
                return False
        return len(coming) == CHAT_BATCH

    async def _send_at(
        self, row_id: int, slot: float, platform: str, loaded: Loaded | None, settling: set[asyncio.Task[None]]
    ) -> bool:
        """Send at the slot; True if the chat may go on (sent, or nothing to send).

        A sent message keeps its in-flight slot until "sent" is committed (MAX_IN_FLIGHT), but
        its chat's next message need not wait for that commit: it is added to `settling`, and
        the commits of a chat's messages sent back to back are shared (`_record_sent`)."""
        in_flight, settles = self._in_flight(platform), None
        try:
            delay = slot - self.clock.monotonic()
            if delay > 0:
                await self.clock.sleep(delay)
            await in_flight.acquire()
            try:
                if self._halting or loaded is None:
                    return not self._halting
                outcome, sent = await self._send(loaded)
                if not sent:
                    await self._record(outcome)
                    return False
                settles = self._spawn(self._settle(row_id, in_flight, outcome))
                settling.add(settles)
                self._settling.add(settles)
                settles.add_done_callback(self._settling.discard)
                return True
            finally:
                if settles is None:
                    in_flight.release()
        finally:
            if settles is None:
                self._inflight.discard(row_id)

    async def _settle(self, row_id: int, in_flight: asyncio.Semaphore, outcome: Callable[[], Awaitable[None]]) -> None:
        try:
            await self._record(outcome)
        finally:
            in_flight.release()
            self._inflight.discard(row_id)
            self.poke()

    async def _send(self, loaded: Loaded) -> tuple[Callable[[], Awaitable[None]], bool]:
        """Send; how to record the answer, and whether it was sent. The caller records it
        before the slot is given back (see MAX_IN_FLIGHT)."""
        row, message, row_id = loaded.row, loaded.message, loaded.row.id
        transport = self.transports[row.platform]
        address = Address(row.platform, row.chat_id, row.private)
        outcome: Callable[[], Awaitable[None]]
        try:
            # Nothing between the slot and the request: the limits hold on when requests really go.
            async with self._slot(address):
                ref = await transport.send(address, message, row.key)
        except TransientSendError as exc:
            self.pacer(row.platform).obey(row.chat_id, exc)
            self.failures.failing[row.platform] = self.failures.failing.get(row.platform, 0) + 1
            outcome, result = _in_thread(self.failures.failed, row_id, TRANSIENT, str(exc), exc.retry_after), TRANSIENT
        except UnreachableError as exc:
            outcome, result = _in_thread(self.failures.give_up, row_id, str(exc)), "unreachable"
        except RefusedError as exc:
            outcome, result = _in_thread(self.failures.refused, row_id, str(exc)), REFUSED
        except Exception as exc:  # an unreadable answer, a transport bug: it may have been shown
            log.exception("sending outbox message %s failed", row_id)
            outcome, result = _in_thread(self.failures.failed, row_id, UNEXPECTED, repr(exc), None), UNEXPECTED
        else:
            self.failures.failing[row.platform] = 0
            outcome, result = partial(self._record_sent, loaded.row_ids, ref), "sent"
        metrics.observe_send(row.platform, result)
        return outcome, result == "sent"

    async def _record(self, outcome: Callable[[], Awaitable[None]]) -> None:
        """Commit what the platform answered, however long the database takes: a sent message
        left pending would be sent again without any crash, and by a free slot, past the bound."""
        failures = 0
        while True:
            try:
                await outcome()
                return
            except Exception:
                failures += 1
                log.exception("recording the outcome of an outbox send failed; trying again")
                await self.clock.sleep(backoff(failures))

    async def _record_sent(self, row_ids: tuple[int, ...], ref: str) -> None:
        """Commit "sent" with the others answered while the last commit ran, in one transaction:
        the slower the database, the more share one (a commit each was a fifth of a broadcast's
        CPU). Each message waits for its own commit, so the crash bound holds."""
        committed = asyncio.get_running_loop().create_future()
        self._to_mark.append((row_ids, ref, committed))
        if self._marking is None:
            self._marking = asyncio.create_task(self._mark_waiting())
        await committed

    async def _mark_waiting(self) -> None:
        try:
            while self._to_mark:
                batch, self._to_mark = self._to_mark, []
                try:
                    await asyncio.to_thread(self._mark_sent, [(row_id, ref) for ids, ref, _ in batch for row_id in ids])
                except Exception as exc:
                    for *_, committed in batch:
                        committed.set_exception(exc)
                else:
                    for *_, committed in batch:
                        committed.set_result(None)
        finally:
            self._marking = None

    def _mark_sent(self, sent: list[tuple[int, str]]) -> None:
        with self.sessions() as session, session.begin():
            session.connection().execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == bindparam("row_id"), OutboxMessage.status == "pending")
                .values(status="sent", sent_at=self.clock.now(), sent_ref=bindparam("ref"),
                        attempts=OutboxMessage.attempts + 1),
                [{"row_id": row_id, "ref": ref} for row_id, ref in sent],
            )
