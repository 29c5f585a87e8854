"""The audit trail: every privileged action, on a record every member can read."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
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


def recent(session: Session, member: Member | None = None, *, limit: int) -> list[AuditEntry]:
    """The latest `limit` entries, oldest first as they are read; with `member`, those they
    did or that were done to them. The same for every reader: coordinators see no more."""
    query = select(AuditEntry)
    if member is not None:
        query = query.where(or_(AuditEntry.actor_id == member.id, AuditEntry.subject_id == member.id))
    latest = session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit))
    return list(reversed(latest.all()))


def people(session: Session, entries: Iterable[AuditEntry]) -> dict[int, Member]:
    """Everyone the entries name, as actor or subject, former members included (by pseudonym)."""
    ids = {i for entry in entries for i in (entry.actor_id, entry.subject_id) if i is not None}
    if not ids:
        return {}
    return {member.id: member for member in session.scalars(select(Member).where(Member.id.in_(ids)))}
