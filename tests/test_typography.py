"""French reads as French typography wants it, in every sentence and every plural form.

The convention of coopbot/locales/fr:
- a narrow no-break space (U+202F) before ; ! ?
- a no-break space (U+00A0) before : and %, after « and before »
- the typographic apostrophe ’ (U+2019), never the ASCII ' (code between `backticks` aside)
- no space at all before , . ) and none where a colon is part of something typed (12:30, HH:MM)
"""

from __future__ import annotations

import re

import pytest

from coopbot.i18n import Plural, entries

NBSP, NNBSP = "\u00a0", "\u202f"
CODE = re.compile(r"`[^`]*`")
RULES = {
    "ASCII apostrophe": re.compile(r"'"),
    "space before ; ! ? that is not U+202F": re.compile(r"[ \u00a0\t][;!?]"),
    "no space before ; ! ?": re.compile(r"[\w}\])»%][;!?]"),
    "space before : or % that is not U+00A0": re.compile(r"[ \u202f\t][:%]"),
    "no space before : (a colon ending a phrase)": re.compile(r"[\w}\])»%]:(?=\s|$)"),
    "no space before % after a number": re.compile(r"[0-9}]%"),
    "« without U+00A0 after it": re.compile(r"«(?!\u00a0)"),
    "» without U+00A0 before it": re.compile(r"(?<!\u00a0)»"),
    "space before , or .": re.compile(r"[ \u00a0\u202f][,.](?!\.)"),
}


def french_texts() -> list[tuple[str, str]]:
    found = []
    for key, entry in sorted(entries("fr").items()):
        forms = [entry] if isinstance(entry, str) else list(entry.forms.values())
        found += [(key, CODE.sub("`…`", form)) for form in forms]
    return found


@pytest.mark.parametrize("rule", sorted(RULES))
def test_french_typography(rule: str) -> None:
    broken = [(key, text) for key, text in french_texts() if RULES[rule].search(text)]
    assert broken == [], rule


def test_the_rules_catch_what_they_are_for() -> None:
    def faults(text: str) -> list[str]:
        return sorted(rule for rule, pattern in RULES.items() if pattern.search(text))

    assert faults("C'est fait : merci !") == sorted(
        ["ASCII apostrophe", "space before : or % that is not U+00A0", "space before ; ! ? that is not U+202F"]
    )
    assert faults("Vraiment? Oui: 20% « fait »") == sorted(
        [
            "no space before ; ! ?",
            "no space before : (a colon ending a phrase)",
            "no space before % after a number",
            "« without U+00A0 after it",
            "» without U+00A0 before it",
        ]
    )
    good = f"C’est fait{NBSP}: merci{NNBSP}! Avant 12:30, tapez /shift end HH:MM{NNBSP}; 20{NBSP}% «{NBSP}oui{NBSP}»."
    assert faults(good) == []


def test_plural_forms_are_checked_too() -> None:
    assert any(isinstance(entry, Plural) for entry in entries("fr").values())
    assert len(french_texts()) > len(entries("fr"))
