"""Polls as the co-op's rules: one member one vote, honest counts, one close, secret ballots."""

from __future__ import annotations

import logging
import os
import stat
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from coopbot.config import Config
from coopbot.db import transaction
from coopbot.errors import Conflict, NotAllowed, UsageError
from coopbot.models import AuditEntry, BallotBox, Member, OutboxMessage, Poll, Setting, Vote, Voter
from coopbot.secrets import ballot_secret, key_file
from coopbot.services.members.accounts import add_identity, member_of
from coopbot.services.polls import counting, voting
from coopbot.services.polls import settings as settings_svc
from tests.conftest import Coop
from tests.services.conftest import members, open_poll

pytestmark = pytest.mark.usefixtures("ballot_env")


def cast(coop: Coop, member_id: int, poll_id: int, text: str) -> None:
    with coop.session() as session:
        member = session.get_one(Member, member_id)
        voting.vote(session, coop.bot.config, member, f"P-{poll_id}", text, coop.clock.now())


def close(coop: Coop, poll_id: int) -> dict[str, Any]:
    with coop.session() as session:
        assert voting.close(session, coop.bot.config, poll_id, coop.clock.now())
        return dict(session.get_one(Poll, poll_id).result)


# --- counting, for every input ------------------------------------------------------------


def fake_poll(kind: str, options: int = 0) -> Poll:
    return Poll(kind=kind, options=[f"option {n}" for n in range(options)], quorum_pct=0, threshold_pct=50)


@given(st.lists(st.sampled_from(["agree", "abstain", "disagree", "block"]), max_size=60))
def test_proposal_tally_counts_each_ballot_once(choices: list[str]) -> None:
    result = counting.tally(fake_poll("proposal"), [[choice] for choice in choices])
    assert result.turnout == len(choices)
    assert sum(result.counts.values()) == result.turnout
    for choice in ("agree", "abstain", "disagree", "block"):
        assert result.counts[choice] == choices.count(choice)


@given(st.integers(2, 10).flatmap(lambda n: st.tuples(st.just(n), st.lists(st.lists(st.integers(1, n)), max_size=40))))
def test_multiple_choice_tally_counts_an_option_once_per_ballot(case: tuple[int, list[list[int]]]) -> None:
    size, ballots = case
    result = counting.tally(fake_poll("multiple", size), [list(b) for b in ballots])
    assert result.turnout == len(ballots)
    assert all(0 <= votes <= result.turnout for votes in result.counts.values())
    assert sum(result.counts.values()) == sum(len(set(b)) for b in ballots)


def decide(counts: dict[str, int], active: int, quorum: int = 50, threshold: int = 50, vetoes: bool = True) -> str:
    poll = Poll(kind="proposal", options=[], quorum_pct=quorum, threshold_pct=threshold)
    full = dict.fromkeys(("agree", "abstain", "disagree", "block"), 0) | counts
    return str(counting.decide(poll, counting.Tally(full, sum(full.values())), active, vetoes)["outcome"])


def test_threshold_counts_agree_against_agree_and_disagree_only() -> None:
    assert decide({"agree": 3, "disagree": 2}, active=5) == "passed"
    assert decide({"agree": 2, "disagree": 2}, active=4) == "rejected"  # a tie is not a majority
    # Abstentions help reach the quorum but do not weigh on the threshold.
    assert decide({"agree": 1, "abstain": 5}, active=10) == "passed"
    assert decide({"agree": 1, "abstain": 3}, active=10) == "no_quorum"
    assert decide({"agree": 2, "disagree": 1}, active=3, threshold=66) == "passed"
    assert decide({"agree": 2, "disagree": 1}, active=3, threshold=67) == "rejected"
    assert decide({"agree": 3}, active=3, threshold=100) == "passed"
    assert decide({"abstain": 3}, active=3) == "rejected"


def test_one_block_stops_a_proposal_only_when_the_coop_says_so() -> None:
    assert decide({"agree": 9, "block": 1}, active=10) == "blocked"
    assert decide({"agree": 9, "block": 1}, active=10, vetoes=False) == "passed"
    assert decide({"agree": 1, "block": 1}, active=2, vetoes=False) == "rejected"


def test_choice_polls_pick_the_most_voted_option_or_report_a_tie() -> None:
    poll = Poll(kind="single", options=["a", "b", "c"], quorum_pct=0, threshold_pct=0)
    assert counting.decide(poll, counting.tally(poll, [[1], [2], [2]]), 3, True)["winners"] == [2]
    assert counting.decide(poll, counting.tally(poll, [[1], [2]]), 3, True)["outcome"] == "tie"
    assert counting.decide(poll, counting.tally(poll, []), 3, True)["outcome"] == "no_votes"
    poll.threshold_pct = 50
    assert counting.decide(poll, counting.tally(poll, [[1], [1], [2], [3]]), 4, True)["outcome"] == "no_majority"


