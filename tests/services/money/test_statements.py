"""At each close a customer is told what they owe: the orders delivered in the period and the total,
the same figures the treasurer exports for invoicing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from coopbot.cli import main
from tests.conftest import Coop, delivery_code

NOVEMBER_ENDS = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # 1 December 00:00 in Paris


async def delivered_order(shop: Coop, customer: str, order: str) -> None:
    """`customer` orders, confirms, and Ana delivers it with the recipient's code."""
    placed = await shop.say(customer, f"/order {order}")
    job = placed.split()[0]
    code = delivery_code(await shop.say(customer, f"/confirm {job}"))
    await shop.say("ana lopez", f"/accept {job}")
    await shop.say("ana lopez", f"/pickup {job}")
    await shop.say("ana lopez", f"/deliver {job} {code}")


def statements(shop: Coop, who: str) -> list[str]:
    return [m.text for m in shop.inbox(who) if "statement" in m.text]


async def test_each_customer_gets_a_statement_of_the_period_at_the_close(shop: Coop) -> None:
    await delivered_order(shop, "martin", "75011 -> 75002")
    await delivered_order(shop, "martin", "12 rue Oberkampf, 75011")
    await delivered_order(shop, "rose", "75002 -> 75001")
    await shop.say("martin", "/order 75011 -> 75002")  # quoted, never delivered: not on the statement
    shop.clock.set(NOVEMBER_ENDS)
    await shop.tick()
    [martin] = statements(shop, "martin")
    assert martin.splitlines()[0] == "🧾 Your statement for 2026-11: 2 orders delivered, €10.50 in all."
    assert martin.splitlines()[1:] == [
        "• J-1 (Nov 2) → 75002: €6.50",
        "• J-2 (Nov 2) → 12 rue Oberkampf, 75011: €4.00",
    ]
    [rose] = statements(shop, "rose")
    assert rose.startswith("🧾 Your statement for 2026-11: 1 order delivered, €4.00 in all.")
    assert statements(shop, "ana lopez") == [], "members get their share, not a statement"


async def test_a_close_run_twice_sends_one_statement(shop: Coop) -> None:
    await delivered_order(shop, "martin", "75011 -> 75002")
    shop.clock.set(NOVEMBER_ENDS)
    await shop.tick()
    await shop.tick(minutes=5)
    assert len(statements(shop, "martin")) == 1


async def test_the_treasurer_exports_a_customers_orders_as_csv_for_invoicing(
    shop: Coop, sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await delivered_order(shop, "martin", "75011 -> 75002")
    await delivered_order(shop, "rose", "75002 -> 75001")
    config = tmp_path / "export.toml"
    config.write_text(f'[coop]\nname = "Coop Test"\n[database]\nurl = "{sqlite_url}"\n', encoding="utf-8")
    out = tmp_path / "martin.csv"
    args = ["--config", str(config), "export", "orders", "--customer", "Boulangerie Martin", "--period", "2026-11"]
    assert main([*args, "--format", "csv", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").splitlines() == [
        "order,delivered_at,pickup,dropoff,amount,currency",
        "J-1,2026-11-02 09:00,75011,75002,6.50,EUR",
    ]
    capsys.readouterr()
    assert main([*args[:5], "Ana Lopez", *args[6:]]) == 2
    assert "is a member, not a customer" in capsys.readouterr().err
    assert main([*args[:7], "2031-01"]) == 2
    assert "there is no such period" in capsys.readouterr().err
