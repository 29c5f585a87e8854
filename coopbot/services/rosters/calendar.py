"""Calendar feeds: a member's slots (or, for a coordinator, the whole roster) as an iCalendar URL.

A member adds `/calendar`'s address to their phone's calendar once, as a
subscription, and their slots appear there and follow every change: a seat
taken, handed on, a slot cancelled (shown cancelled, with the reason, rather
than silently gone).

The address is a secret: whoever has it reads the slots, with no account. So
its token is 192 bits derived from the server key (`coopbot.secrets`) by HMAC
over the member, the scope and a generation number, and the database keeps
only its SHA-256 (`CalendarFeed.token_hash`): a copy of the database alone
gives no working address, and the bot can still show the same address again
without storing it. `/calendar reset` moves to the next generation, so the
old address answers 404 at once; that is how a leaked one is revoked.

Why a lookup by the hash in SQL is safe here, when API keys compare in
constant time: what a guess's timing could reveal is how close the *hash* of
the guess is to a stored hash, and a guesser cannot steer a SHA-256.

Times: each event carries the co-op's timezone (`TZID`) with the
`VTIMEZONE` that describes it, made by `icalendar` from zoneinfo, so a slot
at 11:30 reads 11:30 in any calendar on either side of a change to summer
time, even in one that knows no timezone names. `icalendar` (8 MiB) is
imported when a feed is built, not when the bot starts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.i18n import t
from coopbot.models import Member
from coopbot.models_rosters import CalendarFeed, Slot, SlotSignup
from coopbot.secrets import purpose_key
from coopbot.services.members.accounts import at_least, is_customer, language_of
from coopbot.services.members.api_keys import digest
from coopbot.services.rosters.slots import code
from coopbot.states import Role

if TYPE_CHECKING:
    from icalendar import Event

MINE, ALL = "mine", "all"
SCOPES = (MINE, ALL)
#: What the feed covers: a month back (what was ridden), three months ahead (the plan).
DAYS_BACK = 30
DAYS_AHEAD = 90
TOKEN_BYTES = 24
_PURPOSE = b"coopbot calendar feed v1"
#: Calendar apps refresh a subscription about this often when the feed asks.
REFRESH = timedelta(hours=1)
PATH = "/calendar/{token}.ics"


# --- the address --------------------------------------------------------------------


def token_of(config: Config, member_id: int, scope: str, generation: int) -> str:
    """The feed's secret: the same every time for one generation, another after a reset."""
    mac = hmac.new(purpose_key(config, _PURPOSE), f"{member_id}:{scope}:{generation}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:TOKEN_BYTES]).decode().rstrip("=")


def scopes_for(member: Member) -> tuple[str, ...]:
    """Everyone has their own slots; coordinators and admins the whole roster too."""
    return SCOPES if at_least(member, Role.COORDINATOR) else (MINE,)


def feed_row(session: Session, member: Member, scope: str) -> CalendarFeed | None:
    return session.scalars(
        select(CalendarFeed).where(CalendarFeed.member_id == member.id, CalendarFeed.scope == scope)
    ).one_or_none()


def token(session: Session, config: Config, member: Member, scope: str, now: datetime) -> str:
    """The member's token for `scope`, its row made on first use.

    The stored hash follows the token: a server key changed since (a new
    `COOPBOT_SECRET`) gives a new address, and the old one stops.
    """
    row = feed_row(session, member, scope)
    if row is None:
        row = CalendarFeed(member_id=member.id, scope=scope, generation=1, token_hash="", created_at=now)
        try:
            with session.begin_nested():  # two `/calendar` at once: the second reads the first's row
                row.token_hash = digest(token_of(config, member.id, scope, 1))
                session.add(row)
        except IntegrityError:
            row = feed_row(session, member, scope)
            assert row is not None
    secret = token_of(config, member.id, scope, row.generation)
    if row.token_hash != digest(secret):
        row.token_hash = digest(secret)
    return secret


def tokens(session: Session, config: Config, member: Member, now: datetime) -> dict[str, str]:
    """Scope → token, for each scope the member may read."""
    return {scope: token(session, config, member, scope, now) for scope in scopes_for(member)}


def reset(session: Session, config: Config, member: Member, now: datetime) -> dict[str, str]:
    """New tokens for each of the member's feeds: the old addresses answer 404 from now on
    (the roster's too, for a coordinator who stepped down: it must not come back with the role)."""
    for row in session.scalars(select(CalendarFeed).where(CalendarFeed.member_id == member.id)):
        row.generation += 1
        row.token_hash = digest(token_of(config, member.id, row.scope, row.generation))
    return tokens(session, config, member, now)


def url(config: Config, secret: str) -> str:
    """The address to subscribe to (needs `[web] public_url`)."""
    return config.web.public_url + PATH.format(token=secret)


def served(config: Config) -> bool:
    """Whether a feed's address can be given: the web door must be on and reachable by a known address."""
    return config.web.enabled and bool(config.web.public_url)


def feed_of(session: Session, secret: str) -> tuple[CalendarFeed, Member] | None:
    """The feed and its member for a token, or None: unknown, reset, or no longer theirs to read."""
    row = session.scalars(select(CalendarFeed).where(CalendarFeed.token_hash == digest(secret))).one_or_none()
    if row is None:
        return None
    member = session.get_one(Member, row.member_id)
    if not member.active or is_customer(member) or row.scope not in scopes_for(member):
        return None
    return row, member


# --- the feed -----------------------------------------------------------------------


def window(now: datetime) -> tuple[datetime, datetime]:
    return now - timedelta(days=DAYS_BACK), now + timedelta(days=DAYS_AHEAD)


def my_slots(session: Session, member: Member, now: datetime) -> list[Slot]:
    """The member's seats in the window, cancelled slots included: they were in their diary."""
    first, last = window(now)
    return list(session.scalars(
        select(Slot).join(SlotSignup, SlotSignup.slot_id == Slot.id)
        .where(SlotSignup.member_id == member.id, Slot.starts_at >= first, Slot.starts_at < last)
        .order_by(Slot.starts_at, Slot.id)
    ))  # fmt: skip


def roster(session: Session, now: datetime) -> list[tuple[Slot, int]]:
    """Every slot in the window not cancelled, with its seats taken."""
    first, last = window(now)
    taken = select(func.count(SlotSignup.id)).where(SlotSignup.slot_id == Slot.id).correlate(Slot).scalar_subquery()
    rows = session.execute(
        select(Slot, taken).where(Slot.cancelled_at.is_(None), Slot.starts_at >= first, Slot.starts_at < last)
        .order_by(Slot.starts_at, Slot.id)
    ).all()  # fmt: skip
    return [(slot, int(count)) for slot, count in rows]


def host(config: Config) -> str:
    """The right-hand side of every UID: the web door's host name, so two co-ops' slots never mix."""
    return urlsplit(config.web.public_url).hostname or "coopbot.invalid"


@lru_cache(maxsize=8)
def _vtimezone_ical(tz_name: str, first: date, last: date) -> bytes:
    """Kept: icalendar asks callers to cache it, and it only changes with the window's years."""
    from icalendar import Timezone

    return bytes(Timezone.from_tzinfo(ZoneInfo(tz_name), first_date=first, last_date=last).to_ical())


def feed_ics(session: Session, config: Config, feed: CalendarFeed, member: Member, now: datetime) -> bytes:
    """The VCALENDAR of `feed`: the member's own slots, or the whole roster for `all`."""
    from icalendar import Calendar, Timezone

    lang, tz = language_of(config, member), config.coop.tz
    coop = config.coop.name
    calendar = Calendar.new(
        prodid="-//coopbot//slots//EN",
        name=t(lang, "calendar.feed_name_all" if feed.scope == ALL else "calendar.feed_name_mine", coop=coop),
        method="PUBLISH",
        calscale="GREGORIAN",
        refresh_interval=REFRESH,
        uid=f"feed-{feed.id}@{host(config)}",  # else a new one at each fetch
    )
    calendar.add("x-wr-timezone", config.coop.timezone)
    first, last = window(now)
    years = (date(first.year, 1, 1), date(last.year + 1, 1, 1))
    calendar.add_component(Timezone.from_ical(_vtimezone_ical(config.coop.timezone, *years)))
    if feed.scope == ALL:
        for slot, taken in roster(session, now):
            event = slot_event(config, slot, lang, tz, now, prefix="roster-slot")
            event.add("description", t(lang, "calendar.event_all", taken=taken, seats=slot.seats,
                                       free=max(0, slot.seats - taken)))  # fmt: skip
            calendar.add_component(event)
    else:
        for slot in my_slots(session, member, now):
            event = slot_event(config, slot, lang, tz, now, prefix="slot")
            if slot.cancelled_at is not None:
                event.add("description", t(lang, "calendar.event_cancelled", reason=slot.cancel_reason or ""))
            else:
                event.add("description", t(lang, "calendar.event_mine", slot=code(slot)))
            calendar.add_component(event)
    return bytes(calendar.to_ical())


def slot_event(config: Config, slot: Slot, lang: str, tz: ZoneInfo, now: datetime, *, prefix: str) -> Event:
    """What every slot's event says: when (on the co-op's clock, with its TZID), which, where."""
    from icalendar import Event

    zone = t(lang, "calendar.summary_zone", zone=slot.zone) if slot.zone else ""
    event = Event()
    event.add("uid", f"{prefix}-{slot.id}@{host(config)}")
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", slot.starts_at.astimezone(tz))
    event.add("dtend", slot.ends_at.astimezone(tz))
    event.add("summary", t(lang, "calendar.summary", coop=config.coop.name, slot=code(slot), zone=zone))
    event.add("last-modified", (slot.cancelled_at or slot.created_at).astimezone(UTC))
    # A calendar keeps the newer copy of an event by its sequence: a cancellation must win.
    event.add("sequence", 1 if slot.cancelled_at is not None else 0)
    event.add("status", "CANCELLED" if slot.cancelled_at is not None else "CONFIRMED")
    event.add("transp", "OPAQUE")
    return event
