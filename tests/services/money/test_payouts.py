"""Paying members: the IBAN a member gives, the bank file, the marking, and what members see.

One closed November: Bruno (1 h), Chloé (2 h) and Dan (1 h) share a dividend
of €540.00 (income 1,000.00, expenses 100.00; 15 % reserve, 25 % fund) as
135.00, 270.00 and 135.00; Alice, the admin, did no work and is owed nothing.
Bruno and Chloé give an IBAN; Dan does not.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
import sepaxml  # type: ignore[import-untyped]  # sepaxml ships no type hints
import xmlschema
from sqlalchemy import select

from coopbot.cli import main
from coopbot.models import Allocation, AuditEntry, Member, OutboxMessage
from coopbot.services.money import payouts
from tests.conftest import Coop
from tests.services.money.test_close import NOVEMBER_ENDS, money, work

CHLOE_IBAN = "FR76 3000 6000 0112 3456 7890 189"
BRUNO_IBAN = "DE89 3704 0044 0532 0130 00"
DEBTOR = ["--debtor-name", "Coop Vélo", "--debtor-iban", "DE02 1203 0000 0000 2020 51", "--debtor-bic", "BYLADEM1001"]
NS = "{urn:iso:std:iso:20022:tech:xsd:pain.001.001.03}"


@pytest.fixture
def books(filed_coop: tuple[Coop, Path]) -> tuple[Coop, Path]:
    """A co-op whose config file the treasurer's commands read too."""
    return filed_coop


async def closed_november(coop: Coop) -> None:
    coop.member("Alice", "admin")
    coop.member("Bruno", "coordinator")
    coop.member("Chloé")
    coop.member("Dan")
    for handle, hours in (("bruno", 1000), ("chloé", 2000), ("dan", 1000)):
        work(coop, handle, "admin", hours)
    money(coop, "income", 1000_00)
    money(coop, "expense", 100_00)
    coop.clock.set(NOVEMBER_ENDS)
    await coop.tick()
    assert "DE89 •••• •••• 3000" in await coop.say("bruno", f"/iban {BRUNO_IBAN}")
    assert "FR76 •••• •••• 0189" in await coop.say("chloé", f"/iban {CHLOE_IBAN}")