# --- one member, one vote, in the database ---------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    secret=st.booleans(),
    votes=st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from(["agree", "abstain", "disagree", "block"])), max_size=25
    ),
)
def test_every_member_counts_once_with_their_latest_vote(
    coop: Coop, secret: bool, votes: list[tuple[int, str]]
) -> None:
    with coop.session() as session:
        first_example = session.scalar(select(func.count(Member.id))) == 0
    if first_example:
        for n in range(5):
            coop.member(f"Voter{n}")
    ids = sorted(coop.member_id(f"voter{n}") for n in range(5))
    poll_id = open_poll(coop, ids[0], voting.PollSpec("Buy a cargo bike?", [], secret=secret))
    latest: dict[int, str] = {}
    for who, choice in votes:
        cast(coop, ids[who], poll_id, choice)
        latest[ids[who]] = choice
    result = close(coop, poll_id)
    assert result["turnout"] == len(latest)
    assert sum(result["counts"].values()) == result["turnout"]
    for choice in ("agree", "abstain", "disagree", "block"):
        assert result["counts"][choice] == list(latest.values()).count(choice)
    with coop.session() as session:
        table = Voter if secret else Vote
        assert session.scalar(select(func.count()).select_from(table).where(table.poll_id == poll_id)) == len(latest)


async def test_two_platforms_one_ballot(coop: Coop) -> None:
    bob = coop.member("Bob")
    with coop.session() as session:
        member = member_of(session, "console", bob)
        assert member is not None
        add_identity(session, member, "telegram", "4242", coop.clock.now())
    bob_id = coop.member_id(bob)
    poll_id = open_poll(coop, bob_id, voting.PollSpec("Repaint the bikes?", [], secret=True))
    with coop.session() as session:
        from_telegram = member_of(session, "telegram", "4242")
        assert from_telegram is not None
        voting.vote(session, coop.bot.config, from_telegram, f"P-{poll_id}", "disagree", coop.clock.now())
    cast(coop, bob_id, poll_id, "agree")
    result = close(coop, poll_id)
    assert result["turnout"] == 1
    assert result["counts"]["agree"] == 1
    assert result["counts"]["disagree"] == 0


async def test_former_members_cannot_vote_and_are_not_counted(coop: Coop) -> None:
    ids = members(coop, 3)
    poll_id = open_poll(coop, ids[0], voting.PollSpec("Open on Sundays?", []))
    cast(coop, ids[1], poll_id, "agree")
    with coop.session() as session:
        session.get_one(Member, ids[1]).active = False
        session.get_one(Member, ids[2]).active = False
    with pytest.raises(NotAllowed) as info:
        cast(coop, ids[2], poll_id, "agree")
    assert info.value.key == "polls.former_member"
    result = close(coop, poll_id)
    assert result["active"] == 1
    assert result["turnout"] == 0


async def test_votes_stop_at_the_deadline_even_before_the_sweep(coop: Coop) -> None:
    ids = members(coop, 2)
    poll_id = open_poll(
        coop, ids[0], voting.PollSpec("Rent a depot?", [], closes_at=coop.clock.now() + timedelta(hours=1))
    )
    coop.clock.advance(hours=1)
    with pytest.raises(Conflict):
        cast(coop, ids[1], poll_id, "agree")


async def test_bad_choices_get_a_clear_sentence(coop: Coop) -> None:
    ids = members(coop, 1)
    proposal = open_poll(coop, ids[0], voting.PollSpec("New logo?", []))
    single = open_poll(coop, ids[0], voting.PollSpec("Which logo?", ["Red", "Blue"]))
    for poll_id, text, key in [
        (proposal, "maybe", "polls.bad_proposal_choice"),
        (single, "3", "polls.bad_option"),
        (single, "1,2", "polls.one_option_only"),
        (single, "blue", "polls.bad_option"),
    ]:
        with pytest.raises(UsageError) as info:
            cast(coop, ids[0], poll_id, text)
        assert info.value.key == key


