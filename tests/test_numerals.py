"""Numbers written in Babel's shape without Babel: the same text as Babel, for any value,
and Babel asked only while a shape is read, not for every number."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import pytest
from babel import numbers as babel_numbers
from hypothesis import given
from hypothesis import strategies as st

from coopbot import money
from coopbot.numerals import Shape, trusted

LANGUAGES = st.sampled_from(["en", "fr", "de", "hi", "ar"])
VALUES = st.integers(min_value=-(10**12), max_value=10**12) | st.integers(min_value=-3000, max_value=3000)


@given(cents=VALUES, lang=LANGUAGES, currency=st.sampled_from(["EUR", "USD", "CHF", "GBP", "JPY", "INR"]))
def test_money_is_written_as_babel_writes_it(cents: int, lang: str, currency: str) -> None:
    text = babel_numbers.format_currency(Decimal(cents) / 100, currency, locale=lang, currency_digits=False)
    assert money.format_money(cents, currency, lang) == money.LETTER_THEN_DIGIT.sub(money.NBSP, text)


@given(milli=VALUES, lang=LANGUAGES, places=st.integers(min_value=0, max_value=4))
def test_thousandths_are_written_as_babel_writes_them(milli: int, lang: str, places: int) -> None:
    value = (Decimal(milli) / 1000).quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
    pattern = "#,##0." + "#" * places if places > 0 else "#,##0"
    assert money.format_milli(milli, lang, places) == babel_numbers.format_decimal(value, format=pattern, locale=lang)


@given(bp=VALUES, lang=LANGUAGES)
def test_percentages_are_written_as_babel_writes_them(bp: int, lang: str) -> None:
    expected = babel_numbers.format_percent(Decimal(bp) / 10000, locale=lang, decimal_quantization=False)
    assert money.format_pct(bp, lang) == expected


def test_babel_is_asked_once_per_shape_not_once_per_number(monkeypatch: pytest.MonkeyPatch) -> None:
    money.format_money(1, "EUR", "fr")  # the shape is read and checked here
    asked: list[object] = []
    real = babel_numbers.format_currency

    def counting(*args: object, **kwargs: object) -> str:
        asked.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(money, "format_currency", counting)
    written = [money.format_money(cents, "EUR", "fr") for cents in range(1000, 1100)]
    assert written[0] == "10,00\u00a0€" and asked == []


def test_a_shape_that_does_not_give_babels_text_is_not_used() -> None:
    def babel(value: int) -> str:
        return f"<{value:,}>" if value % 7 else f"<{value}>"  # no shape writes this

    def fast(shape: Shape, value: int) -> str:
        return shape.write(value < 0, abs(value), "")

    writer = trusted(babel, fast, 1234567, "")
    assert writer is babel
