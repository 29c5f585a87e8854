"""Proxies as members live them: a vote given, cast by its holder, logged, and never a bloc.

Dan cannot follow the co-op's polls this month and gives his vote to Chloé.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from coopbot.errors import UsageError
from coopbot.models import AuditEntry
from coopbot.services.polls import settings as settings_svc
from tests.conftest import Coop

TYRES = "/propose Buy winter tyres? --closes 2d"


@pytest.fixture
def members(coop: Coop) -> Coop:
    coop.member("Alice", "coordinator")
    for name in ("Bob", "Chloé", "Dan"):
        coop.member(name)
    return coop


def audit(coop: Coop, action: str) -> list[dict[str, object]]:
    with coop.session() as session:
        return [row.details for row in session.scalars(select(AuditEntry).where(AuditEntry.action == action))]


async def test_a_proxy_holder_votes_for_the_giver_and_the_result_says_so(members: Coop) -> None:
    assert "Your vote now goes to Chloé for every poll" in await members.say("dan", "/proxy Chloé")
    assert "Dan gave you their vote for every poll" in members.inbox("chloé")[-1].text
    assert "You gave your vote to Chloé (every poll)" in await members.say("dan", "/proxy")
    assert "You hold Dan's vote (every poll)" in await members.say("chloé", "/proxy")

    await members.say("alice", TYRES)
    ballot = next(m for m in members.inbox("chloé") if "asks: Buy winter tyres?" in m.text)
    assert "You also hold the vote of Dan" in ballot.text
    assert ballot.buttons[-1].command == f"/vote P-1 for #{members.member_id('dan')}"

    await members.say("chloé", "/vote P-1 agree")
    voted = await members.say("chloé", "/vote P-1 disagree for Dan")
    assert "Your vote for Dan on P-1 is recorded: Disagree." in voted
    assert "Chloé used your proxy on P-1" in members.inbox("dan")[-1].text
    await members.say("bob", "/vote P-1 agree")
    await members.tick(days=2)

    result = members.inbox("alice")[-1].text
    assert "Agree 2 · Abstain 0 · Disagree 1 · Block 0" in result
    assert "Turnout: 3 of 4 active members (75%)" in result
    assert "1 of these votes was cast by proxy." in result
    assert audit(members, "proxy.used") == [{"giver": f"#{members.member_id('dan')}", "poll": "P-1"}]


async def test_the_ballot_for_a_giver_opens_with_a_button_and_votes_with_one(members: Coop) -> None:
    await members.say("dan", "/proxy Chloé")
    await members.say("alice", TYRES)
    dan = members.member_id("dan")
    ballot = (await members.replies("chloé", "", button=f"/vote P-1 for #{dan}"))[-1]
    assert ballot.text.startswith("🤝 By proxy, for Dan:")
    assert ballot.buttons[0].command == f"/vote P-1 agree for #{dan}"
    pressed = await members.say("chloé", "", button=f"/vote P-1 abstain for #{dan}")
    assert "Your vote for Dan on P-1 is recorded: Abstain." in pressed


async def test_the_giver_voting_themselves_replaces_the_proxy_for_that_poll(members: Coop) -> None:
    await members.say("dan", "/proxy Chloé")
    await members.say("alice", TYRES)
    await members.say("chloé", "/vote P-1 disagree for Dan")
    await members.say("dan", "/vote P-1 agree")
    refused = await members.say("chloé", "/vote P-1 block for Dan")
    assert refused == "Dan voted on P-1 themselves: their own vote counts, so you cannot vote for them on it."
    await members.tick(days=2)
    result = members.inbox("bob")[-1].text
    assert "Agree 1 · Abstain 0 · Disagree 0 · Block 0" in result
    assert "by proxy" not in result
    assert audit(members, "proxy.cancelled") == [{"poll": "P-1"}]


async def test_a_proxy_for_one_poll_wins_over_the_standing_one(members: Coop) -> None:
    await members.say("dan", "/proxy Chloé")
    await members.say("alice", TYRES)
    assert "Your vote on P-1 goes to Bob." in await members.say("dan", "/proxy P-1 Bob")
    assert "You do not hold Dan's vote on P-1." in await members.say("chloé", "/vote P-1 agree for Dan")
    assert "is recorded" in await members.say("bob", "/vote P-1 agree for Dan")


async def test_nobody_holds_more_proxies_than_the_coop_allows(members: Coop) -> None:
    await members.say("dan", "/proxy Chloé")
    refused = await members.say("bob", "/proxy Chloé")
    assert refused == "Chloé already holds 1 vote by proxy, the most this co-op allows. Ask another member."
    assert audit(members, "proxy.given") == [{"holder": f"#{members.member_id('chloé')}", "poll": "standing"}]


async def test_a_revoked_proxy_no_longer_carries_the_vote(members: Coop) -> None:
    await members.say("dan", "/proxy Chloé")
    assert "revoked" in await members.say("dan", "/proxy off")
    await members.say("alice", TYRES)
    assert "You do not hold Dan's vote on P-1." in await members.say("chloé", "/vote P-1 agree for Dan")
    assert len(audit(members, "proxy.revoked")) == 1


async def test_a_coop_that_voted_proxies_away_refuses_them(members: Coop) -> None:
    with members.session() as session:
        settings_svc.apply(session, members.bot.config, "proxy_limit", "0", members.clock.now())
    assert (await members.say("dan", "/proxy Chloé")).startswith("This co-op does not allow proxies")


async def test_a_proxy_vote_in_a_secret_poll_is_as_secret_as_any(members: Coop) -> None:
    await members.say("dan", "/proxy Chloé")
    await members.say("alice", TYRES + " --secret")
    await members.say("chloé", "/vote P-1 disagree for Dan")
    await members.say("bob", "/vote P-1 agree")
    await members.tick(days=2)
    assert "Agree 1 · Abstain 0 · Disagree 1 · Block 0" in members.inbox("alice")[-1].text
    logged = str([audit(members, action) for action in ("proxy.used", "poll.closed")])
    assert "disagree" not in logged.lower()


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("/proxy Dan", "You cannot give your vote to yourself."),
        ("/proxy Zoé", "Zoé"),
        ("/proxy P-99 Chloé", "P-99"),
    ],
)
async def test_a_mistyped_proxy_is_one_sentence_and_gives_nothing(members: Coop, typed: str, said: str) -> None:
    reply = await members.say("dan", typed)
    assert said in reply and "\n" not in reply
    assert audit(members, "proxy.given") == []


def test_the_limit_is_a_governed_setting_from_none_to_ten() -> None:
    parse = settings_svc.governed("proxy_limit").parse
    assert (parse(" 2 "), parse("0")) == ("2", "0")
    for bad in ("11", "-1", "two"):
        with pytest.raises(UsageError):
            parse(bad)
