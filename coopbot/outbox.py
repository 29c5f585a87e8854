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
  told once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from coopbot import metrics
from coopbot.chat import Address, Outgoing, Pacing, RefusedError, TransientSendError, Transport, UnreachableError
from coopbot.clock import Clock, SystemClock
from coopbot.config import Config
from coopbot.i18n import t
from coopbot.models import Identity, Member, OutboxMessage
from coopbot.outbox_render import Renderer, Renderers, message_of, renderer
from coopbot.outbox_rows import (
    Notice,
    Reach,
    Recipient,
    outbox_row,
    queue,
    queue_many,
    queue_rendered,
    queue_to_member,
    queue_to_rooms,
    reachable_identities,
    recipients,
    room_addresses,
    store_new,
    took_queued,
)
from coopbot.services.members.accounts import coordinators

#: The queueing API; the row mechanics it rests on are in `coopbot.outbox_rows`, and messages
#: written when sent in `coopbot.outbox_render`.
__all__ = [
    "FAILED_PREFIX", "LEAVE_PREFIX", "MAX_IN_FLIGHT", "TRANSIENT_FOR", "UNEXPECTED_ATTEMPTS", "Notice", "Outbox",
    "Pacer", "Reach", "Recipient", "Renderer", "Renderers", "backoff", "message_of", "outbox_row", "queue",
    "queue_many", "queue_rendered", "queue_to_coordinators", "queue_to_member", "queue_to_rooms",
    "reachable_identities", "recipient_of", "recipients", "renderer", "room_addresses", "store_new", "took_queued",
]

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0
#: Keys of the messages a leaving member is still owed (coopbot.services.data.leaving).
LEAVE_PREFIX = "leave:"
BASE_BACKOFF = 0.5
#: Sends per platform awaiting an answer at once, and so THE CRASH-DUPLICATE BOUND: a message
#: keeps its slot until "sent" is committed (`_send`, `_record`), so a kill -9 can resend only
#: messages holding a slot. Telegram answers in 50-300 ms: 8 keep up with its 30 messages a
#: second, and beyond that the HTTP client only queues them, its pool slowing as the queue grows.
MAX_IN_FLIGHT = 8
#: Unexpected failures (an answer that cannot be read, a transport or renderer bug) before a
#: message is set aside. The platform may have shown it before its answer was lost, so each
#: can be one more copy on the member's screen; three let a one-off glitch pass.
UNEXPECTED_ATTEMPTS = 3
#: How long the platform may keep saying "try later" (429, 5xx, no network) before a message
#: is set aside. Such an answer means it was not shown, so retrying costs only staleness; a day
#: outlasts a platform's outage or a night without network, and after a day a person should look.
TRANSIENT_FOR = timedelta(days=1)
TRANSIENT, UNEXPECTED = "transient", "unexpected"
#: A refusal for good (`RefusedError`): set aside at the first answer.
REFUSED = "refused"
#: Keys of the coordinators' notices about failed messages: one per kind of failure and hour, so
#: a day-long outage that sets aside 2,000 messages tells them once an hour, not 2,000 times.
FAILED_PREFIX = "outbox-failed:"
#: Notices to the coordinators about delivery itself: one that fails tells nobody (no loop).
ABOUT_DELIVERY = (FAILED_PREFIX, "unreachable:")


# --- queueing (inside the caller's transaction) ------------------------------------


def queue_to_coordinators(
    session: Session, config: Config, key: str, text_key: str, now: datetime, **params: object
) -> int:
    """A notice for the coordinators: their rooms if configured, else each one privately."""
    default = config.coop.default_language
    if room_addresses(config, coordinators_only=True):
        return queue_to_rooms(
            session, config, key, Outgoing(t(default, text_key, **params)), now, coordinators_only=True
        )
    notices: list[Notice] = [
        (member, f"{key}:m{member.id}", Outgoing(t(member.language or default, text_key, **params)))
        for member in coordinators(session)
    ]
    return queue_many(session, notices, now)


# --- delivery ----------------------------------------------------------------


