"""Periods open themselves, and a delivery counts once: the ledger's ground rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from coopbot.models import Contribution, LedgerEntry, Period
from coopbot.money import parse_quantity
from coopbot.services.money import ledger, periods
from coopbot.services.polls import settings as settings_svc
from tests.conftest import Coop


async def test_the_month_opens_on_first_use_in_paris_time(coop: Coop) -> None:
    with coop.session() as session:
        period = ledger.current_period(session, coop.bot.config, coop.clock.now())
        again = ledger.current_period(session, coop.bot.config, coop.clock.now())
    assert again.id == period.id
    assert period.label == "2026-11"
    assert period.starts_at == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    assert period.ends_at == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert period.status == "open"
    assert period.settings["dividend_bp"] == 6000
    assert period.settings["weights"]["delivery"] == 1000


async def test_a_delivery_counts_once_and_its_price_is_income(coop: Coop) -> None:
    rider = coop.member_id(coop.member("Chloé"))
    job = coop.delivered_job(rider)
    for _ in range(2):
        with coop.session() as session:
            ledger.record_delivery(session, coop.bot.config, job, coop.clock.now())
    with coop.session() as session:
        contributions = session.scalars(select(Contribution)).all()
        income = session.scalars(select(LedgerEntry)).all()
    assert [(c.member_id, c.kind, c.points_milli, c.status, c.source_ref) for c in contributions] == [
        (rider, "delivery", 1000, "approved", f"job:{job.id}")
    ]
    assert [(e.kind, e.amount_cents, e.source_ref) for e in income] == [("income", 1250, f"job:{job.id}")]


async def test_a_vote_mid_period_changes_the_next_period_only(coop: Coop) -> None:
    config = coop.bot.config
    with coop.session() as session:
        november = ledger.current_period(session, config, coop.clock.now())
        settings_svc.apply(session, config, "weight.delivery", "2", coop.clock.now())
    rider = coop.member_id(coop.member("Chloé"))
    with coop.session() as session:
        first = ledger.record_delivery(session, config, coop.delivered_job(rider), coop.clock.now())
    coop.clock.set(datetime(2026, 12, 3, 10, 0, tzinfo=UTC))
    with coop.session() as session:
        second = ledger.record_delivery(session, config, coop.delivered_job(rider), coop.clock.now())
        december = session.get_one(Period, second.period_id) if second else None
        count = session.scalar(select(func.count()).select_from(Period))
    assert first is not None and second is not None and december is not None
    assert first.period_id == november.id and first.points_milli == 1000
    assert december.label == "2026-12" and second.points_milli == 2000
    assert december.starts_at == november.ends_at
    assert count == 2


def test_weekly_and_cron_periods_follow_the_coop_clock() -> None:
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    sunday_night = datetime(2026, 11, 8, 22, 30, tzinfo=UTC)  # Sunday 23:30 in Paris
    start, end, label = periods.period_bounds("weekly", paris, sunday_night)
    assert label == "2026-W45"
    assert end == datetime(2026, 11, 8, 23, 0, tzinfo=UTC)
    assert end - start == timedelta(days=7)
    # cron's 1 is Monday (APScheduler 3 alone would read it as Tuesday)
    start, end, label = periods.period_bounds("0 0 * * 1", paris, sunday_night)
    assert (start, end, label) == (
        datetime(2026, 11, 1, 23, 0, tzinfo=UTC),
        datetime(2026, 11, 8, 23, 0, tzinfo=UTC),
        "2026-11-02..2026-11-08",
    )
    start, end, _ = periods.period_bounds("0 */6 * * *", paris, sunday_night)
    assert (start, end) == (datetime(2026, 11, 8, 17, 0, tzinfo=UTC), datetime(2026, 11, 8, 23, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2h", (2000, "hour")),
        ("1.5h", (1500, "hour")),
        ("1,5h", (1500, "hour")),
        ("1h30", (1500, "hour")),
        ("1h30min", (1500, "hour")),
        ("45min", (750, "hour")),
        ("20m", (333, "hour")),
        ("1", (1000, "item")),
        ("2.5", (2500, "item")),
        ("-1.5h", (-1500, "hour")),
        ("1.5h30", None),
        ("1h75", None),
        ("1.2345", None),
        ("two", None),
        ("", None),
    ],
)
def test_quantities_are_read_as_members_write_them(typed: str, expected: tuple[int, str] | None) -> None:
    assert parse_quantity(typed) == expected
