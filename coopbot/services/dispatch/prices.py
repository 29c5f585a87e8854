"""The price of a delivery: a published rule, and every term of the sum shown.

A gig platform's price is a number from nowhere. Here it is a sum of terms
anyone can check against the rules in force: a base fare, a fee for each zone
crossed between pickup and drop-off (or the zone-to-zone table's price, where
the co-op set one), and surcharges for an urgent deadline, evening or night
hours and heavy loads. The rules are governed settings (`price.*`), changed
by a binding vote; this module only reads their canonical text and does the
arithmetic, in integer cents, so the printed terms always add up to the
printed total.

Zones are listed in order, from the centre out: going from zone A to zone C
crosses into B, then into C. An address is placed by its postcode (five
digits) or, failing that, by a district name the zone lists; an address that
no zone covers is refused, and a coordinator can still post the job with a
price of their own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo

from coopbot.errors import UsageError
from coopbot.money import parse_amount, plain_amount

POSTCODE = re.compile(r"(?<!\d)(\d{5})(?!\d)")
WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
#: One word, without a dash: the table joins two zones with one (`A-C 5.50`).
ZONE_NAME = re.compile(r"^[A-Za-z0-9]\w{0,19}$")
MAX_ZONES = 30
MAX_URGENT_MINUTES = 24 * 60

#: The setting keys, each with its canonical value before any vote (config gives the co-op's own):
#: amounts in cents, as every governed amount is stored.
DEFAULTS: dict[str, str] = {
    "price.base": "400",
    "price.zones": "",
    "price.crossing": "250",
    "price.table": "",
    "price.urgent": "0",
    "price.urgent_minutes": "45",
    "price.evening": "0",
    "price.evening_hours": "19:00-23:00",
    "price.night": "0",
    "price.night_hours": "23:00-06:00",
    "price.heavy": "0",
    "price.heavy_words": "cargo, heavy, lourd, encombrant",
}
MONEY = ("price.base", "price.crossing", "price.urgent", "price.evening", "price.night", "price.heavy")


class NotCovered(UsageError):
    """An address no zone covers: the customer is told, and can ask a coordinator."""

    def __init__(self, address: str) -> None:
        super().__init__("prices.not_covered", address=address[:80])
        self.address = address


@dataclass(frozen=True)
class Zone:
    name: str
    postcodes: frozenset[str]
    #: District names, folded (lower case, no accents) so "Bellevillé" finds "belleville".
    districts: tuple[str, ...]


@dataclass(frozen=True)
class Window:
    start: time
    end: time

    def holds(self, moment: time) -> bool:
        """Is `moment` inside, for a window that may run past midnight (23:00-06:00)?"""
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True)
class Term:
    """One line of a quote: what it is (a catalogue key and its words) and what it adds."""

    key: str
    cents: int
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Quote:
    terms: tuple[Term, ...]
    pickup_zone: str
    dropoff_zone: str

    @property
    def total(self) -> int:
        return sum(term.cents for term in self.terms)


@dataclass(frozen=True)
class PriceRules:
    base: int
    zones: tuple[Zone, ...]
    crossing: int
    table: Mapping[frozenset[str], int]
    urgent: int
    urgent_minutes: int
    evening: int
    evening_hours: Window
    night: int
    night_hours: Window
    heavy: int
    heavy_words: tuple[str, ...]

    @classmethod
    def from_settings(cls, values: Mapping[str, str]) -> PriceRules:
        """The rules from the settings' canonical text (defaults for any key not given)."""
        value = {**DEFAULTS, **values}
        zones = read_zones(value["price.zones"])
        return cls(
            base=_cents(value["price.base"]),
            zones=zones,
            crossing=_cents(value["price.crossing"]),
            table=read_table(value["price.table"], {zone.name for zone in zones}),
            urgent=_cents(value["price.urgent"]),
            urgent_minutes=int(value["price.urgent_minutes"]),
            evening=_cents(value["price.evening"]),
            evening_hours=read_window(value["price.evening_hours"]),
            night=_cents(value["price.night"]),
            night_hours=read_window(value["price.night_hours"]),
            heavy=_cents(value["price.heavy"]),
            heavy_words=read_words(value["price.heavy_words"]),
        )

    def zone_of(self, address: str) -> Zone:
        """The zone an address is in: by its postcode, else by a district the zone names."""
        for postcode in POSTCODE.findall(address):
            for zone in self.zones:
                if postcode in zone.postcodes:
                    return zone
        words = f" {_fold(address)} "
        for zone in self.zones:
            if any(f" {district} " in words for district in zone.districts):
                return zone
        raise NotCovered(address)

    def quote(
        self, pickup: str, dropoff: str, *, now: datetime, deadline: datetime | None, note: str, timezone: str
    ) -> Quote:
        """The price of one delivery, term by term. `now` and `deadline` are aware datetimes."""
        start, end = self.zone_of(pickup), self.zone_of(dropoff)
        terms = [Term("prices.term.base", self.base)]
        terms += self._zone_terms(start, end)
        if self.urgent and deadline is not None and (deadline - now).total_seconds() < self.urgent_minutes * 60:
            terms.append(Term("prices.term.urgent", self.urgent, {"minutes": str(self.urgent_minutes)}))
        when = (deadline or now).astimezone(ZoneInfo(timezone)).time()
        if self.night and self.night_hours.holds(when):
            terms.append(Term("prices.term.night", self.night, {"hours": _hours(self.night_hours)}))
        elif self.evening and self.evening_hours.holds(when):
            terms.append(Term("prices.term.evening", self.evening, {"hours": _hours(self.evening_hours)}))
        heavy = next((word for word in self.heavy_words if word in _fold(note).split()), None)
        if self.heavy and heavy is not None:
            terms.append(Term("prices.term.heavy", self.heavy, {"word": heavy}))
        return Quote(tuple(terms), start.name, end.name)

    def _zone_terms(self, start: Zone, end: Zone) -> list[Term]:
        if start == end:
            return []
        listed = self.table.get(frozenset((start.name, end.name)))
        if listed is not None:
            return [Term("prices.term.table", listed, {"from": start.name, "to": end.name})]
        names = [zone.name for zone in self.zones]
        i, j = names.index(start.name), names.index(end.name)
        step = 1 if j > i else -1
        entered = range(i + step, j + step, step)
        return [Term("prices.term.crossing", self.crossing, {"zone": names[k]}) for k in entered]


