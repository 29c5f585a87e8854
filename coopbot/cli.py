"""`coopbot ...`: what the member who installs the bot types on the server.

Names here are a contract (DESIGN.md, "CLI contract"): operators' scripts rely
on them. Every command takes `--config PATH` and `-v`, before or after its
name; secrets come from environment variables named in the config, never from
the command line.

Building the parser imports nothing heavy: `coopbot --help` and a mistyped
command answer at once. Each command imports what it needs (the bot, the
database, the ballot keys' cryptography) when it runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from coopbot import platforms
from coopbot.errors import ConfigError, CoopError

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

    from coopbot.config import Config
    from coopbot.models import Member

Action = Callable[[argparse.Namespace, TextIO], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    action: Action = args.action
    try:
        return action(args, sys.stdout)
    except ConfigError as exc:
        print(f"config error:\n{exc}", file=sys.stderr)
        return 2
    except CoopError as exc:
        from coopbot.i18n import t

        print(t("en", exc.key, **exc.params), file=sys.stderr)
        return 1


class CoopParser(argparse.ArgumentParser):
    """Every (sub-)command takes `--config` and `-v`, before or after its name.

    argparse hands everything after a subcommand's name to that subcommand's
    parser, so an option the top level alone knew would be refused there.
    Sub-parsers are made of the parent's class, so commands other modules
    add get the options too. Below the top level they default to "not
    given" (SUPPRESS), so they never undo a value given earlier; given twice,
    the later one wins, as when an option is repeated at one level.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--config",
            default=argparse.SUPPRESS,
            metavar="PATH",
            help="path to config.toml (default: ./config.toml, else built-in defaults)",
        )
        self.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log what the bot does"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = CoopParser(prog="coopbot", description="The chat front end of a worker co-operative.")
    parser.set_defaults(config=None, verbose=False)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the configured transports (the console when none is configured)")
    run.set_defaults(action=cmd_run)

    demo = sub.add_parser("demo", help="a scripted co-op period on a throw-away database, as a chat transcript")
    demo.add_argument(
        "--lang", choices=("en", "fr"), default="en", help="the transcript's language: narration, members and bot"
    )
    demo.set_defaults(action=cmd_demo)

    chat = sub.add_parser("chat", help="talk to the bot from the terminal as a member")
    chat.add_argument("--as", dest="name", required=True, help="the member's name or #number")
    chat.set_defaults(action=cmd_chat)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(required=True, metavar="ACTION")
    db.add_parser("upgrade", help="apply the schema migrations").set_defaults(action=cmd_db_upgrade)

    member = sub.add_parser("member", help="manage members").add_subparsers(required=True, metavar="ACTION")
    add = member.add_parser("add", help="add a member (bootstrap the first ones)")
    add.add_argument("--name", required=True)
    add.add_argument("--role", default="member", choices=("member", "coordinator", "admin"))
    for platform in platforms.chat_platforms():
        add.add_argument(f"--{platform.name}", metavar="ID", help=platform.account_help)
    add.set_defaults(action=cmd_member_add)
    listing = member.add_parser("list", help="every member: number, name, role, accounts and state")
    listing.set_defaults(action=cmd_member_list)
    college = member.add_parser("college", help="place a member in a college (a co-op with [colleges])")
    college.add_argument("member", metavar="MEMBER", help="#number, name or platform id")
    college.add_argument("college", metavar="COLLEGE", help="one of the colleges [colleges] names")
    college.set_defaults(action=cmd_member_college)

    invite = sub.add_parser("invite", help="print a one-time invite code (on the last line)")
    invite.add_argument("--role", default="member", choices=("member", "coordinator", "admin", "customer"))
    invite.set_defaults(action=cmd_invite)

    from coopbot.customer_cli import add_customer_commands

    add_customer_commands(sub)

    check = sub.add_parser("check-config", help="validate the configuration and name any bad key")
    check.set_defaults(action=cmd_check_config)

    # --- period (ledger) ---
    from coopbot.ledger_cli import add_export_commands, add_period_commands

    add_period_commands(sub)
    from coopbot.payouts_cli import add_payouts_commands

    add_payouts_commands(sub)
    from coopbot.outbox_cli import add_outbox_commands

    add_outbox_commands(sub)
    from coopbot.ops_cli import add_ops_commands

    add_ops_commands(sub)
    export = sub.add_parser("export", help="export data as files").add_subparsers(required=True, metavar="WHAT")
    # --- export ledger/allocations (ledger) ---
    add_export_commands(export)
    # --- export member (data rights) ---
    from coopbot.export_cli import cli_export_member

    member_export = export.add_parser("member", help="everything held about one member, as a zip (JSON + CSV)")
    member_export.add_argument("member", metavar="MEMBER", help="#number, name or platform id")
    member_export.add_argument("--out", metavar="FILE", help="where to write it (default: coopbot-data-<id>.zip)")
    member_export.set_defaults(action=cli_export_member)
    # --- export orders (customers' statements, for invoicing) ---
    from coopbot.export_cli import cli_export_orders

    orders_export = export.add_parser("orders", help="a customer's orders delivered in a period, for invoicing")
    orders_export.add_argument("--customer", required=True, metavar="NAME", help="#number, name or platform id")
    orders_export.add_argument("--period", required=True, metavar="YYYY-MM", help="the period, e.g. 2026-11")
    orders_export.add_argument("--format", default="csv", choices=("csv",), help="only csv for now")
    orders_export.add_argument("--out", metavar="FILE", help="where to write it (default: printed)")
    orders_export.set_defaults(action=cli_export_orders)
    del export
    return parser


