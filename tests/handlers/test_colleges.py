"""A multi-stakeholder co-op votes by colleges: each college counted among its own, then weighed.

Coop Vélo is a SCIC: its workers weigh 50%, its customers 20%, its partners
30%, whatever their numbers. Two of three workers and the one partner who
voted say yes; both customers say no. Counted head by head it is 3 to 3 and
fails; weighed by college it is 63.33% and passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coopbot.app import CoopBot
from coopbot.clock import FakeClock
from coopbot.services.polls import settings as settings_svc
from tests.conftest import Coop, make_config

COLLEGES = {"weights": {"workers": 50, "customers": 20, "partners": 30}, "default": "workers",
            "customers": "customers"}  # fmt: skip
DEPOT = "/propose Open a second depot? --closes 1d"


@pytest.fixture
async def scic(sqlite_url: str, clock: FakeClock) -> AsyncIterator[Coop]:
    bot = CoopBot(make_config(sqlite_url, colleges=COLLEGES), clock=clock)
    coop = Coop(bot, clock)
    coop.member("Alice", "admin")
    for name in ("Bob", "Chloé", "Pia", "Paul"):
        coop.member(name)
    for name in ("Louise", "Marc"):
        coop.member(name, "customer")
    for partner in ("Pia", "Paul"):
        placed = await coop.say("alice", f"/college {partner} partners")
        assert f"{partner} now votes in the partners college." in placed
    yield coop
    bot.dispose()


async def vote_the_depot(coop: Coop) -> None:
    choices = {"alice": "agree", "bob": "agree", "chloé": "disagree", "pia": "agree", "louise": "disagree",
               "marc": "disagree"}  # fmt: skip
    for who, choice in choices.items():
        assert "is recorded" in await coop.say(who, f"/vote P-1 {choice}")


async def test_each_college_is_counted_then_weighed(scic: Coop) -> None:
    assert "All 7 active members got a ballot" in await scic.say("alice", DEPOT)
    assert any("asks: Open a second depot?" in m.text for m in scic.inbox("louise"))
    await vote_the_depot(scic)
    await scic.tick(days=1)
    result = scic.inbox("louise")[-1].text
    assert "Result: PASSED." in result
    assert "Agree 3 · Abstain 0 · Disagree 3 · Block 0" in result
    assert "Turnout: 6 of 7 active members" in result
    assert "• workers (50%): 3 of 3 voted · Agree 2 · Abstain 0 · Disagree 1 · Block 0" in result
    assert "• customers (20%): 2 of 2 voted · Agree 0 · Abstain 0 · Disagree 2 · Block 0" in result
    assert "• partners (30%): 1 of 2 voted · Agree 1 · Abstain 0 · Disagree 0 · Block 0" in result
    assert "Weighted by college: 63.33% agree among agree, disagree and block (it needs more than 50%)." in result


async def test_a_college_short_of_its_quorum_decides_nothing_when_the_coop_counts_quorum_by_college(
    scic: Coop,
) -> None:
    with scic.session() as session:
        settings_svc.apply(session, scic.bot.config, "quorum_per_college", "true", scic.clock.now())
    await scic.say("alice", DEPOT + " --quorum 60")
    await vote_the_depot(scic)  # partners: 1 of 2, under 60%
    await scic.tick(days=1)
    assert "Result: not decided, too few members voted (quorum 60%)." in scic.inbox("bob")[-1].text


async def test_a_choice_poll_is_weighed_option_by_option(scic: Coop) -> None:
    await scic.say("alice", '/propose Depot where? --options "Belleville|Montreuil" --closes 1d')
    for who, choice in {"alice": "1", "bob": "1", "pia": "2", "louise": "2", "marc": "2"}.items():
        await scic.say(who, f"/vote P-1 {choice}")
    await scic.tick(days=1)
    result = scic.inbox("alice")[-1].text
    # Workers all Belleville (50), partners and customers all Montreuil (30 + 20): a tie.
    assert "Weighted by college: 1. Belleville 50.00%, 2. Montreuil 50.00%." in result
    assert "Result: a tie between 1. Belleville, 2. Montreuil." in result


async def test_members_see_their_college_and_only_an_admin_places_them(scic: Coop) -> None:
    assert "You vote in the workers college. The colleges and their weight: workers 50%, customers 20%, " \
           "partners 30%." in await scic.say("bob", "/college")  # fmt: skip
    assert (await scic.say("bob", "/college Pia workers")).startswith("Only an admin places a member")
    assert "There is no college called “pirates”" in await scic.say("alice", "/college Bob pirates")
    assert "is a customer and votes in the customers college" in await scic.say("alice", "/college Louise workers")


async def test_a_ranked_poll_is_refused_where_votes_are_weighed_by_college(scic: Coop) -> None:
    reply = await scic.say("alice", '/propose AGM? --ranked "A" "B" --closes 1d')
    assert reply.startswith("This co-op votes by colleges, and a ranked poll is not weighed by college")


async def test_without_colleges_a_customer_still_has_no_vote(coop: Coop) -> None:
    coop.member("Alice", "admin")
    coop.member("Louise", "customer")
    await coop.say("alice", DEPOT)
    assert "not" in (await coop.say("louise", "/vote P-1 agree")).lower()
    assert (await coop.say("alice", "/college")).startswith("This co-op does not vote by colleges")
