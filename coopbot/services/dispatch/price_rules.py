"""The price rules in force, the vote behind each one, and a quote told as a sum anyone can check.

`prices` does the arithmetic; this module says where the numbers come from.
A platform company changes its prices when it likes and cites nothing; here
each rule is a governed setting (`price.*`), so a quote can name the vote that
set every rule it used ("price rules adopted by vote P-7 on 2026-11-12"), and
`/prices` shows the whole rule book, with worked examples, to anyone who asks,
customers included.

A quote is kept on its job as a plain record (`record_of`): the terms, the
zones found and the votes cited, so the explanation reads the same after the
rules change again, and `explain` can tell it in any reader's language.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from babel.dates import format_date
from babel.lists import format_list
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.i18n import t
from coopbot.money import format_money
from coopbot.services.dispatch.prices import DEFAULTS, PriceRules, Quote, Zone, zone_items
from coopbot.services.polls import settings
from coopbot.services.polls.texts import code

KEYS = tuple(DEFAULTS)
#: The rules each kind of term applies: a quote cites them when the term is in its sum.
USES: dict[str, tuple[str, ...]] = {
    "prices.term.base": ("price.base",),
    "prices.term.crossing": ("price.crossing", "price.zones"),
    "prices.term.table": ("price.table", "price.zones"),
    "prices.term.urgent": ("price.urgent", "price.urgent_minutes"),
    "prices.term.evening": ("price.evening", "price.evening_hours"),
    "prices.term.night": ("price.night", "price.night_hours"),
    "prices.term.heavy": ("price.heavy", "price.heavy_words"),
}
#: `/prices` works its examples out for an ordinary delivery: at midday, neither urgent nor heavy.
EXAMPLE_TIME = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
#: Surcharges as `/prices` lists them: the amount's key, then the setting that says when it applies.
SURCHARGES = (
    ("price.urgent", "price.urgent_minutes"),
    ("price.evening", "price.evening_hours"),
    ("price.night", "price.night_hours"),
    ("price.heavy", "price.heavy_words"),
)


@dataclass(frozen=True)
class Citation:
    """Where a rule in force comes from: the vote that set it and since when, in the co-op's
    time zone (both None: the co-op's configuration, before any vote)."""

    key: str
    poll_id: int | None
    effective_at: datetime | None


@dataclass(frozen=True)
class RulesInForce:
    rules: PriceRules
    cited: dict[str, Citation]
    #: Each rule's canonical text, for showing it as members typed it (zones keep their capitals).
    values: Mapping[str, str]


def in_force(session: Session, config: Config, now: datetime) -> RulesInForce:
    """The price rules at `now`: the latest vote on each, else the co-op's configuration."""
    return rules_of(settings.InForce(config, settings.voted(session, now, KEYS)))


def rules_of(read: settings.InForce) -> RulesInForce:
    """The price rules among settings already read (`read` holds at least `KEYS`), for a
    reader of other settings too: a quote reads the price rules and the offer policy at once."""
    values = {key: read.value(key) for key in KEYS}
    tz = read.config.coop.tz
    cited = {}
    for key in KEYS:
        row = read.row(key)
        at = None if row is None else row.effective_at.astimezone(tz)
        cited[key] = Citation(key, None if row is None else row.poll_id, at)
    return RulesInForce(_rules(tuple(values.items())), cited, values)


@lru_cache(maxsize=64)
def _rules(values: tuple[tuple[str, str], ...]) -> PriceRules:
    """The rules read from their text, once per text. Reason: every quote read the zones, the
    table, the hours and the words afresh, and the same text always reads the same rules
    (`PriceRules` is frozen)."""
    return PriceRules.from_settings(dict(values))


def record_of(quote: Quote, in_force: RulesInForce) -> dict[str, Any]:
    """A quote as its job keeps it (JSON): the terms, the zones found, and the rules it used
    with the vote behind each, one entry per vote (each rule from configuration once)."""
    used = {key for term in quote.terms for key in USES[term.key]}
    cited: list[dict[str, Any]] = []
    seen: set[tuple[str, object]] = set()
    for key in (key for key in KEYS if key in used):
        citation = in_force.cited[key]
        mark = ("poll", citation.poll_id) if citation.poll_id is not None else ("key", key)
        if mark not in seen:
            seen.add(mark)
            at = citation.effective_at.isoformat() if citation.effective_at is not None else None
            cited.append({"key": key, "poll": citation.poll_id, "at": at})
    return {
        "total": quote.total,
        "terms": [{"key": term.key, "cents": term.cents, "params": dict(term.params)} for term in quote.terms],
        "zones": [quote.pickup_zone, quote.dropoff_zone],
        "cited": cited,
    }


def explain(lang: str, record: Mapping[str, Any], currency: str) -> str:
    """'€6.50 = base €4.00 + crossing into zone B €2.50; price rules adopted by vote P-7 on
    2026-11-12': every term printed, so the reader can add them up to the printed total."""
    terms = " + ".join(
        t(lang, term["key"], amount=format_money(term["cents"], currency, lang), **term["params"])
        for term in record["terms"]
    )
    total = format_money(record["total"], currency, lang)
    return t(lang, "prices.explain", total=total, terms=terms, rules=_rules_from(lang, record["cited"]))


def _rules_from(lang: str, cited: Iterable[Mapping[str, Any]]) -> str:
    """The votes behind the rules a quote used; the configuration when no vote changed them."""
    entries = list(cited)
    votes = {entry["poll"]: entry["at"] for entry in entries if entry["poll"] is not None}
    if len(votes) == 1:
        [(poll, at)] = votes.items()
        return t(lang, "prices.rules_vote", poll=code(poll), date=_date(lang, at))
    if votes:
        dated = [
            t(lang, "prices.vote_dated", poll=code(poll), date=_date(lang, at)) for poll, at in sorted(votes.items())
        ]
        return t(lang, "prices.rules_votes", votes=format_list(dated, locale=lang))
    changed = sorted(entry["at"] for entry in entries if entry["at"] is not None)
    if changed:
        return t(lang, "prices.rules_set", date=_date(lang, changed[-1]))
    return t(lang, "prices.rules_config")


def _date(lang: str, at: str | datetime | None) -> str:
    """A day the reader's way (Babel, with the catalogue's pattern: 2026-11-12, 12/11/2026)."""
    if at is None:
        return "?"
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return format_date(moment.date(), format=t(lang, "prices.date_format"), locale=lang)


def _source(lang: str, in_force: RulesInForce, *keys: str) -> str:
    """Where rules come from, for `/prices`: 'vote P-7 of 2026-11-12 and the co-op's configuration'."""
    sources: list[str] = []
    for key in keys:
        citation = in_force.cited[key]
        if citation.poll_id is not None:
            text = t(lang, "prices.source_vote", poll=code(citation.poll_id), date=_date(lang, citation.effective_at))
        elif citation.effective_at is not None:
            text = t(lang, "prices.source_set", date=_date(lang, citation.effective_at))
        else:
            text = t(lang, "prices.source_config")
        if text not in sources:
            sources.append(text)
    return format_list(sources, locale=lang)


def prices_text(lang: str, in_force: RulesInForce, currency: str) -> str:
    """What `/prices` shows anyone: each rule in force in words, with the vote that set it, and
    a worked example or two, so a customer can check a quote before ordering."""
    rules, values = in_force.rules, in_force.values

    def shown(key: str) -> str:
        return settings.describe(key, values[key], lang, currency)

    lines = [t(lang, "prices.title")]
    if not rules.zones:
        lines += [t(lang, "prices.no_zones"), t(lang, "prices.how_to_change")]
        return "\n".join(lines)
    lines.append(t(lang, "prices.rule.base", amount=shown("price.base"), source=_source(lang, in_force, "price.base")))
    lines.append(t(lang, "prices.rule.zones", source=_source(lang, in_force, "price.zones")))
    lines += [
        t(lang, "prices.rule.zone", zone=zone.name, places=", ".join(zone_items(values["price.zones"], zone)))
        for zone in rules.zones
    ]
    crossing = _source(lang, in_force, "price.crossing")
    lines.append(t(lang, "prices.rule.crossing", amount=shown("price.crossing"), source=crossing))
    if rules.table:
        table = _source(lang, in_force, "price.table")
        lines.append(t(lang, "prices.rule.table", table=shown("price.table"), source=table))
    for amount, when in SURCHARGES:
        if int(values[amount]):
            source = _source(lang, in_force, amount, when)
            words = format_list(list(rules.heavy_words), style="or", locale=lang)
            condition = words if when == "price.heavy_words" else values[when]
            lines.append(t(lang, f"prices.rule.{amount.removeprefix('price.')}", amount=shown(amount),
                           when=condition, source=source))  # fmt: skip
    lines.append(t(lang, "prices.examples"))
    lines += [_example(lang, in_force, currency, start, end) for start, end in _example_trips(rules.zones)]
    lines += [t(lang, "prices.not_covered_hint"), t(lang, "prices.how_to_change")]
    return "\n".join(lines)


def _example_trips(zones: tuple[Zone, ...]) -> list[tuple[Zone, Zone]]:
    """Within the first zone; and from the first zone to the last, when there are two or more."""
    first, last = zones[0], zones[-1]
    return [(first, first)] + ([(first, last)] if last != first else [])


def _example(lang: str, in_force: RulesInForce, currency: str, start: Zone, end: Zone) -> str:
    quote = in_force.rules.quote(_place(start), _place(end), now=EXAMPLE_TIME, deadline=None, note="", timezone="UTC")
    key = "prices.example_within" if quote.pickup_zone == quote.dropoff_zone else "prices.example_across"
    sum_text = explain(lang, record_of(quote, in_force), currency)
    return t(lang, key, start=quote.pickup_zone, end=quote.dropoff_zone, sum=sum_text)


def _place(zone: Zone) -> str:
    """An address the zone covers: its first postcode, else its first district."""
    return min(zone.postcodes) if zone.postcodes else zone.districts[0]
