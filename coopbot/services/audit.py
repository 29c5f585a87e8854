"""The audit trail: every privileged action, on a record every member can read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from coopbot.models import AuditEntry, Member


def record(
    session: Session,
    now: datetime,
    action: str,
    *,
    actor: Member | None = None,
    subject: Member | None = None,
    **details: Any,
) -> AuditEntry:
    entry = AuditEntry(
        at=now,
        action=action,
        actor_id=actor.id if actor else None,
        subject_id=subject.id if subject else None,
        details=details,
    )
    session.add(entry)
    return entry
