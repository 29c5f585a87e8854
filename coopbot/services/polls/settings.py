"""The co-op's governed settings: the rules members change by vote.

A platform company hides how money is split and who gets the next job; here
those numbers are settings that only a binding poll changes. Each change is a
`Setting` row effective from a moment on (history is never rewritten), and
`config.toml` only gives the starting values. Values are parsed exactly
(Decimal, never float) into one canonical string, so a poll, the audit log and
the ledger all read the same thing.

The ledger stores `snapshot()` at each period's start, so a change to the
split applies from the next period; dispatch reads `current()` at once, and
so do the price rules (`price.*`, read by `services/dispatch/prices.py`):
a vote on a price applies from the next quote on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.errors import UsageError
from coopbot.i18n import t, term
from coopbot.models import Member, Poll, Setting
from coopbot.money import format_milli, format_money, format_pct, parse_amount
from coopbot.services.audit import record
from coopbot.services.dispatch import prices
from coopbot.services.money.shares import MILLI

#: Binding actions that are not plain settings: `apply(session, config, value, now, poll)`.
ActionFn = Callable[[Session, Config, str, datetime, Poll | None], Any]
ParseFn = Callable[[str], str]
#: How a binding action reads on a ballot and in a result: `words(lang, canonical, currency)`.
WordsFn = Callable[[str, str, str], str]
#: What a parse cannot know without the database (a member to remove is active):
#: `check(session, config, canonical, now)` raises a CoopError or returns.
CheckFn = Callable[[Session, Config, str, datetime], None]

WEIGHT_PREFIX = "weight."
MAX_KIND = 30
MAX_WEIGHT = Decimal(1000)
TRUE_WORDS = {"true", "yes", "on", "1", "oui", "vrai"}
FALSE_WORDS = {"false", "no", "off", "0", "non", "faux"}
#: What a member types to empty a list-like price rule (no zones, no table, no words).
NONE_WORDS = {"none", "-", "aucun", "aucune", "rien"}
NUMBER = re.compile(r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")
DURATION = re.compile(r"^([0-9]{1,9})\s*(s|sec|m|min|h)?$")


@dataclass(frozen=True)
class Governed:
    """One thing a binding poll may change, and how its value is checked."""

    key: str
    parse: ParseFn
    #: Only coordinators and admins may propose it (config can add more keys).
    restricted: bool = False
    #: For binding actions: what happens when the poll passes.
    action: ActionFn | None = None
    #: Run by `validate` after the parse, so when a poll is proposed and again when it passes.
    check: CheckFn | None = None
    #: For binding actions whose value is not shown as typed (an amount in cents, say).
    words: WordsFn | None = None


def bad(key: str, expected: str) -> UsageError:
    return UsageError("settings.bad_value", setting=key, expected=expected)


def _decimal(text: str) -> Decimal | None:
    cleaned = text.strip().replace(" ", "").replace("\u202f", "").replace("\xa0", "").replace(",", ".")
    if NUMBER.match(cleaned) is None:
        return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def plain(value: Decimal) -> str:
    """`Decimal('20.50')` → '20.5'; never scientific notation."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 99


def parse_pct(key: str) -> ParseFn:
    def parse(text: str) -> str:
        value = _decimal(text.strip().removesuffix("%"))
        if value is None or not 0 <= value <= 100 or _places(value) > 2:
            raise bad(key, "0–100")
        return plain(value)

    return parse


def parse_money(text: str) -> str:
    """Money settings are read like every amount in the bot, and may be zero (no base pay)."""
    return str(parse_amount(text, zero=True))


def parse_policy(text: str) -> str:
    value = text.strip().lower()
    if value not in ("broadcast", "rotation"):
        raise bad("offer_policy", "broadcast | rotation")
    return value


def parse_timeout(text: str) -> str:
    match = DURATION.match(text.strip().lower())
    if match is None:
        raise bad("offer_timeout", "10–86400")
    unit = {"m": 60, "min": 60, "h": 3600}.get(match.group(2) or "s", 1)
    seconds = int(match.group(1)) * unit
    if not 10 <= seconds <= 86400:
        raise bad("offer_timeout", "10–86400")
    return str(seconds)


