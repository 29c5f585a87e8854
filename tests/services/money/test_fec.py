"""The FEC: the year's books as the tax office reads them, checked against its rules and the ledger.

One November 2026: Bruno (1 h) and Chloé (2 h) do admin work; the co-op
records €1,000.00 of income and €100.00 of expenses, and Chloé delivers a
shop's order for €12.50, with €2.00 of base pay a delivery. The period closes, every share is
paid on 5 December, and an expense recorded in January 2027 stays out of 2026.
"""

from __future__ import annotations

import io
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from coopbot.app import CoopBot
from coopbot.clock import FakeClock
from coopbot.config import AccountingSection
from coopbot.errors import UsageError
from coopbot.i18n import t
from coopbot.models import Allocation, Job, LedgerEntry, Member, Period
from coopbot.services.money import fec, ledger, payouts
from tests.conftest import Coop, make_config
from tests.services.money.test_close import NOVEMBER_ENDS, money, work

AMOUNT = re.compile(r"\d+,\d{2}")
DAY = re.compile(r"\d{8}")


@pytest.fixture
async def books(db_url: str, clock: FakeClock) -> AsyncIterator[Coop]:
    bot = CoopBot(make_config(db_url, shares={"base_pay_per_delivery": 2.0}), clock=clock)
    coop = Coop(bot, clock)
    coop.member("Alice", "admin")
    coop.member("Bruno", "coordinator")
    coop.member("Chloé")
    coop.member("Boulangerie Louise", "customer", handle="louise")
    work(coop, "bruno", "admin", 1000)
    work(coop, "chloé", "admin", 2000)
    money(coop, "income", 1000_00)
    money(coop, "expense", 100_00)
    job = coop.delivered_job(coop.member_id("chloé"), 12_50)
    shop = coop.member_id("louise")
    with coop.session() as session:
        stored = session.get_one(Job, job.id)
        stored.customer_id = shop
        ledger.record_delivery(session, bot.config, stored, coop.clock.now())
    coop.clock.set(NOVEMBER_ENDS)
    await coop.tick()
    with coop.session() as session:
        period = payouts.closed_period(session, "2026-11")
        payouts.mark_paid(session, bot.config, period, None, date(2026, 12, 5), "sepa", None, coop.clock.now())
    coop.clock.set(datetime(2027, 1, 10, 9, 0, tzinfo=UTC))
    money(coop, "expense", 7_00)
    yield coop
    bot.dispose()


def produced(coop: Coop, year: int = 2026) -> str:
    out = io.StringIO()
    with coop.session() as session:
        fec.export_year(session, coop.bot.config, year, out)
    return out.getvalue()


