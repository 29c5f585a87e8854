"""`coopbot period close [--dry-run]` and `coopbot export ledger|allocations|fec`.

The scheduler closes periods by itself; this is for the treasurer who wants
to see the close before it happens, or to close by hand on a server where the
bot was stopped. Both paths use the same idempotent close, so running it
while the bot also closes gives one set of allocations.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # the commands import them when they run: `coopbot --help` stays quick
    from coopbot.config import Config
    from coopbot.models import Period
    from coopbot.services.money.close import Plan


def add_period_commands(sub: Any) -> None:
    period = sub.add_parser("period", help="the co-op's accounting periods").add_subparsers(
        required=True, metavar="ACTION"
    )
    close = period.add_parser("close", help="close the periods that have ended and queue every member's share")
    close.add_argument("--dry-run", action="store_true", help="print what the close would do; change nothing")
    close.set_defaults(action=cmd_period_close)


def add_export_commands(export: Any) -> None:
    kinds = (("ledger", "income, expenses and each member's base pay"), ("allocations", "each member's share"))
    for what, text in kinds:
        parser = export.add_parser(what, help=f"{text}, as CSV for the accountants")
        parser.add_argument("--period", metavar="LABEL", help="one period, like 2026-11 (default: all)")
        parser.add_argument("--format", choices=("csv",), default="csv")
        parser.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of the screen")
        parser.set_defaults(action=cmd_export, what=what)
    fec = export.add_parser("fec", help="the year's books as a FEC file (fichier des écritures comptables)")
    fec.add_argument("--year", type=int, required=True, help="the calendar year, like 2026")
    fec.add_argument("--siren", required=True, help="the co-op's nine-digit SIREN, which names the file")
    fec.add_argument("--out", metavar="DIR", default=".", help="the folder to write it in (default: here)")
    fec.set_defaults(action=cmd_export_fec)
    from coopbot.export_cli import add_votes_export

    add_votes_export(export)


def cmd_period_close(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.app import CoopBot
    from coopbot.config import load_config
    from coopbot.services.money import periods
    from coopbot.services.money.close import close_due, preview

    config = load_config(args.config)
    bot = CoopBot(config)
    try:
        now = bot.clock.now()
        if args.dry_run:
            with bot.sessions() as session:
                plan = preview(session, config, now)
                if plan.period.ends_at > now:
                    out.write(not_ended_text(plan.period, config))
                out.write(report(plan, config, dry_run=True))
                session.rollback()
            return 0
        closed = close_due(bot.sessions, config, now)
        if not closed:
            with bot.sessions() as session:
                current = periods.period_at(session, now)
                label = current.label if current else "-"
                ends = ends_text(current, config) if current else "-"
            out.write(f"nothing to close: period {label} is open until {ends}\n")
        for plan in closed:
            out.write(report(plan, config, dry_run=False))
        return 0
    finally:
        bot.dispose()


def ends_text(period: Period, config: Config) -> str:
    return f"{period.ends_at.astimezone(config.coop.tz):%Y-%m-%d %H:%M} ({config.coop.timezone})"


def not_ended_text(period: Period, config: Config) -> str:
    """The dry run of a period still running: say it is a what-if, not what the close will give."""
    return (
        f"period {period.label} is open until {ends_text(period, config)}; this is what closing it now "
        "would give; `period close` will not close it before then.\n"
    )


def report(plan: Plan, config: Config, *, dry_run: bool) -> str:
    from coopbot.money import plain_amount, plain_milli
    from coopbot.services.money.notices import date_range, figures_text, nothing_text
    from coopbot.services.money.shares import share_bp

    period, outcome = plan.period, plan.outcome
    start, end = date_range(period, config)
    state = "DRY RUN, nothing changed" if dry_run else "closed; messages queued for the running bot to send"
    lines = [f"period {period.label} ({start} → {end}, {config.coop.timezone}): {state}"]
    lines.append(figures_text(plan.terms, outcome, "en", config.coop.currency))
    why = nothing_text(outcome, "en", config.coop.currency)
    if why:
        lines.append(why)
    lines.append("member_id\tname\tpoints\tshare_pct\tdividend\tbase_pay\ttotal")
    for share in plan.shares:
        bp = share_bp(share.points, outcome.total_points)
        lines.append(
            f"{share.member_id}\t{share.name}\t{plain_milli(share.points)}\t{bp / 100:.2f}\t"
            f"{plain_amount(share.dividend)}\t{plain_amount(share.base_pay)}\t"
            f"{plain_amount(share.dividend + share.base_pay)}"
        )
    active = sum(1 for share in plan.shares if share.active)
    lines.append(
        f"{len(plan.shares)} members, {active} messaged; dividend {plain_amount(outcome.distributed)}"
        f" of {plain_amount(outcome.buckets.dividend)}"
    )
    return "\n".join(lines) + "\n"


def cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.app import CoopBot
    from coopbot.config import load_config
    from coopbot.services.money import exports

    config = load_config(args.config)
    bot = CoopBot(config)
    try:
        with bot.sessions() as session:
            exports.periods_named(session, args.period)  # an unknown period fails before any output
            if args.what == "ledger":
                header, rows = exports.LEDGER_HEADER, exports.ledger_rows(session, config, args.period)
            else:
                header, rows = exports.ALLOCATION_HEADER, exports.allocation_rows(session, config, args.period)
            if args.output:
                with Path(args.output).open("w", encoding="utf-8", newline="") as target:
                    count = exports.write_csv(target, header, rows)
                out.write(f"{count} rows written to {args.output}\n")
            else:
                exports.write_csv(out, header, rows)
        return 0
    finally:
        bot.dispose()


def cmd_export_fec(args: argparse.Namespace, out: TextIO) -> int:
    """Write `{siren}FEC{year}1231.txt` in `--out`; a bad SIREN is refused before the database is opened."""
    from coopbot.app import CoopBot
    from coopbot.config import load_config
    from coopbot.services.money import fec

    name = fec.file_name(args.siren, args.year)
    config = load_config(args.config)
    bot = CoopBot(config)
    try:
        target = Path(args.out) / name
        with bot.sessions() as session, target.open("w", encoding="utf-8", newline="") as handle:
            count = fec.export_year(session, config, args.year, handle)
        out.write(f"{count} lines written to {target}\n")
        return 0
    finally:
        bot.dispose()