def parse_bool(key: str) -> ParseFn:
    def parse(text: str) -> str:
        word = text.strip().lower()
        if word in TRUE_WORDS:
            return "true"
        if word in FALSE_WORDS:
            return "false"
        raise bad(key, "true | false")

    return parse


def parse_weight(key: str) -> ParseFn:
    def parse(text: str) -> str:
        value = _decimal(text)
        if value is None or value < 0 or value > MAX_WEIGHT or _places(value) > 3:
            raise bad(key, "0–1000 (1.5, 0.25, 0.125)")
        return plain(value)

    return parse


def clearable(parse: ParseFn) -> ParseFn:
    """A rule that may be empty: a vote cannot send an empty value, so `none` stands for it."""

    def read(text: str) -> str:
        return "" if text.strip().lower() in NONE_WORDS else parse(text)

    return read


def parse_words(text: str) -> str:
    return ", ".join(prices.read_words(text))


def check_table_zones(session: Session, config: Config, canonical: str, now: datetime) -> None:
    """A table may only price zones that the zones in force list (else no quote could be read)."""
    zones = prices.read_zones(current(session, config, "price.zones", now))
    prices.read_table(canonical, {zone.name for zone in zones})


def check_zones_keep_table(session: Session, config: Config, canonical: str, now: datetime) -> None:
    """New zones must keep every zone the table in force prices: change the table first."""
    names = {zone.name for zone in prices.read_zones(canonical)}
    table = prices.read_table(current(session, config, "price.table", now), set())
    missing = sorted(name for pair in table for name in pair if names and name not in names)
    if missing:
        raise UsageError("prices.zone_in_table", zone=missing[0])


#: The price rules (`services/dispatch/prices.py`): amounts read like every money setting.
PRICE_PARSERS: dict[str, ParseFn] = {
    **dict.fromkeys(prices.MONEY, parse_money),
    "price.zones": clearable(prices.canonical_zones),
    "price.table": clearable(prices.canonical_table),
    "price.urgent_minutes": prices.read_minutes,
    "price.evening_hours": prices.canonical_window,
    "price.night_hours": prices.canonical_window,
    "price.heavy_words": clearable(parse_words),
}
#: Each section of the public web page, shown unless a vote turns it off.
PUBLIC_KEYS = ("public.rules", "public.polls", "public.periods", "public.fairness", "public.audit")
PRICE_CHECKS: dict[str, CheckFn] = {"price.table": check_table_zones, "price.zones": check_zones_keep_table}

GOVERNED: dict[str, Governed] = {
    "legal_reserve_pct": Governed("legal_reserve_pct", parse_pct("legal_reserve_pct")),
    "development_fund_pct": Governed("development_fund_pct", parse_pct("development_fund_pct")),
    "equity_threshold": Governed("equity_threshold", parse_money),
    "base_pay_per_hour": Governed("base_pay_per_hour", parse_money),
    "base_pay_per_delivery": Governed("base_pay_per_delivery", parse_money),
    "offer_policy": Governed("offer_policy", parse_policy),
    "offer_timeout": Governed("offer_timeout", parse_timeout),
    "block_vetoes": Governed("block_vetoes", parse_bool("block_vetoes")),
    # The family `weight.<kind>`: `governed()` makes one entry per kind on demand.
    f"{WEIGHT_PREFIX}*": Governed(f"{WEIGHT_PREFIX}*", parse_weight(f"{WEIGHT_PREFIX}*")),
    # Any member may propose a price rule: one member, one vote, whatever their role.
    **{key: Governed(key, PRICE_PARSERS[key], check=PRICE_CHECKS.get(key)) for key in prices.DEFAULTS},
    # What the public page shows, section by section (`coopbot/services/public`): on until a vote.
    **{key: Governed(key, parse_bool(key)) for key in PUBLIC_KEYS},
}

