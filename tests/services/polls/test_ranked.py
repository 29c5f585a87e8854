"""Ranked polls: published worked examples reproduced exactly, then properties of both methods."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import pairwise, permutations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coopbot.services.polls import ranked
from coopbot.services.polls.ranked import Ballot, draw_order, meek_stv, schulze

# --- helpers ----------------------------------------------------------------------------


def lettered(groups: list[tuple[int, str]]) -> tuple[list[Ballot], list[int]]:
    """'5 ACBED' style data: ballots of candidate indices (A=0) and their counts."""
    return [tuple(ord(letter) - ord("A") for letter in order) for _, order in groups], [n for n, _ in groups]


def brute_force_strongest(d: list[list[int]]) -> list[list[int]]:
    """Strongest paths by trying every simple path: slow, obviously right, independent of the module."""
    n = len(d)
    p = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            others = [k for k in range(n) if k not in (i, j)]
            for size in range(len(others) + 1):
                for middle in permutations(others, size):
                    path = (i, *middle, j)
                    links = [d[a][b] if d[a][b] > d[b][a] else 0 for a, b in pairwise(path)]
                    p[i][j] = max(p[i][j], min(links))
    return p


def beats(p: list[list[int]], i: int, j: int) -> bool:
    return p[i][j] > p[j][i]


# --- the draw ---------------------------------------------------------------------------

CLOSES = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


def test_the_draw_is_the_published_recipe() -> None:
    """Anyone can redo it: sort the candidates by SHA-256 of "code|UTC isoformat|index"."""
    digests = [hashlib.sha256(f"P-12|2026-12-04T18:00:00+00:00|{i}".encode()).hexdigest() for i in range(8)]
    assert draw_order("P-12", CLOSES, 8) == sorted(range(8), key=digests.__getitem__)
    assert draw_order("P-12", CLOSES, 5) == [1, 3, 2, 0, 4]  # pinned: a changed rule must show here


def test_the_draw_is_the_same_instant_in_any_zone_and_depends_on_the_poll() -> None:
    paris = CLOSES.astimezone(timezone(timedelta(hours=1)))
    assert draw_order("P-12", paris, 8) == draw_order("P-12", CLOSES, 8)
    assert draw_order("P-13", CLOSES, 8) != draw_order("P-12", CLOSES, 8)
    assert draw_order("P-12", CLOSES + timedelta(seconds=1), 8) != draw_order("P-12", CLOSES, 8)
    with pytest.raises(ValueError, match="timezone"):
        draw_order("P-12", CLOSES.replace(tzinfo=None), 8)


# --- Schulze: the examples of Schulze's paper -------------------------------------------

EXAMPLE_1 = [(5, "ACBED"), (5, "ADECB"), (8, "BEDAC"), (3, "CABED"),
             (7, "CAEBD"), (2, "CBADE"), (7, "DCEBA"), (8, "EBADC")]  # fmt: skip
EXAMPLE_2 = [(5, "ACBD"), (2, "ACDB"), (3, "ADCB"), (4, "BACD"), (3, "CBDA"),
             (3, "CDBA"), (1, "DACB"), (5, "DBAC"), (4, "DCBA")]  # fmt: skip
EXAMPLE_3 = [(3, "ABDEC"), (5, "ADEBC"), (1, "ADECB"), (2, "BADEC"), (2, "BDECA"),
             (4, "CABDE"), (6, "CBADE"), (2, "DBECA"), (5, "DECAB")]  # fmt: skip
EXAMPLE_4 = [(3, "ABCD"), (2, "DABC"), (2, "DBCA"), (2, "CBDA")]


def test_schulze_example_1_tables_and_order_as_published() -> None:
    """Schulze, "A new monotonic, clone-independent, reversal symmetric, and Condorcet-consistent
    single-winner election method" (Social Choice and Welfare 36, 2011), section 3.1; the same
    example and both tables are on Wikipedia's "Schulze method" page. The diagonal, "-" there, is 0.
    """
    ballots, weights = lettered(EXAMPLE_1)
    result = schulze(5, ballots, range(5), weights)
    assert result.pairwise == [
        [0, 20, 26, 30, 22],
        [25, 0, 16, 33, 18],
        [19, 29, 0, 17, 24],
        [15, 12, 28, 0, 14],
        [23, 27, 21, 31, 0],
    ]
    assert result.strongest == [
        [0, 28, 28, 30, 24],
        [25, 0, 28, 33, 24],
        [25, 29, 0, 29, 24],
        [25, 28, 28, 0, 24],
        [25, 28, 28, 31, 0],
    ]
    assert result.order == [4, 0, 2, 1, 3]  # E > A > C > B > D
    assert result.winner == 4
    assert result.tied == []
    assert result.method == "schulze"


@pytest.mark.parametrize(
    ("groups", "order"),
    [(EXAMPLE_2, "DACB"), (EXAMPLE_3, "BADEC")],
    ids=["example-2", "example-3"],
)
def test_schulze_examples_2_and_3_orders_as_published(groups: list[tuple[int, str]], order: str) -> None:
    """Sections 3.2 and 3.3 of the paper (also Electowiki's "Schulze method" examples 2 and 3).
    Their path tables are checked against a brute force over every simple path, not typed in."""
    ballots, weights = lettered(groups)
    n = len(order)
    result = schulze(n, ballots, list(range(n)), weights)
    assert "".join(chr(ord("A") + c) for c in result.order) == order
    assert result.tied == []
    assert result.strongest == brute_force_strongest(result.pairwise)


def test_schulze_example_2_pairwise_counted_by_hand() -> None:
    """d[D][A]: DACB 1 + DBAC 5 + DCBA 4 + CBDA 3 + CDBA 3 = 16; d[A][D]: 5 + 2 + 3 + 4 = 14; and so on."""
    ballots, weights = lettered(EXAMPLE_2)
    result = schulze(4, ballots, [0, 1, 2, 3], weights)
    assert result.pairwise == [[0, 11, 20, 14], [19, 0, 9, 12], [10, 21, 0, 17], [16, 18, 13, 0]]
    assert result.strongest == [[0, 20, 20, 17], [19, 0, 19, 17], [19, 21, 0, 17], [18, 18, 18, 0]]


def test_schulze_example_4_tie_is_left_to_the_draw() -> None:
    """Section 3.4 of the paper: B and D are both potential winners (p[B][D] = p[D][B] = 5), and so
    are A and C below them; the method ranks {B, D} > {A, C} (Electowiki, example 4). Tables by hand:
    d[B][D] = ABCD 3 + CBDA 2 = 5, d[D][B] = DABC 2 + DBCA 2 = 4; the path D-A-B has strength min(6, 5)."""
    ballots, weights = lettered(EXAMPLE_4)
    first = schulze(4, ballots, [0, 1, 2, 3], weights)
    assert first.pairwise == [[0, 5, 5, 3], [4, 0, 7, 5], [4, 2, 0, 5], [6, 4, 4, 0]]
    assert first.strongest == [[0, 5, 5, 5], [5, 0, 7, 5], [5, 5, 0, 5], [6, 5, 5, 0]]
    assert first.tied == [[1, 3], [0, 2]]
    assert first.order == [1, 3, 0, 2]
    reversed_draw = schulze(4, ballots, [3, 2, 1, 0], weights)
    assert reversed_draw.tied == [[3, 1], [2, 0]]
    assert reversed_draw.order == [3, 1, 2, 0]
    assert reversed_draw.winner == 3


def test_schulze_partial_ranking_prefers_ranked_to_unranked() -> None:
    """(A) says A over B and C, nothing between B and C; (B, C) says B over C over A. So A-B and
    A-C are 1-1, B beats C 1-0: A and B are both unbeaten, and the draw orders them."""
    result = schulze(3, [(0,), (1, 2)], [0, 1, 2])
    assert result.pairwise == [[0, 1, 1], [1, 0, 1], [1, 0, 0]]
    assert result.strongest == [[0, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert (result.order, result.tied) == ([0, 1, 2], [[0, 1]])
    assert schulze(3, [(0,), (1, 2)], [2, 1, 0]).order == [1, 0, 2]


def test_schulze_with_no_ballots_is_all_one_tie_in_draw_order() -> None:
    result = schulze(3, [], [2, 0, 1])
    assert result.order == [2, 0, 1]
    assert result.tied == [[2, 0, 1]]


def test_refuses_malformed_input() -> None:
    with pytest.raises(ValueError, match="ballot"):
        schulze(3, [(0, 0)], [0, 1, 2])
    with pytest.raises(ValueError, match="ballot"):
        meek_stv(3, [(3,)], 2, [0, 1, 2])
    with pytest.raises(ValueError, match="draw"):
        schulze(3, [(0,)], [0, 1])
    with pytest.raises(ValueError, match="weights"):
        meek_stv(3, [(0,)], 2, [0, 1, 2], weights=[1, 2])
    with pytest.raises(ValueError, match="seats"):
        meek_stv(3, [(0,)], 0, [0, 1, 2])
    with pytest.raises(ValueError, match="candidate"):
        schulze(0, [], [])


# --- Meek STV: the PR Foundation reference rule, as published by Droop -----------------

#: jklundell/droop, test/blt/SC.blt: "GPUS Steering Committee Election 2005-07-24", 13 candidates,
#: 4 seats, 94 ballots of weight 1 (the BLT's leading "1" and closing "0" dropped; 1-based numbers).
SC_BALLOTS = """
7 8 9 11 12|7 8 9 11 12|13 7 5 4 2 1|5 13 2 7 4 1|13 4 1 2|4 2 13 1 3|4 13 2 7|7 8 12 1 13 9 2 4 11 5
1 13 3 4 7 5 2|4 1 13 7 3 5 2|4 1 13 7 3 5 2|1 4 13 2 7 5 3 9 8 12 11|7 1 8 9 13 3 2 4 12 5 11|7 8 9 11 12
7 1 8 9 13 3 2 4 12 5 11|7 8 9 11 12|7 8 9 11 12|7 8 9 11 12|5 1 13 3 2 4 7|7 8 9 3 12 2 13 5 1 4|3 13 1 2
3 13 1 2|4 7 13 5|4 5 13 3 2 1|7 8 9 11 12|7 9 8 12 11 2 13|7 8 9 11 12|7 8 9 11 12|4 3 13 1|4 3 13 1
13 3 4 1 7 2 5|3 13 4 1 7 2 5|13 3 4 1 2 5 7|13 1 4 2 5 3 7|13 4 3 1 2 5|3 13 1 4 2 7 5|4 3 13 8|4 3 13 1
1 4 13 7|1 4 13 7|7 3 4 13 1 5|9 11 8 7|7 8 9 11 12|13 3 5 2|4 5 2 3 13|13 5 2 4 1 3 7|13 5 2 1 7 3 8
7 8 9 12 11|7 8 4 9 12|13 4 7 2 8|4 13 2 7 1 8|7 8 11 9 12|8 4 7 11 13 9|7 4 2 13|13 1 7 4|4 1 2 13 9 5
1 4 13 5 3 2|7 5 4 8 11 2 13 1 3 9 12|4 8 7 5 13 2 1 3 9|3 4 7 2 12 13 8 1 5|7 8 9 11 12|7 8 11 9|7 8 11 9
7 8 9 11 12|7 8 9 11 12|7 8 9 11 12|13 2 4 7 5 1|7 8 9 11 12|7 8 9 11|7 8 9 11 12|2 7 8 12 13 11 1 5 9
4 7 8 2|4 13 5 2 1 3|13 4 7 3 1 5 8 2 9|4 3 13 1 7|13 4 1 3|4 1 13 3 2 7 8|2 4 13 5|2 3 4 1 13 7|3 1 4 13
4 3 1 2 11|3 1 4 13 2 7|4 1 2 8 3|4 1 5 13 2 3|4 1 5 13 2 3|7 8 9 11 12|7 8 9 11 12|13 7 3 2 5 4 1
13 5 7 2 4 1|7 8 9 11 12|1 13 3 7 2 4 5|13 1 2 7 4 5 3|13 1 2 7 4 5 3|3 1 4 2 13 7 9 5 8
"""


def sc_ballots() -> list[Ballot]:
    return [tuple(int(n) - 1 for n in one.split()) for one in SC_BALLOTS.replace("\n", "|").split("|") if one]


def figures(text: str) -> list[Decimal]:
    """A round's votes as the reference prints them, "0" standing for 0.000000000."""
    return [Decimal(one) for one in text.split()]


ROUND_2_TO_6 = figures("8.006073598 3.232685848 9.408174589 18.800000609 2.759954125 0 18.800000299 13.000470959 "
                       "1.435843893 0 0 0 18.556796080")  # fmt: skip
ROUND_7 = figures("8.006073598 3.232685848 9.408174589 18.800000609 2.759954125 0 18.800000299 14.436314852 "
                  "0 0 0 0 18.556796080")  # fmt: skip
ROUND_8 = figures("9.006073598 3.394740964 9.408174589 19.165213770 0 0 18.800000299 14.506945584 "
                  "0 0 0 0 19.718851196")  # fmt: skip
ROUND_9 = figures("9.427381450 3.730149807 9.774255128 18.799133460 0 0 18.799133416 14.666479770 "
                  "0 0 0 0 18.799133497")  # fmt: skip
ROUND_10 = figures("10.204118384 0 11.498644230 18.789719457 0 0 18.789719396 15.876675538 "
                   "0 0 0 0 18.789719467")  # fmt: skip
ROUND_11 = figures("0 0 16.482212783 19.087429756 0 0 19.073682122 19.085721549 0 0 0 0 19.202438090")

#: test/ref/dump/SC-meek-prf-o6-fixed-p9-d9.txt (and the matching test/ref/report/ file), round by
#: round: quota, residual (our `exhausted`), each candidate's vote, who was elected or defeated.
SC_ROUNDS: list[tuple[str, str, list[Decimal], list[int], int | None]] = [
    ("18.800000001", "0", figures("6 3 8 22 2 0 33 1 1 0 0 0 18"), [6, 3], None),
    ("18.800000001", "0", ROUND_2_TO_6, [], 5),  # four tied at 0: Write-In 2, Write-In 1, Greenfield, Leas
    ("18.800000001", "0", ROUND_2_TO_6, [], 9),
    ("18.800000001", "0", ROUND_2_TO_6, [], 10),
    ("18.800000001", "0", ROUND_2_TO_6, [], 11),
    ("18.800000001", "0", ROUND_2_TO_6, [], 8),
    ("18.800000001", "0", ROUND_7, [], 4),
    ("18.800000001", "0", ROUND_8, [12], None),
    ("18.799133306", "0.004333472", ROUND_9, [], 1),
    ("18.789719295", "0.051403528", ROUND_10, [], 0),
    ("18.586296861", "1.068515700", ROUND_11, [7], None),
]

#: Keep factors of the elected in the same dump (candidate: kf), where they moved.
SC_KEEP = {
    2: {3: "0.837944884", 6: "0.564156107"},
    9: {3: "0.811568586", 6: "0.560273860", 12: "0.947700149"},
    10: {3: "0.761294327", 6: "0.537679426", 12: "0.909783757"},
    11: {3: "0.602321356", 6: "0.491875685", 7: "1", 12: "0.667516215"},
}


def test_meek_reproduces_the_droop_reference_count_of_the_gpus_election() -> None:
    """Source: the Droop package by Jonathan Lundell (github.com/jklundell/droop), rule "meek-prf"
    (PR Foundation Meek Reference STV: 9-place fixed point, omega 1/10^6): ballots test/blt/SC.blt,
    expected figures test/ref/dump/SC-meek-prf-o6-fixed-p9-d9.txt. Every round's quota, residual,
    vote and keep factor is matched to the last digit.

    The reference breaks a tie for exclusion by defeating the candidate first in ballot-file
    order; with our rule (the tied candidate latest in the draw is excluded) that is the draw
    12, 11, ..., 0. The reference elects LaMarche and Rotzler together in round 1 and lists them
    in file order; we list candidates elected together by votes (Rotzler 33 before LaMarche 22).
    """
    result = meek_stv(13, sc_ballots(), 4, list(range(12, -1, -1)))
    assert len(sc_ballots()) == 94
    assert result.elected == [6, 3, 12, 7]  # Rotzler, LaMarche, Kramer, Olsen; Sevigny left over
    assert result.method == "meek_stv"
    assert len(result.rounds) == len(SC_ROUNDS)
    for number, (one, (quota, residual, votes, elected, excluded)) in enumerate(
        zip(result.rounds, SC_ROUNDS, strict=True), start=1
    ):
        assert one.quota == Decimal(quota), number
        assert one.exhausted == Decimal(residual), number
        assert one.votes == votes, number
        assert (one.elected, one.excluded) == (elected, excluded), number
        for candidate, keep in SC_KEEP.get(number, {}).items():
            assert one.keep[candidate] == Decimal(keep), (number, candidate)


@pytest.mark.parametrize("draw", [[0, 1, 2], [2, 1, 0]])
def test_meek_reproduces_the_droop_reference_castor_pollux_helen(draw: list[int]) -> None:
    """jklundell/droop test/blt/42.blt ("Pollux and Helen should tie": 4 ballots Castor > Pollux,
    2 ballots Helen; 2 seats) and test/ref/report/42-meek-prf-o6-fixed-p9-d9.txt. Castor's surplus
    goes to Pollux, rounded up in Castor's favour, so Pollux ends 1.999999996 against Helen's 2 and
    is defeated, by more than the 0.000000003 surplus: no tie, whatever the draw. Helen is then
    elected as the last hopeful for the last seat, in the same round, as the reference reports."""
    result = meek_stv(3, [(0, 1), (2,)], 2, draw, weights=[4, 2])
    assert result.elected == [0, 2]
    first, second = result.rounds
    assert (first.quota, first.votes, first.elected, first.excluded) == (
        Decimal("2.000000001"), figures("4 0 2"), [0], None)  # fmt: skip
    assert second.quota == Decimal("2.000000001")
    assert second.votes == figures("2.000000004 1.999999996 2.000000000")
    assert second.keep[0] == Decimal("0.500000001")
    assert (second.elected, second.excluded, second.exhausted) == ([2], 1, Decimal(0))


def test_meek_exhausted_weight_lowers_the_quota() -> None:
    """Constructed and worked by hand (no published source): 6 A>B, 3 A, 3 C, 2 seats.

    Round 1: quota 12/3 + 0.000000001 = 4.000000001; A has 9 and is elected. Round 2, iteration 1:
    A's keep factor becomes 4.000000001 / 9, rounded up: 0.444444445. Iteration 2: each A>B ballot
    gives A 0.444444445 and B 0.555555555; the A-only ballots exhaust their 0.555555555. A holds
    4.000000005, B 3.333333330, C 3: quota 10.333333335 / 3 -> 3.444444446, B still short. A's keep
    factor: up(0.444444445 * 3.444444446) / 4.000000005, up -> 0.382716050. Iteration 3: A 3.444444450,
    B 6 * 0.617283950 = 3.703703700, C 3; held 10.148148150, quota 3.382716051: B is elected with less
    than the first quota, because the A-only voters' share of A's surplus went to nobody.
    """
    result = meek_stv(3, [(0, 1), (0,), (2,)], 2, [0, 1, 2], weights=[6, 3, 3])
    assert result.elected == [0, 1]
    first, second = result.rounds
    assert (first.quota, first.elected) == (Decimal("4.000000001"), [0])
    assert second.quota == Decimal("3.382716051")
    assert second.votes == figures("3.444444450 3.703703700 3")
    assert second.keep[0] == Decimal("0.382716050")
    assert second.exhausted == Decimal("1.851851850")
    assert (second.elected, second.excluded) == ([1], None)


def test_meek_ties_for_exclusion_go_to_the_draw() -> None:
    """A and B tie at 2 for one seat; C has 1 and goes first, then the draw decides A or B."""
    ballots, weights = [(0,), (1,), (2,)], [2, 2, 1]
    assert meek_stv(3, ballots, 1, [0, 1, 2], weights).elected == [0]
    assert meek_stv(3, ballots, 1, [1, 0, 2], weights).elected == [1]
    rounds = meek_stv(3, ballots, 1, [1, 0, 2], weights).rounds
    assert [one.excluded for one in rounds] == [2, 0]


def test_meek_votes_within_the_surplus_of_the_lowest_tie_with_it() -> None:
    """Constructed (no published source): 1 C>D>A, 9 B>C>A>D, 6 A, 2 B>A, 4 D; 2 seats. B is elected
    with 11 against a quota of 7.333333334, keeps 0.666666667 (rounded up) and passes 9 * 0.333333333
    to C: C has 3.999999997 against D's 4, short only by rounding, and the surplus left (0.000000003)
    covers the gap. The reference rule counts them as tied, so the draw, not the rounding, decides.
    """
    ballots, weights = lettered([(1, "CDA"), (9, "BCAD"), (6, "A"), (2, "BA"), (4, "D")])
    for draw, out in (([0, 1, 2, 3], 3), ([0, 1, 3, 2], 2)):
        second = meek_stv(4, ballots, 2, draw, weights).rounds[1]
        assert second.votes == figures("6.666666666 7.333333337 3.999999997 4")
        assert second.surplus == Decimal("0.000000003")
        assert second.excluded == out


def test_meek_stops_iterating_when_the_surplus_stops_shrinking() -> None:
    """Found by search, not published: with weights in the tens of thousands the rounded-up shares
    leave a surplus (0.000017559) that never falls below omega; the reference's stall test ends the
    round after 15 distributions instead of running to the iteration cap."""
    ballots = [(3, 2), (0, 2), (3, 1, 0, 2), (0, 1), (3,), (3,)]
    weights = [22112, 10974, 15051, 8748, 28755, 16480]
    result = meek_stv(4, ballots, 2, [0, 1, 2, 3], weights)
    stalled = result.rounds[1]
    assert (stalled.surplus, stalled.iterations, stalled.excluded) == (Decimal("0.000017559"), 15, 1)
    assert result.elected == [3, 0]


def test_meek_iteration_cap_still_ends_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranked, "MAX_ITERATIONS", 1)
    result = meek_stv(13, sc_ballots(), 4, list(range(13)))
    assert len(result.elected) == 4
    assert {one.iterations for one in result.rounds} == {1}