@dataclass
class Pacer:
    """Spaces sends to one platform: overall rate, per-chat interval, pauses.

    Slots are handed out in increasing order, so at most one send starts in
    every `1 / per_second` seconds; a chat asked to wait (429) only holds
    back its own messages. Times are the clock's seconds (`Clock.monotonic`):
    on a test's fake clock, pacing takes no real time.
    """

    pacing: Pacing
    next_global: float = 0.0
    paused_until: float = 0.0
    chat_ready: dict[str, float] = field(default_factory=dict)
    #: When sends really started. A slot can start late (a busy event loop, a database
    #: lock) and late slots bunch up, so `gate` checks the limits on real start times too.
    started: deque[float] = field(default_factory=deque)
    chat_started: dict[str, float] = field(default_factory=dict)
    chat_hold: dict[str, float] = field(default_factory=dict)
    clock: Clock = field(default_factory=SystemClock)

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

    async def gate(self, chat_id: str, private: bool) -> None:
        """Wait until starting a send now keeps every limit, counted on real start times."""
        limit = max(1, int(self.pacing.per_second))
        while True:
            now = self.clock.monotonic()
            while self.started and self.started[0] <= now - 1.0:
                self.started.popleft()
            wait = max(
                self.started[0] + 1.0 - now if len(self.started) >= limit else 0.0,
                self.chat_started.get(chat_id, -1e9) + self.interval(private) - now,
                self.chat_hold.get(chat_id, 0.0) - now,
                self.paused_until - now,
            )
            if wait <= 0:
                self.started.append(now)
                self.chat_started[chat_id] = now
                return
            await self.clock.sleep(wait)

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)


def backoff(attempts: int) -> float:
    return min(MAX_BACKOFF, BASE_BACKOFF * 2.0 ** max(0, attempts - 1))


