"""Amounts and quantities as people type them and read them: exact, in their language.

Money is integer cents everywhere inside coopbot. This module is the border:
it parses what a coordinator types ("1250.00", "1 250,50 €", "89,9") with
Decimal, never float, and refuses anything that is not a plausible positive
amount with one sentence; it shows cents the way each language writes
money ("€1,250.00" in English, "1 250,00 €" in French).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from coopbot.errors import UsageError
from coopbot.services.refs import echo
from coopbot.services.shares import MILLI, round_div

#: Anything above this is a typo, not a courier co-op's bookkeeping (10 million).
MAX_CENTS = 1_000_000_000
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$", "CHF": "CHF"}
NBSP = "\u00a0"
NNBSP = "\u202f"
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


def _group(digits: str, separator: str) -> str:
    head = len(digits) % 3 or 3
    groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return separator.join(groups)


def format_money(cents: int, currency: str = "EUR", lang: str = "en") -> str:
    """Cents as a member reads them: '€1,250.00', '-€5.00', '1 250,00 €'."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    symbol = SYMBOLS.get(currency.upper(), currency.upper())
    if lang == "fr":
        return f"{sign}{_group(str(whole), NNBSP)},{part:02d}{NBSP}{symbol}"
    if len(symbol) > 1 and symbol.isalpha():
        return f"{sign}{symbol}{NBSP}{_group(str(whole), ',')}.{part:02d}"
    return f"{sign}{symbol}{_group(str(whole), ',')}.{part:02d}"


def plain_amount(cents: int) -> str:
    """For accountants' files: '1250.00', '-5.00' (dot, two places, no grouping)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def format_milli(milli: int, lang: str = "en", places: int = 3) -> str:
    """Thousandths as a short number: 42500 → '42.5' ('42,5' in French)."""
    sign = "-" if milli < 0 else ""
    whole, part = divmod(abs(milli), 1000)
    fraction = f"{part:03d}"[:places].rstrip("0")
    text = f"{whole}.{fraction}" if fraction else str(whole)
    return sign + (text.replace(".", ",") if lang == "fr" else text)


def plain_milli(milli: int) -> str:
    """For files: '42.500' (three places, dot)."""
    sign = "-" if milli < 0 else ""
    whole, part = divmod(abs(milli), 1000)
    return f"{sign}{whole}.{part:03d}"


def format_pct(bp: int, lang: str = "en") -> str:
    """Basis points as a percentage: 1500 → '15 %' / '15 %', 1234 → '12.34%' / '12,34 %'."""
    whole, part = divmod(abs(bp), 100)
    text = f"{whole}.{part:02d}".rstrip("0").rstrip(".")
    sign = "-" if bp < 0 else ""
    if lang == "fr":
        return f"{sign}{text.replace('.', ',')}{NNBSP}%"
    return f"{sign}{text}%"


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
