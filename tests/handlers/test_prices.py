"""`/prices`: the co-op's price rules, readable by anyone, customers and strangers included,
each with the vote that set it and worked examples; a rule that cannot be read is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coopbot.app import CoopBot
from coopbot.clock import FakeClock
from tests.conftest import Coop, make_config

NBSP, NNBSP = "\u00a0", "\u202f"
ZONES = "A: 75001, 75002, Le Marais; B: 75011, Belleville; C: 93100, Montreuil"


@pytest.fixture
async def priced(sqlite_url: str, clock: FakeClock) -> AsyncIterator[Coop]:
    """A co-op whose configuration prices three zones, a table, evenings and heavy loads."""
    prices = {"zones": ZONES, "table": "A-C 5.50", "evening": 1.5, "heavy": 3}
    bot = CoopBot(make_config(sqlite_url, prices=prices), clock=clock)
    yield Coop(bot, clock)
    bot.dispose()


async def test_anyone_reads_the_rules_in_force_with_examples(priced: Coop) -> None:
    shown = await priced.say("stranger", "/prices")
    assert "Base fare: €4.00 (the co-op’s configuration)." in shown
    assert "• zone A: 75001, 75002, Le Marais\n• zone B: 75011, Belleville\n• zone C: 93100, Montreuil" in shown
    assert "Each zone crossed between pickup and drop-off: €2.50" in shown
    assert "instead of the crossings: A-C €5.50" in shown
    assert "Evening, 19:00-23:00: +€1.50" in shown
    assert "when the order’s note says cargo, heavy, lourd, or encombrant: +€3.00" in shown
    assert "Urgent" not in shown and "Night" not in shown, "a surcharge of nothing is not a rule"
    assert "• within zone A: €4.00 = base €4.00; price rules of the co-op’s configuration" in shown
    assert "• from zone A to zone C: €9.50 = base €4.00 + zone A to zone C €5.50;" in shown
    customer = priced.member("Dana", "customer")
    assert await priced.say(customer, "/tarifs") == shown


async def test_the_rules_read_in_french(priced: Coop) -> None:
    shown = await priced.say("inconnu", "/prix", language="fr")
    assert f"Prise en charge{NBSP}: 4,00{NBSP}€ (configuration de la coopérative)." in shown
    assert f"• zone B{NBSP}: 75011, Belleville" in shown
    assert f"Soirée, 19:00-23:00{NBSP}: +1,50{NBSP}€" in shown
    assert f"cargo, heavy, lourd ou encombrant{NBSP}: +3,00{NBSP}€" in shown
    assert (
        f"• de la zone A à la zone C{NBSP}: 9,50{NBSP}€ = prise en charge 4,00{NBSP}€ + zone A à zone C 5,50{NBSP}€"
        f"{NNBSP}; règles de prix de la configuration de la coopérative"
    ) in shown


async def test_a_rule_voted_in_is_shown_with_its_vote(priced: Coop) -> None:
    alice, bob = priced.member("Alice"), priced.member("Bob")
    await priced.say(alice, "/propose Base fare at 4.50? --closes 1d --sets price.base=4.50")
    ballot = next(m.text for m in priced.inbox(bob) if "P-1" in m.text)
    assert "base fare (price.base) goes from €4.00 to €4.50 (right away)" in ballot
    await priced.say(alice, "/vote P-1 agree")
    await priced.say(bob, "/vote P-1 agree")
    assert "Base fare: €4.00" in await priced.say(bob, "/prices"), "not before the close"
    await priced.tick(days=1)
    shown = await priced.say(bob, "/prices")
    assert "Base fare: €4.50 (vote P-1 of 2026-11-03)." in shown
    assert "• within zone A: €4.50 = base €4.50; price rules adopted by vote P-1 on 2026-11-03" in shown
    french = await priced.say(bob, "/prix", language="fr")
    assert f"Prise en charge{NBSP}: 4,50{NBSP}€ (vote P-1 du 03/11/2026)." in french


async def test_without_zones_a_coordinator_prices_each_order(coop: Coop) -> None:
    shown = await coop.say("stranger", "/prices")
    assert "no price zones yet, so a coordinator sets the price of each order" in shown
    assert "--sets price.base=4.50" in shown
    assert "Base fare:" not in shown and "Examples" not in shown


async def test_a_rule_that_cannot_be_read_is_refused_with_what_to_type(priced: Coop) -> None:
    alice = priced.member("Alice")
    refused = await priced.say(alice, "/propose New zones? --sets price.zones=A 75001")
    assert "“A 75001” is not a zone. Write each zone as a one-word name" in refused
    assert "A: 75001, 75002, Le Marais; B: 75011, Belleville." in refused
    refused = await priced.say(alice, "/propose Nights? --sets price.night_hours=11pm-6am")
    assert "“11pm-6am” is not a time window" in refused and "like 19:00-23:00" in refused
    refused = await priced.say(alice, "/propose Table? --sets price.table=A-D 5")
    assert "Zone D is not one of the price zones in force." in refused
    await priced.say(alice, "/lang fr")
    refused = await priced.say(alice, "/proposer Zones ? --sets price.zones=A 75001")
    assert f"«{NBSP}A 75001{NBSP}» n’est pas une zone." in refused
    assert "P-1" not in await priced.say(alice, "/polls"), "no poll was opened"
