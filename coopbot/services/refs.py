"""One way to read a number a member types: the codes J-12, P-3, C-55, A-4 and member numbers #17.

Every such number ends in a database lookup, so it is read here once, the same way for every
command, before it gets there:
- ASCII digits only. Python's `\\d` and `str.isdigit()` also accept Arabic-Indic, full-width and
  superscript digits (`int("²")` even raises), so a code typed with them was read as another code
  or crashed; we refuse them and show the expected form.
- One spelling: `J-12`, `j12`, `#12` or `12`; never `J--12` or `J-0012`, which a member would not
  expect to mean J-12.
- Bounded: ids are PostgreSQL `integer`s, so a number above 2,147,483,647 can name nothing. It is
  answered "there is no job J-99999999999999999999", the number shown whole, instead of reaching
  the driver (SQLite overflows past 2^63, PostgreSQL refuses past 2^31).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coopbot.errors import NotFound, UsageError

#: The largest id any of our tables can hold (PostgreSQL's `integer`).
MAX_ID = 2**31 - 1
#: Past this length a mistyped reference is cut when echoed; a number alone is always shown whole.
ECHO = 40


@dataclass(frozen=True)
class Code:
    """How one kind of reference is written, and the sentences that refuse it."""

    letter: str
    bad_key: str
    missing_key: str
    #: The placeholder of `missing_key` that shows the code.
    missing_param: str = "ref"

    def show(self, number: str) -> str:
        return f"{self.letter}-{number}"


JOB = Code("J", "dispatch.bad_ref", "dispatch.no_such_job", "job")
POLL = Code("P", "polls.bad_ref", "polls.no_such_poll", "poll")
CONTRIBUTION = Code("C", "ledger.bad_ref", "ledger.no_such_contribution")
ANNOUNCEMENT = Code("A", "announce.bad_ref", "announce.no_such")

MEMBER_NUMBER = re.compile(r"(?:#|M-?)?([0-9]+)", re.IGNORECASE)


def echo(text: str) -> str:
    """What the member typed, to quote back: whole when it is short or a number, else cut."""
    text = text.strip()
    plain = text.lstrip("#")
    if len(text) <= ECHO or (plain.isascii() and plain.replace("-", "").isalnum()):
        return text
    return text[:ECHO] + "…"


def parse_code(text: str, kind: Code) -> int:
    """`J-12`, `j12`, `#12` or `12` → 12; refused with the expected form, or as naming nothing."""
    typed = text.strip()
    found = re.fullmatch(rf"(?:#|{kind.letter}-?)?([1-9][0-9]*)", typed, re.IGNORECASE)
    if found is None:
        raise UsageError(kind.bad_key, ref=echo(typed))
    digits = found.group(1)
    if _too_large(digits):
        raise NotFound(kind.missing_key, **{kind.missing_param: kind.show(digits)})
    return int(digits)


def member_number(text: str) -> int | None:
    """`#17`, `M-17` or `17` → 17; None when the text is not a number (a name, an account).

    A number written oddly (`#017`, `#١٧`) is refused with the expected form; one too large to be
    anyone is answered like an unknown member, shown whole.
    """
    typed = text.strip()
    found = MEMBER_NUMBER.fullmatch(typed)
    if found is None:
        if typed.lstrip("#").isdigit():
            raise UsageError("members.bad_number", ref=echo(typed))
        return None
    digits = found.group(1)
    if digits.startswith("0"):
        raise UsageError("members.bad_number", ref=echo(typed))
    if _too_large(digits):
        raise NotFound("members.no_such_member", ref=typed)
    return int(digits)


def small_number(text: str) -> int | None:
    """A count or an option number (`2`, `+3`): None unless plain ASCII digits.

    Past ten digits it is read as MAX_ID + 1, above every range we check, because Python
    refuses to read numbers longer than 4,300 digits and none of ours needs the exact value.
    """
    digits = text.strip().removeprefix("+")
    if not digits or not (digits.isascii() and digits.isdigit()):
        return None
    return MAX_ID + 1 if _too_large(digits) else int(digits)


def _too_large(digits: str) -> bool:
    """Checked on the length first, so no number is read whole before it is known to fit."""
    return len(digits) > len(str(MAX_ID)) or int(digits) > MAX_ID
