"""Reading what coordinators type into jobs, and writing jobs back as text.

A job line is meant to be typed fast on a phone, so the grammar is loose
where it can be (comma or dot in prices, `12:30` or `12h30`, English or
French keywords in any order) and strict where a mistake would cost money or
a missed deadline: a price with three decimals, a date in the past or a
deadline that is not a time is refused, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from coopbot.errors import UsageError
from coopbot.money import parse_amount
from coopbot.services.refs import JOB, parse_code
from coopbot.services.text import typed

MAX_JOBS_PER_MESSAGE = 50
MAX_FIELD = 500

ARROW = re.compile(r"\s*(?:->|→|=>)\s*")
KEYWORDS = {"by": "by", "avant": "by", "before": "by", "price": "price", "prix": "price", "note": "note"}
KEYWORD = re.compile(r"(?<!\S)(by|avant|before|price|prix|note)(?!\S)", re.IGNORECASE)
CLOCK = re.compile(r"^([0-9]{1,2})(?:[:h]([0-9]{2})?)?$", re.IGNORECASE)
ISO_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
DAY_MONTH = re.compile(r"^([0-9]{1,2})/([0-9]{1,2})(?:/([0-9]{4}))?$")


class BadLine(UsageError):
    """One line of several was not a job; the handler says which and why."""

    def __init__(self, line: int, problem: UsageError) -> None:
        super().__init__("dispatch.bad_line", line=line)
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class JobSpec:
    pickup: str
    dropoff: str
    deadline: datetime | None = None
    price_cents: int | None = None
    note: str = ""


def parse_job_ref(text: str) -> int:
    """`J-12`, `j12`, `12` or `#12` → 12."""
    return parse_code(text, JOB)


def parse_price(text: str) -> int:
    """A price in cents, read like every other amount (`6.50`, `6,50`, `€6.50`, `6.50 EUR`); 0 is a free job."""
    return parse_amount(text, zero=True)


def _clock_time(text: str) -> time | None:
    found = CLOCK.match(text.strip())
    if found is None:
        return None
    hour, minute = int(found.group(1)), int(found.group(2) or 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _day(text: str, today: date) -> date | None:
    found = ISO_DATE.match(text)
    if found:
        parts = (int(found.group(1)), int(found.group(2)), int(found.group(3)))
    else:
        found = DAY_MONTH.match(text)
        if found is None:
            return None
        parts = (int(found.group(3) or today.year), int(found.group(2)), int(found.group(1)))
    try:
        return date(*parts)
    except ValueError:
        return None


def parse_deadline(text: str, now: datetime, tz: ZoneInfo) -> datetime:
    """`12:30` is today in the co-op's timezone, or tomorrow if already past;
    `2026-12-01 12:30` and `01/12 12:30` name the day."""
    words = text.split()
    local_now = now.astimezone(tz)
    when: datetime | None = None
    if len(words) == 1 and (clock := _clock_time(words[0])) is not None:
        when = datetime.combine(local_now.date(), clock, tzinfo=tz)
        if when <= local_now:
            when = datetime.combine(local_now.date() + timedelta(days=1), clock, tzinfo=tz)
    elif len(words) == 2:
        day, clock = _day(words[0], local_now.date()), _clock_time(words[1])
        if day is not None and clock is not None:
            when = datetime.combine(day, clock, tzinfo=tz)
            if when <= local_now:
                raise UsageError("dispatch.deadline_past", deadline=text[:30])
    if when is None:
        raise UsageError("dispatch.bad_deadline", deadline=text[:30])
    return when


def parse_job(line: str, now: datetime, tz: ZoneInfo) -> JobSpec:
    """One line: `PICKUP -> DROPOFF [by TIME] [price AMOUNT] [note TEXT]`."""
    parts = ARROW.split(line.strip(), maxsplit=1)
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise UsageError("dispatch.bad_job")
    pickup, tail = parts
    options: dict[str, str] = {}
    found = list(KEYWORD.finditer(tail))
    dropoff_end = found[0].start() if found else len(tail)
    for number, match in enumerate(found):
        name = KEYWORDS[match.group(1).lower()]
        if name in options:
            raise UsageError("dispatch.repeated_option", option=match.group(1).lower())
        if name == "note":
            options["note"] = tail[match.end() :].strip()
            break
        end = found[number + 1].start() if number + 1 < len(found) else len(tail)
        options[name] = tail[match.end() : end].strip()
    dropoff = typed(tail[:dropoff_end], MAX_FIELD)
    pickup = typed(pickup, MAX_FIELD)
    if not dropoff or not pickup:
        raise UsageError("dispatch.bad_job")
    return JobSpec(
        pickup=pickup,
        dropoff=dropoff,
        deadline=parse_deadline(options["by"], now, tz) if "by" in options else None,
        price_cents=parse_price(options["price"]) if "price" in options else None,
        note=typed(options.get("note", ""), MAX_FIELD),
    )


def parse_jobs(text: str, now: datetime, tz: ZoneInfo) -> list[JobSpec]:
    """One job per line; any bad line refuses the whole message, naming the line."""
    lines = [re.sub(r"^[/!]newjob(?:@\S+)?\s*", "", line.strip(), flags=re.IGNORECASE) for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise UsageError("dispatch.bad_job")
    if len(lines) > MAX_JOBS_PER_MESSAGE:
        raise UsageError("dispatch.too_many_jobs", most=MAX_JOBS_PER_MESSAGE)
    specs = []
    for number, line in enumerate(lines, start=1):
        try:
            specs.append(parse_job(line, now, tz))
        except UsageError as err:
            if len(lines) == 1:
                raise
            raise BadLine(number, err) from None
    return specs


# --- writing jobs back ------------------------------------------------------------


def job_code(job_id: int) -> str:
    return f"J-{job_id}"


def when(moment: datetime, now: datetime, tz: ZoneInfo) -> str:
    """A time as a member reads it: `12:30` today, `2026-12-01 12:30` otherwise."""
    local = moment.astimezone(tz)
    if local.date() == now.astimezone(tz).date():
        return local.strftime("%H:%M")
    return local.strftime("%Y-%m-%d %H:%M")