PCT_KEYS = ("legal_reserve_pct", "development_fund_pct")
MONEY_KEYS = ("equity_threshold", "base_pay_per_hour", "base_pay_per_delivery")


def register_action(
    key: str,
    parse: ParseFn,
    apply: ActionFn,
    restricted: bool = True,
    check: CheckFn | None = None,
    words: WordsFn | None = None,
) -> Governed:
    """Let a binding poll do something that is not a plain value (e.g. remove a member).

    `check` holds every rule the action itself would enforce: `validate` runs
    it when the poll is proposed, so a proposal that could never be applied is
    refused then, not discovered at the close.
    """
    entry = Governed(key, parse, restricted, apply, check, words)
    GOVERNED[key] = entry
    return entry


#: Defaults of the settings other modules register (`register_setting`), before any vote.
REGISTERED_DEFAULTS: dict[str, str] = {}


def register_setting(key: str, parse: ParseFn, default: str, restricted: bool = False) -> Governed:
    """Let a binding poll change a plain value another area owns (e.g. `proxy_limit`)."""
    entry = Governed(key, parse, restricted)
    GOVERNED[key] = entry
    REGISTERED_DEFAULTS[key] = default
    return entry


def governed(key: str) -> Governed:
    """The entry for `key` (a `weight.<kind>` too), or a sentence listing what can be set."""
    key = key.strip().lower()
    if key in GOVERNED and not key.endswith("*"):
        return GOVERNED[key]
    if key.startswith(WEIGHT_PREFIX):
        kind = key.removeprefix(WEIGHT_PREFIX)
        if not kind.isidentifier() or not kind.isascii() or len(kind) > MAX_KIND:
            raise UsageError("settings.bad_kind", kind=kind[:40])
        return Governed(key, parse_weight(key), GOVERNED[f"{WEIGHT_PREFIX}*"].restricted)
    raise UsageError("settings.unknown_key", setting=key[:50], keys=known_keys())


def known_keys() -> list[str]:
    return [key.replace("*", "KIND") for key in GOVERNED]


def is_restricted(config: Config, key: str) -> bool:
    entry = governed(key)
    listed = set(config.polls.restricted_settings)
    family = f"{WEIGHT_PREFIX}*" if entry.key.startswith(WEIGHT_PREFIX) else entry.key
    return entry.restricted or entry.key in listed or family in listed


# --- reading ------------------------------------------------------------------


def _from_float(value: float) -> Decimal:
    return Decimal(str(value))


def _cents_of(value: float) -> str:
    """Config gives euros as floats; a setting holds cents, read exactly from the float's text."""
    return str(int((_from_float(value) * 100).to_integral_value()))


def default(config: Config, key: str) -> str:
    """The value `config.toml` gives before any vote, canonical."""
    shares = config.shares
    if key in ("legal_reserve_pct", "development_fund_pct", "dividend_pct"):
        return plain(_from_float(getattr(shares, key)))
    if key in MONEY_KEYS:
        return _cents_of(getattr(shares, key))
    if key in prices.MONEY:
        return _cents_of(getattr(config.prices, key.removeprefix("price.")))
    if key in prices.DEFAULTS:
        return _parsed_price_rule(key, str(getattr(config.prices, key.removeprefix("price."))))
    if key == "offer_policy":
        return config.dispatch.policy
    if key == "offer_timeout":
        return str(config.dispatch.offer_timeout)
    if key == "block_vetoes":
        return "true" if config.polls.block_vetoes else "false"
    if key in PUBLIC_KEYS:
        return "true"
    if key in REGISTERED_DEFAULTS:
        return REGISTERED_DEFAULTS[key]
    if key.startswith(WEIGHT_PREFIX):
        weight = config.weights.get(key.removeprefix(WEIGHT_PREFIX))
        return plain(_from_float(weight)) if weight is not None else "0"
    raise KeyError(key)


#: Built once: every quote reads the settings, and building the query cost about as much as running it.
VOTED = select(Setting).where(Setting.effective_at <= bindparam("now")).order_by(Setting.effective_at, Setting.id)
VOTED_KEYS = VOTED.where(Setting.key.in_(bindparam("keys", expanding=True)))


