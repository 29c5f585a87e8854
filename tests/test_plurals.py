"""Every sentence that counts uses CLDR's form for the number, in English and in French.

English says "0 points", "1 point", "2 points"; French says "0 point", "1 point", "2 points"
and "1 000 000 de points" (CLDR: `one` is 0 and 1 in French, `many` the round millions).
Numbers are written by Babel: "1,250" in English, "1 250" (narrow no-break space) in French.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from babel import Locale
from babel.numbers import format_decimal

from coopbot.i18n import LANGUAGES, Entry, Plural, catalogue, entries, parameters, references, render, t

NUMBERS = (0, 1, 2, 21, 1000, 1250, 1_000_000)
NNBSP = "\u202f"


def category(lang: str, number: int | Decimal) -> str:
    return str(Locale.parse(lang).plural_form(number))


def others(entry: Entry, counted: str) -> dict[str, Any]:
    """A stand-in for every other parameter: text that cannot be read as a number."""
    return {name: f"<{name}>" for name in parameters(entry) if name != counted}


def plural_keys(lang: str) -> list[str]:
    return sorted(key for key, entry in entries(lang).items() if isinstance(entry, Plural))


def counting_keys(lang: str) -> list[tuple[str, str, str]]:
    """(key, counted parameter, plural table) for every `{name:@table}` in a plain sentence."""
    found = []
    for key, entry in sorted(entries(lang).items()):
        if isinstance(entry, str):
            for target in sorted(references(entry)):
                for name in sorted(_referring(entry, target)):
                    found.append((key, name, target))
    return found


def _referring(template: str, target: str) -> set[str]:
    from string import Formatter

    return {name for _, name, spec, _ in Formatter().parse(template) if name and spec == "@" + target}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("number", NUMBERS)
def test_every_plural_table_uses_the_cldr_form_of_the_number(lang: str, number: int) -> None:
    wrong = []
    for key in plural_keys(lang):
        entry = entries(lang)[key]
        assert isinstance(entry, Plural)
        params = others(entry, entry.counts)
        said = t(lang, key, **params, **{entry.counts: number})
        form = entry.form(category(lang, number))
        expected = render(lang, form, **params, count=format_decimal(number, locale=lang))
        if said != expected:
            wrong.append((key, said, expected))
        # a caller that formatted the number itself gets the same sentence
        if t(lang, key, **params, **{entry.counts: format_decimal(number, locale=lang)}) != said:
            wrong.append((key, "formatted by the caller", said))
    assert wrong == []


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("number", NUMBERS)
def test_every_counted_placeholder_uses_the_cldr_form_of_the_number(lang: str, number: int) -> None:
    wrong = []
    for key, name, target in counting_keys(lang):
        entry = entries(lang)[key]
        table = entries(lang)[target]
        assert isinstance(table, Plural)
        said = t(lang, key, **others(entry, name), **{name: number})
        expected = render(lang, table.form(category(lang, number)), count=format_decimal(number, locale=lang))
        if expected not in said:
            wrong.append((key, name, said, expected))
    assert wrong == []


def test_there_is_something_to_walk() -> None:
    for lang in LANGUAGES:
        assert len(plural_keys(lang)) >= 30 and len(counting_keys(lang)) >= 25


@pytest.mark.parametrize("number", [0, 1])
def test_french_zero_and_one_take_the_singular_english_zero_does_not(number: int) -> None:
    for key in plural_keys("fr"):
        entry = entries("fr")[key]
        assert isinstance(entry, Plural)
        params = others(entry, entry.counts)
        one = render("fr", entry.forms["one"], **params, count=str(number))
        assert t("fr", key, **params, **{entry.counts: number}) == one, key
    for key in plural_keys("en"):
        entry = entries("en")[key]
        assert isinstance(entry, Plural)
        params = others(entry, entry.counts)
        form = entry.forms["one" if number == 1 else "other"]
        assert t("en", key, **params, **{entry.counts: number}) == render("en", form, **params, count=str(number))


def test_what_members_read() -> None:
    assert [t("en", "ledger.points", points=n) for n in (0, 1, 2)] == ["0 points", "1 point", "2 points"]
    assert [t("fr", "ledger.points", points=n) for n in (0, 1, 2)] == ["0 point", "1 point", "2 points"]
    assert t("fr", "ledger.points", points=1250) == f"1{NNBSP}250 points"
    assert t("en", "ledger.points", points=1250) == "1,250 points"
    assert t("fr", "ledger.points", points=1_000_000) == f"1{NNBSP}000{NNBSP}000 de points"
    # points a caller wrote itself (format_milli): French 1,5 is singular, English 1.5 is not
    assert t("fr", "ledger.points", points="1,5") == "1,5 point"
    assert t("en", "ledger.points", points="1.5") == "1.5 points"
    assert t("en", "ledger.points", points="1") == "1 point"
    assert t("en", "announce.queued_rooms", rooms=1) == "It is also posted in 1 room of the co-op."
    assert t("fr", "announce.queued_rooms", rooms=0) == "Elle est aussi publiée dans 0 salon de la coopérative."
    assert t("fr", "announce.queued_muted", muted=2).startswith("2 membres ont mis les annonces en sourdine")
    assert t("fr", "announce.queued_muted", muted=1).startswith("1 membre a mis les annonces en sourdine")
    assert t("en", "members.list_title", count=1) == "1 active member:"
    assert t("en", "polls.blocks_recorded", blocks=1).startswith("1 block recorded;")
    assert t("en", "announce.members", count=1) == "1 member"
    assert t("fr", "announce.members", count=0) == "0 membre"
    export = t("en", "data.export_ready", coop="C", jobs=1, contributions=0, allocations=2, votes=1, audit=21)
    assert "1 job, 0 contributions, 2 allocations, 1 vote and 21 audit entries." in export
    export = t("fr", "data.export_ready", coop="C", jobs=1, contributions=0, allocations=2, votes=1, audit=21)
    assert "1 course, 0 contribution, 2 répartitions, 1 vote et 21 entrées du journal." in export


def test_french_elides_before_a_vowel() -> None:
    def read_head(lang: str, name: str) -> str:
        return t(lang, "announce.read_head", ref="A-1", name=name, when="x")

    def export(lang: str, coop: str) -> str:
        return t(lang, "data.export_ready", coop=coop, jobs=0, contributions=0, allocations=0, votes=0, audit=0)

    assert export("fr", "Olvo").startswith("Voici tout ce qu’Olvo détient")
    assert read_head("fr", "Élodie").startswith("Annonce A-1 de la part d’Élodie")
    assert read_head("fr", "Bruno").startswith("Annonce A-1 de la part de Bruno")
    # not before h, y, oui or a number; never in English
    assert read_head("fr", "Hugo").startswith("Annonce A-1 de la part de Hugo")
    assert read_head("fr", "Yann").startswith("Annonce A-1 de la part de Yann")
    assert read_head("fr", "Oui-Oui").startswith("Annonce A-1 de la part de Oui-Oui")
    assert "Recette de 12" in t("fr", "ledger.income_recorded", amount="12,00 €", period="p", note="n")
    assert export("en", "Olvo").startswith("Here is everything Olvo holds")
    # a former member reads well after "de": the pseudonym carries its article
    former = t("fr", "data.former_member", number=2)
    assert former == "l’ancien membre n°2"
    assert render("fr", catalogue("fr")["data.action.member_erased"], subject=former).endswith("de l’ancien membre n°2")
