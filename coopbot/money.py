"""Amounts and quantities as people type them and read them: exact, in their language.

Money is integer cents everywhere inside coopbot. This module is the border:
it parses what a coordinator types ("1250.00", "1 250,50 €", "89,9") with
Decimal, never float, and refuses anything that is not a plausible positive
amount with one sentence; it shows cents, points and percentages the way each
language writes them, by CLDR through Babel ("€1,250.00" in English,
"1 250,00 €" in French, with a narrow no-break space between thousands).
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import format_currency, format_decimal, format_percent

from coopbot.errors import UsageError
from coopbot.numerals import Shape, Writer, trusted
from coopbot.services.money.shares import MILLI, round_div
from coopbot.services.refs import echo

#: Anything above this is a typo, not a courier co-op's bookkeeping (10 million).
MAX_CENTS = 1_000_000_000
NBSP = "\u00a0"
NNBSP = "\u202f"
LETTER_THEN_DIGIT = re.compile(r"(?<=[^\W\d_])(?=[0-9])")
#: Marks that group thousands. Not `_`: a member writes 1 000 or 1000, and Python's own
#: reading of `1_000` is not a reason to guess.
SPACES = re.compile(r"[\s\u00a0\u202f'’]")
CURRENCY = re.compile(r"^(?:[€$£¥]|[A-Za-z]{3})|(?:[€$£¥]|[A-Za-z]{3})$")
#: ASCII digits only: `\d` and Decimal also read Arabic-Indic and full-width digits.
DIGITS_AND_MARKS = re.compile(r"[0-9][0-9.,]*")
GROUPED = re.compile(r"^[0-9]{1,3}([.,][0-9]{3})+$")


def parse_amount(text: str, *, zero: bool = False) -> int:
    """Every amount a member types, read one way: income, expenses, prices, money settings.

    '1250.00', '1 250,5', '€89.90', '1,250.00' → cents. Refused with one sentence: negative,
    zero (unless `zero`), more than two decimals, more than 10 million, `1,250` (thousands or
    decimals?), underscores and digits other than 0-9.
    """
    raw = text.strip()
    shown = echo(raw)
    cleaned = CURRENCY.sub("", SPACES.sub("", raw))
    if cleaned.startswith("-"):
        raise UsageError("ledger.amount_negative", amount=shown)
    cleaned = cleaned.removeprefix("+")
    if DIGITS_AND_MARKS.fullmatch(cleaned) is None:
        raise UsageError("ledger.amount_bad", amount=shown)
    value = _decimal(cleaned, shown)
    if value < 0 or (value == 0 and not zero):
        raise UsageError("ledger.amount_zero")
    cents = value * 100
    if cents != cents.to_integral_value():
        raise UsageError("ledger.amount_cents", amount=shown)
    if cents > MAX_CENTS:
        raise UsageError("ledger.amount_absurd", amount=shown)
    return int(cents)


def _decimal(cleaned: str, shown: str) -> Decimal:
    """Decide which mark is the decimal one: the last, unless it groups thousands."""
    marks = [ch for ch in cleaned if ch in ".,"]
    if not marks:
        number = cleaned
    elif len(set(marks)) == 2:
        decimal_mark = cleaned[max(cleaned.rfind("."), cleaned.rfind(","))]
        whole, _, fraction = cleaned.rpartition(decimal_mark)
        if not GROUPED.match(whole) and not whole.isdigit():
            raise UsageError("ledger.amount_bad", amount=shown)
        number = re.sub(r"[.,]", "", whole) + "." + fraction
    elif len(marks) > 1:
        if not GROUPED.match(cleaned):
            raise UsageError("ledger.amount_bad", amount=shown)
        number = re.sub(r"[.,]", "", cleaned)
    elif GROUPED.match(cleaned):
        raise UsageError("ledger.amount_ambiguous", amount=shown, grouped=re.sub(r"[.,]", "", cleaned))
    else:
        number = cleaned.replace(",", ".")
    try:
        return Decimal(number)
    except InvalidOperation as exc:
        raise UsageError("ledger.amount_bad", amount=shown) from exc


def format_money(cents: int, currency: str = "EUR", lang: str = "en") -> str:
    """Cents as a member reads them, by CLDR (Babel): '€1,250.00', '-€5.00', '1 250,00 €'.

    Always two places (cents are cents whatever the currency); in French the thousands
    are grouped with a narrow no-break space and a no-break space comes before the symbol.
    Written by `coopbot.numerals` in Babel's shape, checked against Babel.
    """
    return _money_writer(currency.upper(), lang)(cents)


@lru_cache(maxsize=64)
def _money_writer(currency: str, lang: str) -> Writer:
    def babel(cents: int) -> str:
        text = format_currency(Decimal(cents) / 100, currency, locale=lang, currency_digits=False)
        # CLDR puts a space between a symbol made of letters and the digits ("CHF 5.00");
        # Babel does not apply that rule.
        return LETTER_THEN_DIGIT.sub(NBSP, text)

    def fast(shape: Shape, cents: int) -> str:
        whole, rest = divmod(abs(cents), 100)
        return shape.write(cents < 0, whole, f"{rest:02d}")

    return trusted(babel, fast, 123_456_789, "89")


def plain_amount(cents: int) -> str:
    """For accountants' files: '1250.00', '-5.00' (dot, two places, no grouping)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def format_milli(milli: int, lang: str = "en", places: int = 3) -> str:
    """Thousandths as a short number, by CLDR (Babel): 42500 → '42.5' ('42,5' in French),
    1250000 → '1,250' ('1 250'); at most `places` decimals, cut (never rounded up).
    Written by `coopbot.numerals` in Babel's shape, checked against Babel."""
    return _milli_writer(lang, places)(milli)


