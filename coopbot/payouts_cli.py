"""`coopbot payouts sepa` and `coopbot payouts mark`: the treasurer pays the shares of a closed period.

`sepa` writes the bank file to stdout (so it can be piped or redirected, and
nothing else ever lands in it); the members left out, for want of an IBAN,
go to stderr. It changes nothing: the treasurer marks the period paid once
the bank has taken the file, with `mark`, which tells each member once.
The IBANs are opened here, on the server, and are never printed: only the
file the bank reads holds them.

The bot, the database, schwifty and sepaxml are imported when a command
runs, so `coopbot --help` stays quick.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any, TextIO

METHODS = ("sepa", "cash", "other")


def add_payouts_commands(sub: Any) -> None:
    payouts = sub.add_parser("payouts", help="pay the shares of a closed period").add_subparsers(
        required=True, metavar="ACTION"
    )
    sepa = payouts.add_parser("sepa", help="a SEPA credit transfer file (pain.001) of the unpaid shares, on stdout")
    sepa.add_argument("--period", required=True, metavar="LABEL", help="a closed period, like 2026-11")
    sepa.add_argument("--debtor-name", required=True, metavar="NAME", help="the co-op's account holder name")
    sepa.add_argument("--debtor-iban", required=True, metavar="IBAN", help="the account the money leaves")
    sepa.add_argument("--debtor-bic", required=True, metavar="BIC", help="that account's bank code")
    sepa.add_argument("--date", type=date.fromisoformat, metavar="YYYY-MM-DD",
                      help="the day the bank should pay (default: today)")  # fmt: skip
    sepa.set_defaults(action=cmd_payouts_sepa)
    mark = payouts.add_parser("mark", help="mark a period's shares paid, and tell each member once")
    mark.add_argument("--period", required=True, metavar="LABEL", help="a closed period, like 2026-11")
    mark.add_argument("--member", type=int, metavar="N", help="one member, by number (default: everyone unpaid)")
    mark.add_argument("--date", type=date.fromisoformat, metavar="YYYY-MM-DD", help="the day paid (default: today)")
    mark.add_argument("--method", choices=METHODS, default="sepa", help="how it was paid (default: sepa)")
    mark.add_argument("--undo", action="store_true", help="mark them unpaid again (audited; nobody is told)")
    mark.set_defaults(action=cmd_payouts_mark)


def cmd_payouts_sepa(args: argparse.Namespace, out: TextIO, err: TextIO | None = None) -> int:
    from coopbot.app import CoopBot
    from coopbot.config import load_config
    from coopbot.errors import UsageError
    from coopbot.money import plain_amount
    from coopbot.services.money import payouts

    err = err or sys.stderr
    config = load_config(args.config)
    bot = CoopBot(config)
    try:
        debtor_iban = payouts.parse_iban(args.debtor_iban)
        with bot.sessions() as session:
            period = payouts.closed_period(session, args.period)
            due, missing = payouts.transfers(session, config, period)
            for member in missing:
                err.write(f"left out, no IBAN: #{member.id} {member.name}\n")
            if not due:
                raise UsageError("payouts.nothing_due", period=period.label)
            on = args.date or bot.clock.now().astimezone(config.coop.tz).date()
            debtor = {"name": args.debtor_name, "iban": debtor_iban, "bic": args.debtor_bic}
            xml = payouts.sepa_xml(config, period, due, debtor, on)
        out.write(xml.decode("utf-8") + "\n")
        total = sum(item.cents for item in due)
        err.write(f"{len(due)} transfers, {plain_amount(total)} {config.coop.currency}, period {period.label}\n")
        return 0
    finally:
        bot.dispose()


def cmd_payouts_mark(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.app import CoopBot
    from coopbot.config import load_config
    from coopbot.db import transaction
    from coopbot.money import plain_amount
    from coopbot.services.money import payouts

    config = load_config(args.config)
    bot = CoopBot(config)
    try:
        now = bot.clock.now()
        with transaction(bot.sessions) as session:
            period = payouts.closed_period(session, args.period)
            if args.undo:
                changed = payouts.unmark_paid(session, period, args.member, None, now)
                verb = "marked unpaid again"
            else:
                on = args.date or now.astimezone(config.coop.tz).date()
                changed = payouts.mark_paid(session, config, period, args.member, on, args.method, None, now)
                verb = f"marked paid ({args.method}, {on.isoformat()})"
            for allocation in changed:
                out.write(f"#{allocation.member_id}\t{plain_amount(payouts.total(allocation))}\n")
            total = sum(payouts.total(allocation) for allocation in changed)
        out.write(f"{len(changed)} shares of {period.label} {verb}: {plain_amount(total)} {config.coop.currency}\n")
        return 0
    finally:
        bot.dispose()
