"""Periods: when they start and end, and what rules they run under (their close is `close`).

A period is created on demand the first time something happens in it, with
the governed settings in force at its start frozen into it: the weights and
percentages a vote changes mid-period apply from the next one. Boundaries
follow the co-op's own clock (weekly from Monday 00:00, monthly from the 1st
00:00, or a cron expression for the end) and are stored in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, Result, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.models import Period
from coopbot.services.money.shares import Terms
from coopbot.services.polls import settings as settings_svc
from coopbot.states import PeriodStatus

# --- period boundaries -------------------------------------------------------------


def period_bounds(schedule: str, tz: ZoneInfo, now: datetime) -> tuple[datetime, datetime, str]:
    """(start, end, label) of the schedule's period containing `now`, in UTC.

    Weekly periods start on Monday 00:00 and monthly ones on the 1st 00:00,
    in the co-op's timezone (so a Paris month starts at 23:00 UTC in winter).
    A cron expression gives the moment each period ends.
    """
    local = now.astimezone(tz)
    if schedule == "monthly":
        start = datetime(local.year, local.month, 1, tzinfo=tz)
        end = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=tz)
        return start.astimezone(UTC), end.astimezone(UTC), f"{local.year}-{local.month:02d}"
    if schedule == "weekly":
        monday = (local - timedelta(days=local.weekday())).date()
        start = datetime(monday.year, monday.month, monday.day, tzinfo=tz)
        following = monday + timedelta(days=7)
        end = datetime(following.year, following.month, following.day, tzinfo=tz)
        year, week, _ = monday.isocalendar()
        return start.astimezone(UTC), end.astimezone(UTC), f"{year}-W{week:02d}"
    start, end = cron_bounds(schedule, tz, now)
    return start, end, cron_label(start.astimezone(tz), end.astimezone(tz))


def cron_bounds(expression: str, tz: ZoneInfo, now: datetime) -> tuple[datetime, datetime]:
    """The last firing at or before `now` and the next one after it."""
    trigger = cron_trigger(expression, tz)

    def after(moment: datetime) -> datetime:
        fire: datetime | None = trigger.get_next_fire_time(None, moment + timedelta(microseconds=1))
        if fire is None:
            raise ValueError(f"the schedule {expression!r} never fires again")
        return fire.astimezone(UTC)

    end = after(now)
    for back in (
        timedelta(hours=1),
        timedelta(days=1),
        timedelta(days=8),
        timedelta(days=32),
        timedelta(days=367),
        timedelta(days=5 * 366),
    ):
        probe = now - back
        fire = after(probe - timedelta(microseconds=2))
        if fire <= now:
            start = fire
            while (following := after(start)) <= now:
                start = following
            return start, end
    raise ValueError(f"the schedule {expression!r} fires too rarely to make periods")


DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_trigger(expression: str, tz: ZoneInfo) -> Any:
    """A CronTrigger reading the day of week as cron does (0 or 7 is Sunday).

    APScheduler 3 counts weekdays from Monday = 0, so "0 0 * * 1" would end
    periods on Tuesdays; numbers are turned into day names first.
    """
    from apscheduler.triggers.cron import CronTrigger

    minute, hour, day, month, weekday = expression.split()
    weekday = re.sub(r"\d+", lambda m: DAY_NAMES[int(m.group(0)) % 8], weekday)
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone=tz)


def cron_label(start: datetime, end: datetime) -> str:
    last = end - timedelta(microseconds=1)
    if start.time() == end.time() == datetime.min.time():
        return f"{start:%Y-%m-%d}..{last:%Y-%m-%d}"
    return f"{start:%Y-%m-%dT%H%M}..{end:%m-%dT%H%M}"


# --- settings snapshot ----------------------------------------------------------------


def settings_snapshot(session: Session, config: Config, now: datetime) -> dict[str, Any]:
    return settings_svc.snapshot(session, config, now)


def terms_of(period: Period) -> Terms:
    return Terms.from_snapshot(period.settings)


# --- the current period -------------------------------------------------------------


def period_at(session: Session, now: datetime, *, lock: bool = False) -> Period | None:
    query = (
        select(Period).where(Period.starts_at <= now, Period.ends_at > now).order_by(Period.starts_at.desc()).limit(1)
    )
    if lock:
        # Writers hold the period row shared, so a close on PostgreSQL waits
        # for them and later writers see it closed (SQLite serialises anyway).
        query = query.with_for_update(read=True)
    return session.scalars(query).first()


def current_period(session: Session, config: Config, now: datetime) -> Period:
    """The open period containing `now`, created on first use with today's settings."""
    found = period_at(session, now, lock=True)
    if found is not None:
        return found
    start, end, label = period_bounds(config.periods.schedule, config.coop.tz, now)
    previous = session.scalars(
        select(Period).where(Period.ends_at <= now).order_by(Period.ends_at.desc()).limit(1)
    ).first()
    if previous is not None and start < previous.ends_at < end:
        start = previous.ends_at
    period = Period(
        label=label,
        starts_at=start,
        ends_at=end,
        status=PeriodStatus.OPEN,
        settings=settings_snapshot(session, config, start),
        totals={},
    )
    if insert_once(session, period):
        return period
    again = period_at(session, now, lock=True)
    if again is None:
        raise RuntimeError(f"period {label} exists but does not contain {now.isoformat()}")
    return again


def insert_once(session: Session, row: object) -> bool:
    """Add `row` unless a unique key says it exists already (another process won)."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True


def rowcount(result: Result[Any]) -> int:
    """How many rows a conditional UPDATE changed: 1 means we won the race."""
    return cast(CursorResult[Any], result).rowcount


def period_by_label(session: Session, label: str) -> Period | None:
    return session.scalars(select(Period).where(Period.label == label.strip())).first()
