"""The split: every part fits the platform's limit, no word that fits is cut, sentence ends
are preferred, and no visible character is ever cut in two."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from coopbot.splitting import Measure, _breakable, split_text, utf8_bytes, utf16_units

WORD = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=12)
BREAKS = [" ", "  ", "\n", "\n\n", ". ", "! ", " ? ", ".\n"]


@st.composite
def texts(draw: st.DrawFn, gaps_from: list[str] = [*BREAKS, "\u00a0"]) -> str:  # noqa: B006
    words = draw(st.lists(WORD, min_size=1, max_size=80))
    gaps = draw(st.lists(st.sampled_from(gaps_from), min_size=len(words), max_size=len(words)))
    return "".join(word + gap for word, gap in zip(words, gaps, strict=True))


def visible(text: str) -> str:
    return "".join(ch for ch in text if not _breakable(ch))


def words(text: str) -> list[str]:
    out, current = [], ""
    for ch in text:
        if _breakable(ch):
            if current:
                out.append(current)
            current = ""
        else:
            current += ch
    return out + ([current] if current else [])


@settings(max_examples=300, deadline=None)
@given(texts(), st.integers(min_value=20, max_value=200), st.sampled_from([utf16_units, utf8_bytes]))
def test_a_split_fits_the_limit_and_keeps_every_character_in_order(text: str, limit: int, measure: Measure) -> None:
    parts = split_text(text, limit, measure)
    assert all(0 < measure(part) <= limit for part in parts)
    assert visible("".join(parts)) == visible(text)


@settings(max_examples=300, deadline=None)
@given(texts(BREAKS), st.integers(min_value=40, max_value=200))
def test_a_word_that_fits_is_never_cut(text: str, limit: int) -> None:
    """Words are at most 12 characters (24 UTF-16 units), so each fits in any part."""
    parts = split_text(text, limit)
    assert [w for part in parts for w in words(part)] == words(text)


def test_a_split_prefers_the_end_of_a_sentence() -> None:
    text = "The van is back at the shop. Keys are in the blue box by the door, ask Zoe if it is locked."
    parts = split_text(text, 60)
    assert parts[0] == "The van is back at the shop."
    assert parts[1].startswith("Keys are in the blue box")
    early = split_text("Hi. " + "the keys are in the blue box by the door " * 3, 60)
    assert early[0].startswith("Hi. the keys"), "a tiny first part is worse than a cut between words"


def test_french_punctuation_and_no_break_spaces_stay_with_their_words() -> None:
    text = "Rendez-vous à 19\u00a0h au local\u202f! " * 40
    parts = split_text(text, 100)
    assert all(part.endswith("\u202f!") for part in parts)
    assert all("19\u00a0h" in part for part in parts)


def test_a_word_longer_than_a_message_is_cut_between_characters_not_inside_one() -> None:
    accents = "e\u0301" * 300  # é written as e + combining accent
    flags = "🇫🇷🇧🇪" * 100
    family = "👩\u200d👩\u200d👧" * 100
    for text in (accents, flags, family):
        parts = split_text(text, 97)
        assert "".join(parts) == text
        for part in parts:
            assert utf16_units(part) <= 97
            assert unicodedata.category(part[0]) != "Mn" and part[0] != "\u200d" and part[-1] != "\u200d"
        if text is flags:
            assert all(len(part) % 2 == 0 for part in parts), "a flag is two regional letters"