@lru_cache(maxsize=256)
def _parsed_price_rule(key: str, text: str) -> str:
    """A price rule of the configuration, canonical. Reason: every quote reads the price
    rules not changed by a vote from `config.toml`, and the zones' text was parsed afresh
    each time; the same text always reads the same, so each is parsed once."""
    return GOVERNED[key].parse(text)


def voted(session: Session, now: datetime, keys: Collection[str] | None = None) -> dict[str, Setting]:
    """The change in force per key at `now` (one query, later rows win): its value, and the
    poll and moment that set it, for whoever must cite the vote (a price's explanation)."""
    if keys is None:
        found = session.scalars(VOTED, {"now": now})
    else:
        found = session.scalars(VOTED_KEYS, {"now": now, "keys": list(keys)})
    rows: dict[str, Setting] = {}
    for row in found:
        rows[row.key] = row
    return rows


def _in_force(session: Session, now: datetime, key: str | None = None) -> dict[str, str]:
    """Latest voted value per key at `now`."""
    return {name: row.value for name, row in voted(session, now, None if key is None else (key,)).items()}


def current(session: Session, config: Config, key: str, now: datetime) -> str:
    """The value in force at `now`: the latest vote, else the config's default."""
    if key == "dividend_pct":
        reserve = Decimal(current(session, config, "legal_reserve_pct", now))
        fund = Decimal(current(session, config, "development_fund_pct", now))
        return plain(100 - reserve - fund)
    voted = _in_force(session, now, key)
    return voted[key] if key in voted else default(config, key)


@dataclass(frozen=True)
class InForce:
    """Every governed value at one moment, from one read of the settings (`in_force`).

    Reason: `current` runs a query per key, and a reader of many keys (the
    public page lists some twenty rules, its sections are five more) ran as
    many; this answers each key from the rows `voted` read once, with the same
    rules as `current` (the latest change, else the configuration; the
    dividend is what the reserve and the fund leave).
    """

    config: Config
    #: The change in force per key, as `voted` gives it.
    rows: dict[str, Setting]

    def value(self, key: str) -> str:
        """What `current(session, config, key, now)` says, without a query."""
        if key == "dividend_pct":
            reserve = Decimal(self.value("legal_reserve_pct"))
            fund = Decimal(self.value("development_fund_pct"))
            return plain(100 - reserve - fund)
        row = self.rows.get(key)
        return row.value if row is not None else default(self.config, key)

    def row(self, key: str) -> Setting | None:
        """The change that set `key`, for citing its vote; None while the configuration's value holds."""
        return self.rows.get(key)


def in_force(session: Session, config: Config, now: datetime) -> InForce:
    """Every governed value in force at `now`, read in one query (see `InForce`)."""
    return InForce(config, voted(session, now))


def _bp(pct: str) -> int:
    return int(Decimal(pct) * 100)


def snapshot(session: Session, config: Config, now: datetime) -> dict[str, Any]:
    """Every governed value at `now`, as JSON-able ints (basis points, cents, milli-points)."""
    voted = _in_force(session, now)

    def value(key: str) -> str:
        return voted[key] if key in voted else default(config, key)

    weights = {kind: plain(_from_float(w)) for kind, w in config.weights.items()}
    for key, text in voted.items():
        if key.startswith(WEIGHT_PREFIX):
            weights[key.removeprefix(WEIGHT_PREFIX)] = text
    reserve_bp = _bp(value("legal_reserve_pct"))
    fund_bp = _bp(value("development_fund_pct"))
    return {
        "legal_reserve_bp": reserve_bp,
        "development_fund_bp": fund_bp,
        "dividend_bp": 10000 - reserve_bp - fund_bp,
        "equity_threshold_cents": int(value("equity_threshold")),
        "base_pay_per_hour_cents": int(value("base_pay_per_hour")),
        "base_pay_per_delivery_cents": int(value("base_pay_per_delivery")),
        "weights": {kind: int(Decimal(w) * MILLI) for kind, w in sorted(weights.items())},
        "offer_policy": value("offer_policy"),
        "offer_timeout": int(value("offer_timeout")),
        "block_vetoes": value("block_vetoes") == "true",
    }


