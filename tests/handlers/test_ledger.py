"""Work, money and shares, as the co-op's members live them in chat."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from coopbot.models import Contribution, LedgerEntry
from tests.conftest import Coop

NOVEMBER_ENDS = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def count(coop: Coop, model: type[Contribution] | type[LedgerEntry]) -> int:
    with coop.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


async def test_a_rider_clocks_in_and_out_by_the_minute(coop: Coop) -> None:
    chloe = coop.member("Chloé")
    assert "You have no shift running" in await coop.say(chloe, "/shift")
    assert await coop.say(chloe, "/shift start") == "Shift started at 09:00. Type /shift end when you stop."
    assert "running since 09:00" in await coop.say(chloe, "/shift start")
    coop.clock.advance(hours=2, minutes=20)
    assert "since 09:00 (2.33 h so far)" in await coop.say(chloe, "/shift")
    assert await coop.say(chloe, "/shift end") == "Shift 09:00–11:20: 2.33 h, 2.333 points (C-1)."
    assert "no shift running" in await coop.say(chloe, "/shift end")
    assert "25:00 is not a time" in await coop.say(chloe, "/shift start 25:00")


async def test_a_forgotten_start_can_be_given_a_time(coop: Coop) -> None:
    chloe = coop.member("Chloé")
    assert "Shift started at 08:15" in await coop.say(chloe, "/shift start 8h15")
    assert "Shift 08:15–09:00: 0.75 h" in await coop.say(chloe, "/shift end")


async def test_logged_work_waits_for_another_coordinator(coop: Coop) -> None:
    bruno = coop.member("Bruno", "coordinator")
    chloe = coop.member("Chloé")
    reply = await coop.say(chloe, "/log 2h admin accounting for March")
    assert reply.startswith("Logged C-1: 2h admin (2 points): accounting for March.")
    assert "Chloé logged C-1" in reply  # the coordinators' room, in console mode
    assert "Logged C-2: 1.5h training (1.5 points): new riders" in await coop.say(
        chloe, "/log 1.5h training new riders"
    )
    assert "Logged C-3: 1 meeting (1 point): general assembly" in await coop.say(
        chloe, "/log 1 meeting general assembly"
    )
    assert "Logged C-4: 1.5h repair" in await coop.say(chloe, "/log repair 1h30 brakes")
    pending = await coop.say(bruno, "/approve")
    assert "Waiting for approval (4):" in pending and "C-3 Chloé: 1 meeting" in pending
    assert "Only coordinators and admins can use /approve" in await coop.say(chloe, "/approve C-1")
    assert "Approved C-1 for Chloé" in await coop.say(bruno, "/approve c-1")
    assert coop.inbox(chloe)[-1].text == "Bruno approved your entry C-1: 2h admin (2 points): accounting for March."
    assert "C-1 is already approved." in await coop.say(bruno, "/approve C1")
    assert "Say why" in await coop.say(bruno, "/reject C-3")
    assert "Rejected C-3 for Chloé" in await coop.say(bruno, "/reject 3 the assembly was cancelled")
    assert "Reason: the assembly was cancelled" in coop.inbox(chloe)[-1].text
    contrib = await coop.say(chloe, "/contrib")
    assert "• admin: 2 points" in contrib
    assert "Approved: 2 points. Pending: 3 points." in contrib
    assert "C-2 1.5h training" in contrib and "Rejected:\nC-3 1 meeting" in contrib


async def test_nobody_approves_their_own_work(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    bruno = coop.member("Bruno", "coordinator")
    await coop.say(bruno, "/log 1.5h training new riders")
    assert "cannot approve or reject your own entry C-1" in await coop.say(bruno, "/approve C-1")
    assert "Approved C-1 for Bruno" in await coop.say(alice, "/approve C-1")


async def test_what_cannot_be_logged_is_refused_with_the_way_to_do_it(coop: Coop) -> None:
    chloe = coop.member("Chloé")
    assert "There is no kind of work called gardening. Use one of: admin, meeting, repair, training." in (
        await coop.say(chloe, "/log 2h gardening")
    )
    assert "Deliveries count by themselves" in await coop.say(chloe, "/log 3 delivery")
    assert "Shifts count by themselves" in await coop.say(chloe, "/log 3h shift")
    assert "two is not a quantity" in await coop.say(chloe, "/log two admin")
    assert "at most 24 hours" in await coop.say(chloe, "/log 30h admin")
    assert "must be more than zero" in await coop.say(chloe, "/log 0h admin")
    assert "That is not how /log works" in await coop.say(chloe, "/log")
    assert "Only coordinators can log a correction" in await coop.say(chloe, "/log --corrects C-1 -1h oops")
    assert count(coop, Contribution) == 0


async def test_coordinators_record_money_exactly(coop: Coop) -> None:
    bruno = coop.member("Bruno", "coordinator")
    chloe = coop.member("Chloé")
    assert await coop.say(bruno, "/income 1250.00 restaurant contracts March") == (
        "Income of €1,250.00 recorded in period 2026-11: restaurant contracts March."
    )
    assert "Income of €1,250.50 " in await coop.say(bruno, "/income 1 250,50 € catering")
    assert "Expense of €89.90 recorded" in await coop.say(bruno, "/expense 89,9 bike repairs")
    assert "-5 is negative" in await coop.say(bruno, "/expense -5 refund")
    assert "more than zero" in await coop.say(bruno, "/expense 0 nothing")
    assert "looks like a typo" in await coop.say(bruno, "/income 99999999999 lottery")
    assert "more than two decimals" in await coop.say(bruno, "/income 12.3456 odd")
    assert "Say what the expense is for" in await coop.say(bruno, "/expense 12")
    assert "Only coordinators and admins can use /income" in await coop.say(chloe, "/income 10 tips")
    with coop.session() as session:
        amounts = sorted(session.scalars(select(LedgerEntry.amount_cents)))
    assert amounts == [89_90, 1250_00, 1250_50]


async def test_the_period_shows_its_rules_and_a_provisional_share(coop: Coop) -> None:
    bruno = coop.member("Bruno", "coordinator")
    chloe = coop.member("Chloé")
    await coop.say(chloe, "/log 3h admin accounts")
    await coop.say(bruno, "/log 1h admin minutes")
    await coop.say(bruno, "/approve C-1")
    await coop.say(bruno, "/income 1000 contracts")
    text = await coop.say(chloe, "/period")
    assert "Period 2026-11: 2026-11-01 00:00 → 2026-12-01 00:00 (Europe/Paris), open." in text
    assert "Income €1,000.00 · expenses €0.00" in text
    assert "Equity threshold (published with the period): €0.00." in text
    assert "legal reserve 15%, development fund 25%, dividend 60%" in text
    assert "Approved points: 3 among 1 member; 1 point still pending." in text
    assert "Your provisional share if the period closed now: 3 points (100%) → dividend €600.00" in text


async def test_after_the_close_a_member_reads_their_shares(coop: Coop) -> None:
    bruno = coop.member("Bruno", "coordinator")
    chloe = coop.member("Chloé")
    assert "no closed period yet" in await coop.say(chloe, "/share")
    await coop.say(chloe, "/log 3h admin accounts")
    await coop.say(chloe, "/log 1h admin filing")
    await coop.say(bruno, "/approve C-1")
    await coop.say(bruno, "/income 500 contracts")
    coop.clock.set(NOVEMBER_ENDS)
    await coop.tick()
    assert "Your dividend: €300.00." in coop.inbox(chloe)[-1].text
    shares = await coop.say(chloe, "/share")
    assert "• 2026-11: 3 points (100%), dividend €300.00, base pay €0.00, not paid yet." in shares
    (told,) = [m.text for m in coop.inbox(chloe) if m.text.startswith("Period 2026-11")]
    detail = await coop.say(chloe, "/share 2026-11")
    assert detail == told + "\nPayment: not paid yet."  # the close's message, word for word, and whether it is paid
    assert detail.startswith("Period 2026-11 (2026-11-01 → 2026-11-30) is closed.")
    assert "dividend €300.00 (60%)" in detail
    assert "There is no closed period 2026-12" in await coop.say(chloe, "/share 2026-12")
    assert "C-2 belongs to period 2026-11, which is closed. Log a correction instead" in (
        await coop.say(bruno, "/approve C-2")
    )


async def test_french_members_read_french_money(coop: Coop) -> None:
    bruno = coop.member("Bruno", "coordinator")
    await coop.say(bruno, "/lang fr")
    assert await coop.say(bruno, "/recette 1250,00 contrats restaurants") == (
        "Recette de 1\u202f250,00\u00a0€ enregistrée dans la période 2026-11\u00a0: contrats restaurants."
    )
    assert "Service commencé à 09:00" in await coop.say(bruno, "/service début")


async def test_shares_asked_in_a_group_are_answered_privately(coop: Coop) -> None:
    chloe = coop.member("Chloé")
    replies = await coop.replies(chloe, "/contrib", private=False)
    assert [r.private for r in replies if "period 2026-11" in r.text] == [True]
    assert "private chat" in coop.room()[-1].text


async def test_hiding_from_the_chart_toggles(coop: Coop) -> None:
    chloe = coop.member("Chloé")
    assert "no longer be shown" in await coop.say(chloe, "/hide")
    assert coop.get_member(chloe).hide_in_charts
    assert "shown in the share charts again" in await coop.say(chloe, "/hide")
    assert not coop.get_member(chloe).hide_in_charts


async def test_contrib_shows_the_hours_planned_on_slots_and_those_worked(coop: Coop) -> None:
    coop.member("Alice", "coordinator")
    chloe = coop.member("Chloé")
    await coop.say("alice", "/slots add mon-tue 11:30-14:30 x2 from 2026-11-09 to 2026-11-10")
    await coop.say("alice", "/slots add sat 19:00-21:30 x2 from 2026-11-14")
    await coop.say("alice", "/slots add mon 11:30-14:30 x2 from 2026-12-07")  # next period: not counted
    for slot in ("S-1", "S-2", "S-3", "S-4"):
        await coop.say(chloe, f"/signup {slot}")
    contrib = await coop.say(chloe, "/contrib")
    assert contrib.splitlines() == [
        "No approved work yet in period 2026-11. Deliveries, /shift and /log add to it.",
        "Planned: 8.5h in 3 slots · Worked: 0h",
    ]
    coop.clock.advance(days=7, hours=2, minutes=30)  # Monday the 9th, 11:30 in Paris: S-1 starts
    await coop.tick()
    await coop.say(chloe, "/available")
    for _ in range(3):
        await coop.tick(minutes=30)
        await coop.say(chloe, "/available")
    await coop.say(chloe, "/away")  # 13:00: an hour and a half of S-1
    await coop.tick(seconds=5)
    await coop.tick(hours=2)
    contrib = await coop.say(chloe, "/contrib")
    assert contrib.splitlines()[-1] == "Planned: 8.5h in 3 slots · Worked: 1.5h"
    await coop.say(chloe, "/lang fr")
    assert (await coop.say(chloe, "/contrib")).splitlines()[-1] == (
        "Prévu\u00a0: 8,5\u00a0h sur 3 créneaux · Travaillé\u00a0: 1,5\u00a0h")


async def test_contrib_says_nothing_of_slots_to_a_member_without_one(coop: Coop) -> None:
    chloe = coop.member("Chloé")
    assert "Planned" not in await coop.say(chloe, "/contrib")
