"""What a coordinator types to publish slots, read into the moments they stand for.

`mon-fri 11:30-14:30 x6 from 2026-12-07 to 2026-12-20 zone B`: the days of
the week (a range, a list, or one day; English or French names), the hours
on the co-op's clock, the riders needed, then optional dates and zone in any
order. Without dates the slots cover the next seven days. Each local day and
time is turned into UTC through zoneinfo, so 11:30 stays 11:30 when the
clocks change; an end at or before the start ends the next day (a night).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from coopbot.errors import UsageError

#: Monday = 0, as `date.weekday()` counts; English and French, three letters or whole.
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES: dict[str, int] = {
    **{name: n for n, name in enumerate(WEEKDAYS)},
    **{name: n for n, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                         "sunday"))},
    **{name: n for n, name in enumerate(("lun", "mar", "mer", "jeu", "ven", "sam", "dim"))},
    **{name: n for n, name in enumerate(("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"))},
}
#: A time of day as a coordinator types it: `11:30`, `11h30`.
CLOCK_PATTERN = r"([0-9]{1,2})[:h]([0-9]{2})"
HOURS = re.compile(f"{CLOCK_PATTERN}-{CLOCK_PATTERN}")
SEATS = re.compile(r"[x×]([0-9]{1,3})")
ZONE = re.compile(r"[\w-]{1,30}")
#: A coordinator plans weeks, not years: a bigger range is a typo.
MOST_DAYS = 92
MOST_SEATS = 50
DEFAULT_DAYS = 7


@dataclass(frozen=True)
class SlotSpec:
    """Slots to publish: one per local day, each from `start` to `end` on the co-op's clock."""

    days: frozenset[int]
    start: time
    end: time
    seats: int
    first: date
    last: date
    zone: str | None

    def moments(self, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """(starts_at, ends_at) in UTC for each day the spec covers, in order."""
        found = []
        day = self.first
        while day <= self.last:
            if day.weekday() in self.days:
                starts = datetime.combine(day, self.start, tzinfo=tz)
                end_day = day if self.end > self.start else day + timedelta(days=1)
                ends = datetime.combine(end_day, self.end, tzinfo=tz)
                found.append((starts.astimezone(UTC), ends.astimezone(UTC)))
            day += timedelta(days=1)
        return found


def bad(what: str) -> UsageError:
    """One sentence naming the part that was wrong, with the whole form to type."""
    return UsageError(f"rosters.bad_{what}")


def parse_days(word: str) -> frozenset[int]:
    """`mon-fri`, `sat,sun`, `lun-ven`, `sat`: the days of the week, Monday 0."""
    days: set[int] = set()
    for part in word.lower().split(","):
        first, dash, last = part.partition("-")
        if first not in DAY_NAMES or (dash and last not in DAY_NAMES):
            raise bad("days")
        a, b = DAY_NAMES[first], DAY_NAMES[last] if dash else DAY_NAMES[first]
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


def parse_hours(word: str) -> tuple[time, time]:
    match = HOURS.fullmatch(word.lower())
    if match is None:
        raise bad("hours")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise bad("hours")
    start, end = time(h1, m1), time(0, 0) if h2 == 24 else time(h2, m2)
    if start == end:
        raise bad("hours")
    return start, end


def parse_date(word: str) -> date:
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise bad("date") from None


def parse_spec(words: list[str], today: date) -> SlotSpec:
    """`DAYS HH:MM-HH:MM xN [from DATE] [to DATE] [zone Z]`, read or refused in one sentence."""
    if len(words) < 3:
        raise bad("form")
    days, (start, end) = parse_days(words[0]), parse_hours(words[1])
    seats_match = SEATS.fullmatch(words[2].lower())
    if seats_match is None or not 1 <= int(seats_match.group(1)) <= MOST_SEATS:
        raise bad("seats")
    first: date | None = None
    last: date | None = None
    zone: str | None = None
    rest = words[3:]
    while rest:
        if len(rest) < 2:
            raise bad("form")
        keyword, value, rest = rest[0].lower(), rest[1], rest[2:]
        if keyword in ("from", "du", "de"):
            first = parse_date(value)
        elif keyword in ("to", "au", "à", "a"):
            last = parse_date(value)
        elif keyword == "zone" and ZONE.fullmatch(value):
            zone = value
        else:
            raise bad("form")
    first = first or today
    last = last or first + timedelta(days=DEFAULT_DAYS - 1)
    if last < first or (last - first).days >= MOST_DAYS:
        raise bad("range")
    return SlotSpec(days, start, end, int(seats_match.group(1)), first, last, zone)
