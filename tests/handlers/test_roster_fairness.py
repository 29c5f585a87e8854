"""An unpopular slot filled by the co-op's published rule, one member at a time, as members live it.

Alice coordinates; Bob, Chloé and Dan ride. The clock starts on Monday
2 November 2026 at 09:00 in Paris (08:00 UTC). S-1 is the Sunday night,
8 November 21:00–01:00 in Paris, one rider; by the default rule it is unpopular
(a Sunday, and from 21:00). Before it, Alice and Bob took Saturday night S-2
(unpopular, two hours) and Chloé a Wednesday lunch S-3 (popular, three hours):
so Dan comes first, then Chloé, then Alice, then Bob (member number breaks
the tie between Alice and Bob).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from coopbot.chat import Outgoing
from coopbot.models import Member
from coopbot.models_rosters import SlotOffer
from coopbot.services.polls import settings as settings_svc
from coopbot.services.polls import voting
from tests.conftest import Coop

NIGHT = "/slots add sun 21:00-01:00 x1 from 2026-11-08"
SATURDAY_NIGHT = "/slots add sat 21:00-23:00 x2 from 2026-11-07"
WEDNESDAY_LUNCH = "/slots add wed 11:30-14:30 x2 from 2026-11-04"


@pytest.fixture
async def night(coop: Coop) -> Coop:
    coop.member("Alice", "coordinator")
    for name in ("Bob", "Chloé", "Dan"):
        coop.member(name)
    for number, typed in enumerate((NIGHT, SATURDAY_NIGHT, WEDNESDAY_LUNCH), start=1):
        assert (await coop.say("alice", typed)).startswith(f"Published 1 slot, S-{number}")
    for who, slot in (("alice", "S-2"), ("bob", "S-2"), ("chloé", "S-3")):
        assert (await answer(coop, who, f"/signup {slot}")).startswith("You ride")
    return coop


async def answer(coop: Coop, who: str, text: str = "", **kwargs: object) -> str:
    """The bot's answer to `who` alone, without the notices the command queued for others."""
    return (await coop.replies(who, text, **kwargs))[0].text


def offers_to(coop: Coop, who: str) -> list[Outgoing]:
    return [m for m in coop.inbox(who) if m.text.startswith("🌙")]


async def fill_opens(coop: Coop) -> None:
    """Friday 6 November, 21:00 in Paris: 48 hours before S-1, the rule starts offering it."""
    await coop.tick(days=4, hours=11, minutes=59)
    assert not any(offers_to(coop, who) for who in ("alice", "bob", "chloé", "dan"))
    await coop.tick(minutes=1)


async def test_an_unpopular_slot_is_filled_by_the_rule_and_why_shows_the_ranking(night: Coop) -> None:
    await fill_opens(night)
    [offer] = offers_to(night, "dan")
    assert offer.text == (
        "🌙 S-1 Sun 8 Nov 21:00–01:00 still needs a rider, and by the co-op’s fairness rule it is your turn: you took "
        "0 unpopular slots this period, the fewest of those not asked yet. You have 60 min to answer, then it goes "
        "to the next member. /why S-1 shows the ranking.")
    assert [(b.label, b.command) for b in offer.buttons] == [("Take it", "/fill S-1 take"),
                                                             ("Decline", "/fill S-1 decline")]
    assert not offers_to(night, "chloé")

    assert await answer(night, "dan", "", button="/fill S-1 decline") == "You declined S-1: it goes to the next member."
    assert len(offers_to(night, "chloé")) == 1
    await night.tick(minutes=60)  # Chloé lets it expire: Alice's turn
    assert night.inbox("chloé")[-1].text.startswith("Time is up for S-1 Sun 8 Nov 21:00–01:00")
    assert len(offers_to(night, "alice")) == 1 and not offers_to(night, "bob")
    assert (await answer(night, "alice", "/fill S-1 take")).startswith("You ride S-1 Sun 8 Nov 21:00–01:00. Thank you")
    await night.tick(minutes=60)
    assert not offers_to(night, "bob")

    why = (await answer(night, "bob", "/why S-1")).splitlines()
    assert why[:3] == [
        "S-1 Sun 8 Nov 21:00–01:00 · 1/1 taken",
        "Its history:",
        "• 2026-11-02 09:00 published by Alice, needing 1 rider.",
    ]
    assert why[3] == "Unpopular by the rule in force (sun, after 21:00): a Sunday and starts at or after 21:00."
    assert why[4].startswith("The fill rule: from 48 hours before the start, a short unpopular slot is offered")
    assert why[5] == ("Settings in force: unpopular_slots = sun, after 21:00 (the co-op's default); fill_policy = "
                      "fair (the co-op's default); fill_hours = 48 (the co-op's default); fill_offer_minutes = 60 "
                      "(the co-op's default).")
    ranking = ("1. Dan 0 unpopular slots, 0 h; 2. Chloé 0 unpopular slots, 3 h; 3. Alice 1 unpopular slot, 2 h; "
               "4. Bob 1 unpopular slot, 2 h")
    assert why[6:12] == [
        f"• 21:00 offered to Dan (turn 1, for 60 min). Ranking for 2026-11: {ranking}",
        "  → 21:00 Dan declined.",
        "• 21:00 offered to Chloé (turn 2, for 60 min). Ranking for 2026-11: "
        "1. Chloé 0 unpopular slots, 3 h; 2. Alice 1 unpopular slot, 2 h; 3. Bob 1 unpopular slot, 2 h",
        "  → 22:00 Chloé let the offer expire.",
        "• 22:00 offered to Alice (turn 3, for 60 min). Ranking for 2026-11: "
        "1. Alice 1 unpopular slot, 2 h; 2. Bob 1 unpopular slot, 2 h",
        "  → 22:00 Alice took it.",
    ]
    assert why[12:] == ["Riding: Alice."]


