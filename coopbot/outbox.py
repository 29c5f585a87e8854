"""Durable outgoing messages: queued in the same transaction as the change
that caused them, delivered by a loop that paces, retries and survives a
restart.

Each row has an idempotency key, so queueing the same notice twice (a close
run twice, an announcement resumed) stores it once. Delivery is at least
once, and "more than once" is bounded by design:

- a crash: a message is marked sent only once the platform has answered, and
  holds one of its platform's MAX_IN_FLIGHT slots until that is committed, so
  a kill -9 resends at most MAX_IN_FLIGHT messages per platform (on Matrix
  the transaction id, derived from the key, even hides those);
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

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from coopbot import metrics
from coopbot.chat import Address, Outgoing, RefusedError, TransientSendError, Transport, UnreachableError
from coopbot.clock import Clock
from coopbot.config import Config
from coopbot.models import Member, OutboxMessage
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

#: Keys of the messages a leaving member is still owed (coopbot.services.data.leaving).
LEAVE_PREFIX = "leave:"
#: Sends per platform awaiting an answer at once, and so THE CRASH-DUPLICATE BOUND: a message
#: keeps its slot until "sent" is committed (`_send`, `_record`), so a kill -9 can resend only
#: messages holding a slot. Telegram answers in 50-300 ms: 8 keep up with its 30 messages a
#: second, and beyond that the HTTP client only queues them, its pool slowing as the queue grows.
MAX_IN_FLIGHT = 8
#: Seconds between two passes of the delivery loop at least (a pass plans a second ahead).
PASS_GAP = 0.1

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
        #: Sent messages whose "sent" waits for the next commit (`_record_sent`), and that commit.
        self._to_mark: list[tuple[int, str, asyncio.Future[None]]] = []
        self._marking: asyncio.Task[None] | None = None
        self._inflight: set[int] = set()
        #: Chats with a message in flight: one at a time per chat keeps them in order.
        self._busy_chats: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
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
        if isinstance(self.transports[address.platform], PacedTransport):
            return contextlib.nullcontext()
        return self.pacer(address.platform).slot(address.chat_id, address.private)

    def poke(self) -> None:
        """Something was queued: look now rather than at the next tick. Safe from any
        thread (handlers and sweeps run in worker threads)."""
        if self._loop is None or self._loop.is_closed():
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _pending_rows(self) -> list[tuple[int, str, str, bool, bool]]:
        """The first pending row of each chat, in queue order, with whether it is due yet.

        Only a chat's first row can be sent (a chat's messages leave one at a time, in order),
        so a pass reads no other. Reason: read as the first `batch` rows of the whole queue, a
        chat with a long queue of its own (the coordinators' room in a lunch rush gets four
        lines an order, and Telegram lets a group have 20 a minute) filled the batch, and no
        other chat's message could start until that room had caught up (`bench/lunch_rush.py`:
        the room's rows were over 90% of the batch in a third of its seconds).
        """
        if not self.transports:
            return []
        now = self.clock.now()
        pending = (OutboxMessage.status == "pending", OutboxMessage.platform.in_(list(self.transports)))
        heads = (
            select(func.min(OutboxMessage.id).label("id"))
            .where(*pending)
            .group_by(OutboxMessage.platform, OutboxMessage.chat_id)
            .order_by(func.min(OutboxMessage.id))
            .limit(self.batch + len(self._busy_chats))
            .subquery()
        )
        with self.sessions() as session:
            rows = session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.platform,
                    OutboxMessage.chat_id,
                    OutboxMessage.private,
                    OutboxMessage.next_attempt_at <= now,
                )
                .join(heads, heads.c.id == OutboxMessage.id)
                .order_by(OutboxMessage.id)
            ).all()
        return [(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    async def deliver_due(self) -> int:
        """Start sending every due message whose slot falls within the horizon.

        A chat's messages leave in the order they were queued: one waiting for
        a retry, or still in flight, holds back those queued after it.
        """
        rows = await asyncio.to_thread(self._pending_rows)
        started = 0
        held = set(self._busy_chats)
        for row_id, platform, chat_id, private, due in rows:
            chat = (platform, chat_id)
            if chat in held or row_id in self._inflight:
                held.add(chat)
                continue
            pacer = self.pacer(platform)
            now = self.clock.monotonic()
            if not due or pacer.ready_at(chat_id) > now + self.horizon:
                held.add(chat)
                continue
            if pacer.next_global > now + self.horizon:
                break
            self._start(row_id, chat, private, now)
            held.add(chat)
            started += 1
        return started

    def _start(self, row_id: int, chat: tuple[str, str], private: bool, now: float) -> None:
        slot = self.pacer(chat[0]).reserve(chat[1], private, now)
        self._inflight.add(row_id)
        self._busy_chats.add(chat)
        self._spawn(self._send_at(row_id, slot, chat, private))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    async def _send_at(self, row_id: int, slot: float, chat: tuple[str, str], private: bool) -> None:
        platform = chat[0]
        try:
            delay = slot - self.clock.monotonic()
            if delay > 0:
                await self.clock.sleep(delay)
            async with self._in_flight(platform):
                if self._halting:
                    return
                loaded = await asyncio.to_thread(self._load, row_id)
                if loaded is not None:
                    await self._send(*loaded)
        finally:
            self._inflight.discard(row_id)
            if not self._halting and self.pacer(platform).interval(private) < PASS_GAP:
                self._spawn(self._follow_on(chat, private))
            else:
                self._busy_chats.discard(chat)
            self.poke()

    async def _follow_on(self, chat: tuple[str, str], private: bool) -> None:
        """Start the chat's next message as soon as its last one is done, without a pass.

        Reason: passes are PASS_GAP apart, and a chat sends one message at a time, so a chat
        whose platform lets it send faster than passes come (the console, a shop's webhooks)
        was held to one message a pass: `bench/web.py`'s orders waited 30-45 s for their
        notices to the courier and the coordinators' room. A platform that spaces a chat's
        messages further apart than passes (Telegram, Matrix) is left to the passes."""
        try:
            head = await asyncio.to_thread(self._chat_head, chat)
        except Exception:
            log.exception("outbox: reading the next message of %s failed; the next pass will", chat)
            head = None
        pacer, now = self.pacer(chat[0]), self.clock.monotonic()
        ready = max(pacer.ready_at(chat[1]), pacer.next_global)
        if head is None or self._halting or not head[1] or ready > now + self.horizon:
            self._busy_chats.discard(chat)
            self.poke()
            return
        self._start(head[0], chat, private, now)

    def _chat_head(self, chat: tuple[str, str]) -> tuple[int, bool] | None:
        """A chat's first pending message, and whether it is due."""
        with self.sessions() as session:
            row = session.execute(
                select(OutboxMessage.id, OutboxMessage.next_attempt_at <= self.clock.now())
                .where(OutboxMessage.status == "pending", OutboxMessage.platform == chat[0],
                       OutboxMessage.chat_id == chat[1])
                .order_by(OutboxMessage.id).limit(1)
            ).first()  # fmt: skip
        return None if row is None else (int(row[0]), bool(row[1]))

    async def _send(self, row: OutboxMessage, message: Outgoing) -> None:
        """Send, then record the answer before the slot is given back (see MAX_IN_FLIGHT)."""
        row_id = row.id
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
            outcome, result = partial(self._record_sent, row_id, ref), "sent"
        metrics.observe_send(row.platform, result)
        await self._record(outcome)

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

    def _load(self, row_id: int) -> tuple[OutboxMessage, Outgoing] | None:
        """The row and its message, if it is still to be sent."""
        with self.sessions() as session, session.begin():
            row = session.get(OutboxMessage, row_id)
            if row is None or row.status != "pending":
                return None
            if self._member_left(session, row):
                row.status = "dead"
                row.last_error = "the member has left the co-op"
                return None
            try:
                message = self.renderers.render(session, self.config, row)
            except Exception as exc:  # a renderer bug must not lose the message either
                log.exception("writing outbox message %s failed", row_id)
                self.failures.count_failure(session, row, UNEXPECTED, repr(exc), None)
                return None
            session.expunge(row)
            return row, message

    @staticmethod
    def _member_left(session: Session, row: OutboxMessage) -> bool:
        """After /leave nothing more reaches a member, except their own data export."""
        if not row.private or row.member_id is None or row.key.startswith(LEAVE_PREFIX):
            return False
        member = session.get(Member, row.member_id)
        return member is not None and not member.active

    async def _record_sent(self, row_id: int, ref: str) -> None:
        """Commit "sent" with the others answered while the last commit ran, in one transaction:
        the slower the database, the more share one (a commit each was a fifth of a broadcast's
        CPU). Each message waits for its own commit, so the crash bound holds."""
        committed = asyncio.get_running_loop().create_future()
        self._to_mark.append((row_id, ref, committed))
        if self._marking is None:
            self._marking = asyncio.create_task(self._mark_waiting())
        await committed

    async def _mark_waiting(self) -> None:
        try:
            while self._to_mark:
                batch, self._to_mark = self._to_mark, []
                try:
                    await asyncio.to_thread(self._mark_sent, [(row_id, ref) for row_id, ref, _ in batch])
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
