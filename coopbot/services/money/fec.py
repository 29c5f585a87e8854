"""The year's books as a FEC (fichier des écritures comptables), for the accountant.

French law (LPF art. L47 A, BOI-CF-IOR-60-40-20) asks every company keeping its
books by computer to hand over one file per year: 18 columns in a fixed order,
tab-separated, dates as YYYYMMDD, amounts with a comma decimal, every entry
balanced and numbered without gaps within its journal. This module turns what
the bot knows into those entries, double entry, with nothing written back:

* income (sales journal): debit the bank, or the customer's account when a
  shop's order brought it, credit sales;
* expenses (purchases journal): debit purchases, credit the bank;
* base pay, at each close (miscellaneous journal): debit wages, credit what
  is owed to each member;
* each close's surplus (miscellaneous journal): debit the result, credit the
  legal reserve, the development fund (other reserves, with any dividend
  nobody could share) and each member's dividend;
* payouts marked paid (bank journal): debit what was owed, credit the bank;
* spendings the members voted from the development fund (bank journal):
  debit other reserves, credit the bank, labelled with the poll and the
  payee. The accountant may reclass a purchase that is an asset (cargo
  bikes); the bot books it where the members decided it comes from.

The bot does not close the income and expense accounts into the result: that
is the accountant's year-end work, and doing it here would book every euro of
income twice. What an accountant checks is that the result account's debits
(the surpluses allocated) do not exceed the year's sales minus its charges.
A close and its base pay are dated on the period's last day, so December's
belong to its year even when the close runs on 1 January.

Members and customers appear as auxiliary accounts "M12" ("member #12") and
"C40" ("customer #40"): a pseudonym the accountant can ask the co-op about,
never a chat identity nor a name sent where it is not needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from coopbot.config import AccountingSection, Config
from coopbot.errors import UsageError
from coopbot.models import Allocation, FundSpending, Job, LedgerEntry, Period

HEADER: tuple[str, ...] = (
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
)
#: Journals in the order same-day entries are listed.
JOURNALS = ("sales", "purchases", "misc", "bank")
JOURNAL_LABELS = {"sales": "Ventes", "purchases": "Achats", "misc": "Opérations diverses", "bank": "Banque"}
#: CompteLib for each account of `[accounting]`, whatever number the co-op gives it.
ACCOUNT_LABELS = {
    "sales": "Prestations de services",
    "customers": "Clients",
    "bank": "Banque",
    "purchases": "Charges externes",
    "suppliers": "Fournisseurs",
    "wages": "Rémunérations du personnel",
    "staff": "Personnel - rémunérations dues",
    "result": "Résultat de l'exercice",
    "legal_reserve": "Réserve légale",
    "other_reserves": "Autres réserves",
    "dividends": "Associés - dividendes à payer",
}
SIREN = re.compile(r"\d{9}")
UNSAFE = re.compile(r"[\t\r\n]+")


def check_siren(siren: str) -> str:
    """The nine digits the file is named after; anything else is refused before any work."""
    if SIREN.fullmatch(siren.strip()) is None:
        raise UsageError("ledger.fec_bad_siren", siren=siren[:20] or "''")
    return siren.strip()


def file_name(siren: str, year: int) -> str:
    """`{siren}FEC{closing date}.txt`, the name the tax office expects (a calendar year here)."""
    return f"{check_siren(siren)}FEC{year}1231.txt"


def amount(cents: int) -> str:
    """'1250,00': comma decimal, two places, no grouping (FEC amounts are never negative)."""
    whole, part = divmod(cents, 100)
    return f"{whole},{part:02d}"


@dataclass(frozen=True)
class Line:
    """One side of an entry on one account; exactly one of debit and credit is non-zero."""

    role: str  #: the `[accounting]` key of the account
    debit: int = 0
    credit: int = 0
    aux: str = ""
    aux_label: str = ""


@dataclass(frozen=True)
class Entry:
    """One balanced entry (écriture): its journal, day, piece and lines."""

    journal: str
    day: date
    piece: str
    label: str
    lines: tuple[Line, ...]
    order: int = 0  #: ties on the same day and journal, so the numbering never depends on row order

    @property
    def balanced(self) -> bool:
        return sum(line.debit for line in self.lines) == sum(line.credit for line in self.lines)


def dr(role: str, cents: int, aux: str = "", aux_label: str = "") -> Line:
    """A debit of `cents`; a negative amount (a correction) is a credit of its opposite."""
    return Line(role, cents, 0, aux, aux_label) if cents >= 0 else Line(role, 0, -cents, aux, aux_label)


def cr(role: str, cents: int, aux: str = "", aux_label: str = "") -> Line:
    return Line(role, 0, cents, aux, aux_label) if cents >= 0 else Line(role, -cents, 0, aux, aux_label)


def member_aux(member_id: int) -> tuple[str, str]:
    return f"M{member_id}", f"member #{member_id}"


def entry(journal: str, day: date, piece: str, label: str, lines: Iterable[Line], order: int = 0) -> Entry | None:
    """The entry without its zero lines; None when nothing is left (a period with no surplus)."""
    kept = tuple(line for line in lines if line.debit or line.credit)
    if not kept:
        return None
    made = Entry(journal, day, piece, label, kept, order)
    if not made.balanced:
        raise RuntimeError(f"unbalanced entry {piece}: {kept}")
    return made


# --- from the books ---------------------------------------------------------------------


def year_entries(session: Session, config: Config, year: int) -> list[Entry]:
    """Every entry dated in `year` (the co-op's calendar year), in the order they are numbered."""
    tz = config.coop.tz
    start = datetime(year, 1, 1, tzinfo=tz).astimezone(UTC)
    end = datetime(year + 1, 1, 1, tzinfo=tz).astimezone(UTC)
    found = [*money_entries(session, config, start, end), *close_entries(session, config, year)]
    found += payout_entries(session, config, start, end)
    found += spending_entries(session, config, start, end)
    return sorted(found, key=lambda e: (e.day, JOURNALS.index(e.journal), e.order))


def money_entries(session: Session, config: Config, start: datetime, end: datetime) -> Iterator[Entry]:
    """Income and expenses as recorded, one entry each, dated the day they were recorded."""
    tz = config.coop.tz
    rows = list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
            .order_by(LedgerEntry.id)
        )
    )
    customers = customers_of(session, rows)
    for row in rows:
        day = row.created_at.astimezone(tz).date()
        label = row.note or row.kind
        piece = f"L{row.id}"
        if row.kind == "income":
            customer = customers.get(row.id)
            debit = (
                dr("customers", row.amount_cents, f"C{customer}", f"customer #{customer}")
                if customer
                else dr("bank", row.amount_cents)
            )
            made = entry("sales", day, piece, label, (debit, cr("sales", row.amount_cents)), row.id)
        elif row.kind == "expense":
            made = entry("purchases", day, piece, label, (dr("purchases", row.amount_cents),
                                                          cr("bank", row.amount_cents)), row.id)  # fmt: skip
        else:
            raise ValueError(f"ledger entry {row.id} is of unknown kind {row.kind!r}")
        if made is not None:
            yield made


