"""Kinds of work, settings, states and audit details read in the member's language.

The co-op stores these names in English; a member reads them in words, with the
name typed beside a setting only where they must type it themselves. A kind of
work a co-op configured without a catalogue entry still shows, by its own name.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from enum import StrEnum

import pytest
from sqlalchemy import select

from coopbot.app import CoopBot
from coopbot.clock import FakeClock
from coopbot.config import Config
from coopbot.demo import run_demo
from coopbot.errors import UsageError
from coopbot.i18n import LANGUAGES, catalogue, entries, t, term, vocabularies
from coopbot.models import Member, OutboxMessage
from coopbot.outbox_cli import retry
from coopbot.services.polls import settings
from coopbot.states import ContributionStatus, JobStatus, OfferStatus, PeriodStatus, PollStatus
from tests.conftest import Coop, make_config

NBSP = "\u00a0"
STATES = {"job": JobStatus, "offer": OfferStatus, "poll": PollStatus, "period": PeriodStatus,
          "contribution": ContributionStatus}  # fmt: skip


@pytest.fixture
async def french_coop(sqlite_url: str, clock: FakeClock) -> AsyncIterator[Coop]:
    """A French-speaking co-op that counts cargo-bike runs, a kind no catalogue knows."""
    weights = {**Config().weights, "cargo": 2.0}
    bot = CoopBot(make_config(sqlite_url, coop={"default_language": "fr"}, weights=weights), clock=clock)
    yield Coop(bot, clock)
    bot.dispose()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_stored_name_has_words_in_both_languages(lang: str) -> None:
    words = catalogue(lang)
    wanted = [f"states.{name}.{state}" for name, enum in STATES.items() for state in list[StrEnum](list(enum))]
    wanted += [f"work.kind.{kind}" for kind in Config().weights]
    wanted += [f"settings.label.{key.removesuffix('.*')}" for key in settings.GOVERNED]
    wanted += [f"dispatch.policy.{policy}" for policy in ("broadcast", "rotation")]
    wanted += [f"outbox.status.{status}" for status in ("pending", "sent", "dead", "failed")]
    assert [key for key in wanted if key not in words] == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_term_a_sentence_names_comes_from_a_vocabulary_that_exists(lang: str) -> None:
    found = entries(lang)
    named = {
        (key, vocabulary)
        for key, entry in found.items()
        for template in ([entry] if isinstance(entry, str) else entry.forms.values())
        for vocabulary in vocabularies(template)
    }
    assert named, "sentences name terms"
    assert [(key, v) for key, v in sorted(named) if not any(k.startswith(v + ".") for k in found)] == []


def test_a_kind_of_work_without_words_shows_by_its_own_name() -> None:
    assert term("fr", "work.kind", "delivery") == "livraison"
    assert term("fr", "work.kind", "cargo") == "cargo"
    assert term("fr", "work.kind", "cargo", typed=True) == "cargo"
    assert term("fr", "work.kind", "training", typed=True) == "formation (training)"
    assert term("fr", "settings.label", "weight.repair") == "points par unité de réparation"
    assert term("fr", "settings.label", "weight.admin") == "points par unité d’administration"
    assert term("en", "settings.label", "weight.cargo", typed=True) == "points per unit of cargo (weight.cargo)"


async def test_logged_work_reads_in_french_with_the_kind_in_words(french_coop: Coop) -> None:
    chloe = french_coop.member("Chloé")
    logged = await french_coop.say(chloe, "/log 2h admin comptabilité")
    assert f"2{NBSP}h administration (2 points){NBSP}: comptabilité" in logged
    await french_coop.say(chloe, "/log 1 cargo tournée du marché")
    with french_coop.session() as session:
        from coopbot.services.money import ledger

        assert [ledger.describe(c, "fr") for c, _, _ in ledger.pending_for_approval(session, french_coop.get_member(
            chloe))] == [f"2{NBSP}h administration (2 points){NBSP}: comptabilité",
                         f"1 cargo (2 points){NBSP}: tournée du marché"]  # fmt: skip


async def test_a_kind_that_does_not_exist_lists_the_kinds_to_type(french_coop: Coop) -> None:
    refused = await french_coop.say(french_coop.member("Chloé"), "/log 1h danse")
    assert "administration (admin)" in refused and "formation (training)" in refused and "cargo" in refused
    assert "réunion (meeting)" in refused


async def test_the_period_shows_each_kind_in_words(french_coop: Coop) -> None:
    shown = await french_coop.say(french_coop.member("Chloé"), "/period")
    assert f"Points{NBSP}: administration 1, cargo 2, formation 1, livraison 1, réparation 1, réunion 1, service 1." \
        in shown
    assert ", ouverte." in shown.splitlines()[0]


async def test_a_ballot_names_the_setting_in_words_and_the_key_to_type(french_coop: Coop) -> None:
    alice, bob = french_coop.member("Alice", "coordinator"), french_coop.member("Bob")
    await french_coop.say(bob, "/propose Réserve à 20 % ? --closes 1d --sets legal_reserve_pct=20")
    await french_coop.tick()
    ballot = next(m.text for m in french_coop.inbox(alice) if "Réserve à 20" in m.text)
    assert f"Si c’est adopté{NBSP}: réserve légale (legal_reserve_pct) passe de 15{NBSP}% à 20{NBSP}%" in ballot
    await french_coop.say(alice, "/vote P-1 pour")
    await french_coop.say(bob, "/vote P-1 pour")
    await french_coop.tick(days=2)
    result = french_coop.inbox(bob)[-1].text
    assert f"Appliqué{NBSP}: réserve légale vaut maintenant 20{NBSP}%" in result
    audit = await french_coop.say(bob, "/audit")
    assert f"a changé «{NBSP}réserve légale{NBSP}» de 15{NBSP}% à 20{NBSP}% (vote P-1)" in audit
    assert f"(type{NBSP}: proposition, secret{NBSP}: non, modifie{NBSP}: réserve légale → 20{NBSP}%)" in audit
    assert f"(votants{NBSP}: 2, membres actifs{NBSP}: 2)" in audit


async def test_a_setting_refused_names_what_can_be_set_in_words(coop: Coop) -> None:
    refused = await coop.say(coop.member("Bob"), "/propose Vite ? --sets speed=3")
    assert "legal reserve (legal_reserve_pct)" in refused
    assert "offer policy (offer_policy)" in refused and "points per unit of KIND (weight.KIND)" in refused


async def test_the_audit_names_money_details_in_words(french_coop: Coop) -> None:
    bruno = french_coop.member("Bruno", "coordinator")
    await french_coop.say(bruno, "/income 100 contrats")
    audit = await french_coop.say(bruno, "/audit")
    assert f"(période{NBSP}: " in audit and "(period:" not in audit


async def test_retrying_a_message_that_is_not_failed_says_its_state_in_words(french_coop: Coop) -> None:
    from coopbot.chat import Outgoing
    from coopbot.outbox import queue_to_member

    chloe = french_coop.member_id(french_coop.member("Chloé"))
    with french_coop.session() as session:
        queue_to_member(session, session.get_one(Member, chloe), "k", Outgoing("bonjour"), french_coop.clock.now())
        session.flush()
        waiting = session.scalars(select(OutboxMessage.id).where(OutboxMessage.status == "pending")).one()
        with pytest.raises(UsageError) as refused:
            retry(session, waiting, french_coop.clock.now())
    said = {lang: t(lang, refused.value.key, **refused.value.params) for lang in LANGUAGES}
    assert "is waiting to be sent, not failed" in said["en"]
    assert "est en attente d’envoi, pas en échec" in said["fr"]


async def test_the_french_demo_shows_no_kind_setting_or_attachment_in_english() -> None:
    out = io.StringIO()
    assert await run_demo(out, lang="fr") == 0
    french = out.getvalue()
    for english in ("(attachment", " admin (", " training (", "delivery :", "legal_reserve_pct passe",
                    "(period", "(kind", "(turnout", "(target", "points): ", ": broadcast"):
        assert english not in french, english
    assert f"(2 points){NBSP}: " in french
