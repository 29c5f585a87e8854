"""Colleges: a multi-stakeholder co-op's votes, weighed college by college.

A SCIC gathers several kinds of members (workers, customers, partners, local
authorities) and its statutes give each college a fixed weight, between 10%
and 50% in French law, whatever its size: the workers' college keeps half
the say even when the customers outnumber them ten to one. Each college's
result is computed among its own voters, then the colleges' results are
weighed together. A college where nobody voted has no result to weigh: the
weights of those that voted are scaled up to 100%, the usual statutory rule,
rather than counting silence as a "no".

With no `[colleges]` in the config none of this runs: one member, one vote.
Ranked polls are not weighed by college (a weighted Meek count has no
published reference to check against), so a co-op with colleges cannot
open one. In a secret poll, the per-college counts are part of the result:
the README warns that a college of two or three voters shows more than the
co-op's total would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.errors import UsageError
from coopbot.models import Member, Poll
from coopbot.services.audit import record
from coopbot.services.members.accounts import active_members, is_customer
from coopbot.services.polls import settings
from coopbot.states import Role

PER_COLLEGE_KEY = "quorum_per_college"

settings.register_setting(PER_COLLEGE_KEY, settings.parse_bool(PER_COLLEGE_KEY), default="false")


def enabled(config: Config) -> bool:
    return bool(config.colleges.weights)


def college_of(config: Config, member: Member) -> str:
    if is_customer(member):
        return config.colleges.customers
    return member.college if member.college in config.colleges.weights else config.colleges.default


def electorate(session: Session, config: Config) -> list[Member]:
    """Who votes: the active members, and the customers when the co-op has a college for them."""
    voters = active_members(session)
    if enabled(config) and config.colleges.customers:
        customers = session.scalars(
            select(Member).where(Member.active.is_(True), Member.role == Role.CUSTOMER).order_by(Member.id)
        )
        voters = sorted([*voters, *customers], key=lambda member: member.id)
    return voters


def may_vote(config: Config, member: Member) -> bool:
    return not is_customer(member) or (enabled(config) and bool(config.colleges.customers))


def place(session: Session, config: Config, actor: Member | None, member: Member, name: str, now: datetime) -> str:
    """Put a member in a college (customers stay in theirs); audited (`actor` None: the command line)."""
    if not enabled(config):
        raise UsageError("colleges.none")
    wanted = name.strip().casefold()
    found = next((college for college in config.colleges.weights if college.casefold() == wanted), None)
    if found is None:
        raise UsageError("colleges.unknown", college=name[:30], colleges=", ".join(config.colleges.weights))
    if is_customer(member):
        raise UsageError("colleges.customer_fixed", name=member.name, college=config.colleges.customers or "-")
    before = college_of(config, member)
    member.college = found
    record(session, now, "member.college", actor=actor, member=f"#{member.id}", old=before, new=found)
    return found


# --- counting ---------------------------------------------------------------------


@dataclass(frozen=True)
class CollegeCount:
    name: str
    weight: Fraction
    active: int
    turnout: int
    counts: dict[str, int]


def count_by_college(
    config: Config, poll: Poll, ballots: Mapping[int, list[Any]], voters: Sequence[Member], keys: Sequence[str]
) -> list[CollegeCount]:
    found = []
    for name, weight in config.colleges.weights.items():
        members = [m.id for m in voters if college_of(config, m) == name]
        cast = [ballots[m] for m in members if m in ballots]
        counts = dict.fromkeys(keys, 0)
        for ballot in cast:
            for choice in {str(c) for c in ballot}:
                if choice in counts:
                    counts[choice] += 1
        found.append(CollegeCount(name, Fraction(str(weight)), len(members), len(cast), counts))
    return found


def weighted(colleges: Sequence[CollegeCount], share: Any) -> Fraction:
    """Σ weight × the college's share, over the colleges that voted, their weights scaled to 100%."""
    voting = [(c.weight, share(c)) for c in colleges if share(c) is not None]
    total = sum((w for w, _ in voting), Fraction(0))
    if not total:
        return Fraction(0)
    return sum((w * s for w, s in voting), Fraction(0)) / total


def proposal_share(college: CollegeCount) -> Fraction | None:
    cast = sum(college.counts[c] for c in ("agree", "disagree", "block"))
    return Fraction(college.counts["agree"], cast) if cast else None


def option_share(key: str) -> Any:
    def share(college: CollegeCount) -> Fraction | None:
        return Fraction(college.counts[key], college.turnout) if college.turnout else None

    return share


def pct(value: Fraction) -> str:
    return f"{float(value * 100):.2f}"


def decide(
    poll: Poll,
    config: Config,
    ballots: Mapping[int, list[Any]],
    voters: Sequence[Member],
    keys: Sequence[str],
    block_vetoes: bool,
    per_college: bool,
) -> dict[str, Any]:
    """The weighted result: each college's count, then the weighted shares against the threshold."""
    colleges = count_by_college(config, poll, ballots, voters, keys)
    turnout = sum(c.turnout for c in colleges)
    active = len(voters)
    counts = {key: sum(c.counts[key] for c in colleges) for key in keys}
    quorum = [c.turnout * 100 >= poll.quorum_pct * c.active for c in colleges if c.active] if per_college else [
        turnout * 100 >= poll.quorum_pct * active and (active > 0 or poll.quorum_pct == 0)]  # fmt: skip
    outcome: dict[str, Any] = {
        "counts": counts, "turnout": turnout, "active": active, "quorum_met": all(quorum),
        "block_vetoes": block_vetoes, "winners": [],
        "colleges": [{"name": c.name, "weight": f"{float(c.weight):g}", "active": c.active, "turnout": c.turnout,
                      "counts": c.counts} for c in colleges],
    }  # fmt: skip
    if not outcome["quorum_met"]:
        outcome["outcome"] = "no_quorum"
        return outcome
    if poll.kind == "proposal":
        agree = weighted(colleges, proposal_share)
        outcome["weighted"] = {"agree": pct(agree)}
        if counts["block"] and block_vetoes:
            outcome["outcome"] = "blocked"
        elif any(proposal_share(c) is not None for c in colleges) and (
            agree * 100 > poll.threshold_pct or (poll.threshold_pct == 100 and agree == 1)
        ):
            outcome["outcome"] = "passed"
        else:
            outcome["outcome"] = "rejected"
        return outcome
    scores = {key: weighted(colleges, option_share(key)) for key in keys}
    outcome["weighted"] = {key: pct(score) for key, score in scores.items()}
    top = max(scores.values(), default=Fraction(0))
    winners = [int(key) for key, score in scores.items() if score == top and top > 0]
    outcome["winners"] = winners
    if not winners:
        outcome["outcome"] = "no_votes"
    elif len(winners) > 1:
        outcome["outcome"] = "tie"
    elif top * 100 > poll.threshold_pct or poll.threshold_pct == 0:
        outcome["outcome"] = "chosen"
    else:
        outcome["outcome"] = "no_majority"
    return outcome