def customers_of(session: Session, rows: list[LedgerEntry]) -> dict[int, int]:
    """Ledger entry id → the customer whose order brought the income (the job's `customer_id`)."""
    refs = {row.id: row.source_ref or "" for row in rows}
    jobs = {int(ref[4:]): entry_id for entry_id, ref in refs.items() if ref.startswith("job:") and ref[4:].isdigit()}
    if not jobs:
        return {}
    found = session.execute(select(Job.id, Job.customer_id).where(Job.id.in_(list(jobs)), Job.customer_id.is_not(None)))
    return {jobs[job_id]: customer_id for job_id, customer_id in found if customer_id is not None}


def last_day(config: Config, period: Period) -> date:
    return (period.ends_at - timedelta(microseconds=1)).astimezone(config.coop.tz).date()


def close_entries(session: Session, config: Config, year: int) -> Iterator[Entry]:
    """Each closed period ending in `year`: its base pay, then the allocation of its surplus."""
    periods = session.scalars(select(Period).where(Period.closed_at.is_not(None)).order_by(Period.starts_at))
    for period in periods:
        day = last_day(config, period)
        if day.year != year:
            continue
        shares = list(session.scalars(
            select(Allocation).where(Allocation.period_id == period.id).order_by(Allocation.member_id)
        ))  # fmt: skip
        pay: list[Line] = []
        for share in shares:
            pay += [dr("wages", share.base_pay_cents), cr("staff", share.base_pay_cents, *member_aux(share.member_id))]
        made = entry("misc", day, f"{period.label}-pay", f"base pay {period.label}", pay, 2 * period.id)
        if made is not None:
            yield made
        totals = period.totals
        distributed = sum(share.dividend_cents for share in shares)
        kept = int(totals.get("dividend", 0)) - distributed  # nobody had points: the co-op keeps it
        credits = [
            cr("legal_reserve", int(totals.get("legal_reserve", 0))),
            cr("other_reserves", int(totals.get("development_fund", 0)) + kept),
            *(cr("dividends", share.dividend_cents, *member_aux(share.member_id)) for share in shares),
        ]
        allocated = sum(line.credit - line.debit for line in credits)
        lines = [dr("result", allocated), *credits]
        made = entry("misc", day, f"{period.label}-close", f"surplus {period.label}", lines, 2 * period.id + 1)
        if made is not None:
            yield made