# --- reading and checking the settings' text ------------------------------------------


def read_zones(text: str) -> tuple[Zone, ...]:
    """`A: 75001, 75002, Le Marais; B: 75011, Belleville` → the zones, centre first."""
    zones: list[Zone] = []
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        name, colon, items = entry.partition(":")
        name = name.strip()
        members = [item.strip() for item in items.split(",") if item.strip()]
        if not colon or ZONE_NAME.match(name) is None or not members:
            raise UsageError("prices.bad_zones", entry=entry[:60])
        if any(zone.name.lower() == name.lower() for zone in zones):
            raise UsageError("prices.zone_twice", zone=name)
        postcodes = frozenset(item for item in members if POSTCODE.fullmatch(item))
        districts = tuple(_fold(item) for item in members if not POSTCODE.fullmatch(item))
        zones.append(Zone(name, postcodes, districts))
    if len(zones) > MAX_ZONES:
        raise UsageError("prices.too_many_zones", most=str(MAX_ZONES))
    return tuple(zones)


def canonical_zones(text: str) -> str:
    zones = read_zones(text)
    return "; ".join(f"{zone.name}: {', '.join(zone_items(text, zone))}" for zone in zones)


def zone_items(text: str, zone: Zone) -> list[str]:
    """A zone's items as the member wrote them (districts keep their capitals)."""
    for entry in text.split(";"):
        name, _, items = entry.partition(":")
        if name.strip() == zone.name:
            return [item.strip() for item in items.split(",") if item.strip()]
    return []


def read_table(text: str, zones: set[str]) -> dict[frozenset[str], int]:
    """`A-C 5.50; B-C 3.00` → the price between two zones, either way round."""
    table: dict[frozenset[str], int] = {}
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        pair, _, amount = entry.rpartition(" ")
        first, dash, second = pair.strip().partition("-")
        first, second = first.strip(), second.strip()
        if not dash or not amount or first == second:
            raise UsageError("prices.bad_table", entry=entry[:60])
        unknown = [name for name in (first, second) if name not in zones]
        if zones and unknown:
            raise UsageError("prices.unknown_zone", zone=unknown[0][:20])
        table[frozenset((first, second))] = parse_amount(amount, zero=True)
    return table


def canonical_table(text: str) -> str:
    table = read_table(text, set())
    return "; ".join(f"{'-'.join(sorted(pair))} {plain_amount(cents)}" for pair, cents in table.items())


def read_window(text: str) -> Window:
    match = WINDOW.match(text)
    hours = [int(group) for group in match.groups()] if match else []
    if not hours or hours[0] > 23 or hours[2] > 23 or hours[1] > 59 or hours[3] > 59 or hours[:2] == hours[2:]:
        raise UsageError("prices.bad_hours", hours=text.strip()[:20])
    return Window(time(hours[0], hours[1]), time(hours[2], hours[3]))


def canonical_window(text: str) -> str:
    return _hours(read_window(text))


def read_words(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_fold(word) for word in re.split(r"[,\s]+", text) if word))


def read_minutes(text: str) -> str:
    value = text.strip()
    if not value.isdigit() or not 0 < int(value) <= MAX_URGENT_MINUTES:
        raise UsageError("prices.bad_minutes", most=str(MAX_URGENT_MINUTES))
    return str(int(value))


def _hours(window: Window) -> str:
    return f"{window.start:%H:%M}-{window.end:%H:%M}"


def _cents(canonical: str) -> int:
    return int(canonical)


def _fold(text: str) -> str:
    """Lower case without accents or punctuation, so a district is found however it is typed."""
    stripped = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^\w]+", " ", stripped.lower()).split())