def records(text: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    return [dict(zip(fec.HEADER, line.split("\t"), strict=True)) for line in lines[1:]]


def cents(text: str) -> int:
    whole, part = text.split(",")
    return int(whole) * 100 + int(part)


async def test_the_file_follows_the_published_rules(books: Coop) -> None:
    text = produced(books)
    assert_follows_the_rules(text, 2026)
    assert {row["JournalCode"] for row in records(text)} == {"VE", "AC", "OD", "BQ"}


def assert_follows_the_rules(text: str, year: int) -> None:
    """The published FEC rules: the columns, the formats, every entry and the file balanced,
    each journal numbered without gaps, entries in date order."""
    lines = text.splitlines()
    assert lines[0].split("\t") == [
        "JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum",
        "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet",
        "ValidDate", "Montantdevise", "Idevise",
    ]  # fmt: skip
    assert all(len(line.split("\t")) == 18 for line in lines)
    rows = records(text)
    assert len(rows) > 10
    per_entry: dict[tuple[str, str], int] = defaultdict(int)
    numbers: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        for key in ("EcritureDate", "PieceDate", "ValidDate"):
            assert DAY.fullmatch(row[key]) and row[key].startswith(str(year)), row
        assert row["DateLet"] == "" and row["EcritureLet"] == ""
        for key in ("Debit", "Credit"):
            assert AMOUNT.fullmatch(row[key]), row
        assert row["Montantdevise"] == row["Idevise"] == ""  # the co-op keeps its books in euros
        assert row["CompteNum"].isdigit() and row["EcritureLib"] and row["PieceRef"]
        assert (cents(row["Debit"]) == 0) != (cents(row["Credit"]) == 0), row
        key = (row["JournalCode"], row["EcritureNum"])
        per_entry[key] += cents(row["Debit"]) - cents(row["Credit"])
        number = int(row["EcritureNum"].removeprefix(row["JournalCode"]))
        if not numbers[row["JournalCode"]] or numbers[row["JournalCode"]][-1] != number:
            numbers[row["JournalCode"]].append(number)
    assert per_entry and all(balance == 0 for balance in per_entry.values())
    assert sum(cents(r["Debit"]) for r in rows) == sum(cents(r["Credit"]) for r in rows)
    assert set(numbers) <= {"VE", "AC", "OD", "BQ"}
    for journal, seen in numbers.items():
        assert seen == list(range(1, len(seen) + 1)), journal
    assert [r["EcritureDate"] for r in rows] == sorted(r["EcritureDate"] for r in rows)


async def test_every_euro_of_the_ledger_appears_once(books: Coop) -> None:
    rows = records(produced(books))
    with books.session() as session:
        entries = [
            (entry.kind, entry.amount_cents)
            for entry in session.scalars(select(LedgerEntry))
            if entry.created_at.year == 2026
        ]
        names = [member.name for member in session.scalars(select(Member))]
    sales = Counter(cents(r["Credit"]) for r in rows if r["CompteNum"] == "706")
    purchases = Counter(cents(r["Debit"]) for r in rows if r["CompteNum"] == "628")
    assert sales == Counter(amount for kind, amount in entries if kind == "income") == Counter([1000_00, 12_50])
    assert purchases == Counter(amount for kind, amount in entries if kind == "expense") == Counter([100_00])
    assert all(cents(r["Debit"]) == 0 for r in rows if r["CompteNum"] == "706")
    # The shop's order is owed by the shop (its own account, by number), the rest came into the bank.
    louise = books.member_id("louise")
    shop = [r for r in rows if r["CompteNum"] == "411"]
    assert [(r["CompAuxNum"], r["CompAuxLib"], r["Debit"]) for r in shop] == [
        (f"C{louise}", f"customer #{louise}", "12,50")
    ]
    text = produced(books)
    assert not any(name in text for name in names) and "chloé" not in text and "louise" not in text
    assert "7,00" not in text  # January 2027 is the next year's file


async def test_the_close_and_the_payouts(books: Coop) -> None:
    rows = records(produced(books))
    with books.session() as session:
        period = session.scalars(select(Period).where(Period.label == "2026-11")).one()
        totals = dict(period.totals)
        shares = {a.member_id: (a.dividend_cents, a.base_pay_cents) for a in session.scalars(select(Allocation))}
    bruno, chloe = books.member_id("bruno"), books.member_id("chloé")
    assert shares[bruno][1] == 0 and shares[chloe][1] == 2_00
    od = [r for r in rows if r["JournalCode"] == "OD"]
    assert {r["EcritureDate"] for r in od} == {"20261130"}  # the period's last day, not the close's
    result = [cents(r["Debit"]) for r in od if r["CompteNum"] == "120"]
    assert result == [totals["surplus"]] and totals["surplus"] > 0
    assert [cents(r["Credit"]) for r in od if r["CompteNum"] == "1061"] == [totals["legal_reserve"]]
    assert [cents(r["Credit"]) for r in od if r["CompteNum"] == "1068"] == [totals["development_fund"]]
    owed = {r["CompAuxNum"]: cents(r["Credit"]) for r in od if r["CompteNum"] == "457"}
    assert owed == {f"M{m}": dividend for m, (dividend, _) in shares.items() if dividend}
    pay = {r["CompAuxNum"]: cents(r["Credit"]) for r in od if r["CompteNum"] == "421"}
    assert pay == {f"M{chloe}": 2_00}
    assert sum(cents(r["Debit"]) for r in od if r["CompteNum"] == "641") == 2_00
    bq = [r for r in rows if r["JournalCode"] == "BQ"]
    assert {r["EcritureDate"] for r in bq} == {"20261205"}
    assert sum(cents(r["Credit"]) for r in bq if r["CompteNum"] == "512") == sum(d + p for d, p in shares.values())
    paid = {(r["CompteNum"], r["CompAuxNum"]): cents(r["Debit"]) for r in bq if r["CompteNum"] != "512"}
    assert paid[("421", f"M{chloe}")] == 2_00 and paid[("457", f"M{chloe}")] == shares[chloe][0]


def test_the_file_is_named_by_siren_and_year_and_a_bad_siren_is_refused() -> None:
    assert fec.file_name("123456789", 2026) == "123456789FEC20261231.txt"
    for bad in ("12345678", "1234567890", "12345678A", ""):
        with pytest.raises(UsageError) as caught:
            fec.file_name(bad, 2026)
        sentence = t("en", caught.value.key, **caught.value.params)
        assert sentence.endswith("like 123456789.") and sentence.count(". ") == 0


def test_a_foreign_currency_fills_the_currency_columns_and_amounts_use_a_comma() -> None:
    made = fec.entry("sales", date(2026, 3, 2), "L1", "tab\there", [fec.dr("bank", 1234_56), fec.cr("sales", 1234_56)])
    assert made is not None
    rows = list(fec.rows([made], AccountingSection(sales="7061"), "chf"))
    assert [(r[2], r[4], r[10], r[11], r[12], r[16], r[17]) for r in rows] == [
        ("VE000001", "512", "tab here", "1234,56", "0,00", "1234,56", "CHF"),
        ("VE000001", "7061", "tab here", "0,00", "1234,56", "1234,56", "CHF"),
    ]
    back = [fec.dr("purchases", -5_00), fec.cr("bank", -5_00)]  # a corrected expense: money came back
    refund = fec.entry("purchases", date(2026, 3, 3), "L2", "refund", back)
    assert refund is not None and [(line.debit, line.credit) for line in refund.lines] == [(0, 5_00), (5_00, 0)]
    with pytest.raises(RuntimeError):
        fec.entry("misc", date(2026, 3, 3), "X", "x", [fec.dr("wages", 1), fec.cr("staff", 2)])
