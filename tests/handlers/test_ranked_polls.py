"""Ranked polls in chat: members rank by typing or by tapping in order, the result names its method.

Five members choose where the AGM is. First choices split 2–2–1, so a
plurality count would be a tie; ranked, Salle A beats each other option head
to head (3 to 2), so the Schulze method elects it.
"""

from __future__ import annotations

import pytest

from tests.conftest import Coop

AGM = '/propose Where should the AGM be? --ranked "Salle A" "Salle B" "Online" --closes 1d'
RANKINGS = {"alice": "1,2,3", "bob": "2,3", "chloé": "2,1,3", "dan": "3 1", "eve": "1,3,2"}


@pytest.fixture
def members(coop: Coop) -> Coop:
    coop.member("Alice", "coordinator")
    for name in ("Bob", "Chloé", "Dan", "Eve"):
        coop.member(name)
    return coop


async def rank_all(coop: Coop) -> None:
    for who, ranking in RANKINGS.items():
        assert "is recorded" in await coop.say(who, f"/vote P-1 {ranking}")


async def test_a_ranked_poll_names_the_method_and_its_tie_rule_on_the_ballot(members: Coop) -> None:
    assert "P-1 is open" in await members.say("alice", AGM)
    ballot = next(m for m in members.inbox("bob") if "asks: Where should the AGM be?" in m.text)
    assert "Counted by the Schulze method (one winner)." in ballot.text
    assert "A tie is broken by a draw seeded by P-1 and its closing time" in ballot.text
    assert "tap them in order, best first" in ballot.text
    assert [b.command for b in ballot.buttons] == ["/vote P-1 +1", "/vote P-1 +2", "/vote P-1 +3"]


async def test_members_rank_by_typing_and_the_schulze_winner_is_announced(members: Coop) -> None:
    await members.say("alice", AGM)
    assert "Salle B > Online" in await members.say("bob", "/vote P-1 2,3")
    await rank_all(members)
    await members.tick(days=1)
    result = members.inbox("dan")[-1].text
    assert "Result: Salle A, by the Schulze method. Ranking: Salle A > Salle B > Online." in result
    assert "First choices: Salle A 2, Salle B 2, Online 1." in result
    assert "Tie-break draw for P-1 (first wins a tie):" in result
    assert "How it was counted: /results P-1 full" in result


async def test_the_full_count_shows_every_pair_and_its_strongest_paths(members: Coop) -> None:
    await members.say("alice", AGM)
    await rank_all(members)
    await members.tick(days=1)
    full = await members.say("eve", "/results P-1 full")
    assert "P-1: how it was counted (the Schulze method (one winner))." in full
    assert "• Salle A – Salle B: 3 to 2 · paths 3 to 0" in full
    assert "• Salle A – Online: 3 to 2 · paths 3 to 0" in full
    assert "• Salle B – Online: 3 to 2 · paths 3 to 0" in full


async def test_tapping_ranks_in_order_and_a_second_tap_takes_an_option_out(members: Coop) -> None:
    await members.say("alice", AGM)
    await members.say("bob", "", button="/vote P-1 +2")
    replies = await members.replies("bob", "", button="/vote P-1 +1")
    assert "Salle B > Salle A" in replies[-1].text
    assert [b.label for b in replies[-1].buttons] == ["② 1. Salle A", "① 2. Salle B", "3. Online"]
    again = await members.replies("bob", "", button="/vote P-1 +2")
    assert [b.label for b in again[-1].buttons] == ["① 1. Salle A", "2. Salle B", "3. Online"]


async def test_several_seats_are_filled_by_meek_stv(members: Coop) -> None:
    await members.say("alice", AGM.replace("--closes 1d", "--seats 2 --closes 1d"))
    ballot = next(m for m in members.inbox("bob") if "asks: Where should the AGM be?" in m.text)
    assert "Single Transferable Vote by Meek's method with the Droop quota (2 seats)" in ballot.text
    await rank_all(members)
    await members.tick(days=1)
    outcome = members.inbox("eve")[-1].text.split("\n")[1]
    # Both pass the quota in the first round: they are listed in the order the count elected them.
    assert outcome.endswith("elected (2 seats, Single Transferable Vote, Meek's method), in 1 round.")
    assert sorted(outcome.removeprefix("Result: ").split(" elected")[0].split(", ")) == ["Salle A", "Salle B"]
    full = await members.say("eve", "/results P-1 full")
    assert "Round 1, quota 1.67: Salle A 2.00, Salle B 2.00, Online 1.00 · exhausted 0.00" in full


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("/vote P-1 1,1", "You ranked option 1 twice."),
        ("/vote P-1 4", "with an option number from 1 to 3"),
    ],
)
async def test_a_ranking_mistyped_is_one_sentence(members: Coop, typed: str, said: str) -> None:
    await members.say("alice", AGM)
    assert said in await members.say("bob", typed)


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        (AGM.replace("--closes", "--seats 3 --closes"), "--seats is how many options win: from 1 to 2"),
        (AGM + " --live", "A ranked poll is counted once, at the close: remove --live."),
        (AGM + ' --options "X|Y"', "A ranked poll lists its options after --ranked"),
    ],
)
async def test_a_ranked_proposal_mistyped_opens_nothing(members: Coop, typed: str, said: str) -> None:
    assert said in await members.say("alice", typed)
    assert (await members.say("alice", "/polls")).startswith("No poll is open.")


async def test_a_secret_ranked_poll_counts_the_same_and_names_nobody(members: Coop) -> None:
    await members.say("alice", AGM + " --secret")
    await rank_all(members)
    await members.tick(days=1)
    result = await members.say("bob", "/results P-1")
    assert "Result: Salle A, by the Schulze method. Ranking: Salle A > Salle B > Online." in result
    assert not any(name in result for name in ("Alice", "Bob", "Chloé", "Dan", "Eve"))