def test_meek_with_no_more_candidates_than_seats_elects_them_all_in_one_round() -> None:
    result = meek_stv(3, [(2,), (2, 0)], 3, [0, 1, 2])
    assert result.elected == [2, 0, 1]  # by votes: C 2, A 0 and B 0 in draw order
    assert len(result.rounds) == 1
    assert result.rounds[0].votes == figures("0 0 2")


def test_meek_with_no_ballots_follows_the_draw() -> None:
    result = meek_stv(4, [], 2, [3, 1, 0, 2])
    assert result.elected == [3, 1]
    assert [one.excluded for one in result.rounds] == [2, 0]
    assert all(one.votes == figures("0 0 0 0") for one in result.rounds)


# --- properties -------------------------------------------------------------------------


@st.composite
def elections(draw: st.DrawFn, complete: bool = False) -> tuple[int, list[Ballot], list[int]]:
    """Small polls: 1-5 candidates, up to 12 ballots (partial unless complete), a random draw."""
    n = draw(st.integers(min_value=1, max_value=5))
    ranking = st.permutations(range(n)).map(tuple)
    if not complete:
        ranking = st.tuples(ranking, st.integers(0, n)).map(lambda pair: pair[0][: pair[1]])
    ballots = draw(st.lists(ranking, max_size=12))
    order = draw(st.permutations(range(n)))
    return n, ballots, list(order)


