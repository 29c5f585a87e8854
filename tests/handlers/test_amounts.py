"""One way to read an amount: income, expenses, job prices and money settings refuse the same things.

An attacker posted a €1.25 job with `price 1,250` while `/income 1,250` was refused as ambiguous,
and `1_000` or digits in another script were read silently by Python's own parsers.
"""

from __future__ import annotations

import pytest

from coopbot.i18n import catalogue
from tests.conftest import Coop

#: Each is refused, with the same sentence whichever command it is typed into.
REFUSED = {
    "1,250": "I cannot tell whether 1,250 means 1250 or a decimal amount.",
    "6.500": "I cannot tell whether 6.500 means 6500 or a decimal amount.",
    "1_000": "1_000 is not an amount.",
    "١٢٣": "١٢٣ is not an amount.",
    "１２３": "１２３ is not an amount.",
    "6.5055": "6.5055 has more than two decimals.",
}


@pytest.fixture
def alice(coop: Coop) -> str:
    return coop.member("Alice", "admin", handle="alice")


def where_typed(amount: str) -> list[str]:
    return [
        f"/income {amount} catering",
        f"/expense {amount} tyres",
        f"/newjob Boulangerie -> 3 rue Paul Bert price {amount}",
        f"/propose Raise pay --sets base_pay_per_hour={amount}",
    ]


@pytest.mark.parametrize("amount", sorted(REFUSED))
async def test_an_amount_is_refused_the_same_way_by_every_command(coop: Coop, alice: str, amount: str) -> None:
    for typed in where_typed(amount):
        reply = await coop.say(alice, typed)
        assert REFUSED[amount] in reply, (typed, reply)


async def test_a_refused_amount_changes_nothing(coop: Coop, alice: str) -> None:
    for typed in where_typed("1,250"):
        await coop.say(alice, typed)
    assert await coop.say(alice, "/jobs") == catalogue("en")["dispatch.no_jobs"]


@pytest.mark.parametrize(("typed", "shown"), [("6,50", "€6.50"), ("1 250,00 €", "€1,250.00"), ("0", "€0.00")])
async def test_a_price_reads_like_any_amount(coop: Coop, alice: str, typed: str, shown: str) -> None:
    reply = await coop.say(alice, f"/newjob Boulangerie -> 3 rue Paul Bert price {typed}")
    assert shown in reply, reply
