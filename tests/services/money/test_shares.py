"""Sharing the surplus, to the cent, for every co-op hypothesis can think of."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coopbot.errors import UsageError
from coopbot.money import format_money, parse_amount, plain_amount
from coopbot.services.money.shares import (
    Terms,
    base_pay,
    largest_remainder,
    points_for,
    round_div,
    settle,
    split_buckets,
)

cents = st.integers(min_value=0, max_value=10**11)
point_sets = st.dictionaries(
    st.integers(min_value=1, max_value=10**6), st.integers(min_value=-5_000, max_value=10**9), max_size=60
)


@st.composite
def terms(draw: st.DrawFn) -> Terms:
    reserve = draw(st.integers(min_value=0, max_value=10_000))
    fund = draw(st.integers(min_value=0, max_value=10_000 - reserve))
    return Terms(
        legal_reserve_bp=reserve,
        development_fund_bp=fund,
        dividend_bp=10_000 - reserve - fund,
        equity_threshold_cents=draw(st.integers(min_value=0, max_value=10**9)),
        base_pay_per_hour_cents=draw(st.integers(min_value=0, max_value=10**5)),
        base_pay_per_delivery_cents=draw(st.integers(min_value=0, max_value=10**4)),
    )


@given(total=cents, weights=point_sets)
def test_parts_add_up_to_the_whole_and_each_is_within_a_cent(total: int, weights: dict[int, int]) -> None:
    parts = largest_remainder(total, weights)
    positive = {key: weight for key, weight in weights.items() if weight > 0}
    whole = sum(positive.values())
    assert set(parts) == set(weights)
    if whole == 0:
        assert all(part == 0 for part in parts.values())
        return
    assert sum(parts.values()) == total
    for key, part in parts.items():
        if key not in positive:
            assert part == 0
        else:
            # |part - total*w/W| < 1 cent, in integers
            assert abs(part * whole - total * positive[key]) < whole


@given(total=st.integers(min_value=0, max_value=10**6), count=st.integers(min_value=1, max_value=40))
def test_equal_points_give_the_spare_cents_to_the_lowest_member_numbers(total: int, count: int) -> None:
    ids = list(range(100, 100 + count))
    parts = largest_remainder(total, dict.fromkeys(reversed(ids), 7))
    base, spare = divmod(total, count)
    assert [parts[i] for i in ids] == [base + 1] * spare + [base] * (count - spare)


@given(surplus=cents, rules=terms())
def test_buckets_add_up_to_the_surplus_at_the_governed_percentages(surplus: int, rules: Terms) -> None:
    buckets = split_buckets(surplus, rules)
    assert buckets.total == surplus
    for part, bp in (
        (buckets.legal_reserve, rules.legal_reserve_bp),
        (buckets.development_fund, rules.development_fund_bp),
        (buckets.dividend, rules.dividend_bp),
    ):
        assert abs(part * 10_000 - surplus * bp) < 10_000


@given(income=cents, expenses=cents, paid=st.integers(min_value=0, max_value=10**9), points=point_sets, rules=terms())
def test_a_close_shares_exactly_the_dividend_pool(
    income: int, expenses: int, paid: int, points: dict[int, int], rules: Terms
) -> None:
    outcome = settle(income, expenses, paid, points, rules)
    assert outcome.net == income - expenses - paid
    assert outcome.surplus == max(0, outcome.net - rules.equity_threshold_cents)
    assert outcome.buckets.total == outcome.surplus
    assert set(outcome.dividends) == set(points)
    assert all(amount >= 0 for amount in outcome.dividends.values())
    if outcome.total_points > 0:
        assert outcome.distributed == outcome.buckets.dividend
        assert outcome.kept == 0
    else:
        assert outcome.distributed == 0
    if outcome.net < 0:
        assert outcome.nothing_because == "deficit" and outcome.distributed == 0


def test_a_deficit_shares_nothing_and_says_why() -> None:
    outcome = settle(100_00, 150_00, 0, {1: 5000, 2: 3000}, Terms())
    assert (outcome.net, outcome.surplus, outcome.distributed) == (-50_00, 0, 0)
    assert outcome.nothing_because == "deficit"


def test_no_points_keeps_the_pool_with_the_coop() -> None:
    outcome = settle(1000_00, 0, 0, {1: 0, 2: -500}, Terms())
    assert outcome.nothing_because == "no_points"
    assert outcome.buckets.dividend == 600_00 and outcome.kept == 600_00
    assert outcome.dividends == {1: 0, 2: 0}


def test_the_threshold_is_kept_before_any_surplus() -> None:
    outcome = settle(1000_00, 200_00, 0, {1: 1000}, Terms(equity_threshold_cents=800_00))
    assert outcome.surplus == 0 and outcome.nothing_because == "below_threshold"
    outcome = settle(1000_00, 100_00, 0, {1: 1000}, Terms(equity_threshold_cents=800_00))
    assert outcome.surplus == 100_00 and outcome.dividends == {1: 60_00}


@given(numerator=st.integers(min_value=-(10**15), max_value=10**15), denominator=st.integers(1, 10**6))
def test_rounding_is_half_away_from_zero_never_bankers(numerator: int, denominator: int) -> None:
    exact = Decimal(numerator) / Decimal(denominator)
    expected = int(abs(exact).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * (1 if numerator >= 0 else -1)
    assert round_div(numerator, denominator) == expected


def test_points_and_base_pay_in_integers() -> None:
    assert points_for(1500, 1250) == 1875  # 1.5 h at 1.25 points an hour
    assert points_for(333, 1000) == 333
    rules = Terms(base_pay_per_hour_cents=12_50, base_pay_per_delivery_cents=3_00)
    assert base_pay(6500, 4000, rules) == 6 * 12_50 + 6_25 + 4 * 3_00


@given(amount=st.integers(min_value=1, max_value=1_000_000_000), lang=st.sampled_from(["en", "fr"]))
def test_what_the_bot_shows_it_reads_back_to_the_cent(amount: int, lang: str) -> None:
    assert parse_amount(plain_amount(amount)) == amount
    assert parse_amount(format_money(amount, "EUR", lang)) == amount


@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("1250.00", 125000),
        ("1250,00", 125000),
        ("1 250,50 €", 125050),
        ("€89.90", 8990),
        ("89,9", 8990),
        ("1,250.00", 125000),
        ("1.250,00", 125000),
        ("0.10", 10),
        ("12 EUR", 1200),
    ],
)
def test_amounts_are_parsed_exactly(typed: str, cents: int) -> None:
    assert parse_amount(typed) == cents


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("-5", "ledger.amount_negative"),
        ("0", "ledger.amount_zero"),
        ("0,00", "ledger.amount_zero"),
        ("12.345", "ledger.amount_ambiguous"),
        ("1,250", "ledger.amount_ambiguous"),
        ("1.2345", "ledger.amount_cents"),
        ("abc", "ledger.amount_bad"),
        ("1e5", "ledger.amount_bad"),
        ("nan", "ledger.amount_bad"),
        ("99999999.99", "ledger.amount_absurd"),
    ],
)
def test_bad_amounts_are_refused_with_a_reason(typed: str, key: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_amount(typed)
    assert refused.value.key == key
