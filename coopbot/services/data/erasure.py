"""Finding a departed member's name in the co-op's texts, however it was written.

A name reaches the database typed by many hands: "Zoé", "zoé", "ZOÉ", or
from an older client the decomposed "Zoe" + U+0301, and often only the given
or family name. So both the name and the text are NFC-normalised and
casefolded before they meet, and the name is found whole or by any of its
parts, always as a whole word: "Zoé" must not eat "Zoéline", nor "Ana"
"Banana". A word boundary is any character that is not a letter, digit,
underscore or combining mark of any script (a mark continues the word it
sits on, as in Devanagari vowel signs).

The parts of "Jean-Pierre de la Fontaine" are "Jean-Pierre", "Jean", "Pierre"
and "Fontaine": people shorten hyphenated given names and double family
names to either half, so each half names the person. Parts of fewer than
two letters and name particles ("de", "la", "van", ...) are skipped: alone
they identify no one, and erasing them would garble every French text.

Other members' names and accounts are read as whole words too, and left as
they are: when Zoé Martin leaves, a lone "Martin" goes but "Bob Martin" and
"@bob.martin:example.org" stay.

Matching runs in Python over every row: a co-op's texts are small, and no SQL
prefilter sees NFD or case variants the same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from sqlalchemy import JSON, String, delete, select, update
from sqlalchemy.orm import Session, selectinload

from coopbot import platforms
from coopbot.models import Base, Member
from coopbot.services.members.accounts import pseudonym

MIN_NEEDLE = 2
MIN_PART_LETTERS = 2
#: Rows read at a time while scanning a table.
BATCH = 500
#: Words that join a name's parts; casefolded.
PARTICLES = frozenset({
    "al", "and", "av", "bin", "bint", "da", "dal", "das", "de", "degli", "dei", "del", "della", "den", "der",
    "des", "di", "do", "dos", "du", "el", "et", "ibn", "la", "las", "le", "les", "lo", "los", "of", "te", "ten",
    "ter", "the", "und", "van", "vom", "von", "y", "zu", "zum", "zur",
})  # fmt: skip
HYPHENS = re.compile("[-\u2010\u2011]")
#: One apostrophe and one hyphen, however typed ("N’Diaye" is "N'Diaye"); one character each.
SAME = str.maketrans({"\u2019": "'", "\u02bc": "'", "\u2010": "-", "\u2011": "-"})
#: Tables `erase_member` handles itself.
SKIPPED = ("member", "identity")
#: Transport state keyed by a person (a DM room) is deleted, not rewritten.
DELETED = ("transport_state",)


def personal_strings(member: Member) -> list[str]:
    """The member's name and account ids as text (an id that is the member's number is not personal)."""
    found = {member.name}
    for identity in member.identities:
        found.add(identity.display_name)
        if platforms.find(identity.platform).personal_ids or not identity.external_id.isdigit():
            found.add(identity.external_id)
    cleaned = {text.strip() for text in found if len(text.strip()) >= MIN_NEEDLE}
    cleaned.discard(pseudonym(member.id))
    return sorted(cleaned)


def name_parts(name: str) -> list[str]:
    """Each word of the name, and each half of a hyphenated word, that names someone alone."""
    parts: set[str] = set()
    for word in name.split():
        for piece in (word, *HYPHENS.split(word)):
            part = piece.strip("\"'’.,;:!?()[]{}")
            letters = sum(ch.isalpha() for ch in part)
            if letters >= MIN_PART_LETTERS and fold(part) not in PARTICLES:
                parts.add(part)
    return sorted(parts)


def fold(text: str) -> str:
    """The form names and texts are compared in: composed accents, no case, plain apostrophes."""
    return unicodedata.normalize("NFC", text).casefold().translate(SAME)


def _key(text: str) -> str:
    return " ".join(fold(text).split())


@cache
def _word_char() -> str:
    """A regex class of what continues a word: `\\w` and every combining mark."""
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code))[0] == "M":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return "[\\w" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in ranges) + "]"


def _origins(text: str) -> list[int]:
    """For each character of `text.casefold()`, the index in `text` it came from (plus an end)."""
    origin = [index for index, ch in enumerate(text) for _ in ch.casefold()]
    origin.append(len(text))
    return origin


class NameMatcher:
    """Replaces `names` in a text by `replacement`; `kept` names are matched but left alone."""

    def __init__(self, names: Iterable[str], replacement: str, kept: Iterable[str] = ()) -> None:
        self.replacement = replacement
        self.names = {_key(name) for name in names if len(name.strip()) >= MIN_NEEDLE}
        kept_keys = {_key(name) for name in kept if len(name.strip()) >= MIN_NEEDLE} - self.names
        # A cheap substring test first: nearly every text mentions none of the names.
        self._words = {word for name in self.names for word in name.split()}
        word = _word_char()
        alternatives = sorted(self.names | kept_keys, key=len, reverse=True)
        body = "|".join(r"\s+".join(re.escape(w) for w in name.split()) for name in alternatives)
        self._pattern = re.compile(rf"(?<!{word})(?:{body})(?!{word})") if alternatives else None

    def sub(self, text: str) -> str:
        """`text` with the names replaced, NFC-normalised; unchanged (as stored) if none was there."""
        if self._pattern is None:
            return text
        composed = unicodedata.normalize("NFC", text)
        folded = composed.casefold().translate(SAME)
        if not any(word in folded for word in self._words):
            return text
        origin: list[int] | None = None
        pieces, last = [], 0
        for match in self._pattern.finditer(folded):
            if " ".join(match.group(0).split()) not in self.names:
                continue
            origin = origin or _origins(composed)
            first, end = match.start(), match.end()
            whole = (first == 0 or origin[first - 1] != origin[first]) and origin[end] != origin[end - 1]
            if not whole:
                continue  # the match cuts a character's folding in two ("ß" → "ss")
            pieces += [composed[last : origin[first]], self.replacement]
            last = origin[end]
        if not pieces:
            return text
        return "".join(pieces) + composed[last:]


def map_strings(fix: Callable[[str], str]) -> Callable[[Any], Any]:
    """Apply `fix` to every string in a value, JSON keys included."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return fix(value)
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, dict):
            return {walk(key): walk(item) for key, item in value.items()}
        return value

    return walk


