"""Counting ranked polls: the Schulze method for one seat, Meek's STV for several.

Pure functions over ballots (tuples of candidate indices, first choice
first); no database, no clock, no randomness. The poll's code and closing
time seed the only "random" element, the published tie-break, so anyone can
recount a poll from its ballots and get the same result, figure for figure.

Why these two methods. One seat: the Schulze method elects the candidate
who beats every other one head to head when there is such a candidate, and
otherwise settles the cycle by the strongest chains of majorities; it is
monotonic and clone-independent, so adding a similar option or ranking the
winner higher never backfires. Several seats: Single Transferable Vote by
Meek's method gives each group of voters seats in proportion to its size,
and, unlike hand-countable STV, it transfers every surplus at its exact
value and treats a ballot's later choices the same whoever was elected or
excluded first, so the count does not depend on the order ballots are read.

Partial rankings, Schulze. A ballot need not rank every candidate: each
ranked candidate is preferred to every unranked one, and unranked ones are
tied among themselves (Schulze's own reading of a ballot as a weak order).
So ranking only a favourite says "this one over all the others" and nothing
more, and an empty ballot changes no pairwise count.

Partial rankings, Meek. What is left of a ballot's weight after its last
ranked candidate still in the count is exhausted: it goes to nobody and
lowers the quota, which is recomputed from the votes actually held. That is
the point of Meek's quota: voters who stopped ranking have no say between
the remaining candidates, so the seats are shared among those who do.

Arithmetic, Meek. Exactly the PR Foundation's Meek reference rule: fixed-
point decimals of 9 places (`PLACES`), a ballot's keep-share and each keep
factor rounded up, quota = (votes held by candidates, truncated) / (seats +
1) + 0.000000001, i.e. the Droop quota on the votes not exhausted, and an
iteration stops when the total surplus falls below omega = 0.000001 or
stops shrinking. Rounding up means the rounding loss lands in "exhausted",
never in a candidate's pile. `exhausted` is the weight of the non-empty
ballots minus the votes held, so it includes that rounding residue (the
reference calls it residual). Results come back as exact `Decimal`s with 9
places (`f"{x:f}"` prints them as the reference does; `str` writes a zero
as 0E-9).

Excluding, Meek. When no candidate reaches the quota and the surplus is
below omega, the hopeful with the fewest votes is excluded. Candidates whose
vote is within the undistributed surplus of that lowest vote count as tied
with it (the reference's rule: iterating further could reorder them), and
the tie goes to the draw: the tied candidate latest in the draw is
excluded, since earlier in the draw wins a tie. When the hopefuls left are
no more than the seats left, they are all elected; that ends the count.

Ties, both methods. `draw_order` is the rule published before the vote: a
total order of candidates derived from SHA-256 of the poll's code, its
closing time and each candidate's index, printed with the result. It is
only consulted where the method itself cannot separate candidates, and the
Schulze result lists those groups (`tied`) so the text can say so.

Guards. Zero ballots (or only empty ones) are counted like any others: all
candidates tie at nothing and the draw orders them; whether an empty poll
has a result at all is the caller's decision (quorum). Meek's iteration is
capped at `MAX_ITERATIONS` per round: the reference's stall test already
ends it (the surplus is a whole number of 1e-9 units that must shrink),
the cap only bounds the work on pathological inputs, and hitting it is
treated like a stall: the round moves on to an exclusion.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

Ballot = tuple[int, ...]  # candidate indices 0..n-1, most preferred first; partial rankings allowed; no repeats

#: Meek arithmetic: fixed-point decimals with this many places, as the PR Foundation reference rule.
PLACES = 9
SCALE = 10**PLACES
#: Iteration ends when the total surplus is below 1/10^6 (in units of 1/SCALE).
OMEGA = SCALE // 10**6
#: The quota's "+ tiny": one unit of the last place.
EPSILON = 1
#: Per round; see the module docstring.
MAX_ITERATIONS = 10_000

HOPEFUL, ELECTED, EXCLUDED = "hopeful", "elected", "excluded"


# --- the draw ---------------------------------------------------------------------------


def draw_key(poll_code: str, closes_at: datetime, index: int) -> str:
    """The hex SHA-256 of the UTF-8 text f"{poll_code}|{closes_at in UTC, isoformat}|{index}".

    Example text: "P-12|2026-12-04T18:00:00+00:00|0" (Python's isoformat: seconds always,
    microseconds only when not zero; index from 0). Public and reproducible
    with any SHA-256 tool, and fixed when the poll is announced, before any
    ballot, so nobody can choose it after seeing the votes. It is known in
    advance, as a published rule must be; it only ever decides exact ties.
    """
    if closes_at.tzinfo is None:
        raise ValueError("closes_at must be timezone-aware: a naive time would hash differently by server zone")
    text = f"{poll_code}|{closes_at.astimezone(UTC).isoformat()}|{index}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def draw_order(poll_code: str, closes_at: datetime, candidates: int) -> list[int]:
    """The published tie-break: candidates sorted by `draw_key`, smallest first. Earlier in the list wins a tie."""
    return sorted(range(candidates), key=lambda index: (draw_key(poll_code, closes_at, index), index))


# --- checks shared by both methods ------------------------------------------------------


def _checked(candidates: int, ballots: Sequence[Ballot], draw: Sequence[int],
             weights: Sequence[int] | None) -> list[int]:  # fmt: skip
    """Refuse malformed input rather than count it some silent way; return the weights."""
    if candidates < 1:
        raise ValueError("a ranked poll needs at least one candidate")
    if sorted(draw) != list(range(candidates)):
        raise ValueError("draw must be an order of all the candidates")
    for ballot in ballots:
        if len(set(ballot)) != len(ballot) or any(not 0 <= c < candidates for c in ballot):
            raise ValueError(f"invalid ballot {ballot!r}: repeats or unknown candidates")
    if weights is None:
        return [1] * len(ballots)
    if len(weights) != len(ballots) or any(w < 0 for w in weights):
        raise ValueError("weights must be one non-negative count per ballot")
    return list(weights)


def _by_draw(group: Sequence[int], draw: Sequence[int]) -> list[int]:
    """The group in draw order (the draw's winner of a tie first)."""
    place = {candidate: at for at, candidate in enumerate(draw)}
    return sorted(group, key=place.__getitem__)


# --- Schulze ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SchulzeResult:
    order: list[int]  # finishing order, winner first (ties inside the Schulze ranking broken by the draw)
    pairwise: list[list[int]]  # d[i][j]: ballots preferring i to j
    strongest: list[list[int]]  # p[i][j]: strongest path strength
    tied: list[list[int]]  # groups the method itself could not separate, each in draw order
    method: str = field(default="schulze")

    @property
    def winner(self) -> int:
        return self.order[0]


def pairwise_counts(candidates: int, ballots: Sequence[Ballot], weights: Sequence[int]) -> list[list[int]]:
    """d[i][j]: the weight of ballots ranking i above j; a ranked candidate is above every unranked one."""
    d = [[0] * candidates for _ in range(candidates)]
    for ballot, weight in zip(ballots, weights, strict=True):
        ranked = set(ballot)
        unranked = [c for c in range(candidates) if c not in ranked]
        for position, i in enumerate(ballot):
            for j in (*ballot[position + 1 :], *unranked):
                d[i][j] += weight
    return d


def strongest_paths(d: Sequence[Sequence[int]]) -> list[list[int]]:
    """p[i][j]: the strength of the strongest path from i to j (Schulze's paper, winning votes).

    A link i→j exists when more ballots prefer i to j than j to i, with
    strength d[i][j]; a path is as strong as its weakest link. This is the
    widest-path variant of Floyd–Warshall given in the paper; the diagonal is 0.
    """
    n = len(d)
    p = [[d[i][j] if i != j and d[i][j] > d[j][i] else 0 for j in range(n)] for i in range(n)]
    for k in range(n):
        for i in range(n):
            if i == k:
                continue
            for j in range(n):
                if j not in (i, k):
                    p[i][j] = max(p[i][j], min(p[i][k], p[k][j]))
    return p


def schulze_tiers(p: Sequence[Sequence[int]]) -> list[list[int]]:
    """The Schulze ranking as groups: repeatedly, the candidates no remaining candidate beats.

    i beats j when p[i][j] > p[j][i]; Schulze proves that relation transitive,
    so each remaining field has at least one unbeaten candidate (the guard
    below never fires). Candidates in one group cannot be separated by the
    method: the draw orders them.
    """
    remaining = list(range(len(p)))
    tiers = []
    while remaining:
        top = [i for i in remaining if not any(p[j][i] > p[i][j] for j in remaining)] or remaining
        tiers.append(top)
        remaining = [i for i in remaining if i not in top]
    return tiers


def schulze(candidates: int, ballots: Sequence[Ballot], draw: Sequence[int],
            weights: Sequence[int] | None = None) -> SchulzeResult:  # fmt: skip
    """Count one seat by the Schulze method; the whole finishing order, with the tables that justify it."""
    counted = _checked(candidates, ballots, draw, weights)
    d = pairwise_counts(candidates, ballots, counted)
    p = strongest_paths(d)
    tiers = [_by_draw(tier, draw) for tier in schulze_tiers(p)]
    order = [candidate for tier in tiers for candidate in tier]
    return SchulzeResult(order, d, p, [tier for tier in tiers if len(tier) > 1])


# --- Meek STV ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StvRound:
    quota: Decimal
    votes: list[Decimal]  # per candidate, as the round's last distribution left them
    keep: list[Decimal]  # Meek keep values used in that distribution
    exhausted: Decimal  # weight of non-empty ballots minus votes held (incl. rounding residue)
    elected: list[int]  # elected in this round, most votes first
    excluded: int | None  # excluded in this round (takes effect from the next one)
    surplus: Decimal = Decimal(0)  # total surplus of the elected, not yet passed on
    iterations: int = 1  # distributions this round took


@dataclass(frozen=True)
class StvResult:
    seats: int
    elected: list[int]  # in order of election
    rounds: list[StvRound]
    method: str = field(default="meek_stv")


def to_decimal(units: int) -> Decimal:
    """A fixed-point amount (units of 1/SCALE) as an exact Decimal with PLACES places."""
    return Decimal(units).scaleb(-PLACES)


def _up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded up to a whole unit (the reference rounds keep-shares up)."""
    return -(-numerator // denominator)


@dataclass
class _Count:
    """The state a Meek count carries from round to round (mutable, private)."""

    ballots: list[tuple[Ballot, int]]  # distinct rankings with their total weight
    seats: int
    draw: list[int]
    status: list[str]
    keep: list[int]  # units of 1/SCALE
    total: int  # total weight of non-empty ballots, in units
    rounds: list[StvRound] = field(default_factory=list)
    held: list[int] = field(default_factory=list)  # votes as the last recorded round left them

    def having(self, state: str) -> list[int]:
        return [c for c, s in enumerate(self.status) if s == state]

    def seats_left(self) -> int:
        return self.seats - len(self.having(ELECTED))


@dataclass(frozen=True)
class _Iteration:
    """What one round's iterations ended on."""

    votes: list[int]
    quota: int
    surplus: int
    elected: list[int]
    iterations: int


def distribute(count: _Count) -> list[int]:
    """Meek's step: each candidate keeps its keep factor of what reaches it, passing the rest down.

    Keep-shares are rounded up to a unit, so a ballot never hands out more
    than it has; whatever is left after its last candidate still counting
    (excluded ones keep nothing) is exhausted.
    """
    votes = [0] * len(count.status)
    for ranking, weight in count.ballots:
        left = SCALE
        for candidate in ranking:
            keep = count.keep[candidate]
            if not keep:
                continue
            share = _up(left * keep, SCALE)
            votes[candidate] += share * weight
            left -= share
            if left <= 0:
                break
    return votes


def quota_of(votes: Sequence[int], seats: int) -> int:
    """Droop on the votes held (exhausted ones left out), truncated, plus one unit."""
    return sum(votes) // (seats + 1) + EPSILON


def iterate(count: _Count) -> _Iteration:
    """Distribute and adjust keep factors until someone is elected or the surplus settles.

    Stops on an election (the round ends with it), on a surplus below omega,
    on a surplus that no longer shrinks (rounding has reached its floor), or
    at MAX_ITERATIONS; the last three lead to an exclusion.
    """
    last: int | None = None
    iteration = 0
    while True:
        iteration += 1
        votes = distribute(count)
        quota = quota_of(votes, count.seats)
        newly = [c for c in count.having(HOPEFUL) if votes[c] >= quota]
        for c in newly:
            count.status[c] = ELECTED
        surplus = max(0, sum(votes[c] - quota for c in count.having(ELECTED)))
        stalled = last is not None and surplus >= last
        if newly or surplus < OMEGA or stalled or iteration >= MAX_ITERATIONS:
            return _Iteration(votes, quota, surplus, newly, iteration)
        last = surplus
        for c in count.having(ELECTED):
            count.keep[c] = _up(_up(count.keep[c] * quota, SCALE) * SCALE, votes[c])


def lowest(count: _Count, votes: Sequence[int], surplus: int) -> int:
    """The hopeful to exclude: the fewest votes, ties (within the surplus) to the draw's latest."""
    hopeful = count.having(HOPEFUL)
    floor = min(votes[c] for c in hopeful)
    tied = [c for c in hopeful if votes[c] <= floor + surplus]
    return _by_draw(tied, count.draw)[-1]


def by_votes(group: Sequence[int], votes: Sequence[int], draw: Sequence[int]) -> list[int]:
    """Candidates elected together, most votes first, equal votes in draw order."""
    place = {candidate: at for at, candidate in enumerate(draw)}
    return sorted(group, key=lambda c: (-votes[c], place[c]))


def record(count: _Count, it: _Iteration, excluded: int | None) -> None:
    """Keep the round's figures as exact Decimals, as the reference prints them."""
    count.held = list(it.votes)
    count.rounds.append(
        StvRound(
            quota=to_decimal(it.quota),
            votes=[to_decimal(v) for v in it.votes],
            keep=[to_decimal(k) for k in count.keep],
            exhausted=to_decimal(count.total - sum(it.votes)),
            elected=by_votes(it.elected, it.votes, count.draw),
            excluded=excluded,
            surplus=to_decimal(it.surplus),
            iterations=it.iterations,
        )
    )


def run_round(count: _Count) -> None:
    """One round: iterate; if nobody reached the quota, exclude the lowest hopeful."""
    result = iterate(count)
    if result.elected:
        record(count, result, None)
        return
    excluded = lowest(count, result.votes, result.surplus)
    record(count, result, excluded)
    count.status[excluded] = EXCLUDED
    count.keep[excluded] = 0


def elect_remaining(count: _Count) -> None:
    """Hopefuls no more than the seats left are all elected, in the last round (or a first one if none ran)."""
    remaining = count.having(HOPEFUL)
    if not remaining or count.seats_left() <= 0:
        return
    if not count.rounds:
        votes = distribute(count)
        record(count, _Iteration(votes, quota_of(votes, count.seats), 0, remaining, 1), None)
        return
    last = count.rounds[-1]
    count.rounds[-1] = replace(last, elected=[*last.elected, *by_votes(remaining, count.held, count.draw)])


def meek_stv(candidates: int, ballots: Sequence[Ballot], seats: int, draw: Sequence[int],
             weights: Sequence[int] | None = None) -> StvResult:  # fmt: skip
    """Count several seats by Meek's STV with the Droop quota (PR Foundation reference rule)."""
    counted = _checked(candidates, ballots, draw, weights)
    if seats < 1:
        raise ValueError("seats must be at least 1")
    grouped: Counter[Ballot] = Counter()
    for ballot, weight in zip(ballots, counted, strict=True):
        if ballot and weight:
            grouped[tuple(ballot)] += weight
    count = _Count(
        ballots=sorted(grouped.items()),
        seats=seats,
        draw=list(draw),
        status=[HOPEFUL] * candidates,
        keep=[SCALE] * candidates,
        total=sum(grouped.values()) * SCALE,
    )
    while len(count.having(HOPEFUL)) > count.seats_left() > 0:
        run_round(count)
    elect_remaining(count)
    elected = [c for one in count.rounds for c in one.elected]
    return StvResult(seats, elected, count.rounds)
