"""Numbers written exactly as Babel writes them, without asking Babel for each one.

`coopbot.money` shows cents, thousandths and percentages by CLDR, through
Babel. Babel parses the locale and the pattern and looks up the symbols on
every call (10–60 µs each); a member's share message writes up to eight
numbers, and after a 10,000-member close that was half of writing all the
messages. For each language (and currency) the shape of a number (what comes
before and after it, negative or not, the marks that group thousands and
separate decimals) is read once from Babel's own output, then checked
against Babel on probe values: a shape that does not give Babel's exact text
for every probe is not used, and Babel goes on writing those numbers itself.

Figure: writing a share message's text (`notices.share_lines`), 1,000
messages after a close, CPU time on a loaded machine: 750 µs each with Babel
writing every number, 316 µs with the shapes (all 10,000 share messages of
`bench/period_close.py`: the README's benchmark table).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: Values every shape must write exactly as Babel does before it is trusted (and their negatives).
PROBES = (0, 1, 7, 10, 99, 100, 101, 999, 1000, 1001, 1010, 1100, 12_345, 99_999, 100_000, 123_456,
          999_999, 1_000_000, 1_234_567, 10_000_000, 123_456_789, 1_000_000_000)  # fmt: skip

#: A number's writer: the value in the caller's unit (cents, thousandths, basis points) → text.
Writer = Callable[[int], str]


@dataclass(frozen=True)
class Shape:
    """How one language writes a number: around it (positive, negative), and its marks."""

    before: str
    after: str
    negative_before: str
    negative_after: str
    group: str
    decimal: str

    def write(self, negative: bool, whole: int, fraction: str) -> str:
        digits = f"{whole:,}".replace(",", self.group)
        body = f"{digits}{self.decimal}{fraction}" if fraction else digits
        if negative:
            return f"{self.negative_before}{body}{self.negative_after}"
        return f"{self.before}{body}{self.after}"


def _around(text: str, fraction: str) -> tuple[str, str, str, str] | None:
    """(before, after, group mark, decimal mark) of Babel's text for 1,234,567 then `fraction`."""
    first = text.find("1")
    at = text.find("234", first)
    if first < 0 or at < 0:
        return None
    group = text[first + 1 : at]
    rest = at + 3
    if not group or not text.startswith(group + "567", rest):
        return None
    end = rest + len(group) + 3
    decimal = ""
    if fraction:
        found = text.find(fraction, end)
        if found <= end:
            return None
        decimal, end = text[end:found], found + len(fraction)
    return text[:first], text[end:], group, decimal


def trusted(babel: Writer, fast: Callable[[Shape, int], str], sample: int, fraction: str) -> Writer:
    """`fast` with the shape read from `babel`'s own text if it matches `babel` on every probe, else `babel`.

    `sample` is the value Babel writes as 1,234,567 and then `fraction` after the decimal mark.
    """
    positive, negative = _around(babel(sample), fraction), _around(babel(-sample), fraction)
    if positive is None or negative is None or positive[2:] != negative[2:]:
        return babel
    shape = Shape(positive[0], positive[1], negative[0], negative[1], positive[2], positive[3])
    for value in (*PROBES, *(-p for p in PROBES), sample, -sample):
        if fast(shape, value) != babel(value):
            return babel
    return lambda value: fast(shape, value)
