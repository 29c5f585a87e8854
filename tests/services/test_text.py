"""Visible text: what a reader sees decides whether a text says anything."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from coopbot.services.text import is_blank, tidy, visible

INVISIBLE = [
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff",  # zero-width spaces, joiners, word joiner, BOM
    "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069",  # bidi marks, embeddings, isolates
    "\u00ad", "\u180e", "\U000e0041",  # soft hyphen, Mongolian vowel separator, a tag
    "\x00", "\x07", "\x1b", "\x7f", "\x85",  # controls
    "\u3164", "\u115f", "\uffa0", "\u2800", "\u034f", "\ufe0f",  # fillers, blank braille, joiners, selectors
]  # fmt: skip
SPACES = [" ", "\t", "\n", "\r", "\u00a0", "\u202f", "\u2003", "\u3000"]


def test_text_made_only_of_invisible_characters_and_spaces_shows_nothing() -> None:
    for char in INVISIBLE + SPACES:
        assert visible(f" {char}{char} ") == "", repr(char)
        assert is_blank(char), repr(char)
    assert visible("".join(INVISIBLE + SPACES)) == ""


@given(st.lists(st.sampled_from(INVISIBLE + SPACES), max_size=30))
def test_any_mix_of_them_shows_nothing(chars: list[str]) -> None:
    assert is_blank("".join(chars))


def test_what_shows_is_kept_spaces_single_and_composed() -> None:
    assert visible("  Pay\u200b day?\t\n\u00a0now ") == "Pay day? now"
    assert visible("e\u0301lodie") == "élodie" == unicodedata.normalize("NFC", "e\u0301lodie")
    assert visible("e\u200b\u0301") == "é", "a mark split off by an invisible character composes again"
    assert visible("سلام\u200f") == "سلام"
    assert not is_blank("·") and not is_blank("🚲") and not is_blank("0")


def test_tidy_keeps_joiners_and_marks_that_change_how_text_renders() -> None:
    family = "👨\u200d👩\u200d👧"
    assert tidy(f"  Family {family}\x00 day\n ") == f"Family {family} day"
    assert tidy("\u200f\u05e9\u05dc\u05d5\u05dd") == "\u200f\u05e9\u05dc\u05d5\u05dd"
    assert tidy("a\x1b[31mb") == "a[31mb"
