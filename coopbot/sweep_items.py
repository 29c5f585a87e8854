"""One failing item never stops a sweep.

A sweep handles what is due item by item (a poll, an offer, a period, an
announcement, a member), each in its own transaction. When one item's
handling raises, that item alone is rolled back and logged with its code
(P-3, J-12, 2026-11, A-4, #5), the coordinators are told once, and it rests
for a growing pause (1 min, 2, 4, ... at most an hour) before the next try;
the items after it go on in the same tick. Without this, one poll whose
binding action could not be applied failed the whole `polls.close` sweep
every 5 seconds, and every poll due after it stayed open forever.

What failed, and until when it rests, is kept in memory on the `Scheduler`,
not in the database: a restart retries at once, which is what a deployed fix
needs; the one report survives the restart through its outbox key
(`sweep-failed:<sweep>:<item>`); two processes each pause on their own while
the sweeps' conditional UPDATEs still do the work once; and code that is
failing writes no extra rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from coopbot.db import transaction
from coopbot.i18n import catalogue
from coopbot.outbox import queue_to_coordinators

if TYPE_CHECKING:
    from coopbot.scheduler import SweepContext

log = logging.getLogger("coopbot.scheduler")

FIRST_PAUSE = timedelta(minutes=1)
LONGEST_PAUSE = timedelta(hours=1)

Item = TypeVar("Item", bound=Hashable)


def pause_after(attempts: int) -> timedelta:
    """1 min after the first failure, then doubling: a lasting fault costs one try an hour."""
    pause: timedelta = FIRST_PAUSE * 2 ** min(attempts - 1, 20)
    return min(pause, LONGEST_PAUSE)


@dataclass
class Failing:
    """One item whose handling failed: its code, how often, and when it is tried again."""

    code: str
    attempts: int
    retry_at: datetime
    reported: bool = False


class Failures:
    """The failing items of every sweep, kept by the Scheduler from tick to tick."""

    def __init__(self) -> None:
        self.sweeps: dict[str, dict[Hashable, Failing]] = {}

    def of(self, sweep: str) -> dict[Hashable, Failing]:
        return self.sweeps.setdefault(sweep, {})

    def codes(self) -> dict[str, list[str]]:
        """Sweep → codes of its failing items (for logs and tests)."""
        return {name: [f.code for f in items.values()] for name, items in self.sweeps.items() if items}


def resting(ctx: SweepContext) -> set[Hashable]:
    """Items of this sweep still in their pause at `ctx.now`."""
    return {item for item, failing in ctx.failures.of(ctx.name).items() if ctx.now < failing.retry_at}


def run_each(
    ctx: SweepContext, items: Iterable[Item], code: Callable[[Item], str], handle: Callable[[Item], object]
) -> int:
    """Handle each item not resting; returns how many were handled without error."""
    failing = ctx.failures.of(ctx.name)
    listed: set[Hashable] = set()
    handled = 0
    for item in items:
        listed.add(item)
        before = failing.get(item)
        if before is not None and ctx.now < before.retry_at:
            continue
        try:
            handle(item)
        except Exception as exc:
            _failed(ctx, failing, item, code(item), exc)
            continue
        handled += 1
        if before is not None:
            _recovered(ctx, failing.pop(item))
    # Not due any more and not resting: done elsewhere (a coordinator, another process).
    for gone in [key for key, f in failing.items() if key not in listed and f.retry_at <= ctx.now]:
        del failing[gone]
    return handled


def _failed(ctx: SweepContext, failing: dict[Hashable, Failing], item: Hashable, code: str, exc: Exception) -> None:
    before = failing.get(item)
    attempts = before.attempts + 1 if before is not None else 1
    entry = Failing(code, attempts, ctx.now + pause_after(attempts), before.reported if before else False)
    failing[item] = entry
    log.error(
        "sweep %s: %s failed (attempt %d, %s); next try at %s, the other items go on",
        ctx.name, code, attempts, type(exc).__name__, entry.retry_at.isoformat(), exc_info=exc,
    )  # fmt: skip
    if not entry.reported:
        entry.reported = _tell_coordinators(
            ctx, f"sweep-failed:{ctx.name}:{code}", failed_text_key(ctx.name), item=code, error=type(exc).__name__
        )


def _recovered(ctx: SweepContext, entry: Failing) -> None:
    log.info("sweep %s: %s went through after %d failed attempt(s)", ctx.name, entry.code, entry.attempts)
    if entry.reported:
        _tell_coordinators(ctx, f"sweep-recovered:{ctx.name}:{entry.code}", "scheduler.recovered", item=entry.code)


def failed_text_key(sweep: str) -> str:
    """The sentence for this sweep's failures, or the general one for a sweep without its own."""
    key = "scheduler.failed." + sweep.replace(".", "_").replace("-", "_")
    return key if key in catalogue("en") else "scheduler.failed.other"


def _tell_coordinators(ctx: SweepContext, key: str, text_key: str, **params: object) -> bool:
    """Queue a notice in its own transaction; False (and a log line) if even that fails."""
    try:
        with transaction(ctx.sessions) as session:
            queue_to_coordinators(session, ctx.config, key, text_key, ctx.now, sweep=ctx.name, **params)
    except Exception:
        log.exception("sweep %s: could not tell the coordinators (%s)", ctx.name, key)
        return False
    return True
