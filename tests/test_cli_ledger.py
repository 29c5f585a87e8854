"""The treasurer's side: previewing and running the close, and the accountants' CSV files."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from coopbot.app import CoopBot
from coopbot.cli import main
from coopbot.config import load_config
from coopbot.models import Allocation, Member, OutboxMessage, Period
from coopbot.services.members.accounts import add_identity, create_member
from coopbot.services.money import ledger


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[coop]\nname = "Coop Test"\n[database]\nurl = "sqlite:///{tmp_path / "c.sqlite3"}"\n')
    return path


def last_month(config_file: Path) -> str:
    """A month that has ended by the wall clock: two riders' work, income and an expense."""
    config = load_config(config_file)
    bot = CoopBot(config)
    when = datetime.now(UTC) - timedelta(days=40)
    try:
        with bot.sessions() as session, session.begin():
            bruno = create_member(session, "Bruno", "coordinator", when)
            chloe = create_member(session, "Chloé", "member", when)
            for member in (bruno, chloe):
                add_identity(session, member, "console", member.name.lower(), when)
            for member, hours in ((bruno, 1000), (chloe, 2000)):
                entry = ledger.log_work(session, config, member, hours, "hour", "admin", "accounts", when)
                entry.status = "approved"
            ledger.record_money(session, config, bruno, "income", 1250_00, "restaurant contracts, March", when)
            ledger.record_money(session, config, bruno, "expense", 89_90, "bike repairs", when)
            return ledger.current_period(session, config, when).label
    finally:
        bot.dispose()


def state(config_file: Path) -> tuple[str, int, int]:
    bot = CoopBot(load_config(config_file))
    try:
        with bot.sessions() as session:
            status = session.scalars(select(Period.status).order_by(Period.starts_at)).first() or ""
            allocations = session.scalar(select(func.count()).select_from(Allocation)) or 0
            messages = (
                session.scalar(
                    select(func.count()).select_from(OutboxMessage).where(OutboxMessage.key.like("period:%"))
                )
                or 0
            )
            return status, allocations, messages
    finally:
        bot.dispose()


def test_a_dry_run_shows_the_close_and_changes_nothing(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = last_month(config_file)
    assert main(["--config", str(config_file), "period", "close", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"period {label} (" in out and "DRY RUN, nothing changed" in out
    # net 1160.10: reserve 174.02, fund 290.02, dividend 696.06 split 1:2
    assert "dividend €696.06 (60%)" in out
    assert "\tBruno\t1.000\t33.33\t232.02\t0.00\t232.02" in out
    assert "\tChloé\t2.000\t66.67\t464.04\t0.00\t464.04" in out
    assert state(config_file) == ("open", 0, 0)
    assert "is open until" not in out


def test_a_dry_run_before_the_end_says_the_close_will_wait(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(config_file)
    bot = CoopBot(config)
    try:
        with bot.sessions() as session, session.begin():
            period = ledger.current_period(session, config, datetime.now(UTC))
            label, ends = period.label, period.ends_at.astimezone(config.coop.tz)
    finally:
        bot.dispose()
    assert main(["--config", str(config_file), "period", "close", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"period {label} is open until {ends:%Y-%m-%d %H:%M} (Europe/Paris); this is what closing it now "
        "would give; `period close` will not close it before then."
    )
    assert lines[1].startswith(f"period {label} (") and lines[1].endswith("DRY RUN, nothing changed")


def test_the_close_then_the_accountants_files(
    config_file: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    label = last_month(config_file)
    assert main(["--config", str(config_file), "period", "close"]) == 0
    assert "closed; messages queued" in capsys.readouterr().out
    assert state(config_file) == ("closed", 2, 3)  # two members and the console room
    assert main(["--config", str(config_file), "period", "close"]) == 0
    assert "nothing to close" in capsys.readouterr().out
    assert state(config_file)[1:] == (2, 3)

    assert main(["--config", str(config_file), "export", "allocations", "--period", label, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == [
        "period",
        "member_id",
        "member",
        "points",
        "share_pct",
        "dividend",
        "base_pay",
        "total",
        "currency",
        "paid",
    ]
    assert rows[1:] == [
        [label, "1", "Bruno", "1.000", "33.33", "232.02", "0.00", "232.02", "EUR", "no"],
        [label, "2", "Chloé", "2.000", "66.67", "464.04", "0.00", "464.04", "EUR", "no"],
    ]

    target = tmp_path / "ledger.csv"
    assert main(["--config", str(config_file), "export", "ledger", "--period", label, "-o", str(target)]) == 0
    assert "2 rows written" in capsys.readouterr().out
    with target.open(encoding="utf-8", newline="") as handle:
        ledger_rows = list(csv.DictReader(handle))
    assert [(r["kind"], r["amount"], r["note"], r["recorded_by"]) for r in ledger_rows] == [
        ("income", "1250.00", "restaurant contracts, March", "Bruno"),
        ("expense", "89.90", "bike repairs", "Bruno"),
    ]


def test_an_unknown_period_is_named_before_any_output(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = last_month(config_file)
    assert main(["--config", str(config_file), "export", "ledger", "--period", "1999-01"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"There is no period 1999-01. Known periods: {label}." in captured.err


def test_members_without_a_chat_still_get_their_allocation(config_file: Path) -> None:
    last_month(config_file)
    bot = CoopBot(load_config(config_file))
    try:
        with bot.sessions() as session, session.begin():
            session.add(Member(name="Dana", role="member", joined_at=datetime.now(UTC) - timedelta(days=60)))
    finally:
        bot.dispose()
    assert main(["--config", str(config_file), "period", "close"]) == 0
    assert state(config_file) == ("closed", 3, 3)


def test_the_books_for_the_accountant_as_a_fec_file(
    config_file: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    label = last_month(config_file)
    assert main(["--config", str(config_file), "period", "close"]) == 0
    capsys.readouterr()
    year = label[:4]
    out_dir = tmp_path / "books"
    out_dir.mkdir()
    argv = ["--config", str(config_file), "export", "fec", "--year", year, "--siren", "123456789", "--out"]
    assert main([*argv, str(out_dir)]) == 0
    target = out_dir / f"123456789FEC{year}1231.txt"
    assert capsys.readouterr().out.endswith(f"lines written to {target}\n")
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("JournalCode\tJournalLib\tEcritureNum\t") and lines[0].endswith("\tIdevise")
    fields = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == 18 for row in fields)
    assert ("706", "0,00", "1250,00") in {(row[4], row[11], row[12]) for row in fields}
    assert ("628", "89,90", "0,00") in {(row[4], row[11], row[12]) for row in fields}

    bad = ["--config", str(config_file), "export", "fec", "--year", year, "--siren", "12345", "--out", str(tmp_path)]
    assert main(bad) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "12345 is not a SIREN: write the co-op's nine-digit company number, like 123456789.\n"
    assert not list(tmp_path.glob("*FEC*"))
