"""A co-op upgrading to bounded attempts keeps its queue: what was pending is still
pending, with no failure counted yet, and goes out after the upgrade."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from coopbot.app import CoopBot
from coopbot.clock import FakeClock
from coopbot.db import alembic_config, make_engine
from coopbot.models import OutboxMessage
from tests.conftest import make_config
from tests.test_outbox_restart import RecordingTransport


async def test_messages_queued_before_the_upgrade_keep_their_place_and_start_with_no_failure(
    db_url: str, clock: FakeClock
) -> None:
    engine = make_engine(db_url)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    before = ScriptDirectory.from_config(cfg).get_revision("0004").down_revision
    assert isinstance(before, str)
    when = "'2026-11-01 09:00:00+00'"
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, before)
        for key, status, attempts in (("queued-before", "pending", 2), ("blocked", "dead", 1)):
            connection.execute(text(
                "INSERT INTO outbox (key, platform, chat_id, private, text, buttons, status, attempts, "
                f"next_attempt_at, last_error, created_at) VALUES ('{key}', 'console', 'ana', true, 'Hello', '[]', "
                f"'{status}', {attempts}, {when}, '502 Bad Gateway', {when})"
            ))
    engine.dispose()

    bot = CoopBot(make_config(db_url), clock=clock)  # upgrades
    with bot.sessions() as session:
        rows = {row.key: row for row in session.scalars(select(OutboxMessage))}
    assert {key: (r.status, r.attempts, r.unexpected_failures, r.failing_since, r.failure_kind, r.failed_at)
            for key, r in rows.items()} == {
        "queued-before": ("pending", 2, 0, None, None, None),
        "blocked": ("dead", 1, 0, None, None, None),
    }
    transport = RecordingTransport()
    bot.add_transport(transport)
    await bot.outbox.drain()
    assert transport.deliveries == [("ana", "queued-before", "Hello")]
    bot.dispose()