def run(capsys: pytest.CaptureFixture[str], path: Path, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--config", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def transfers_in(xml: str) -> dict[str, str]:
    """IBAN → amount of every transaction of a pain.001 file."""
    root = ElementTree.fromstring(xml)
    return {
        tx.findtext(f"{NS}CdtrAcct/{NS}Id/{NS}IBAN") or "": tx.findtext(f"{NS}Amt/{NS}InstdAmt") or ""
        for tx in root.iter(f"{NS}CdtTrfTxInf")
    }


def paid_rows(coop: Coop) -> dict[str, tuple[bool, str | None]]:
    with coop.session() as s:
        rows = s.execute(select(Member.name, Allocation.paid, Allocation.paid_method)
                         .join(Allocation, Allocation.member_id == Member.id))  # fmt: skip
        return {name: (paid, method) for name, paid, method in rows}


async def test_the_bank_file_pays_each_unpaid_share_exactly_and_validates_against_the_xsd(
    books: tuple[Coop, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    coop, path = books
    await closed_november(coop)
    code, out, err = run(capsys, path, "payouts", "sepa", "--period", "2026-11", *DEBTOR, "--date", "2026-12-05")
    assert code == 0
    # The official ISO 20022 schema sepaxml ships, read again here by xmlschema: the file is valid.
    xsd = Path(os.path.dirname(sepaxml.__file__)) / "schemas" / "pain.001.001.03.xsd"
    xmlschema.XMLSchema(str(xsd)).validate(out.strip())
    assert transfers_in(out) == {"DE89370400440532013000": "135.00", "FR7630006000011234567890189": "270.00"}
    assert ElementTree.fromstring(out).findtext(f"{NS}CstmrCdtTrfInitn/{NS}GrpHdr/{NS}CtrlSum") == "405.00"
    assert "left out, no IBAN: #4 Dan" in err
    # Bruno is paid in cash: the next file holds Chloé alone.
    assert run(capsys, path, "payouts", "mark", "--period", "2026-11", "--member", "2", "--method", "cash")[0] == 0
    _, again, _ = run(capsys, path, "payouts", "sepa", "--period", "2026-11", *DEBTOR)
    assert transfers_in(again) == {"FR7630006000011234567890189": "270.00"}


async def test_marking_tells_each_member_once_and_twice_changes_nothing(
    books: tuple[Coop, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    coop, path = books
    await closed_november(coop)
    code, out, _ = run(capsys, path, "payouts", "mark", "--period", "2026-11", "--date", "2026-12-05")
    assert code == 0 and out.endswith("3 shares of 2026-11 marked paid (sepa, 2026-12-05): 540.00 EUR\n")
    assert run(capsys, path, "payouts", "mark", "--period", "2026-11")[1].startswith("0 shares of 2026-11")
    coop.clock.set(datetime.now(UTC) + timedelta(minutes=1))  # the command queued its messages at the wall clock
    await coop.tick()
    told = [m.text for m in coop.inbox("chloé") if "was paid" in m.text]
    assert told == ["Your share for 2026-11 (€270.00) was paid on 5 December by bank transfer."]
    assert [m.text for m in coop.inbox("alice") if "was paid" in m.text] == []
    assert "dividend €270.00, base pay €0.00, paid on 5 December by bank transfer." in await coop.say("chloé", "/share")
    assert "Payment: paid on 5 December" in await coop.say("chloé", "/share 2026-11")
    # Undone (the bank returned it), audited; marked again: the member is not told twice.
    assert run(capsys, path, "payouts", "mark", "--period", "2026-11", "--member", "3", "--undo")[0] == 0
    assert paid_rows(coop)["Chloé"] == (False, None)
    assert "not paid yet" in await coop.say("chloé", "/share")
    run(capsys, path, "payouts", "mark", "--period", "2026-11", "--member", "3", "--date", "2026-12-06")
    await coop.tick(minutes=1)
    assert len([m for m in coop.inbox("chloé") if "was paid" in m.text]) == 1
    with coop.session() as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("allocation.%"))).all()
        keys = s.scalars(select(OutboxMessage.key).where(OutboxMessage.key.like("payout:%"))).all()
    assert actions.count("allocation.paid") == 4 and actions.count("allocation.unpaid") == 1
    assert sorted(keys) == ["payout:1:2:console", "payout:1:3:console", "payout:1:4:console"]


async def test_payouts_shows_the_coordinators_what_is_paid_and_owed(books: tuple[Coop, Path]) -> None:
    coop, _ = books
    await closed_november(coop)
    with coop.session() as s:
        period = payouts.closed_period(s, "2026-11")
        payouts.mark_paid(s, coop.bot.config, period, 2, date(2026, 12, 5), "cash", None, coop.clock.now())
    await coop.tick()
    assert "Your share for 2026-11 (€135.00) was paid on 5 December in cash." in [m.text for m in coop.inbox("bruno")]
    assert await coop.say("bruno", "/payouts") == (
        "Payouts for 2026-11:\n• Paid: €135.00 to 1 member.\n• Not paid yet: €405.00 to 2 members.\n"
        "• 1 member owed money has given no IBAN: the bank file leaves them out."
    )
    assert "Only coordinators" in await coop.say("dan", "/payouts")


async def test_an_iban_is_checked_masked_and_never_taken_from_a_group(coop: Coop) -> None:
    zoe = coop.member("Zoé")
    assert await coop.say(zoe, "/iban FR77 3000 6000 0112 3456 7890 189") == (
        "FR77 3000 6000 0112 3456 7890 189 has a typo: its check digits do not match the rest. "
        "Copy your IBAN from your bank statement and type /iban followed by it."
    )
    assert "not an IBAN" in await coop.say(zoe, "/iban hello")
    assert "You have not given an IBAN yet" in await coop.say(zoe, "/iban")
    in_group = await coop.replies(zoe, f"/iban {CHLOE_IBAN}", private=False)
    assert [m.text for m in in_group if m.private] == [
        "Never type your IBAN in a group: I did not save it, since everyone there saw it. "
        "Type /iban followed by your IBAN here, in our private chat."
    ]
    assert all("0189" not in m.text for m in in_group)
    assert coop.get_member(zoe).iban_sealed is None
    assert await coop.say(zoe, f"/iban {CHLOE_IBAN.lower()}") == (
        "Your shares will be paid to FR76 •••• •••• 0189. Type /iban again with another IBAN to change it."
    )
    sealed = coop.get_member(zoe).iban_sealed or ""
    assert "3000" not in sealed and "0189" not in sealed and len(sealed) > 40
    assert "FR76 •••• •••• 0189" in await coop.say(zoe, "/iban")
    with coop.session() as s:
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "member.iban_set")).one()
        assert audit.details == {}


async def test_a_sealed_iban_opens_for_its_own_member_only(coop: Coop) -> None:
    from coopbot.secrets import KeyLost

    coop.member("Zoé")
    coop.member("Yann")
    with coop.session() as s:
        zoe, yann = s.get_one(Member, 1), s.get_one(Member, 2)
        payouts.set_iban(s, coop.bot.config, zoe, CHLOE_IBAN, datetime(2026, 11, 2, tzinfo=UTC))
        assert payouts.iban_of(coop.bot.config, zoe) == "FR7630006000011234567890189"
        yann.iban_sealed = zoe.iban_sealed
        with pytest.raises(KeyLost):
            payouts.iban_of(coop.bot.config, yann)


async def test_a_french_member_is_told_in_french_with_babels_dates_and_money(books: tuple[Coop, Path]) -> None:
    coop, _ = books
    await closed_november(coop)
    with coop.session() as s:
        period = payouts.closed_period(s, "2026-11")
        payouts.mark_paid(s, coop.bot.config, period, 3, date(2026, 12, 5), "sepa", None, coop.clock.now())
        allocation = s.scalars(select(Allocation).where(Allocation.member_id == 3)).one()
        text = payouts.paid_message(coop.bot.config, period, allocation, "fr").text
        alice = s.scalars(select(Allocation).where(Allocation.member_id == 1)).one()
        assert payouts.paid_status(coop.bot.config, alice, "en") == ""  # owed nothing: nothing to say
    assert text == "Votre part pour 2026-11 (270,00\u00a0€) a été versée le 5 décembre par virement bancaire."


def test_names_in_the_bank_file_are_in_the_characters_every_sepa_bank_accepts() -> None:
    assert payouts.sepa_text("Chloé & Zoë #3 🚲") == "Chloe Zoe 3"
    assert payouts.sepa_text("Coop Vélo 2026-11 member 4") == "Coop Velo 2026-11 member 4"