def matcher_for(session: Session, member: Member, replacement: str) -> NameMatcher:
    """Everything that names `member`, to replace; everything that names anyone else, to keep.

    Call it before the member's name and accounts change. A customer's default address goes
    too, whole: for a person who orders, it is where they live.
    """
    others = select(Member).where(Member.id != member.id).options(selectinload(Member.identities))
    kept = [text for other in session.scalars(others) for text in personal_strings(other)]
    address = [member.address] if member.address else []
    return NameMatcher([*personal_strings(member), *name_parts(member.name), *address], replacement, kept)


def scrub_database(session: Session, matcher: NameMatcher) -> int:
    """Replace the matcher's names in every text and JSON column; return rows changed.

    Members and accounts are handled by `erase_member`; transport state that
    names the person (a DM room mapping) is deleted, since its key would.
    """
    walk = map_strings(matcher.sub)
    changed = 0
    for table in Base.metadata.sorted_tables:
        texts = [column for column in table.columns if isinstance(column.type, String | JSON)]
        if table.name in SKIPPED or not texts:
            continue
        keys = list(table.primary_key.columns)
        found: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        rows = session.execute(select(*keys, *texts).execution_options(yield_per=BATCH))
        for row in rows:
            fixed = {}
            for column, old in zip(texts, row[len(keys) :], strict=True):
                new = walk(old)
                if new != old:
                    fixed[column.name] = new
            if fixed:
                found.append((tuple(row[: len(keys)]), fixed))
        for key, fixed in found:
            where = [column == value for column, value in zip(keys, key, strict=True)]
            if table.name in DELETED:
                session.execute(delete(table).where(*where))
            else:
                session.execute(update(table).where(*where).values(fixed))
        changed += len(found)
    return changed