async def test_a_signup_while_someone_holds_the_offer_wins_and_the_offer_is_withdrawn(night: Coop) -> None:
    await fill_opens(night)
    assert len(offers_to(night, "dan")) == 1
    assert (await answer(night, "bob", "/signup S-1")).startswith("You ride S-1")
    await night.tick(seconds=5)
    assert night.inbox("dan")[-1].text == (
        "S-1 Sun 8 Nov 21:00–01:00 no longer needs you: the offer is withdrawn. Thank you all the same.")
    assert await answer(night, "dan", "/fill S-1 take") == (
        "The offer of S-1 was withdrawn: the slot no longer needs you.")
    assert "  → 21:00 withdrawn: the slot no longer needed Dan." in await answer(night, "dan", "/why S-1")


async def test_taking_a_seat_that_filled_meanwhile_is_refused_and_moves_nowhere(night: Coop) -> None:
    """Bob signs up in the same second as Dan taps: the slot is full, Dan is told so, and nobody else is asked."""
    await fill_opens(night)
    await answer(night, "bob", "/signup S-1")
    assert await answer(night, "dan", "/fill S-1 take") == "S-1 is full. Type /slots to find a slot with seats free."
    dan = night.member_id("dan")
    with night.session() as session:
        assert [(o.member_id, o.answer) for o in session.scalars(select(SlotOffer))] == [(dan, "withdrawn")]
    assert not offers_to(night, "chloé")


async def test_answers_to_the_wrong_slot_or_in_the_wrong_form_are_one_sentence(night: Coop) -> None:
    await fill_opens(night)
    assert await answer(night, "chloé", "/fill S-1 take") == (
        "S-1 is not offered to you. Type /signup S-1 to take a free seat.")
    assert await answer(night, "dan", "/fill S-1 maybe") == (
        "That is not how /fill works. Type: /fill S-31 take or /fill S-31 decline")
    assert (await answer(night, "dan", "/fill take S-1")).startswith("You ride S-1")
    assert await answer(night, "dan", "/fill S-1 decline") == "You already took S-1. Type /myslots to see your slots."


async def test_a_co_op_that_votes_the_rule_off_leaves_the_slot_to_the_open_call(night: Coop) -> None:
    """The vote P-1 turns it off; `/why` cites it, and a change made without a vote says only when."""
    now = night.clock.now()
    with night.session() as session:
        alice = session.get_one(Member, night.member_id("alice"))
        spec = voting.PollSpec("Only the open call?", [], sets="fill_policy=off", closes_at=now + timedelta(days=1))
        poll = voting.create(session, night.bot.config, alice, spec, now)
        settings_svc.apply(session, night.bot.config, "fill_policy", "off", now, poll=poll)
        settings_svc.apply(session, night.bot.config, "fill_hours", "72", now)
    await fill_opens(night)
    assert not any(offers_to(night, who) for who in ("alice", "bob", "chloé", "dan"))
    why = await answer(night, "dan", "/why S-1")
    assert "The fill rule is off: a short slot is left to the open call." in why
    assert "fill_policy = off (vote P-1, 2026-11-02); fill_hours = 72 (changed 2026-11-02)" in why


async def test_a_french_member_reads_the_offer_and_the_story_in_french(night: Coop) -> None:
    await answer(night, "dan", "/lang fr")
    await fill_opens(night)
    [offer] = offers_to(night, "dan")
    assert offer.text.startswith(
        "🌙 S-1 dim. 8 nov. 21:00–01:00 manque encore d’un·e coursier·e, et selon la règle "
        "d’équité de la coopérative c’est votre tour\u00a0: vous avez pris 0 créneau impopulaire")
    assert [b.label for b in offer.buttons] == ["Je le prends", "Refuser"]
    why = await answer(night, "dan", "/pourquoi S-1")
    assert "(sun, after 21:00)\u00a0: un dimanche et commence à 21:00 ou plus tard." in why
    assert "fill_policy = fair (valeur par défaut de la coopérative)\u202f; fill_hours = 48" in why
