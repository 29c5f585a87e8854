"""What the outbox does when a send fails: count it, try again later, or set the message aside.

Kept apart from the delivery loop (`coopbot.outbox`) because these are the co-op's promises
about a message that could not go (retried for a day, never lost, the coordinators told once
an hour, never the text itself), each written in the database by a transaction of its own,
while the loop is about pacing and order.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from coopbot import metrics
from coopbot.clock import Clock
from coopbot.config import Config
from coopbot.models import Identity, Member, OutboxMessage
from coopbot.outbox_rows import queue_to_coordinators

MAX_BACKOFF = 300.0
BASE_BACKOFF = 0.5
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


def backoff(attempts: int) -> float:
    return min(MAX_BACKOFF, BASE_BACKOFF * 2.0 ** max(0, attempts - 1))


def recipient_of(session: Session, row: OutboxMessage) -> str:
    """Who a message was for, as the coordinators know them: the member's name, or the room."""
    member = session.get(Member, row.member_id) if row.member_id is not None else None
    if member is not None:
        return f"{member.name} ({row.platform})"
    return f"{row.platform}:{row.chat_id}"


class Failures:
    """The failed sends of one outbox, and each platform's run of failures since its last success."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, config: Config) -> None:
        self.sessions = sessions
        self.clock = clock
        self.config = config
        #: Per platform, its transient failures since its last success (see `retry_in`).
        self.failing: dict[str, int] = {}

    def failed(self, row_id: int, kind: str, error: str, retry_after: float | None) -> None:
        with self.sessions() as session, session.begin():
            row = session.get_one(OutboxMessage, row_id)
            if row.status == "pending":
                self.count_failure(session, row, kind, error, retry_after)

    def count_failure(
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
            self.set_aside(session, row, kind, now)
            return
        metrics.observe_retry(row.platform)
        wait = retry_after if retry_after is not None else self.retry_in(row, kind)
        row.next_attempt_at = now + timedelta(seconds=wait)

    def retry_in(self, row: OutboxMessage, kind: str) -> float:
        """The backoff grows with the platform's failures, not only the message's: while its other
        sends go through, a 5xx is one request's stumble, retried soon (a broadcast's last message
        failing four times in a row would otherwise wait 7.5 s, alone); in an outage, every
        failure counts, and the wait grows as it did."""
        if kind != TRANSIENT:
            return backoff(row.attempts)
        return backoff(min(row.attempts, max(1, self.failing.get(row.platform, 1))))

    def refused(self, row_id: int, error: str) -> None:
        with self.sessions() as session, session.begin():
            row = session.get_one(OutboxMessage, row_id)
            if row.status == "pending":
                row.attempts += 1
                row.last_error = error[:1000]
                self.set_aside(session, row, REFUSED, self.clock.now())

    def set_aside(self, session: Session, row: OutboxMessage, kind: str, now: datetime) -> None:
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

    def give_up(self, row_id: int, error: str) -> None:
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
