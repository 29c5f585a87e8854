"""French and English say the same things: same keys, same placeholders."""

from __future__ import annotations

from coopbot.i18n import LANGUAGES, catalogue, normalise_language, placeholders, t
from handlers import load_all
from handlers.registry import COMMANDS


def test_every_sentence_exists_in_both_languages() -> None:
    english, french = catalogue("en"), catalogue("fr")
    assert sorted(set(english) - set(french)) == [], "missing in French"
    assert sorted(set(french) - set(english)) == [], "missing in English"


def test_placeholders_match_across_languages() -> None:
    english, french = catalogue("en"), catalogue("fr")
    different = [key for key in english if placeholders(english[key]) != placeholders(french[key])]
    assert different == []


def test_every_command_has_help_and_usage_in_both_languages() -> None:
    load_all()
    for lang in LANGUAGES:
        for command in COMMANDS.values():
            assert command.help_key in catalogue(lang), f"{lang}: no help for /{command.name}"
            assert command.usage_key in catalogue(lang), f"{lang}: no usage for /{command.name}"


def test_platform_language_codes_are_understood() -> None:
    assert normalise_language("fr-FR") == "fr"
    assert normalise_language("en_GB") == "en"
    assert normalise_language("de") is None
    assert t("fr", "members.lang_set") != t("en", "members.lang_set")
