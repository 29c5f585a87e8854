"""`coopbot export member MEMBER [--out FILE]`: everything the co-op holds about one member.

The same zip a member gets with /mydata or when they leave
(`coopbot.services.data.export`), for the operator to hand over on request;
a member who left is found by their number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO


def cli_export_member(args: Any, out: TextIO) -> int:
    """`coopbot export member MEMBER [--out FILE]`: the path is printed on the last line."""
    from coopbot.clock import SystemClock
    from coopbot.config import load_config
    from coopbot.db import make_engine, make_sessionmaker, transaction, upgrade
    from coopbot.services.data.export import export_zip
    from coopbot.services.members.accounts import member_by_ref

    config = load_config(args.config)
    engine = make_engine(config.database.url)
    try:
        upgrade(engine)
        with transaction(make_sessionmaker(engine)) as session:
            member = member_by_ref(session, args.member)
            export = export_zip(session, member, SystemClock().now(), config)
    finally:
        engine.dispose()
    path = Path(args.out or export.file_name)
    path.write_bytes(export.data)
    out.write(f"everything held about #{member.id}, as JSON and CSV:\n{path}\n")
    return 0
