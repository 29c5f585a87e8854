"""Prices the members set by vote: a changed rule applies from the vote's close, every quote
cites the votes behind the rules it used, and its printed terms add up to its printed total."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from coopbot.money import parse_amount, plain_amount
from coopbot.services.dispatch import orders, price_rules
from coopbot.services.dispatch.parsing import JobSpec
from coopbot.services.dispatch.price_rules import Citation, RulesInForce, explain, record_of
from coopbot.services.dispatch.prices import DEFAULTS, MONEY, PriceRules, Quote
from coopbot.services.members.accounts import create_member
from tests.conftest import Coop

PARIS = "Europe/Paris"
NBSP, NNBSP = "\u00a0", "\u202f"


def rules_now(coop: Coop) -> RulesInForce:
    with coop.session() as session:
        return price_rules.in_force(session, coop.bot.config, coop.clock.now())


def quoted(coop: Coop, pickup: str, dropoff: str, lang: str = "en") -> str:
    """The quote a customer would get now, explained."""
    rules = rules_now(coop)
    quote = rules.rules.quote(pickup, dropoff, now=coop.clock.now(), deadline=None, note="", timezone=PARIS)
    return explain(lang, record_of(quote, rules), "EUR")


async def voted_in(coop: Coop, proposer: str, voters: tuple[str, ...], proposal: str) -> str:
    """A binding proposal the voters agree to; it passes at its close. Returns its code."""
    opened = await coop.say(proposer, f"/propose {proposal}")
    found = re.search(r"P-[0-9]+", opened)
    assert found is not None and "is open" in opened, opened
    for voter in voters:
        assert "recorded: Agree" in await coop.say(voter, f"/vote {found.group()} agree")
    return found.group()


async def test_a_binding_vote_sets_the_prices_from_its_close_and_every_quote_cites_it(coop: Coop) -> None:
    alice, bob, chloe = coop.member("Alice", "coordinator"), coop.member("Bob"), coop.member("Chloé")
    # Before any vote the co-op has no zones: nothing can be quoted, a coordinator prices each order.
    assert rules_now(coop).rules.zones == ()

    await voted_in(coop, bob, (alice, bob), "Zones? --closes 1d --sets price.zones=A: 75001, Le Marais; B: 75011")
    await coop.tick(days=1)
    assert quoted(coop, "3 rue de Rivoli, 75001", "rue de Belleville, 75011") == (
        "€6.50 = base €4.00 + crossing into zone B €2.50; price rules adopted by vote P-1 on 2026-11-03"
    )
    # Within one zone the quote uses the base fare alone, still the co-op's configuration.
    assert quoted(coop, "75001", "Le Marais") == "€4.00 = base €4.00; price rules of the co-op’s configuration"

    await voted_in(coop, chloe, (alice, chloe), "Base fare at 4.50? --closes 2d --sets price.base=4,50")
    await coop.tick(days=1, hours=23)
    # Until the close, the rule in force is the old one.
    assert quoted(coop, "75001", "75011").startswith("€6.50 = base €4.00")
    await coop.tick(hours=1)
    assert quoted(coop, "75001", "75011") == (
        "€7.00 = base €4.50 + crossing into zone B €2.50; price rules adopted by votes P-1 (2026-11-03) and P-2"
        " (2026-11-05)"
    )
    assert quoted(coop, "75001", "75011", "fr") == (
        f"7,00{NBSP}€ = prise en charge 4,50{NBSP}€ + passage en zone B 2,50{NBSP}€{NNBSP}; règles de prix adoptées"
        " par les votes P-1 (03/11/2026) et P-2 (05/11/2026)"
    )
    assert quoted(coop, "75001", "75001", "fr") == (
        f"4,50{NBSP}€ = prise en charge 4,50{NBSP}€{NNBSP}; règles de prix adoptées par le vote P-2 du 05/11/2026"
    )


async def test_a_quote_cites_only_the_rules_it_used(coop: Coop) -> None:
    alice, bob = coop.member("Alice"), coop.member("Bob")
    await voted_in(coop, alice, (alice, bob), "Zones? --closes 1d --sets price.zones=A: 75001; B: 75011")
    await coop.tick(days=1)
    await voted_in(coop, bob, (alice, bob), "Heavy loads? --closes 1d --sets price.heavy=3")
    await coop.tick(days=1)
    rules = rules_now(coop)
    noon = datetime(2026, 11, 5, 11, 0, tzinfo=UTC)
    within = record_of(rules.rules.quote("75001", "75001", now=noon, deadline=None, note="", timezone=PARIS), rules)
    assert within == {
        "total": 400,
        "terms": [{"key": "prices.term.base", "cents": 400, "params": {}}],
        "zones": ["A", "A"],
        "cited": [{"key": "price.base", "poll": None, "at": None}],
    }
    heavy = rules.rules.quote("75001", "75011", now=noon, deadline=None, note="Cargo bike", timezone=PARIS)
    cited = record_of(heavy, rules)["cited"]
    assert [(entry["key"], entry["poll"]) for entry in cited] == [
        ("price.base", None), ("price.zones", 1), ("price.crossing", None), ("price.heavy", 2),
        ("price.heavy_words", None),
    ]  # fmt: skip
    assert cited[1]["at"] == "2026-11-03T09:00:00+01:00", "the vote's moment, in the co-op's time"


# --- the printed sum adds up ---------------------------------------------------------------

ZONE_NAMES = st.lists(st.from_regex(r"[A-Z][a-z0-9_]{0,6}", fullmatch=True), min_size=1, max_size=5,
                      unique_by=str.lower)  # fmt: skip
CENTS = st.integers(min_value=0, max_value=500_000)
WINDOW = st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(0, 23), st.integers(0, 59)).filter(
    lambda hours: hours[:2] != hours[2:]
)


@st.composite
def priced_trips(draw: st.DrawFn) -> tuple[RulesInForce, Quote]:
    """Random zones, rule table and surcharges, and a trip between two of the zones."""
    names = draw(ZONE_NAMES)
    postcodes = iter(draw(st.lists(st.integers(10000, 99999), min_size=len(names), max_size=len(names), unique=True)))
    zones = "; ".join(f"{name}: {next(postcodes)}, Quartier {name}" for name in names)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    table = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    hours = [f"{a:02d}:{b:02d}-{c:02d}:{d:02d}" for a, b, c, d in (draw(WINDOW), draw(WINDOW))]
    values = {
        "price.zones": zones,
        "price.table": "; ".join(f"{a}-{b} {plain_amount(draw(CENTS))}" for a, b in table),
        "price.urgent_minutes": str(draw(st.integers(1, 1440))),
        "price.evening_hours": hours[0],
        "price.night_hours": hours[1],
        "price.heavy_words": "cargo, lourd",
        **{key: str(draw(CENTS)) for key in MONEY},
    }
    polls = st.none() | st.integers(1, 10_000)
    cited = {key: Citation(key, poll, None if poll is None else datetime(2026, 11, 12, tzinfo=UTC))
             for key, poll in ((key, draw(polls)) for key in DEFAULTS)}  # fmt: skip
    rules = RulesInForce(PriceRules.from_settings(values), cited, values)
    start, end = (draw(st.sampled_from(rules.rules.zones)) for _ in range(2))
    now = draw(st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)))
    deadline = draw(st.none() | st.integers(1, 3000).map(lambda minutes: now + timedelta(minutes=minutes)))
    note = draw(st.sampled_from(["", "2 boxes", "LOURD: 2 crates", "cargo"]))
    by_district = draw(st.booleans())
    pickup, dropoff = (f"12 rue de la Paix, {zone.districts[0] if by_district else min(zone.postcodes)}"
                       for zone in (start, end))  # fmt: skip
    return rules, rules.rules.quote(pickup, dropoff, now=now, deadline=deadline, note=note, timezone=PARIS)


def printed_amounts(line: str, lang: str) -> tuple[int, list[int]]:
    """The total and each term's amount, read back from the explanation as a customer would."""
    sums = line.rpartition("; ")[0].removesuffix(NNBSP)
    total, _, terms = sums.partition(" = ")
    return parse_amount(total, zero=True), [parse_amount(term.rpartition(" ")[2], zero=True)
                                            for term in terms.split(" + ")]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(priced_trips(), st.sampled_from(["en", "fr"]))
