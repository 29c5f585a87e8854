"""`coopbot export member`: everything the co-op holds about one member; `coopbot export orders`: a
customer's orders delivered in a period, for invoicing; `coopbot export votes`: a closed poll's votes.

The same zip a member gets with /mydata or when they leave
(`coopbot.services.data.export`), for the operator to hand over on request;
a member who left is found by their number.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from coopbot.config import Config


@contextmanager
def _database(config: Config) -> Iterator[Session]:
    """One transaction on the co-op's database, brought up to date first, for one export."""
    from coopbot.db import make_engine, make_sessionmaker, transaction, upgrade

    engine = make_engine(config.database.url)
    try:
        upgrade(engine)
        with transaction(make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()


def cli_export_member(args: Any, out: TextIO) -> int:
    """`coopbot export member MEMBER [--out FILE]`: the path is printed on the last line."""
    from coopbot.clock import SystemClock
    from coopbot.config import load_config
    from coopbot.services.data.export import export_zip
    from coopbot.services.members.accounts import member_by_ref

    config = load_config(args.config)
    with _database(config) as session:
        member = member_by_ref(session, args.member)
        export = export_zip(session, member, SystemClock().now(), config)
    path = Path(args.out or export.file_name)
    path.write_bytes(export.data)
    out.write(f"everything held about #{member.id}, as JSON and CSV:\n{path}\n")
    return 0


def cli_export_orders(args: Any, out: TextIO) -> int:
    """`coopbot export orders --customer NAME --period 2026-11 [--format csv] [--out FILE]`: for invoicing."""
    from coopbot.config import load_config
    from coopbot.errors import ConfigError
    from coopbot.services.members.accounts import member_by_ref
    from coopbot.services.money import statements
    from coopbot.services.money.periods import period_by_label
    from coopbot.states import Role

    config = load_config(args.config)
    with _database(config) as session:
        customer = member_by_ref(session, args.customer)
        if customer.role != Role.CUSTOMER:
            raise ConfigError(f"--customer {args.customer}: #{customer.id} is a member, not a customer")
        period = period_by_label(session, args.period)
        if period is None:
            raise ConfigError(f"--period {args.period}: there is no such period; name one like 2026-11")
        text = statements.orders_csv(config, statements.lines(session, period.id, customer.id))
    return _deliver(text, args.out, out, f"orders of {customer.name} delivered in {args.period}")


def add_votes_export(export: Any) -> None:
    votes = export.add_parser("votes", help="a closed poll's votes (disclosed) or its tally (secret), as CSV")
    votes.add_argument("--poll", required=True, metavar="P-9", help="the poll, like P-9")
    votes.add_argument("--format", default="csv", choices=("csv",), help="only csv for now")
    votes.add_argument("--out", metavar="FILE", help="where to write it (default: printed)")
    votes.set_defaults(action=cli_export_votes)


def cli_export_votes(args: Any, out: TextIO) -> int:
    """`coopbot export votes --poll P-9 [--out FILE]`."""
    from coopbot.config import load_config
    from coopbot.services.polls import voting
    from coopbot.services.polls.exports import votes_csv

    config = load_config(args.config)
    with _database(config) as session:
        poll = voting.get(session, args.poll)
        text = votes_csv(session, poll, config.coop.default_language)
    return _deliver(text, args.out, out, f"votes of {args.poll}")


def _deliver(text: str, path: str | None, out: TextIO, what: str) -> int:
    """A CSV printed, or written to `path` with the path on the last line."""
    if not path:
        out.write(text)
        return 0
    Path(path).write_text(text, encoding="utf-8")
    out.write(f"{what}, as CSV:\n{path}\n")
    return 0
