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
from decimal import Decimal
from zoneinfo import ZoneInfo

from coopbot.errors import UsageError
from coopbot.money import SYMBOLS

MAX_JOBS_PER_MESSAGE = 50
MAX_PRICE_CENTS = 100_000_00
MAX_FIELD = 500

ARROW = re.compile(r"\s*(?:->|→|=>)\s*")
KEYWORDS = {"by": "by", "avant": "by", "before": "by", "price": "price", "prix": "price", "note": "note"}
KEYWORD = re.compile(r"(?<!\S)(by|avant|before|price|prix|note)(?!\S)", re.IGNORECASE)
CLOCK = re.compile(r"^(\d{1,2})(?:[:h](\d{2})?)?$", re.IGNORECASE)
ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
DAY_MONTH = re.compile(r"^(\d{1,2})/(\d{1,2})(?:/(\d{4}))?$")
AMOUNT = re.compile(r"^\d{1,9}(?:[.,]\d+)?$")
JOB_REF = re.compile(r"^#?(?:J-?)?(\d{1,12})$", re.IGNORECASE)


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
    found = JOB_REF.match(text.strip())
    if found is None:
        raise UsageError("dispatch.bad_ref", ref=text.strip()[:30])
    return int(found.group(1))


def parse_price(text: str, currency: str = "EUR") -> int:
    """A price in cents, exactly: `6.50`, `6,50`, `6`, `€6.50`, `6.50 EUR`."""
    cleaned = text.strip().upper().removesuffix(currency.upper()).strip()
    symbol = SYMBOLS.get(currency.upper(), "")
    if symbol:
        cleaned = cleaned.removeprefix(symbol).removesuffix(symbol).strip()
    if not AMOUNT.match(cleaned):
        raise UsageError("dispatch.bad_price", price=text[:30])
    hundredths = Decimal(cleaned.replace(",", ".")) * 100
    if hundredths != hundredths.to_integral_value() or hundredths > MAX_PRICE_CENTS:
        raise UsageError("dispatch.bad_price", price=text[:30])
    return int(hundredths)


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


def _clean(text: str) -> str:
    return " ".join("".join(ch for ch in text if ch.isprintable()).split())[:MAX_FIELD]


def parse_job(line: str, now: datetime, tz: ZoneInfo, currency: str = "EUR") -> JobSpec:
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
    dropoff = _clean(tail[:dropoff_end])
    if not dropoff or not _clean(pickup):
        raise UsageError("dispatch.bad_job")
    return JobSpec(
        pickup=_clean(pickup),
        dropoff=dropoff,
        deadline=parse_deadline(options["by"], now, tz) if "by" in options else None,
        price_cents=parse_price(options["price"], currency) if "price" in options else None,
        note=_clean(options.get("note", "")),
    )


def parse_jobs(text: str, now: datetime, tz: ZoneInfo, currency: str = "EUR") -> list[JobSpec]:
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
            specs.append(parse_job(line, now, tz, currency))
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