def config_of(args: argparse.Namespace) -> Config:
    from coopbot.config import load_config

    return load_config(args.config)


def cmd_check_config(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.config import config_warnings
    from coopbot.db import DriverMissing, check_driver
    from coopbot.i18n import t

    config = config_of(args)
    where = args.config or ("config.toml" if Path("config.toml").exists() else "built-in defaults")
    problems = []
    try:
        check_driver(config.database.url)
    except DriverMissing as exc:
        problems.append(t("en", exc.key, **exc.params))
    for platform in platforms.live(config):
        section = platform.section(config)
        try:
            if section is not None:
                section.check_secrets()
        except ConfigError as exc:
            problems.append(str(exc))
    for warning in [*config_warnings(config), *key_warnings(config)]:
        out.write(f"warning: {warning}\n")
    if platforms.live(config) == [platforms.CONSOLE]:
        out.write("note: no transport is enabled; `coopbot run` will use the console.\n")
    if problems:
        out.write("\n".join(problems) + "\n")
        return 2
    out.write(f"{where}: OK ({config.coop.name}, {config.coop.timezone}, {config.database.url})\n")
    return 0


def key_warnings(config: Config) -> list[str]:
    """Secret-ballot keys beside the database: one backup would hold the ballots and what links them."""
    from coopbot import secrets as ballot_secrets

    path = ballot_secrets.key_in_database_folder(config)
    if path is None:
        return []
    text = (
        f"{path} holds secret-ballot keys and is in the database's folder, so one backup of that folder "
        "would hold both the ballots and what links them to voters: keep it out of the database's backups"
    )
    if path == ballot_secrets.legacy_key_file(config):
        text += f", or move it, with the bot stopped, to {ballot_secrets.default_key_file(config)}"
    return [text + "."]


def cmd_db_upgrade(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.db import make_engine, upgrade

    config = config_of(args)
    upgrade(make_engine(config.database.url))
    out.write("database is up to date\n")
    return 0


def cmd_member_college(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.app import CoopBot
    from coopbot.db import transaction
    from coopbot.services.members.accounts import find_member
    from coopbot.services.polls import colleges

    config = config_of(args)
    bot = CoopBot(config)
    try:
        with transaction(bot.sessions) as session:
            member = find_member(session, args.member)
            placed = colleges.place(session, config, None, member, args.college, bot.clock.now())
            out.write(f"#{member.id} {member.name} now votes in the {placed} college\n")
    finally:
        bot.dispose()
    return 0


def cmd_member_add(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.app import CoopBot
    from coopbot.db import transaction
    from coopbot.services.members import accounts as members_svc

    config = config_of(args)
    bot = CoopBot(config)
    with transaction(bot.sessions) as session:
        now = bot.clock.now()
        member = members_svc.create_member(session, args.name, args.role, now)
        add_accounts(session, member, args, now)
        members_svc.add_identity(session, member, platforms.CONSOLE.name, str(member.id), now, args.name)
        out.write(f"added #{member.id} {member.name} ({member.role})\n")
    return 0


def add_accounts(session: Session, member: Member, args: argparse.Namespace, now: datetime) -> None:
    """The chat accounts given as `--telegram ID`, `--matrix @id:server`..., each checked as its
    platform writes accounts, so a typo is refused here rather than never reached."""
    from coopbot.services.members import accounts as members_svc

    for platform in platforms.chat_platforms():
        account: str | None = getattr(args, platform.name)
        if account:
            problem = platform.account_problem(account)
            if problem is not None:
                raise ConfigError(f"--{platform.name} {account}: {problem}; type it that way, or leave it out.")
            members_svc.add_identity(session, member, platform.name, account, now, member.name)


def cmd_invite(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.app import CoopBot
    from coopbot.db import transaction
    from coopbot.services.members import accounts as members_svc

    bot = CoopBot(config_of(args))
    with transaction(bot.sessions) as session:
        code = members_svc.create_invite(session, None, args.role, bot.clock.now())
    out.write(f"one-time invite for a new {args.role}, valid {members_svc.INVITE_TTL.days} days:\n{code}\n")
    return 0


def cmd_member_list(args: argparse.Namespace, out: TextIO) -> int:
    """Everyone ever added, former members too: the number is what other commands take."""
    from coopbot.app import CoopBot
    from coopbot.services.members import accounts as members_svc

    config = config_of(args)
    bot = CoopBot(config)
    try:
        with bot.sessions() as session:
            out.write("number\tname\trole\taccounts\tstate\n")
            for member in members_svc.every_member(session):
                out.write(
                    f"#{member.id}\t{member.name}\t{member.role}\t{accounts_text(member)}\t"
                    f"{state_text(member, config)}\n"
                )
    finally:
        bot.dispose()
    return 0


def accounts_text(member: Member) -> str:
    """Their chat accounts; the console handle every member gets on the server is left out."""
    accounts = [f"{i.platform} {i.external_id}" for i in member.identities if i.platform != platforms.CONSOLE.name]
    return ", ".join(accounts) or "-"


def state_text(member: Member, config: Config) -> str:
    from coopbot.services.members import accounts as members_svc

    if member.active:
        return "active"
    if members_svc.is_erased(member):
        return "erased"
    if member.left_at is None:
        return "left"
    return f"left {member.left_at.astimezone(config.coop.tz):%Y-%m-%d}"


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    import asyncio

    from coopbot.ops.logs import setup_logging
    from coopbot.runner import run_forever

    config = config_of(args)
    setup_logging(config.logging.format, config.logging.level, verbose=args.verbose)
    return asyncio.run(run_forever(config, out))


def cmd_chat(args: argparse.Namespace, out: TextIO) -> int:
    import asyncio

    from coopbot.runner import chat_loop

    return asyncio.run(chat_loop(config_of(args), args.name, sys.stdin, out))


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    import asyncio

    from coopbot.demo import run_demo

    return asyncio.run(run_demo(out, lang=args.lang))


if __name__ == "__main__":
    raise SystemExit(main())