def payout_entries(session: Session, config: Config, start: datetime, end: datetime) -> Iterator[Entry]:
    """Each member's share marked paid, on the day it was paid: what was owed leaves the bank."""
    rows = session.execute(
        select(Allocation, Period.label)
        .join(Period, Period.id == Allocation.period_id)
        .where(Allocation.paid.is_(True), Allocation.paid_at >= start, Allocation.paid_at < end)
        .order_by(Allocation.id)
    )
    for share, label in rows:
        assert share.paid_at is not None  # the query keeps only those with a day
        aux = member_aux(share.member_id)
        lines = (
            dr("dividends", share.dividend_cents, *aux),
            dr("staff", share.base_pay_cents, *aux),
            cr("bank", share.dividend_cents + share.base_pay_cents),
        )
        day = share.paid_at.astimezone(config.coop.tz).date()
        made = entry("bank", day, f"{label}-{aux[0]}", f"payout {label} {aux[1]}", lines, share.id)
        if made is not None:
            yield made


def spending_entries(session: Session, config: Config, start: datetime, end: datetime) -> Iterator[Entry]:
    """Each spending from the development fund, on the day its poll passed."""
    rows = session.scalars(
        select(FundSpending)
        .where(FundSpending.spent_at >= start, FundSpending.spent_at < end)
        .order_by(FundSpending.id)
    )
    for row in rows:
        poll = f"P-{row.poll_id}" if row.poll_id is not None else f"F{row.id}"
        label = f"{poll} {row.purpose}" + (f" - {row.payee}" if row.payee else "")
        lines = (dr("other_reserves", row.amount_cents), cr("bank", row.amount_cents))
        made = entry("bank", row.spent_at.astimezone(config.coop.tz).date(), poll, label, lines, 10**9 + row.id)
        if made is not None:
            yield made


# --- the file ------------------------------------------------------------------------------


def clean(text: str) -> str:
    """A field without the tabs and line breaks that would break the file's columns."""
    return UNSAFE.sub(" ", text).strip()


def rows(entries: Iterable[Entry], accounting: AccountingSection, currency: str) -> Iterator[tuple[str, ...]]:
    """The FEC lines of `entries`, numbered 1, 2, 3… within each journal in the order given."""
    numbers = dict.fromkeys(JOURNALS, 0)
    foreign = currency.upper() != "EUR"
    for made in entries:
        numbers[made.journal] += 1
        code = getattr(accounting, f"{made.journal}_journal")
        day = f"{made.day:%Y%m%d}"
        for line in made.lines:
            side = line.debit or line.credit
            yield (
                code,
                JOURNAL_LABELS[made.journal],
                f"{code}{numbers[made.journal]:06d}",
                day,
                getattr(accounting, line.role),
                ACCOUNT_LABELS[line.role],
                line.aux,
                line.aux_label,
                clean(made.piece),
                day,
                clean(made.label)[:200] or made.journal,
                amount(line.debit),
                amount(line.credit),
                "",
                "",
                day,
                amount(side) if foreign else "",
                currency.upper() if foreign else "",
            )


def write_fec(out: TextIO, lines: Iterable[tuple[str, ...]]) -> int:
    """The header and `lines`, tab-separated; returns how many lines after the header."""
    out.write("\t".join(HEADER) + "\n")
    count = 0
    for line in lines:
        out.write("\t".join(line) + "\n")
        count += 1
    return count


def export_year(session: Session, config: Config, year: int, out: TextIO) -> int:
    return write_fec(out, rows(year_entries(session, config, year), config.accounting, config.coop.currency))
