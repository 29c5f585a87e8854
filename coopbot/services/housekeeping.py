"""Forgetting what no longer needs remembering.

Handled update ids are kept only long enough to recognise a replay after a
restart (Telegram keeps undelivered updates for 24 hours); older ones are
dropped so the table stays small.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from coopbot.db import transaction
from coopbot.models import SeenEvent
from coopbot.scheduler import SweepContext, sweep

KEEP_SEEN_EVENTS = timedelta(days=7)


@sweep("prune-seen-events")
def prune_seen_events(ctx: SweepContext) -> None:
    with transaction(ctx.sessions) as session:
        session.execute(delete(SeenEvent).where(SeenEvent.at < ctx.now - KEEP_SEEN_EVENTS))
