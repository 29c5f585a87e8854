"""The period close: every member messaged their share, once, to the cent,
whatever crashes, races or votes happen around it."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from coopbot.app import CoopBot
from coopbot.charts import Bar
from coopbot.clock import FakeClock
from coopbot.config import Config
from coopbot.models import Allocation, Contribution, LedgerEntry, Member, OutboxMessage, Period
from coopbot.services.members.accounts import add_identity
from coopbot.services.money import exports, ledger, notices, periods
from coopbot.services.money.close import close_period
from coopbot.services.money.shares import MILLI, Terms, split_buckets
from coopbot.services.polls import settings as settings_svc
from coopbot.transports.console import ConsoleTransport
from tests.conftest import Coop, make_config

NOVEMBER_ENDS = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # 1 December 00:00 in Paris


def work(coop: Coop, handle: str, kind: str, quantity: int, *, unit: str = "hour") -> int:
    """An approved entry of `quantity` thousandths, as if a coordinator approved it."""
    with coop.session() as session:
        member = session.get_one(Member, coop.member_id(handle))
        entry = ledger.log_work(session, coop.bot.config, member, quantity, unit, kind, "", coop.clock.now())
        entry.status = "approved"
        return entry.id


def deliver(coop: Coop, rider: int, price: int) -> None:
    job = coop.delivered_job(rider, price)
    with coop.session() as session:
        ledger.record_delivery(session, coop.bot.config, job, coop.clock.now())


def money(coop: Coop, kind: str, cents: int) -> None:
    with coop.session() as session:
        actor = session.scalars(select(Member).order_by(Member.id)).first()
        assert actor is not None
        ledger.record_money(session, coop.bot.config, actor, kind, cents, f"{kind} test", coop.clock.now())


def share_messages(coop: Coop, handle: str) -> list[str]:
    return [m.text for m in coop.inbox(handle) if "is closed" in m.text]


def allocations(coop: Coop, label: str) -> dict[str, tuple[int, int, int]]:
    with coop.session() as session:
        rows = session.execute(
            select(Member.name, Allocation.points_milli, Allocation.dividend_cents, Allocation.base_pay_cents)
            .join(Allocation, Allocation.member_id == Member.id)
            .join(Period, Period.id == Allocation.period_id)
            .where(Period.label == label)
        )
        return {name: (pts, dividend, base) for name, pts, dividend, base in rows}


async def test_the_month_closes_and_each_member_is_told_their_share(coop: Coop) -> None:
    coop.member("Alice", "admin")
    coop.member("Bruno", "coordinator")
    coop.member("Chloé")
    work(coop, "bruno", "admin", 1000)
    work(coop, "chloé", "training", 2000)
    money(coop, "income", 1000_00)
    money(coop, "expense", 100_00)
    coop.clock.set(NOVEMBER_ENDS)
    await coop.tick()
    # net 900.00; 15 % reserve 135.00, 25 % fund 225.00, 60 % dividend 540.00 split 1:2
    assert allocations(coop, "2026-11") == {
        "Alice": (0, 0, 0),
        "Bruno": (1000, 180_00, 0),
        "Chloé": (2000, 360_00, 0),
    }
    (message,) = share_messages(coop, "chloé")
    assert "Your points: 2 of 3 (66.67%)" in message
    assert "Your dividend: €360.00" in message
    assert "legal reserve €135.00 (15%), development fund €225.00 (25%), dividend €540.00 (60%)" in message
    (summary,) = coop.room()
    assert "2 members share a dividend of €540.00" in summary.text
    assert summary.attachment is not None and summary.attachment[0] == "shares-2026-11.png"
    assert summary.attachment[1].startswith(b"\x89PNG")
    with coop.session() as session:
        december = periods.period_at(session, coop.clock.now())
        assert december is not None and december.label == "2026-12" and december.status == "open"


async def test_base_pay_is_an_expense_shown_next_to_the_dividend(coop: Coop) -> None:
    config = coop.bot.config
    with coop.session() as session:
        settings_svc.apply(session, config, "base_pay_per_hour", "12.50", coop.clock.now() - timedelta(days=5))
        settings_svc.apply(session, config, "base_pay_per_delivery", "3", coop.clock.now() - timedelta(days=5))
    chloe = coop.member("Chloé")
    await coop.say(chloe, "/shift start")
    coop.clock.advance(hours=6, minutes=30)
    await coop.say(chloe, "/shift end")
    for _ in range(4):
        deliver(coop, coop.member_id(chloe), price=0)
    money(coop, "income", 500_00)
    coop.clock.set(NOVEMBER_ENDS)
    await coop.tick()
    base = 6 * 12_50 + 6_25 + 4 * 3_00  # 93.25
    assert allocations(coop, "2026-11")["Chloé"][2] == base
    with coop.session() as session:
        lines = [(r[3], r[4], r[7], r[9]) for r in exports.ledger_rows(session, coop.bot.config, "2026-11")]
    assert lines == [
        ("income", "500.00", "", ""),
        ("base_pay", "93.25", "Chloé", f"base_pay:1:{coop.member_id('chloé')}"),  # an expense in the ledger
    ]
    (message,) = share_messages(coop, "chloé")
    assert "Your base pay: €93.25 (6.5 h of shifts, 4 deliveries)" in message
    assert "base pay €93.25, so a net of €406.75" in message


async def test_a_deficit_distributes_nothing_and_says_so(coop: Coop) -> None:
    coop.member("Chloé")
    work(coop, "chloé", "admin", 3000)
    money(coop, "income", 100_00)
    money(coop, "expense", 250_00)
    coop.clock.set(NOVEMBER_ENDS)
    await coop.tick()
    assert allocations(coop, "2026-11") == {"Chloé": (3000, 0, 0)}
    (message,) = share_messages(coop, "chloé")
    assert "No dividend this period: the co-op's net is -€150.00, a deficit" in message
    assert "No dividend" in coop.room()[0].text


async def test_no_points_distributes_nothing_and_says_so(coop: Coop) -> None:
    coop.member("Chloé")
    money(coop, "income", 100_00)
    coop.clock.set(NOVEMBER_ENDS)
    await coop.tick()
    (message,) = share_messages(coop, "chloé")
    assert "nobody has approved points, so the dividend pool (€60.00) stays with the co-op" in message
    assert coop.room()[0].attachment is None


async def test_a_vote_mid_period_applies_from_the_next_period(coop: Coop) -> None:
    coop.member("Chloé")
    work(coop, "chloé", "admin", 1000)
    money(coop, "income", 100_00)
    coop.clock.advance(days=10)
    with coop.session() as session:
        settings_svc.apply(session, coop.bot.config, "legal_reserve_pct", "50", coop.clock.now())
    coop.clock.set(NOVEMBER_ENDS)
    await coop.tick()
    assert allocations(coop, "2026-11")["Chloé"][1] == 60_00  # still 15 / 25 / 60
    work(coop, "chloé", "admin", 1000)
    money(coop, "income", 100_00)
    coop.clock.set(datetime(2026, 12, 31, 23, 0, tzinfo=UTC))
    await coop.tick()
    assert allocations(coop, "2026-12")["Chloé"][1] == 25_00  # 50 / 25 / 25 from December


async def test_pending_work_is_not_counted_and_the_member_is_told(coop: Coop) -> None:
    coop.member("Chloé")
    work(coop, "chloé", "admin", 1000)
    with coop.session() as session:
        member = session.get_one(Member, coop.member_id("chloé"))
        ledger.log_work(session, coop.bot.config, member, 5000, "hour", "admin", "", coop.clock.now())
    money(coop, "income", 100_00)
    coop.clock.set(NOVEMBER_ENDS)
    await coop.tick()
    assert allocations(coop, "2026-11")["Chloé"][0] == 1000
    (message,) = share_messages(coop, "chloé")
    assert "1 of your entries was still waiting for approval" in message


async def test_a_correction_is_settled_in_the_next_period_never_in_the_closed_one(coop: Coop) -> None:
    coop.member("Bruno", "coordinator")
    coop.member("Chloé")
    first = work(coop, "chloé", "admin", 4000)
    work(coop, "bruno", "admin", 4000)
    money(coop, "income", 100_00)
    coop.clock.set(NOVEMBER_ENDS)
    await coop.tick()
    before = allocations(coop, "2026-11")
    reply = await coop.say("bruno", f"/log --corrects C-{first} -1.5h counted twice")
    assert "Correction C-" in reply and "settled in period 2026-12" in reply
    assert "corrected your entry" in coop.inbox("chloé")[-1].text
    work(coop, "chloé", "admin", 3000)
    work(coop, "bruno", "admin", 1500)
    money(coop, "income", 100_00)
    coop.clock.set(datetime(2026, 12, 31, 23, 0, tzinfo=UTC))
    await coop.tick()
    assert allocations(coop, "2026-11") == before
    december = allocations(coop, "2026-12")
    assert december["Chloé"][0] == 1500 and december["Bruno"][0] == 1500
    assert december["Chloé"][1] == december["Bruno"][1] == 30_00
    assert "Of these, -1.5 correct entries of earlier periods" in share_messages(coop, "chloé")[-1]
    with coop.session() as session:
        closed = session.scalars(select(Contribution).where(Contribution.id == first)).one()
        assert closed.quantity_milli == 4000 and closed.status == "approved"


async def test_the_share_is_written_when_sent_in_the_language_the_member_reads_then(coop: Coop) -> None:
    coop.member("Chloé")
    work(coop, "chloé", "admin", 1500)
    money(coop, "income", 100_00)
    coop.clock.set(NOVEMBER_ENDS)
    coop.bot.scheduler.run_due()  # the close queues the message; nothing is sent yet
    with coop.session() as session:
        (row,) = session.scalars(select(OutboxMessage).where(OutboxMessage.key.like("period:%:share:%")))
        assert (row.text, row.render) == ("", "period_share:1")
    assert "en français" in await coop.say("chloé", "/lang fr")
    await coop.bot.outbox.drain()
    (message,) = [m.text for m in coop.inbox("chloé") if "est close" in m.text]
    assert "Vos points\u00a0: 1,5 sur 1,5 (100\u00a0%)" in message


async def test_members_who_hide_are_not_drawn(coop: Coop, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[list[Bar]] = []

    def fake_png(bars: list[Bar], **kwargs: Any) -> bytes:
        drawn.append(list(bars))
        return b"\x89PNG fake"

    monkeypatch.setattr(notices, "shares_png", fake_png)
    for name in ("Bruno", "Chloé", "Dana"):
        coop.member(name)
        work(coop, name.lower(), "admin", 1000)
    assert "no longer be shown" in await coop.say("dana", "/hide")
    money(coop, "income", 100_00)
    coop.clock.set(NOVEMBER_ENDS)
    await coop.tick()
    (bars,) = drawn
    assert sorted(bar.name for bar in bars) == ["Bruno", "Chloé"]
    assert allocations(coop, "2026-11")["Dana"][1] == 20_00  # hidden from the chart, not from the money


async def test_closing_twice_changes_nothing(coop: Coop) -> None:
    coop.member("Chloé")
    work(coop, "chloé", "admin", 1000)
    money(coop, "income", 100_00)
    coop.clock.set(NOVEMBER_ENDS)
    with coop.session() as session:
        period_id = session.scalars(select(Period.id)).one()
    assert close_period(coop.bot.sessions, coop.bot.config, period_id, coop.clock.now()) is not None
    assert close_period(coop.bot.sessions, coop.bot.config, period_id, coop.clock.now()) is None
    await coop.tick()
    await coop.tick(minutes=5)
    assert len(share_messages(coop, "chloé")) == 1
    assert len(allocations(coop, "2026-11")) == 1


def seed(config: Config, bot: CoopBot, clock: FakeClock, members: int) -> int:
    """A co-op of `members` with points and money in November; returns the period id."""
    with bot.sessions() as session, session.begin():
        period = ledger.current_period(session, config, clock.now())
        for number in range(members):
            member = Member(name=f"Rider {number}", role="member", joined_at=clock.now())
            session.add(member)
            session.flush()
            add_identity(session, member, "console", f"rider{number}", clock.now())
            session.add(
                Contribution(
                    member_id=member.id,
                    period_id=period.id,
                    kind="admin",
                    quantity_milli=(number % 7 + 1) * MILLI,
                    points_milli=(number % 7 + 1) * MILLI,
                    status="approved",
                    source="manual",
                    unit="hour",
                    created_at=clock.now(),
                )
            )
        session.add(LedgerEntry(period_id=period.id, kind="income", amount_cents=12_345_67, created_at=clock.now()))
        return period.id


def test_two_closes_at_once_give_one_set_of_allocations(db_url: str, clock: FakeClock) -> None:
    config = make_config(db_url)
    bots = [CoopBot(config, clock=clock), CoopBot(config, clock=clock, migrate=False)]
    try:
        period_id = seed(config, bots[0], clock, members=30)
        clock.set(NOVEMBER_ENDS)
        start = threading.Barrier(4)
        results: list[object] = []

        def close(bot: CoopBot) -> None:
            start.wait()
            try:
                results.append(close_period(bot.sessions, config, period_id, clock.now()))
            except Exception as exc:  # a loser must step aside quietly, not crash
                results.append(exc)

        threads = [threading.Thread(target=close, args=(bots[i % 2],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 4 and not [r for r in results if isinstance(r, Exception)]
        assert sum(result is not None for result in results) == 1
        with bots[0].sessions() as session:
            assert session.scalar(select(func.count()).select_from(Allocation)) == 30
            assert (
                session.scalar(select(func.sum(Allocation.dividend_cents)))
                == split_buckets(12_345_67, Terms()).dividend
            )
            keys = session.scalars(select(OutboxMessage.key)).all()
            assert len(keys) == len(set(keys)) == 31  # 30 members and the room
    finally:
        for bot in bots:
            bot.dispose()


async def test_a_crash_after_the_close_still_tells_each_member_exactly_once(db_url: str, clock: FakeClock) -> None:
    config = make_config(db_url)
    first = CoopBot(config, clock=clock)
    seed(config, first, clock, members=12)
    clock.set(NOVEMBER_ENDS + timedelta(minutes=1))
    first.scheduler.run_due()  # the close commits; the outbox loop never runs: the bot dies here
    first.dispose()

    second = CoopBot(config, clock=clock)
    console = ConsoleTransport(out=None)
    second.add_transport(console)
    try:
        await second.start()  # runs the sweeps again (nothing left to close) and the outbox loop
        await second.outbox.drain()
        await second.scheduler.tick()
        await second.outbox.drain()
    finally:
        await second.stop()
        second.dispose()
    told = Counter(d.chat_id for d in console.log if d.private and "is closed" in d.message.text)
    assert told == Counter({f"rider{n}": 1 for n in range(12)})
    assert sum(1 for d in console.log if not d.private and "is closed" in d.message.text) == 1


async def test_a_close_missed_while_the_bot_was_down_runs_at_the_next_start(sqlite_url: str, clock: FakeClock) -> None:
    config = make_config(sqlite_url)
    bot = CoopBot(config, clock=clock)
    seed(config, bot, clock, members=3)
    bot.dispose()
    clock.set(datetime(2026, 12, 9, 7, 30, tzinfo=UTC))  # back a week later
    again = CoopBot(config, clock=clock)
    console = ConsoleTransport(out=None)
    again.add_transport(console)
    try:
        await again.start()
        await again.outbox.drain()
    finally:
        await again.stop()
        again.dispose()
    assert sum(1 for d in console.log if d.private and "Period 2026-11" in d.message.text) == 3


def entry(member_id: int, period_id: int, kind: str, milli: int, **fields: Any) -> Contribution:
    """A contribution as the ledger stores it, approved unless told otherwise."""
    fields.setdefault("status", "approved")
    return Contribution(member_id=member_id, period_id=period_id, kind=kind, quantity_milli=milli, points_milli=milli,
                        source="manual", unit="hour" if kind == "shift" else "item", created_at=NOVEMBER_ENDS,
                        **fields)  # fmt: skip


async def test_shares_written_together_read_as_those_written_one_by_one(any_coop: Coop) -> None:
    coop, config = any_coop, any_coop.bot.config
    with coop.session() as session:
        for name, value in (("base_pay_per_hour", "12.50"), ("base_pay_per_delivery", "3")):
            settings_svc.apply(session, config, name, value, coop.clock.now() - timedelta(days=5))
    ids = {name: coop.member_id(coop.member(name)) for name in ("Bruno", "Chloé", "Dana", "Élise")}
    money(coop, "income", 900_00)
    with coop.session() as session:
        period_id = session.scalars(select(Period.id)).one()
        bruno, chloe, dana = ids["Bruno"], ids["Chloé"], ids["Dana"]  # Élise did nothing: no work rows at all
        session.add_all([entry(bruno, period_id, "shift", 6500), entry(bruno, period_id, "delivery", 4000),
                         entry(chloe, period_id, "admin", 2000), entry(dana, period_id, "admin", 3000),
                         entry(chloe, period_id, "admin", 1000, status="pending")])  # fmt: skip
        session.flush()
        session.add(entry(dana, period_id, "admin", -500, corrects_id=session.scalars(select(Contribution.id)).first()))
        for member_id in (chloe, ids["Élise"]):
            session.get_one(Member, member_id).language = "fr"
    coop.clock.set(NOVEMBER_ENDS)
    assert close_period(coop.bot.sessions, config, period_id, coop.clock.now()) is not None
    late = coop.member_id(coop.member("Fanny"))  # joined after the close: no share
    renderers, shares = coop.bot.renderers, f"{notices.SHARE}:{period_id}"
    with coop.session() as session:
        rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.render == shares).order_by("member_id")))
        assert [row.member_id for row in rows] == list(ids.values())
        rows.insert(2, OutboxMessage(id=0, member_id=late, render=shares))
        together = renderers.render_all(session, config, rows)
        one_by_one = [renderers.render(session, config, row).text for row in rows if row.member_id != late]
        period, by_share_text = session.get_one(Period, period_id), []
        for member_id in ids.values():
            allocation = notices.allocation_of(session, period_id, member_id)
            assert allocation is not None
            lang = session.get_one(Member, member_id).language or config.coop.default_language
            by_share_text.append(notices.share_text(session, config, period, allocation, lang))
    assert isinstance(together[2], LookupError)
    written = [message.text for message in together if not isinstance(message, Exception)]
    assert written == one_by_one == by_share_text
    assert ["est close" in text for text in written] == [False, True, False, True]  # en, fr, en, fr
    assert "6.5 h of shifts, 4 deliveries" in written[0]
    assert "attendait encore" in written[1] and "earlier periods" in written[2]
