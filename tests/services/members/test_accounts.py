"""Finding a member by name: the same person however their name is typed, in any alphabet."""

from __future__ import annotations

import unicodedata

import pytest

from coopbot.errors import NotFound, UsageError
from coopbot.models import Member
from coopbot.services.members.accounts import at_least, find_member
from coopbot.states import Role
from tests.conftest import Coop

ELODIE = unicodedata.normalize("NFC", "Élodie")
#: The same name as some keyboards and pasted text send it: E followed by a combining accent.
ELODIE_NFD = unicodedata.normalize("NFD", "Élodie")
SPELLINGS = [ELODIE, ELODIE_NFD, ELODIE.upper(), ELODIE_NFD.upper(), ELODIE.lower(), ELODIE_NFD.lower()]
SPELLING_IDS = ["composed", "decomposed", "upper", "upper decomposed", "lower", "lower decomposed"]


def found(coop: Coop, typed: str) -> str:
    with coop.session() as session:
        return find_member(session, typed).name


@pytest.mark.parametrize("typed", SPELLINGS, ids=SPELLING_IDS)
async def test_elodie_is_found_however_her_name_is_typed(any_coop: Coop, typed: str) -> None:
    any_coop.member("Alice", "admin")
    any_coop.member(ELODIE, handle="elodie")
    any_coop.member("Clément Dubois", handle="clement")
    assert found(any_coop, typed) == ELODIE
    assert found(any_coop, unicodedata.normalize("NFD", "  CLÉMENT   dubois ")) == "Clément Dubois"
    with any_coop.session() as session, pytest.raises(NotFound):
        find_member(session, "Elodie")  # an accent is a letter, not a case


@pytest.mark.parametrize(
    ("stored", "typed"),
    [("Σοφία", "ΣΟΦΊΑ"), ("Андрей", "АНДРЕЙ"), ("Jürgen Weiß", "JÜRGEN WEISS"), ("Ana Lúcia", "ANA LÚCIA")],
    ids=["greek", "cyrillic", "german sharp s", "portuguese"],
)
async def test_names_in_every_alphabet_are_found_in_any_case(any_coop: Coop, stored: str, typed: str) -> None:
    any_coop.member(stored, handle="them")
    assert found(any_coop, typed) == stored
    assert found(any_coop, unicodedata.normalize("NFD", typed)) == stored


async def test_two_members_whose_names_fold_alike_are_asked_by_number(any_coop: Coop) -> None:
    any_coop.member(ELODIE, handle="elodie1")
    any_coop.member(ELODIE_NFD.upper(), handle="elodie2")
    with any_coop.session() as session, pytest.raises(UsageError) as raised:
        find_member(session, ELODIE.lower())
    assert raised.value.params["ids"] == "#1, #2"


@pytest.mark.parametrize("typed", [ELODIE_NFD.upper(), ELODIE.lower()], ids=["upper decomposed", "lower"])
async def test_an_admin_changes_elodies_role_and_reads_her_audit_by_name(coop: Coop, typed: str) -> None:
    alice = coop.member("Alice", "admin")
    coop.member(ELODIE, handle="elodie")
    assert await coop.say(alice, f"/role {typed} coordinator") == f"{ELODIE} is now coordinator."
    audit = (await coop.say(alice, f"/audit {typed}")).splitlines()
    assert audit[0] == f"Latest privileged actions by or about {ELODIE}:"
    assert "coordinator" in audit[-1]


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        (Role.ADMIN, Role.COORDINATOR, True),
        (Role.COORDINATOR, Role.COORDINATOR, True),
        (Role.MEMBER, Role.COORDINATOR, False),
        (Role.COORDINATOR, Role.ADMIN, False),
    ],
)
def test_a_role_includes_the_ones_below_it(role: Role, needed: Role, allowed: bool) -> None:
    assert at_least(Member(name="Ana", role=role), needed) is allowed
