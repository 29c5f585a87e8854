"""Money, points and percentages as CLDR writes them (through Babel), and read back exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coopbot.money import MAX_CENTS, format_milli, format_money, format_pct, parse_amount

NBSP, NNBSP = "\u00a0", "\u202f"


@pytest.mark.parametrize(
    ("cents", "english", "french"),
    [
        (650, "€6.50", f"6,50{NBSP}€"),
        (0, "€0.00", f"0,00{NBSP}€"),
        (-500, "-€5.00", f"-5,00{NBSP}€"),
        (125_000, "€1,250.00", f"1{NNBSP}250,00{NBSP}€"),
        (100_000_000, "€1,000,000.00", f"1{NNBSP}000{NNBSP}000,00{NBSP}€"),
    ],
)
def test_euros(cents: int, english: str, french: str) -> None:
    assert format_money(cents, "EUR", "en") == english
    assert format_money(cents, "EUR", "fr") == french


def test_other_currencies_keep_their_cents_and_cldr_symbols() -> None:
    assert format_money(125_050, "USD", "en") == "$1,250.50"
    assert format_money(125_050, "usd", "fr") == f"1{NNBSP}250,50{NBSP}$US"
    assert format_money(650, "JPY", "en") == "¥6.50"  # coopbot counts hundredths of every currency
    assert format_money(650, "CHF", "en") == f"CHF{NBSP}6.50"  # CLDR spacing after a symbol in letters
    assert format_money(-650, "CHF", "en") == f"-CHF{NBSP}6.50"


@given(st.integers(min_value=1, max_value=MAX_CENTS), st.sampled_from(["en", "fr"]))
def test_what_is_shown_reads_back(cents: int, lang: str) -> None:
    assert parse_amount(format_money(cents, "EUR", lang)) == cents


@pytest.mark.parametrize(
    ("bp", "english", "french"),
    [(1500, "15%", f"15{NBSP}%"), (1234, "12.34%", f"12,34{NBSP}%"), (10_000, "100%", f"100{NBSP}%"),
     (1, "0.01%", f"0,01{NBSP}%"), (-250, "-2.5%", f"-2,5{NBSP}%")],
)  # fmt: skip
def test_percentages_keep_up_to_two_decimals(bp: int, english: str, french: str) -> None:
    assert format_pct(bp, "en") == english
    assert format_pct(bp, "fr") == french


def test_thousandths_are_cut_to_the_places_asked() -> None:
    assert [format_milli(m) for m in (42_500, 1000, 2333, 0, -1500)] == ["42.5", "1", "2.333", "0", "-1.5"]
    assert [format_milli(m, "fr") for m in (42_500, 1_250_000)] == ["42,5", f"1{NNBSP}250"]
    assert format_milli(1_250_000, "en") == "1,250"
    assert format_milli(2335, "en", places=2) == "2.33"  # cut, never rounded up
    assert format_milli(2999, "fr", places=1) == "2,9"
    assert format_milli(2999, "en", places=0) == "2"
