"""A shop's retried request gets its first answer back, and creates nothing new.

A shop's software that loses the answer to "order this" (a timeout, a
dropped connection) cannot know whether the order was made. It sends the
request again with the same `Idempotency-Key`, and must get the very answer
the first attempt got, not a second order. The first answer is kept here,
per customer and key, in the same transaction as the order it describes:
both are committed, or neither.

Two retries at once: each runs the request in its own transaction and
records its answer; the unique constraint on (customer, key) lets only one
commit. The other's insert fails, its whole transaction (its order
included) is rolled back, and it answers with the record the first one
committed (`Replayed`, raised by `remember`).

The same key with a different request is refused: the shop has a bug, and
guessing which of the two it meant would be worse. A refusal is not kept: it
created nothing, so trying again is harmless. Records go after
`KEEP_HOURS`, long enough for any sane retry (the answer to a confirmed
order holds its delivery code, which should not outlive that need).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coopbot.db import transaction
from coopbot.errors import UsageError
from coopbot.models import IdempotentRequest, Member
from coopbot.scheduler import SweepContext, sweep

KEEP_HOURS = 24
MAX_KEY = 255


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


class Replayed(Exception):
    """Another attempt with this key committed first: answer with its answer."""

    def __init__(self, answer: Answer) -> None:
        super().__init__("replayed")
        self.answer = answer


def fingerprint(method: str, path: str, body: Any) -> str:
    """What makes two requests the same request: the method, the path and the body as data
    (key order and spacing do not count)."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise UsageError("api.bad_idempotency_key", most=MAX_KEY)
    return key


def recalled(session: Session, customer: Member, key: str, print_: str) -> Answer | None:
    """The first answer to this key, or None the first time; another request under it is refused."""
    row = session.scalars(
        select(IdempotentRequest).where(IdempotentRequest.customer_id == customer.id, IdempotentRequest.key == key)
    ).one_or_none()
    if row is None:
        return None
    if row.fingerprint != print_:
        raise UsageError("api.idempotency_key_reused")
    return Answer(row.status, row.body)


def remember(session: Session, customer: Member, key: str, print_: str, answer: Answer, now: datetime) -> None:
    """Keep the answer with the change it describes; `Replayed` if a concurrent attempt won.

    The insert runs in a savepoint, so that on PostgreSQL the failed insert does
    not poison the transaction before the caller rolls it back.
    """
    try:
        with session.begin_nested():
            session.add(IdempotentRequest(customer_id=customer.id, key=key, fingerprint=print_,
                                          status=answer.status, body=answer.body, created_at=now))  # fmt: skip
    except IntegrityError:
        first = recalled(session, customer, key, print_)
        if first is None:  # pragma: no cover - the row that conflicted is there
            raise
        raise Replayed(first) from None


@sweep("api.idempotency")
def forget_old_answers(ctx: SweepContext) -> None:
    """Records older than `KEEP_HOURS` go: a retry comes within minutes, not days."""
    with transaction(ctx.sessions) as session:
        session.execute(delete(IdempotentRequest).where(
            IdempotentRequest.created_at < ctx.now - timedelta(hours=KEEP_HOURS)))  # fmt: skip
