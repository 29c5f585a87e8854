"""French and English say the same things: same keys, same placeholders, same plural tables."""

from __future__ import annotations

import pytest
from babel import Locale

from coopbot.i18n import (
    LANGUAGES,
    Plural,
    catalogue,
    entries,
    normalise_language,
    parameters,
    placeholders,
    references,
    t,
)
from handlers.registry import Commands


def test_every_sentence_exists_in_both_languages() -> None:
    english, french = catalogue("en"), catalogue("fr")
    assert sorted(set(english) - set(french)) == [], "missing in French"
    assert sorted(set(french) - set(english)) == [], "missing in English"


def test_placeholders_match_across_languages() -> None:
    """What a caller passes is the same in both: placeholders, and the number a plural table counts."""
    english, french = entries("en"), entries("fr")
    different = [key for key in english if parameters(english[key]) != parameters(french[key])]
    assert different == []


def test_a_sentence_that_counts_counts_in_both_languages() -> None:
    english, french = entries("en"), entries("fr")
    one_sided = [key for key in english if isinstance(english[key], Plural) != isinstance(french[key], Plural)]
    assert one_sided == []
    counted = {key: entry.counts for key, entry in english.items() if isinstance(entry, Plural)}
    assert counted == {key: entry.counts for key, entry in french.items() if isinstance(entry, Plural)}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_plural_tables_have_exactly_the_cldr_categories_of_their_language(lang: str) -> None:
    """English: one, other. French: one (0 and 1), many (round millions), other."""
    wanted = {*Locale.parse(lang).plural_form.tags, "other"}
    wrong = {
        key: sorted(entry.forms)
        for key, entry in entries(lang).items()
        if isinstance(entry, Plural) and set(entry.forms) != wanted
    }
    assert wrong == {}, f"{lang} plural categories are {sorted(wanted)}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_form_of_a_plural_table_takes_the_same_placeholders(lang: str) -> None:
    uneven = {
        key: {category: sorted(placeholders(form)) for category, form in entry.forms.items()}
        for key, entry in entries(lang).items()
        if isinstance(entry, Plural) and len({frozenset(placeholders(form)) for form in entry.forms.values()}) > 1
    }
    assert uneven == {}
    counted_without_number = [
        key
        for key, entry in entries(lang).items()
        if isinstance(entry, Plural) and any("{count}" not in form for form in entry.forms.values())
    ]
    assert counted_without_number == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_counted_references_name_plural_tables(lang: str) -> None:
    """`{jobs:@counts.jobs}` must point at a plural table of the same language."""
    found = entries(lang)
    broken = [
        (key, target)
        for key, entry in found.items()
        for template in ([entry] if isinstance(entry, str) else entry.forms.values())
        for target in references(template)
        if not isinstance(found.get(target), Plural)
    ]
    assert broken == []


def test_every_command_has_help_and_usage_in_both_languages(declared_commands: Commands) -> None:
    for lang in LANGUAGES:
        for command in declared_commands:
            assert command.help_key in catalogue(lang), f"{lang}: no help for /{command.name}"
            assert command.usage_key in catalogue(lang), f"{lang}: no usage for /{command.name}"


def test_platform_language_codes_are_understood() -> None:
    assert normalise_language("fr-FR") == "fr"
    assert normalise_language("en_GB") == "en"
    assert normalise_language("de") is None
    assert t("fr", "members.lang_set") != t("en", "members.lang_set")
