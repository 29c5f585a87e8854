"""Periods open themselves, and a delivery counts once: the ledger's ground rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import StatementError

from coopbot.models import Allocation, Contribution, LedgerEntry, Member, Period
from coopbot.money import parse_quantity
from coopbot.services.money import ledger, notices, periods, work
from coopbot.services.polls import settings as settings_svc
from coopbot.states import ContributionStatus, PeriodStatus
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


# --- what the handlers read --------------------------------------------------------------

DECEMBER = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def log(coop: Coop, member_id: int, note: str) -> int:
    with coop.session() as session:
        member = session.get_one(Member, member_id)
        return ledger.log_work(session, coop.bot.config, member, 1000, "hour", "admin", note, coop.clock.now()).id


def close_period_of(coop: Coop, contribution_id: int) -> None:
    with coop.session() as session:
        ledger.period_of(session, session.get_one(Contribution, contribution_id)).status = PeriodStatus.CLOSED


async def test_what_waits_for_approval_is_in_open_periods_and_never_ones_own_to_decide(coop: Coop) -> None:
    bruno = coop.member_id(coop.member("Bruno", "coordinator"))
    chloe = coop.member_id(coop.member("Chloé"))
    log(coop, chloe, "filing")
    close_period_of(coop, log(coop, bruno, "minutes"))
    coop.clock.set(DECEMBER)
    hers, his = log(coop, chloe, "accounts"), log(coop, bruno, "training")
    with coop.session() as session:
        listed = ledger.pending_for_approval(session, session.get_one(Member, bruno))
        seen = [(p.contribution.id, p.owner.name, p.decidable) for p in listed]
    assert seen == [(hers, "Chloé", True), (his, "Bruno", False)]


async def test_what_a_member_still_waits_for_is_theirs_and_of_one_period(coop: Coop) -> None:
    bruno = coop.member_id(coop.member("Bruno", "coordinator"))
    chloe, dan = coop.member_id(coop.member("Chloé")), coop.member_id(coop.member("Dan"))
    earlier = log(coop, chloe, "filing")
    close_period_of(coop, earlier)
    coop.clock.set(DECEMBER)
    waiting, refused, approved = (log(coop, chloe, note) for note in ("accounts", "typo", "minutes"))
    log(coop, dan, "repairs")
    with coop.session() as session:
        coordinator = session.get_one(Member, bruno)
        config, now = coop.bot.config, coop.clock.now()
        ledger.decide(session, config, coordinator, f"C-{refused}", False, now, "twice")
        ledger.decide(session, config, coordinator, f"C-{approved}", True, now)
        december = ledger.current_period(session, config, now).id
        entries = [(c.id, c.status) for c in work.not_approved(session, december, chloe)]
        assert work.pending_points(session, december) == 2000  # Chloé's and Dan's
        november = ledger.period_of(session, session.get_one(Contribution, earlier)).id
        assert work.pending_points(session, november) == 1000
    assert entries == [(waiting, ContributionStatus.PENDING), (refused, ContributionStatus.REJECTED)]


async def test_a_members_shares_are_read_latest_first_and_only_theirs(coop: Coop) -> None:
    chloe, dan = coop.member_id(coop.member("Chloé")), coop.member_id(coop.member("Dan"))
    with coop.session() as session:
        for month in (8, 10, 9):
            start = datetime(2026, month, 1, tzinfo=UTC)
            period = Period(label=f"2026-{month:02}", starts_at=start, ends_at=start + timedelta(days=28),
                            status=PeriodStatus.CLOSED, settings={}, totals={})  # fmt: skip
            session.add(period)
            session.flush()
            session.add(Allocation(period_id=period.id, member_id=chloe, points_milli=month, dividend_cents=0))
            session.add(Allocation(period_id=period.id, member_id=dan, points_milli=1, dividend_cents=0))
    with coop.session() as session:
        shares = [(period.label, share.points_milli) for share, period in notices.shares_of(session, chloe, 2)]
        september = periods.period_by_label(session, "2026-09")
        assert september is not None
        mine = notices.allocation_of(session, september.id, chloe)
        nobody = notices.allocation_of(session, september.id, dan + 1)
    assert shares == [("2026-10", 10), ("2026-09", 9)]
    assert mine is not None and mine.points_milli == 9
    assert nobody is None


async def test_states_written_as_plain_strings_read_back_as_enums_and_misspelt_ones_are_refused(
    any_coop: Coop,
) -> None:
    """Rows from before the enums (plain strings, no migration) read back as members."""
    with any_coop.session() as session:
        session.execute(
            text(
                "INSERT INTO period (label, starts_at, ends_at, status, settings, totals) VALUES "
                "('2026-10', '2026-10-01 00:00:00+00', '2026-11-01 00:00:00+00', 'closed', '{}', '{}')"
            )
        )
    with any_coop.session() as session:
        assert session.scalar(select(Period.status)) is PeriodStatus.CLOSED
        assert session.scalar(select(func.count()).select_from(Period).where(Period.status == "closed")) == 1
    with any_coop.session() as session, pytest.raises(StatementError):
        session.execute(select(Period).where(Period.status == "clsoed")).all()