async def test_proposals_that_cannot_bind_are_refused_before_they_open(coop: Coop) -> None:
    ids = members(coop, 1)
    refusals = {
        "settings.unknown_key": voting.PollSpec("x", [], sets="dividend_pct=70"),
        "settings.bad_value": voting.PollSpec("x", [], sets="offer_policy=lottery"),
        "settings.dividend_negative": voting.PollSpec("x", [], sets="legal_reserve_pct=80"),
        "polls.sets_usage": voting.PollSpec("x", [], sets="legal_reserve_pct"),
        "polls.sets_needs_proposal": voting.PollSpec("x", ["a", "b"], sets="offer_policy=rotation"),
        "polls.multiple_needs_options": voting.PollSpec("x", [], multiple=True),
        "polls.too_few_options": voting.PollSpec("x", ["only one"]),
        "polls.duplicate_option": voting.PollSpec("x", ["Same", "same"]),
        "polls.closes_too_soon": voting.PollSpec("x", [], closes_at=coop.clock.now() + timedelta(minutes=1)),
        "polls.secret_not_live": voting.PollSpec("x", [], secret=True, live=True),
        "polls.title_missing": voting.PollSpec("  ", []),
    }
    for key, spec in refusals.items():
        with pytest.raises(UsageError) as info:
            open_poll(coop, ids[0], spec)
        assert info.value.key == key, key
    with coop.session() as session:
        assert session.scalar(select(func.count(Poll.id))) == 0
        assert session.scalar(select(func.count(OutboxMessage.id))) == 0


async def test_restricted_settings_need_a_coordinator(coop: Coop) -> None:
    member = coop.member_id(coop.member("Bob"))
    coordinator = coop.member_id(coop.member("Cora", "coordinator"))
    coop.bot.config.polls.restricted_settings = ["offer_policy"]
    with pytest.raises(NotAllowed):
        open_poll(coop, member, voting.PollSpec("Rotation?", [], sets="offer_policy=rotation"))
    assert open_poll(coop, coordinator, voting.PollSpec("Rotation?", [], sets="offer_policy=rotation"))


# --- the close: once, with the binding setting -------------------------------------------------


async def test_a_passed_proposal_changes_the_setting_in_the_same_close(coop: Coop) -> None:
    ids = members(coop, 3)
    poll_id = open_poll(coop, ids[0], voting.PollSpec("Reserve to 20%?", [], sets="legal_reserve_pct=20"))
    for member_id in ids:
        cast(coop, member_id, poll_id, "agree")
    result = close(coop, poll_id)
    assert result["outcome"] == "passed"
    assert result["applied"] == "20"
    with coop.session() as session:
        assert settings_svc.current(session, coop.bot.config, "legal_reserve_pct", coop.clock.now()) == "20"
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "setting.changed")).one()
        assert audit.details["poll"] == f"P-{poll_id}"
        results = session.scalars(select(OutboxMessage.key).where(OutboxMessage.key.like(f"poll:{poll_id}:result%")))
        assert len(list(results)) == 3 + 1  # each member, and the co-op room
    with coop.session() as session:
        assert not voting.close(session, coop.bot.config, poll_id, coop.clock.now())


async def test_a_setting_that_no_longer_fits_is_reported_not_half_applied(coop: Coop) -> None:
    ids = members(coop, 1)
    poll_id = open_poll(coop, ids[0], voting.PollSpec("Reserve to 60%?", [], sets="legal_reserve_pct=60"))
    cast(coop, ids[0], poll_id, "agree")
    with coop.session() as session:
        settings_svc.apply(session, coop.bot.config, "development_fund_pct", "50", coop.clock.now())
    result = close(coop, poll_id)
    assert result["outcome"] == "passed"
    assert result["apply_error"]["key"] == "settings.dividend_negative"
    with coop.session() as session:
        assert session.scalar(select(func.count(Setting.id)).where(Setting.key == "legal_reserve_pct")) == 0
        assert session.get_one(Poll, poll_id).status == "closed"


async def test_two_processes_closing_at_once_close_once(any_coop: Coop) -> None:
    coop = any_coop
    ids = members(coop, 3)
    poll_id = open_poll(coop, ids[0], voting.PollSpec("Rotation?", [], sets="offer_policy=rotation", secret=True))
    for member_id in ids:
        cast(coop, member_id, poll_id, "agree")
    coop.clock.advance(days=4)
    barrier = threading.Barrier(2)
    outcomes: list[bool] = []
    errors: list[BaseException] = []

    def race() -> None:
        try:
            barrier.wait()
            with transaction(coop.bot.sessions) as session:
                outcomes.append(voting.close(session, coop.bot.config, poll_id, coop.clock.now()))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=race) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(outcomes) == [False, True]
    with coop.session() as session:
        assert session.scalar(select(func.count(Setting.id)).where(Setting.key == "offer_policy")) == 1
        closes = session.scalars(select(AuditEntry).where(AuditEntry.action == "poll.closed")).all()
        assert len(closes) == 1


async def test_only_the_poll_closes_due_at_the_sweep(coop: Coop) -> None:
    ids = members(coop, 2)
    soon = open_poll(coop, ids[0], voting.PollSpec("Soon?", [], closes_at=coop.clock.now() + timedelta(hours=1)))
    later = open_poll(coop, ids[0], voting.PollSpec("Later?", [], closes_at=coop.clock.now() + timedelta(hours=5)))
    coop.clock.advance(hours=2)
    coop.bot.scheduler.run_due()
    with coop.session() as session:
        assert session.get_one(Poll, soon).status == "closed"
        assert session.get_one(Poll, later).status == "open"


