"""What a member's text shows on screen, to decide whether it says anything.

A poll question made of zero-width spaces, a name made of a Hangul filler, an
option of bidi marks: each looks empty in every chat client yet is not empty
to `str.strip()`. `visible()` keeps what a reader can see, so such text can
be refused with a clear sentence, and two spellings that look the same
compare equal. Store what the member typed (minus surrounding spaces): an
emoji family or a right-to-left name needs its joiners and marks to render.
"""

from __future__ import annotations

import unicodedata

#: Formatting (Cf: zero-width spaces and joiners, bidi marks, the BOM, tags) and control (Cc) characters.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf"})

#: Characters drawn as nothing that are neither Cc nor Cf: Unicode's default-ignorable
#: fillers and selectors (Default_Ignorable_Code_Point), and the blank braille cell.
BLANK_RANGES = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian variation selectors and vowel separator
    (0x2800, 0x2800),  # braille pattern blank
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # half-width Hangul filler
    (0xE0100, 0xE01EF),  # variation selectors supplement
)


def _control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"


def _blank(char: str) -> bool:
    code = ord(char)
    return unicodedata.category(char) in INVISIBLE_CATEGORIES or any(low <= code <= high for low, high in BLANK_RANGES)


def visible(text: str) -> str:
    """`text` as a reader sees it: invisible characters dropped, spaces single, NFC.

    Whitespace (tabs and new lines included, though they are Cc) separates
    words, so it becomes one space rather than vanishing; an empty result
    means the text shows nothing.
    """
    kept = "".join(" " if char.isspace() else char for char in text if char.isspace() or not _blank(char))
    return " ".join(unicodedata.normalize("NFC", kept).split())


def tidy(text: str) -> str:
    """What to store of a short text a member typed: control characters dropped
    (PostgreSQL refuses NUL outright), spaces single, NFC; formatting characters
    such as emoji joiners and bidi marks kept, since they change how it renders."""
    kept = "".join(" " if char.isspace() else char for char in text if char.isspace() or not _control(char))
    return " ".join(unicodedata.normalize("NFC", kept).split())


def typed(text: str, limit: int) -> str:
    """A member's free text (an address, a note, a reason) as stored: tidy, at most `limit`
    characters, and "" when it shows nothing, so invisible text is never taken for an answer."""
    cleaned = tidy(text)[:limit].strip()
    return cleaned if visible(cleaned) else ""


def is_blank(text: str) -> bool:
    """True when `text` shows nothing at all."""
    return not visible(text)