def recipient_of(session: Session, row: OutboxMessage) -> str:
    """Who a message was for, as the coordinators know them: the member's name, or the room."""
    member = session.get(Member, row.member_id) if row.member_id is not None else None
    if member is not None:
        return f"{member.name} ({row.platform})"
    return f"{row.platform}:{row.chat_id}"


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
        if platform not in self._pacers:
            self._pacers[platform] = Pacer(self.transports[platform].pacing(), clock=self.clock)
        return self._pacers[platform]

    def poke(self) -> None:
        """Something was queued: look now rather than at the next tick. Safe from any
        thread (handlers and sweeps run in worker threads)."""
        if self._loop is None or self._loop.is_closed():
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _pending_rows(self) -> list[tuple[int, str, str, bool, bool]]:
        """Pending rows in queue order, with whether each is due yet."""
        if not self.transports:
            return []
        now = self.clock.now()
        with self.sessions() as session:
            rows = session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.platform,
                    OutboxMessage.chat_id,
                    OutboxMessage.private,
                    OutboxMessage.next_attempt_at <= now,
                )
                .where(OutboxMessage.status == "pending", OutboxMessage.platform.in_(list(self.transports)))
                .order_by(OutboxMessage.id)
                .limit(self.batch + len(self._inflight))
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
            slot = pacer.reserve(chat_id, private, now)
            self._inflight.add(row_id)
            self._busy_chats.add(chat)
            held.add(chat)
            task = asyncio.create_task(self._send_at(row_id, slot, chat, private))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

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
        """Deliver until `stop`: a pass when poked, or after `idle` seconds of the clock."""
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._wake.clear()  # before the pass: what is queued during it is seen at once after
            began = self.clock.monotonic()
            try:
                await self.deliver_due()
            except Exception:
                log.exception("outbox pass failed; trying again shortly")
            await self.clock.wait_for(self._wake, began + idle - self.clock.monotonic())
        self._halting = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)
        self._halting = False  # a `drain` after the run (the demo, tests) sends again

    async def _send_at(self, row_id: int, slot: float, chat: tuple[str, str], private: bool) -> None:
        platform, chat_id = chat
        try:
            delay = slot - self.clock.monotonic()
            if delay > 0:
                await self.clock.sleep(delay)
            async with self._in_flight(platform):
                if self._halting:
                    return
                loaded = await asyncio.to_thread(self._load, row_id)
                if loaded is not None:
                    # Nothing between the gate and the send: the limits hold on when sends really start.
                    await self.pacer(platform).gate(chat_id, private)
                    if not self._halting:
                        await self._send(*loaded)
        finally:
            self._inflight.discard(row_id)
            self._busy_chats.discard(chat)
            self.poke()

    async def _send(self, row: OutboxMessage, message: Outgoing) -> None:
        """Send, then record the answer before the slot is given back (see MAX_IN_FLIGHT)."""
        row_id = row.id
        transport = self.transports[row.platform]
        address = Address(row.platform, row.chat_id, row.private)
        outcome: Callable[[], None]
        try:
            ref = await transport.send(address, message, row.key)
        except TransientSendError as exc:
            self._hold(row, exc)
            outcome, result = partial(self._failed, row_id, TRANSIENT, str(exc), exc.retry_after), TRANSIENT
        except UnreachableError as exc:
            outcome, result = partial(self._give_up, row_id, str(exc)), "unreachable"
        except RefusedError as exc:
            outcome, result = partial(self._refused, row_id, str(exc)), REFUSED
        except Exception as exc:  # an unreadable answer, a transport bug: it may have been shown
            log.exception("sending outbox message %s failed", row_id)
            outcome, result = partial(self._failed, row_id, UNEXPECTED, repr(exc), None), UNEXPECTED
        else:
            outcome, result = partial(self._mark_sent, row_id, ref), "sent"
        metrics.observe_send(row.platform, result)
        await self._record(outcome)

    async def _record(self, outcome: Callable[[], None]) -> None:
        """Commit what the platform answered, however long the database takes: a sent message
        left pending would be sent again without any crash, and by a free slot, past the bound."""
        failures = 0
        while True:
            try:
                await asyncio.to_thread(outcome)
                return
            except Exception:
                failures += 1
                log.exception("recording the outcome of an outbox send failed; trying again")
                await self.clock.sleep(backoff(failures))

    def _hold(self, row: OutboxMessage, exc: TransientSendError) -> None:
        if exc.retry_after is None:
            return
        until = self.clock.monotonic() + exc.retry_after
        pacer = self.pacer(row.platform)
        if exc.scope == "all":
            pacer.pause(until)
        else:
            pacer.hold_chat(row.chat_id, until)

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
                self._count_failure(session, row, UNEXPECTED, repr(exc), None)
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

    def _mark_sent(self, row_id: int, ref: str) -> None:
        with self.sessions() as session, session.begin():
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, OutboxMessage.status == "pending")
                .values(status="sent", sent_at=self.clock.now(), sent_ref=ref, attempts=OutboxMessage.attempts + 1)
            )

    def _failed(self, row_id: int, kind: str, error: str, retry_after: float | None) -> None:
        with self.sessions() as session, session.begin():
            row = session.get_one(OutboxMessage, row_id)
            if row.status == "pending":
                self._count_failure(session, row, kind, error, retry_after)

    def _count_failure(
        self, session: Session, row: OutboxMessage, kind: str, error: str, retry_after: float | None
    ) -> None:
        """Count a failed attempt against its kind's bound; past it, set the message aside,
        else try again when the platform said, or after a backoff."""
        now = self.clock.now()
        row.attempts += 1
        row.last_error = error[:1000]
        if kind == TRANSIENT:
            row.failing_since = row.failing_since or now
            exhausted = now - row.failing_since >= TRANSIENT_FOR
        else:
            row.unexpected_failures += 1
            exhausted = row.unexpected_failures >= UNEXPECTED_ATTEMPTS
        if exhausted:
            self._set_aside(session, row, kind, now)
            return
        metrics.observe_retry(row.platform)
        wait = retry_after if retry_after is not None else backoff(row.attempts)
        row.next_attempt_at = now + timedelta(seconds=wait)

    def _refused(self, row_id: int, error: str) -> None:
        with self.sessions() as session, session.begin():
            row = session.get_one(OutboxMessage, row_id)
            if row.status == "pending":
                row.attempts += 1
                row.last_error = error[:1000]
                self._set_aside(session, row, REFUSED, self.clock.now())

    def _set_aside(self, session: Session, row: OutboxMessage, kind: str, now: datetime) -> None:
        """Stop trying and tell the coordinators (once an hour at most; never the text itself)."""
        row.status, row.failure_kind, row.failed_at = "failed", kind, now
        metrics.observe_give_up(row.platform, kind)
        if row.key.startswith(ABOUT_DELIVERY):
            return
        tries = row.unexpected_failures if kind == UNEXPECTED else row.attempts
        hour = now.strftime("%Y-%m-%dT%H")
        queue_to_coordinators(session, self.config, f"{FAILED_PREFIX}{kind}:{hour}", f"outbox.failed_{kind}", now,
                              id=row.id, to=recipient_of(session, row), tries=tries,
                              hours=int(TRANSIENT_FOR.total_seconds() // 3600))

    def _give_up(self, row_id: int, error: str) -> None:
        """The person cannot be reached: stop, mark the account, tell coordinators once."""
        with self.sessions() as session, session.begin():
            row = session.get_one(OutboxMessage, row_id)
            row.status = "dead"
            row.attempts += 1
            row.last_error = error[:1000]
            metrics.observe_give_up(row.platform, "unreachable")
            if row.identity_id is None:
                return
            now = self.clock.now()
            newly = session.execute(  # type: ignore[attr-defined]
                update(Identity)
                .where(Identity.id == row.identity_id, Identity.reachable.is_(True))
                .values(reachable=False, unreachable_since=now)
            ).rowcount
            if newly:
                identity = session.get_one(Identity, row.identity_id)
                queue_to_coordinators(session, self.config, f"unreachable:{identity.id}:{now.isoformat()}",
                                      "outbox.unreachable", now, name=identity.member.name, platform=identity.platform)