def test_the_printed_total_is_the_sum_of_the_printed_terms_to_the_cent(trip: tuple[RulesInForce, Quote],
                                                                         lang: str) -> None:  # fmt: skip
    rules, quote = trip
    total, terms = printed_amounts(explain(lang, record_of(quote, rules), "EUR"), lang)
    assert total == sum(terms) == quote.total
    assert terms == [term.cents for term in quote.terms]


async def test_a_quote_reads_its_prices_and_the_offer_policy_in_one_query_with_the_votes_in_force(
    coop: Coop,
) -> None:
    alice, bob = coop.member("Alice", "coordinator"), coop.member("Bob")
    await voted_in(coop, bob, (alice, bob), "Zones? --closes 1d --sets price.zones=A: 75001; B: 75011")
    await voted_in(coop, alice, (alice, bob), "Rotate? --closes 1d --sets offer_policy=rotation")
    await coop.tick(days=1)
    read: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "FROM setting" in statement:
            read.append(statement)

    with coop.session() as session:
        shop = create_member(session, "Boulangerie Martin", "customer", coop.clock.now())
        event.listen(coop.bot.engine, "before_cursor_execute", note)
        try:
            job = orders.quote(session, coop.bot.config, shop, JobSpec("3 rue de Rivoli, 75001", "75011"),
                               coop.clock.now())  # fmt: skip
        finally:
            event.remove(coop.bot.engine, "before_cursor_execute", note)
        votes = {entry["key"]: entry["poll"] for entry in job.quote["cited"]}
        assert (job.price_cents, job.policy, votes["price.zones"], votes["price.base"]) == (650, "rotation", 1, None)
    assert len(read) == 1