FAST = settings(max_examples=40, deadline=None)


@FAST
@given(elections())
def test_schulze_elects_the_condorcet_winner(poll: tuple[int, list[Ballot], list[int]]) -> None:
    n, ballots, order = poll
    result = schulze(n, ballots, order)
    d = result.pairwise
    condorcet = [i for i in range(n) if all(d[i][j] > d[j][i] for j in range(n) if j != i)]
    if condorcet:
        assert result.winner == condorcet[0]
        assert all(condorcet[0] not in group for group in result.tied)


@FAST
@given(elections())
def test_schulze_order_never_puts_a_beaten_candidate_first(poll: tuple[int, list[Ballot], list[int]]) -> None:
    n, ballots, order = poll
    result = schulze(n, ballots, order)
    assert sorted(result.order) == list(range(n))
    assert result.strongest == brute_force_strongest(result.pairwise)
    for at, i in enumerate(result.order):
        assert not any(beats(result.strongest, i, j) for j in result.order[:at])


@FAST
@given(elections(), st.randoms(use_true_random=False))
def test_both_methods_ignore_the_order_ballots_come_in(
    poll: tuple[int, list[Ballot], list[int]], rng: random.Random
) -> None:
    n, ballots, order = poll
    shuffled = list(ballots)
    rng.shuffle(shuffled)
    assert schulze(n, shuffled, order) == schulze(n, ballots, order)
    seats = max(1, n // 2)
    assert meek_stv(n, shuffled, seats, order) == meek_stv(n, ballots, seats, order)


@FAST
@given(elections(), st.integers(min_value=1, max_value=6))
def test_stv_fills_exactly_the_seats_and_accounts_for_every_vote(
    poll: tuple[int, list[Ballot], list[int]], seats: int
) -> None:
    n, ballots, order = poll
    result = meek_stv(n, ballots, seats, order)
    assert len(result.elected) == min(seats, n)
    assert len(set(result.elected)) == len(result.elected)
    held = sum(1 for ballot in ballots if ballot)
    for one in result.rounds:
        assert sum(one.votes, Decimal(0)) + one.exhausted == held
        assert all(one.votes[c] >= one.quota for c in one.elected) or one is result.rounds[-1]


def instant_runoff(n: int, ballots: list[Ballot], order: list[int]) -> int:
    """Independent IRV on complete ballots: a majority wins, else the lowest (latest in the draw) goes."""
    hopeful = list(range(n))
    while True:
        tops = dict.fromkeys(hopeful, 0)
        for ballot in ballots:
            tops[next(c for c in ballot if c in hopeful)] += 1
        leader = max(hopeful, key=lambda c: tops[c])
        if 2 * tops[leader] > len(ballots) or len(hopeful) == 1:
            return leader
        low = min(tops.values())
        out = [c for c in order if c in hopeful and tops[c] == low][-1]
        hopeful.remove(out)


@FAST
@given(elections(complete=True))
def test_one_seat_stv_on_complete_ballots_is_instant_runoff(poll: tuple[int, list[Ballot], list[int]]) -> None:
    n, ballots, order = poll
    assert meek_stv(n, ballots, 1, order).elected == [instant_runoff(n, ballots, order)]


@FAST
@given(elections(), st.integers(min_value=1, max_value=4))
def test_weights_are_repeated_ballots(poll: tuple[int, list[Ballot], list[int]], times: int) -> None:
    n, ballots, order = poll
    repeated = [ballot for ballot in ballots for _ in range(times)]
    weighted = [times] * len(ballots)
    assert schulze(n, ballots, order, weighted) == schulze(n, repeated, order)
    seats = max(1, n - 1)
    assert meek_stv(n, ballots, seats, order, weighted) == meek_stv(n, repeated, seats, order)
