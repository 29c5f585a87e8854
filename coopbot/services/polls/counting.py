"""Counting: how the ballots of a closed poll become its result.

A proposal is decided by its threshold of agree against agree + disagree +
block (a block may veto, by setting); a choice poll by the most votes, with a
tie reported as a tie. A ranked poll is counted by the method named on its
ballot: the Schulze method for one seat, Single Transferable Vote by Meek's
method with the Droop quota for several (`ranked` holds both methods, pure;
here they meet the poll). The result is a plain dict stored on the poll, so
the close writes it once and every later reader shows the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.models import Member, Poll, Vote
from coopbot.services.polls import ballot_box, ranked
from coopbot.services.polls.texts import PROPOSAL_CHOICES, code


@dataclass(frozen=True)
class Tally:
    #: proposal: choice → votes; choice polls: option number (as text) → votes
    counts: dict[str, int]
    turnout: int


def choice_keys(poll: Poll) -> list[str]:
    """What a ballot may choose, as counted and shown: a proposal's words, or option numbers as text."""
    return list(PROPOSAL_CHOICES) if poll.kind == "proposal" else [str(n) for n in range(1, len(poll.options) + 1)]


def tally(poll: Poll, ballots: list[list[Any]]) -> Tally:
    """Each ballot counted once; an option counted at most once per ballot."""
    counts = dict.fromkeys(choice_keys(poll), 0)
    for ballot in ballots:
        for choice in {str(c) for c in ballot}:
            if choice in counts:
                counts[choice] += 1
    return Tally(counts, len(ballots))


def ballots_by_member(session: Session, config: Config, poll: Poll, members: list[Member]) -> dict[int, list[Any]]:
    """Each of these members' ballot (the electorate, at the close), by member id."""
    ids = {member.id for member in members}
    if not poll.secret:
        rows = session.scalars(select(Vote).where(Vote.poll_id == poll.id)).all()
        return {row.member_id: list(row.choices) for row in rows if row.member_id in ids}
    return {member_id: choices for member_id, choices in ballot_box.read(session, config, poll).items()
            if member_id in ids}  # fmt: skip


def ballots_of(session: Session, config: Config, poll: Poll, members: list[Member]) -> list[list[Any]]:
    """The ballots of these members (the active ones, at the close)."""
    return list(ballots_by_member(session, config, poll, members).values())


def decide(poll: Poll, result: Tally, active: int, block_vetoes: bool) -> dict[str, Any]:
    """Quorum on turnout; threshold on agree against agree + disagree + block."""
    outcome: dict[str, Any] = {
        "counts": result.counts,
        "turnout": result.turnout,
        "active": active,
        "quorum_met": result.turnout * 100 >= poll.quorum_pct * active and (active > 0 or poll.quorum_pct == 0),
        "block_vetoes": block_vetoes,
        "winners": [],
    }
    if not outcome["quorum_met"]:
        outcome["outcome"] = "no_quorum"
    elif poll.kind == "proposal":
        agree, blocks = result.counts["agree"], result.counts["block"]
        cast_ = agree + result.counts["disagree"] + blocks
        if blocks and block_vetoes:
            outcome["outcome"] = "blocked"
        elif cast_ and (agree * 100 > poll.threshold_pct * cast_ or (poll.threshold_pct == 100 and agree == cast_)):
            outcome["outcome"] = "passed"
        else:
            outcome["outcome"] = "rejected"
    else:
        top = max(result.counts.values(), default=0)
        winners = [int(n) for n, votes in result.counts.items() if votes == top and top > 0]
        outcome["winners"] = winners
        if not winners:
            outcome["outcome"] = "no_votes"
        elif len(winners) > 1:
            outcome["outcome"] = "tie"
        elif top * 100 > poll.threshold_pct * result.turnout or poll.threshold_pct == 0:
            outcome["outcome"] = "chosen"
        else:
            outcome["outcome"] = "no_majority"
    return outcome


# --- ranked polls ---------------------------------------------------------------------


def draw_of(poll: Poll) -> list[int]:
    """The tie-break published with the poll's rules: option numbers, earliest wins a tie."""
    closes = poll.closes_at.astimezone(UTC)
    return [index + 1 for index in ranked.draw_order(code(poll), closes, len(poll.options))]


def rankings(ballots: list[list[Any]], options: int) -> list[ranked.Ballot]:
    """Stored rankings (option numbers, first choice first) as the methods read them; a number
    no longer valid is dropped rather than miscounted, an empty ranking counts for nobody."""
    found = []
    for ballot in ballots:
        seen: list[int] = []
        for choice in ballot:
            number = int(choice)
            if 1 <= number <= options and number - 1 not in seen:
                seen.append(number - 1)
        found.append(tuple(seen))
    return found


def decide_ranked(poll: Poll, ballots: list[list[Any]], active: int) -> dict[str, Any]:
    """Quorum on turnout as for every poll; then the named method, its workings kept for `/results P-9 full`."""
    options = len(poll.options)
    seats = poll.seats or 1
    ranks = [ballot for ballot in rankings(ballots, options) if ballot]
    first = dict.fromkeys((str(n) for n in range(1, options + 1)), 0)
    for ballot in ranks:
        first[str(ballot[0] + 1)] += 1
    draw = [number - 1 for number in draw_of(poll)]
    outcome: dict[str, Any] = {
        "counts": first,
        "turnout": len(ballots),
        "active": active,
        "quorum_met": len(ballots) * 100 >= poll.quorum_pct * active and (active > 0 or poll.quorum_pct == 0),
        "method": "schulze" if seats == 1 else "meek_stv",
        "seats": seats,
        "draw": [index + 1 for index in draw],
        "winners": [],
    }
    if not outcome["quorum_met"]:
        outcome["outcome"] = "no_quorum"
        return outcome
    if not ranks:
        outcome["outcome"] = "no_votes"
        return outcome
    if seats == 1:
        schulze = ranked.schulze(options, ranks, draw)
        outcome["ranking"] = [index + 1 for index in schulze.order]
        outcome["pairwise"] = schulze.pairwise
        outcome["strongest"] = schulze.strongest
        outcome["tied"] = [[index + 1 for index in group] for group in schulze.tied]
        outcome["winners"] = [schulze.winner + 1]
    else:
        stv = ranked.meek_stv(options, ranks, seats, draw)
        outcome["winners"] = [index + 1 for index in stv.elected]
        outcome["rounds"] = [
            {
                "quota": f"{one.quota:f}",
                "votes": [f"{votes:f}" for votes in one.votes],
                "exhausted": f"{one.exhausted:f}",
                "elected": [index + 1 for index in one.elected],
                "excluded": one.excluded + 1 if one.excluded is not None else None,
            }
            for one in stv.rounds
        ]
    outcome["outcome"] = "elected"
    return outcome
