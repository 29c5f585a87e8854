"""The price rule: a base fare, a fee per zone crossed or the table's price, and surcharges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coopbot.errors import UsageError
from coopbot.money import parse_amount
from coopbot.services.dispatch.prices import (
    MONEY,
    NotCovered,
    PriceRules,
    canonical_table,
    canonical_zones,
    read_window,
)

PARIS = "Europe/Paris"
NOON = datetime(2026, 12, 4, 11, 0, tzinfo=UTC)  # 12:00 in Paris
ZONES = "A: 75001, 75002, Le Marais; B: 75011, 75020, Belleville; C: 93100, Montreuil"


def rules(**values: str) -> PriceRules:
    """Rules as members type them: amounts in euros, stored in cents."""
    typed = {f"price.{k}": str(parse_amount(v, zero=True)) if f"price.{k}" in MONEY else v for k, v in values.items()}
    return PriceRules.from_settings({"price.zones": ZONES, **typed})


def terms(quote_rules: PriceRules, pickup: str, dropoff: str, **kwargs: object) -> list[tuple[str, int]]:
    options = {"now": NOON, "deadline": None, "note": "", "timezone": PARIS, **kwargs}
    quote = quote_rules.quote(pickup, dropoff, **options)  # type: ignore[arg-type]
    return [(term.key.removeprefix("prices.term.") + "".join(f":{v}" for v in term.params.values()), term.cents)
            for term in quote.terms]  # fmt: skip


def test_within_one_zone_the_base_fare_alone() -> None:
    assert terms(rules(), "3 rue de Rivoli, 75001", "8 rue du Temple, 75002") == [("base", 400)]


def test_each_zone_crossed_adds_its_fee_named_by_the_zone_entered() -> None:
    assert terms(rules(), "3 rue de Rivoli, 75001", "12 rue de Paris, 93100 Montreuil") == [
        ("base", 400), ("crossing:B", 250), ("crossing:C", 250),
    ]
    assert terms(rules(), "Montreuil, place Jean Jaurès", "rue des Rosiers, Le Marais") == [
        ("base", 400), ("crossing:B", 250), ("crossing:A", 250),
    ]


def test_the_zone_table_replaces_the_crossings_for_a_pair_it_lists() -> None:
    table = rules(table="A-C 5.00")
    assert terms(table, "75001", "93100") == [("base", 400), ("table:A:C", 500)]
    assert terms(table, "93100", "75001") == [("base", 400), ("table:C:A", 500)]
    assert terms(table, "75001", "75011") == [("base", 400), ("crossing:B", 250)]


def test_a_district_is_found_however_it_is_typed() -> None:
    assert terms(rules(), "BELLEVILLE, rue de Belleville", "75011") == [("base", 400)]
    crossing_twice = [("base", 400), ("crossing:B", 250), ("crossing:C", 250)]
    assert terms(rules(), "rue des rosiers, le MARAIS", "montreuil") == crossing_twice


def test_an_address_no_zone_covers_is_refused_by_name() -> None:
    with pytest.raises(NotCovered) as refused:
        terms(rules(), "75001", "1 place Bellecour, 69002 Lyon")
    assert refused.value.params == {"address": "1 place Bellecour, 69002 Lyon"}


def test_urgent_when_the_deadline_is_nearer_than_the_rule_says() -> None:
    urgent = rules(urgent="2.00", urgent_minutes="45")
    assert ("urgent:45", 200) in terms(urgent, "75001", "75002", deadline=NOON + timedelta(minutes=30))
    assert terms(urgent, "75001", "75002", deadline=NOON + timedelta(minutes=45)) == [("base", 400)]
    assert terms(urgent, "75001", "75002") == [("base", 400)]


def test_evening_and_night_by_the_co_ops_clock_and_the_time_of_delivery() -> None:
    late = rules(evening="1.50", night="3.00")
    at = {hour: datetime(2026, 12, 4, hour - 1, 30, tzinfo=UTC) for hour in (12, 19, 22, 23, 1, 6)}  # Paris = UTC+1
    assert terms(late, "75001", "75002", now=at[12]) == [("base", 400)]
    assert terms(late, "75001", "75002", now=at[19]) == [("base", 400), ("evening:19:00-23:00", 150)]
    assert terms(late, "75001", "75002", now=at[12], deadline=at[22]) == [("base", 400), ("evening:19:00-23:00", 150)]
    assert terms(late, "75001", "75002", now=at[23]) == [("base", 400), ("night:23:00-06:00", 300)]
    assert terms(late, "75001", "75002", now=at[6]) == [("base", 400)]


def test_heavy_by_a_word_of_the_note() -> None:
    heavy = rules(heavy="3.00")
    assert terms(heavy, "75001", "75002", note="two CARGO boxes") == [("base", 400), ("heavy:cargo", 300)]
    assert terms(heavy, "75001", "75002", note="cargoes of bread") == [("base", 400)]


def test_settings_are_read_once_into_one_canonical_text() -> None:
    assert canonical_zones(" A :75001,Le Marais ;B: 75011 ") == "A: 75001, Le Marais; B: 75011"
    assert canonical_table("C-A 5,50 ; B-C 3") == "A-C 5.50; B-C 3.00"
    assert read_window("9:00 - 17:30").start.hour == 9


@pytest.mark.parametrize(
    ("zones", "table", "hours"),
    [("A 75001", "", "19:00-23:00"), ("A: 75001; a: 75002", "", "19:00-23:00"), (ZONES, "A-A 2", "19:00-23:00"),
     ("Nord-Est: 75019", "", "19:00-23:00"),
     (ZONES, "A-D 2", "19:00-23:00"), (ZONES, "", "25:00-06:00"), (ZONES, "", "19:00-19:00")],
)  # fmt: skip
def test_a_rule_that_cannot_be_read_is_refused(zones: str, table: str, hours: str) -> None:
    """A zone's name is one word: the table joins two names with a dash, so a name cannot hold one."""
    with pytest.raises(UsageError):
        PriceRules.from_settings({"price.zones": zones, "price.table": table, "price.evening_hours": hours})


