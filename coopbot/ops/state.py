"""What `coopbot status` reads: the leader, the outbox, the sweeps' last runs.

Kept in the existing `transport_state` table under the platform name `coopbot`
(`leader`, `sweep:<name>`), so running several processes needs no schema change:
the rows are small, each written by the leader alone (the leader row when it
takes over, a sweep's row after each tick), and a follower or a CLI command
only reads them. None of them names a member or holds a message's text.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from coopbot.db import transaction
from coopbot.models import OutboxMessage, TransportState
from coopbot.ops.leadership import Holder

log = logging.getLogger(__name__)

#: Seconds between two records of the sweeps' runs while nothing changes: each record is a
#: commit, and on SQLite every commit makes the event loop's session reload the members it
#: keeps (`coopbot.storage.KnownMembers`), so not at every 5-second tick.
RECORD_EVERY = 60.0
#: `transport_state.platform` of the operator's rows: not a chat platform's name.
OPS = "coopbot"
LEADER_KEY = "leader"
SWEEP_PREFIX = "sweep:"


@dataclass(frozen=True)
class SweepRun:
    """One sweep's run at one tick."""

    name: str
    at: datetime
    seconds: float
    ok: bool


@dataclass(frozen=True)
class OutboxState:
    pending: int
    oldest: datetime | None
    failed: int


def _put(session: Session, key: str, value: str) -> None:
    row = session.get(TransportState, (OPS, key))
    if row is None:
        session.add(TransportState(platform=OPS, key=key, value=value))
    else:
        row.value = value


def record_leader(sessions: sessionmaker[Session], holder: Holder) -> None:
    """Written by a process as it starts to lead."""
    with transaction(sessions) as session:
        _put(session, LEADER_KEY, holder.line())


def read_leader(session: Session) -> Holder | None:
    row = session.get(TransportState, (OPS, LEADER_KEY))
    return Holder.parse(row.value) if row is not None else None


def record_sweeps(sessions: sessionmaker[Session], runs: list[SweepRun]) -> None:
    """One transaction per tick, whatever the number of sweeps. A failure to record is
    logged and forgotten: the sweeps' work is done and committed already."""
    try:
        with transaction(sessions) as session:
            for run in runs:
                value = {"at": run.at.isoformat(), "seconds": round(run.seconds, 4), "ok": run.ok}
                _put(session, f"{SWEEP_PREFIX}{run.name}"[:50], json.dumps(value))
    except Exception:
        log.exception("recording the sweeps' last runs failed")


@dataclass
class SweepRecorder:
    """The scheduler's `after_sweeps` in `coopbot run`: records a tick's runs once a minute,
    and at once when a sweep starts failing or recovers (what an operator must see now)."""

    sessions: sessionmaker[Session]
    every: float = RECORD_EVERY
    _last: float = float("-inf")
    _outcomes: dict[str, bool] = field(default_factory=dict)

    def __call__(self, runs: list[SweepRun]) -> None:
        outcomes = {run.name: run.ok for run in runs}
        now = time.monotonic()
        if now - self._last < self.every and outcomes == self._outcomes:
            return
        record_sweeps(self.sessions, runs)
        self._last, self._outcomes = now, outcomes


def read_sweeps(session: Session) -> list[SweepRun]:
    rows = session.scalars(
        select(TransportState)
        .where(TransportState.platform == OPS, TransportState.key.startswith(SWEEP_PREFIX))
        .order_by(TransportState.key)
    )
    found = []
    for row in rows:
        try:
            value = json.loads(row.value)
            found.append(SweepRun(row.key.removeprefix(SWEEP_PREFIX), datetime.fromisoformat(value["at"]),
                                  float(value["seconds"]), bool(value["ok"])))
        except (ValueError, KeyError, TypeError):
            continue
    return found


def outbox_state(session: Session) -> OutboxState:
    """Depth and oldest pending message; the failed ones wait for `coopbot outbox failed`."""
    pending, oldest = session.execute(
        select(func.count(), func.min(OutboxMessage.created_at)).where(OutboxMessage.status == "pending")
    ).one()
    failed = session.scalar(select(func.count()).where(OutboxMessage.status == "failed")) or 0
    return OutboxState(int(pending or 0), oldest, int(failed))