@lru_cache(maxsize=64)
def _milli_writer(lang: str, places: int) -> Writer:
    pattern = "#,##0." + "#" * places if places > 0 else "#,##0"

    def babel(milli: int) -> str:
        value = (Decimal(milli) / 1000).quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
        return format_decimal(value, format=pattern, locale=lang)

    def fast(shape: Shape, milli: int) -> str:
        whole, rest = divmod(abs(milli), 1000)
        digits = f"{rest:03d}"[:places].rstrip("0")
        if milli < 0 and not whole and not digits:
            return babel(milli)  # a negative cut to zero: Babel's "-0", not worth a shape of its own
        return shape.write(milli < 0, whole, digits)

    fraction = "125"[:places]
    return trusted(babel, fast, 1_234_567_000 + int(fraction.ljust(3, "0") if fraction else 0), fraction)


def plain_milli(milli: int) -> str:
    """For files: '42.500' (three places, dot)."""
    sign = "-" if milli < 0 else ""
    whole, part = divmod(abs(milli), 1000)
    return f"{sign}{whole}.{part:03d}"


def format_pct(bp: int, lang: str = "en") -> str:
    """Basis points as a percentage, by CLDR (Babel): 1500 → '15%' / '15 %', 1234 → '12.34%' /
    '12,34 %' (French: a no-break space before %). Written by `coopbot.numerals` in Babel's
    shape, checked against Babel."""
    return _pct_writer(lang)(bp)


@lru_cache(maxsize=16)
def _pct_writer(lang: str) -> Writer:
    def babel(bp: int) -> str:
        return format_percent(Decimal(bp) / 10000, locale=lang, decimal_quantization=False)

    def fast(shape: Shape, bp: int) -> str:
        whole, rest = divmod(abs(bp), 100)
        return shape.write(bp < 0, whole, f"{rest:02d}".rstrip("0"))

    return trusted(babel, fast, 123_456_789, "89")


# --- quantities of work -------------------------------------------------------------

QUANTITY = re.compile(
    r"^(?P<sign>[+-]?)(?:(?P<h>[0-9]+(?:[.,][0-9]+)?)h(?:(?P<hm>[0-9]{1,2})(?:m|min)?)?"
    r"|(?P<m>[0-9]+)(?:m|min)|(?P<n>[0-9]+(?:[.,][0-9]+)?))$"
)


def parse_quantity(text: str) -> tuple[int, str] | None:
    """'2h', '1.5h', '1,5h', '1h30', '45min' (hours) or '1', '2.5' (items) → (thousandths, unit)."""
    match = QUANTITY.match(text.strip().lower())
    if match is None:
        return None
    sign = -1 if match["sign"] == "-" else 1
    if match["m"] is not None:
        return sign * round_div(_capped(match["m"]) * MILLI, 60), "hour"
    if match["h"] is not None:
        hours = _thousandths(match["h"])
        minutes = _capped(match["hm"] or "0")
        if hours is None or minutes >= 60 or (minutes and "." in match["h"].replace(",", ".")):
            return None
        return sign * (hours + round_div(minutes * MILLI, 60)), "hour"
    items = _thousandths(match["n"])
    return (sign * items, "item") if items is not None else None


def _thousandths(number: str) -> int | None:
    whole, _, fraction = number.replace(",", ".").partition(".")
    if len(fraction) > 3:
        return None
    return _capped(whole) * MILLI + int((fraction + "000")[:3])


def _capped(digits: str) -> int:
    """Digits as a number, any length: past nine digits every limit is passed anyway, and
    Python refuses to read more than 4,300."""
    return int(digits) if len(digits) <= 9 else 10**9
