"""The funds the co-op keeps: filled by each close, spent from the development fund only by vote.

One closed November: income €14,000.00, expenses €1,000.00, no base pay and
no threshold, so a surplus of €13,000.00: 15% (€1,950.00) to the legal
reserve, 25% (€3,250.00) to the development fund, the rest shared by Bruno
and Chloé. The members then decide what to do with the fund.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from coopbot.app import CoopBot
from coopbot.clock import FakeClock
from coopbot.models import AuditEntry, FundSpending
from coopbot.services.money import fec
from tests.conftest import Coop, make_config
from tests.services.money.test_close import NOVEMBER_ENDS, money, work

BIKES = '/propose Buy two cargo bikes --spend 3200.00 from development_fund --to "Vélos Dupont" --closes 1d'


def november(coop: Coop) -> None:
    """Alice, Bruno and Chloé; Bruno's hour and Chloé's two; €14,000.00 in, €1,000.00 out."""
    coop.member("Alice", "admin")
    coop.member("Bruno", "coordinator")
    coop.member("Chloé")
    work(coop, "bruno", "admin", 1000)
    work(coop, "chloé", "admin", 2000)
    money(coop, "income", 14_000_00)
    money(coop, "expense", 1_000_00)


@pytest.fixture
async def coop(db_url: str, clock: FakeClock) -> AsyncIterator[Coop]:
    """A co-op whose November is closed, its funds filled."""
    bot = CoopBot(make_config(db_url), clock=clock)
    coop = Coop(bot, clock)
    november(coop)
    coop.clock.set(NOVEMBER_ENDS)
    await coop.tick()
    yield coop
    bot.dispose()


async def everyone_agrees(coop: Coop, poll: str) -> None:
    for who in ("alice", "bruno", "chloé"):
        assert "recorded: Agree" in await coop.say(who, f"/vote {poll} agree")


def spendings(coop: Coop) -> list[tuple[str, int, str, str | None]]:
    with coop.session() as session:
        rows = session.scalars(select(FundSpending).order_by(FundSpending.id))
        return [(row.fund, row.amount_cents, row.purpose, row.payee) for row in rows]


async def test_each_close_fills_both_funds_and_every_member_can_read_them(coop: Coop) -> None:
    shown = await coop.say("chloé", "/funds")
    assert "Legal reserve: €1,950.00 (kept by law: no vote can spend it)" in shown
    assert "Development fund: €3,250.00" in shown
    assert "2026-11 close: +€1,950.00 reserve, +€3,250.00 fund" in shown


async def test_the_members_vote_to_spend_from_the_development_fund(coop: Coop) -> None:
    opened = await coop.say("chloé", BIKES)
    assert "P-1 is open" in opened
    ballot = next(m.text for m in coop.inbox("bruno") if "asks: Buy two cargo bikes" in m.text)
    assert "If it passes: spend €3,200.00 of the development fund, paid to Vélos Dupont." in ballot
    assert spendings(coop) == []

    await everyone_agrees(coop, "P-1")
    await coop.tick(days=1)

    assert "Done: spend €3,200.00 of the development fund, paid to Vélos Dupont." in coop.inbox("alice")[-1].text
    assert spendings(coop) == [("development_fund", 320000, "Buy two cargo bikes", "Vélos Dupont")]
    shown = await coop.say("bruno", "/funds")
    assert "Development fund: €50.00" in shown
    assert "Legal reserve: €1,950.00" in shown
    assert "−€3,200.00 fund, Buy two cargo bikes, paid to Vélos Dupont (P-1)" in shown
    with coop.session() as session:
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "fund.spent")).one()
    assert audit.details == {"fund": "development_fund", "amount_cents": 320000, "poll": "P-1"}


async def test_a_spending_voted_down_leaves_the_fund_as_it_was(coop: Coop) -> None:
    await coop.say("chloé", BIKES)
    for who in ("alice", "bruno", "chloé"):
        await coop.say(who, "/vote P-1 disagree")
    await coop.tick(days=1)
    assert spendings(coop) == []
    assert "Development fund: €3,250.00" in await coop.say("bruno", "/funds")


async def test_asking_more_than_the_fund_holds_is_refused_when_proposed(coop: Coop) -> None:
    reply = await coop.say("chloé", "/propose Buy a van --spend 3300.00 from development_fund --closes 1d")
    assert reply == "The development fund holds €3,250.00, less than €3,300.00. Ask for at most €3,250.00, " \
                    "or wait for the next close to add to it."  # fmt: skip
    assert "P-1" not in await coop.say("chloé", "/polls")


async def test_the_legal_reserve_is_never_spent_by_a_vote(coop: Coop) -> None:
    reply = await coop.say("alice", "/propose Pay the rent --spend 100.00 from legal_reserve --closes 1d")
    assert reply.startswith("The legal reserve cannot be spent by a vote: the law keeps it to cover losses")
    assert "loi 78-763 art. 33" in reply


async def test_a_spending_that_would_overdraw_at_its_close_fails_with_the_reason(coop: Coop) -> None:
    """Both fit the fund when proposed; together they do not: the second to close spends nothing."""
    await coop.say("chloé", "/propose Cargo bike --spend 2000 from development_fund --closes 1d")
    await coop.say("bruno", "/propose Workshop tools --spend 2000 from development_fund --closes 2d")
    await everyone_agrees(coop, "P-1")
    await everyone_agrees(coop, "P-2")
    await coop.tick(days=2)
    result = coop.inbox("alice")[-1].text
    assert "P-2 is closed" in result
    assert "It passed but could not be applied: The development fund holds €1,250.00, less than €2,000.00." in result
    assert [amount for _, amount, _, _ in spendings(coop)] == [200000]


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("--spend lots from development_fund", "is not an amount"),
        ("--spend 100 from the_piggy_bank", "There is no fund called “the_piggy_bank”"),
        ("--spend 100", "I could not read “100”"),
        ('--to "Vélos Dupont"', "--to says whom a spending pays"),
        ("--spend 100 from fund --sets offer_timeout=60", "A poll does one thing"),
    ],
)
async def test_a_mistyped_spending_is_one_sentence_and_opens_no_poll(coop: Coop, typed: str, said: str) -> None:
    reply = await coop.say("chloé", f"/propose Something --closes 1d {typed}")
    assert said in reply
    assert "\n" not in reply
    assert (await coop.say("chloé", "/polls")).startswith("No poll is open.")


async def test_french_members_read_the_funds_in_french(coop: Coop) -> None:
    await coop.say("chloé", "/lang fr")
    shown = await coop.say("chloé", "/fonds")
    assert "Réserve légale : 1 950,00 €" in shown.replace("\u202f", " ").replace("\xa0", " ")
    assert "Fonds de développement" in shown


async def test_the_spending_is_in_the_books_against_the_fund(coop: Coop) -> None:
    await coop.say("chloé", BIKES)
    await everyone_agrees(coop, "P-1")
    await coop.tick(days=1)
    out = io.StringIO()
    with coop.session() as session:
        fec.export_year(session, coop.bot.config, 2026, out)
    lines = [line.split("\t") for line in out.getvalue().splitlines()[1:]]
    spent = [(line[4], line[11], line[12], line[10]) for line in lines if line[8] == "P-1"]
    label = "P-1 Buy two cargo bikes - Vélos Dupont"
    assert spent == [("1068", "3200,00", "0,00", label), ("512", "0,00", "3200,00", label)]