async def test_early_close_needs_every_active_member(coop: Coop) -> None:
    ids = members(coop, 3)
    poll_id = open_poll(coop, ids[0], voting.PollSpec("Paint it green?", []))
    cast(coop, ids[0], poll_id, "agree")
    with coop.session() as session, pytest.raises(Conflict) as info:
        voting.close_early(session, coop.bot.config, session.get_one(Member, ids[0]), f"P-{poll_id}", coop.clock.now())
    assert info.value.params["voted"] == 1
    with coop.session() as session, pytest.raises(NotAllowed):
        voting.close_early(session, coop.bot.config, session.get_one(Member, ids[1]), f"P-{poll_id}", coop.clock.now())


# --- secret ballots --------------------------------------------------------------------------


async def test_secret_ballots_are_one_sealed_box_rewritten_on_every_vote(
    coop: Coop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ids = members(coop, 4)
    poll_id = open_poll(coop, ids[0], voting.PollSpec("Which day off?", ["Monday", "Tuesday", "Sunday"], secret=True))
    boxes: list[bytes] = []

    def box() -> bytes:
        with coop.session() as session:
            (sealed,) = session.scalars(select(BallotBox.sealed).where(BallotBox.poll_id == poll_id)).all()
            return bytes(sealed)

    for member_id, choice in zip(ids, ["1", "2", "3", "2"], strict=True):
        cast(coop, member_id, poll_id, choice)
        boxes.append(box())
    cast(coop, ids[1], poll_id, "3")  # a change of mind reseals the same box, the same size
    boxes.append(box())
    assert len(set(boxes)) == len(boxes)  # every vote rewrites it with fresh bytes
    assert len(boxes[-1]) == len(boxes[-2]) > len(boxes[0])
    with coop.session() as session:
        poll, voter = session.get_one(Poll, poll_id), session.get_one(Member, ids[1])
        mine = voting.own_choices(session, coop.bot.config, poll, voter)
        assert mine == [3]
    result = close(coop, poll_id)
    assert result["counts"] == {"1": 1, "2": 1, "3": 2}
    with coop.session() as session:
        assert session.scalar(select(func.count(Vote.id))) == 0
        assert session.scalar(select(func.count()).select_from(BallotBox)) == 0  # only the tally is kept
        texts = session.scalars(select(OutboxMessage.text).where(OutboxMessage.member_id.is_not(None))).all()
        assert not any("Your vote" in text for text in texts)
        closed = session.scalars(select(AuditEntry).where(AuditEntry.action == "poll.closed")).one()
        assert set(closed.details) == {"poll", "outcome", "turnout", "active"}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for n in range(4):
        assert f"M{n}" not in logged
    for option in ("Monday", "Tuesday", "Sunday"):
        assert option not in logged


def test_without_the_environment_variable_a_private_key_file_is_made_once_away_from_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COOPBOT_SECRET", raising=False)
    config = Config.model_validate({"database": {"url": f"sqlite:///{tmp_path / 'coop.sqlite3'}"}})
    first = ballot_secret(config)
    path = key_file(config)
    assert not path.is_relative_to(tmp_path)
    assert path.is_relative_to(os.environ["XDG_STATE_HOME"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert ballot_secret(config) == first
    assert list(tmp_path.iterdir()) == []


async def test_only_an_open_poll_says_who_chose_what_in_the_ballots_order(coop: Coop) -> None:
    zoe, ana, bea = (coop.member_id(coop.member(name)) for name in ("Zoé", "Ana", "Béa"))
    spec = voting.PollSpec("Where do we meet?", ["Café", "Park", "Depot"], multiple=True)
    shown, secret = open_poll(coop, zoe, spec), open_poll(coop, zoe, voting.PollSpec("Hire?", [], secret=True))
    for voter, choice in ((zoe, "3"), (ana, "3,1"), (bea, "1")):
        cast(coop, voter, shown, choice)
        cast(coop, voter, secret, "agree")
    with coop.session() as session:  # a stray open ballot row must not name anyone in a secret poll either
        session.add(Vote(poll_id=secret, member_id=zoe, choices=["agree"], at=coop.clock.now()))
    with coop.session() as session:
        named = voting.public_votes(session, session.get_one(Poll, shown))
        hidden = voting.public_votes(session, session.get_one(Poll, secret))
    assert named == {"1": ["Ana", "Béa"], "3": ["Ana", "Zoé"]}
    assert hidden == {}