cents = st.integers(min_value=0, max_value=5000).map(str)


@given(
    ring_count=st.integers(min_value=1, max_value=6),
    pickup=st.integers(min_value=0, max_value=5),
    dropoff=st.integers(min_value=0, max_value=5),
    base=cents, crossing=cents, listed=cents, urgent=cents, evening=cents,
    use_table=st.booleans(), minutes=st.integers(min_value=0, max_value=300),
)  # fmt: skip
def test_the_fee_for_crossings_is_one_per_ring_between_the_two_addresses(
    ring_count: int, pickup: int, dropoff: int, base: str, crossing: str, listed: str, urgent: str, evening: str,
    use_table: bool, minutes: int,
) -> None:  # fmt: skip
    pickup, dropoff = pickup % ring_count, dropoff % ring_count
    zones = "; ".join(f"Z{i}: {75001 + i}" for i in range(ring_count))
    table = f"Z0-Z{ring_count - 1} {listed}" if use_table and ring_count > 1 else ""
    price = PriceRules.from_settings({
        "price.zones": zones, "price.table": table, "price.base": base, "price.crossing": crossing,
        "price.urgent": urgent, "price.evening": evening,
    })  # fmt: skip
    quote = price.quote(f"{75001 + pickup}", f"{75001 + dropoff}", now=NOON,
                        deadline=NOON + timedelta(minutes=minutes), note="", timezone=PARIS)  # fmt: skip
    zone_terms = [term for term in quote.terms if term.key in ("prices.term.crossing", "prices.term.table")]
    if table and {pickup, dropoff} == {0, ring_count - 1}:
        assert [term.cents for term in zone_terms] == [price.table[frozenset(("Z0", f"Z{ring_count - 1}"))]]
    else:
        assert len(zone_terms) == abs(pickup - dropoff)
        assert all(term.cents == price.crossing for term in zone_terms)
    assert quote.total == sum(term.cents for term in quote.terms)
    assert quote.terms[0].cents == price.base