# --- changing -------------------------------------------------------------------


def validate(
    session: Session, config: Config, key: str, value: str, now: datetime, *, canonical: bool = False
) -> tuple[str, str]:
    """(canonical key, canonical value), or a sentence saying what to type instead.

    The one gate for a value: `/propose --sets` calls it when the poll opens,
    `apply` when it passes, so both see the same rules. A value already
    `canonical` (what a poll stored when it opened) is checked again but not
    read again: an amount stored in cents, read again as typed, would be a
    hundred times larger. The dividend is what the reserve and the fund
    leave, so a percentage that would make it negative is refused against the
    other one in force.
    """
    entry = governed(key)
    read = value if canonical else entry.parse(value)
    if entry.check is not None:
        entry.check(session, config, read, now)
    if entry.key in PCT_KEYS:
        other = PCT_KEYS[1 - PCT_KEYS.index(entry.key)]
        other_value = Decimal(current(session, config, other, now))
        if Decimal(read) + other_value > 100:
            raise UsageError(
                "settings.dividend_negative",
                setting=entry.key,
                value=read,
                other=other,
                other_value=plain(other_value),
                most=plain(100 - other_value),
            )
    return entry.key, read


def poll_code(poll: Poll | None) -> str | None:
    return f"P-{poll.id}" if poll is not None else None


def apply(
    session: Session,
    config: Config,
    key: str,
    value: str,
    now: datetime,
    *,
    actor: Member | None = None,
    poll: Poll | None = None,
) -> str:
    """Change a setting from `now` on (or run a binding action); audited. Returns the new value.

    A poll's value is the canonical one `validate` gave when the poll opened."""
    key, canonical = validate(session, config, key, value, now, canonical=poll is not None)
    entry = governed(key)
    if entry.action is not None:
        entry.action(session, config, canonical, now, poll)
        record(session, now, "setting.action", actor=actor, key=key, value=canonical, poll=poll_code(poll))
        return canonical
    old = current(session, config, key, now)
    session.add(
        Setting(
            key=key,
            value=canonical,
            effective_at=now,
            set_by=actor.id if actor else None,
            poll_id=poll.id if poll is not None else None,
        )
    )
    session.flush()
    record(session, now, "setting.changed", actor=actor, key=key, old=old, new=canonical, poll=poll_code(poll))
    return canonical


def describe(key: str, canonical: str, lang: str, currency: str) -> str:
    """A value as members read it, in their language: '20%' ('20 %'), '€12.50' ('12,50 €'),
    'yes' ('oui'); a policy in words with the word a member types to vote for it; a price
    table with its amounts as money ('A-C €5.50 · B-C €3.00'), an empty rule as 'none'."""
    if key.endswith("_pct"):
        return format_pct(int(Decimal(canonical) * 100), lang)
    if key in MONEY_KEYS or key in prices.MONEY:
        return format_money(int(canonical), currency, lang)
    if key in PRICE_PARSERS and not canonical:
        return t(lang, "settings.none")
    if key == "price.table":
        table = prices.read_table(canonical, set()).items()
        return " · ".join(f"{'-'.join(sorted(pair))} {format_money(cents, currency, lang)}" for pair, cents in table)
    if key == "price.urgent_minutes":
        return t(lang, "settings.minutes", value=canonical)
    if key.startswith(WEIGHT_PREFIX):
        return format_milli(int(Decimal(canonical) * MILLI), lang)
    if key == "offer_timeout":
        return t(lang, "settings.seconds", value=canonical)
    if key == "offer_policy":
        return term(lang, "dispatch.policy", canonical, typed=True)
    if key == "block_vetoes" or key in PUBLIC_KEYS:
        return term(lang, "settings.bool", canonical)
    return canonical
