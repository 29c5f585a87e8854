"""Money out, start to finish, as the treasurer, the members and the accountant live it.

The treasurer closes November, downloads the bank file (valid against the
official XSD), marks it paid and every member owed money is told; the
accountant's FEC for the year follows the published rules; then the members
vote to spend €3,200 of the development fund, and both `/funds` and the FEC
show it. The treasurer's steps are the CLI commands a treasurer types.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sepaxml  # type: ignore[import-untyped]  # sepaxml ships no type hints
import xmlschema

from tests.conftest import Coop
from tests.services.money.test_close import NOVEMBER_ENDS
from tests.services.money.test_fec import assert_follows_the_rules, cents, records
from tests.services.money.test_funds import november
from tests.services.money.test_payouts import BRUNO_IBAN, CHLOE_IBAN, DEBTOR, run, transfers_in

SIREN = "123456789"


@pytest.fixture
def coop(filed_coop: tuple[Coop, Path]) -> tuple[Coop, Path]:
    """November's work and money recorded; the config file the treasurer's commands read."""
    november(filed_coop[0])
    return filed_coop


async def test_close_pay_book_and_spend_the_development_fund(
    coop: tuple[Coop, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    members, path = coop
    await members.say("bruno", f"/iban {BRUNO_IBAN}")
    await members.say("chloé", f"/iban {CHLOE_IBAN}")
    members.clock.set(NOVEMBER_ENDS)
    await members.tick()  # the close: €13,000.00 surplus, €7,800.00 shared by Bruno and Chloé

    code, bank_file, _ = run(capsys, path, "payouts", "sepa", "--period", "2026-11", *DEBTOR)
    assert code == 0
    xsd = Path(os.path.dirname(sepaxml.__file__)) / "schemas" / "pain.001.001.03.xsd"
    xmlschema.XMLSchema(str(xsd)).validate(bank_file.strip())
    assert transfers_in(bank_file) == {"DE89370400440532013000": "2600.00", "FR7630006000011234567890189": "5200.00"}

    code, said, _ = run(capsys, path, "payouts", "mark", "--period", "2026-11", "--date", "2026-12-05")
    assert code == 0 and said.endswith("2 shares of 2026-11 marked paid (sepa, 2026-12-05): 7800.00 EUR\n")

    assert "P-1 is open" in await members.say(
        "chloé", '/propose Buy two cargo bikes --spend 3200.00 from development_fund --to "Vélos Dupont" --closes 2d'
    )
    for who in ("alice", "bruno", "chloé"):
        await members.say(who, "/vote P-1 agree")
    await members.tick(days=2)
    funds = await members.say("alice", "/funds")
    assert "Legal reserve: €1,950.00" in funds
    assert "Development fund: €50.00" in funds
    assert "−€3,200.00 fund, Buy two cargo bikes, paid to Vélos Dupont (P-1)" in funds

    members.clock.set(datetime.now(UTC) + timedelta(minutes=1))  # the CLI queued its messages at the wall clock
    await members.tick()
    for who, amount in (("bruno", "€2,600.00"), ("chloé", "€5,200.00")):
        told = f"Your share for 2026-11 ({amount}) was paid on 5 December by bank transfer."
        assert told in [m.text for m in members.inbox(who)]

    code, said, _ = run(capsys, path, "export", "fec", "--year", "2026", "--siren", SIREN, "--out", str(tmp_path))
    assert code == 0
    text = (tmp_path / f"{SIREN}FEC20261231.txt").read_text(encoding="utf-8")
    assert_follows_the_rules(text, 2026)
    rows = records(text)
    credited: dict[str, int] = {}
    for row in rows:
        credited[row["CompteNum"]] = credited.get(row["CompteNum"], 0) + cents(row["Credit"]) - cents(row["Debit"])
    # Sales 14,000, the reserve 1,950, the fund 3,250 less the 3,200 spent; the bank received the
    # sales and paid out the expenses, the two shares and the bikes.
    assert (credited["706"], credited["1061"], credited["1068"]) == (14_000_00, 1_950_00, 50_00)
    assert -credited["512"] == 14_000_00 - 1_000_00 - 7_800_00 - 3_200_00
