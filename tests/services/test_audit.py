"""The audit trail as every member reads it: the latest entries, in the order they happened."""

from __future__ import annotations

from datetime import timedelta

from coopbot.models import Member
from coopbot.services import audit
from tests.conftest import Coop


async def test_the_latest_entries_read_oldest_first_and_by_or_about_one_member(coop: Coop) -> None:
    alice, bob, chloe = (coop.member_id(coop.member(name)) for name in ("Alice", "Bob", "Chloé"))
    with coop.session() as session:
        a, b, c = (session.get_one(Member, member_id) for member_id in (alice, bob, chloe))
        for number, (actor, subject) in enumerate([(a, b), (b, None), (c, a), (None, c), (a, None)]):
            audit.record(session, coop.clock.now() + timedelta(minutes=number), f"step.{number}",
                         actor=actor, subject=subject)  # fmt: skip
    with coop.session() as session:
        latest = [entry.action for entry in audit.recent(session, limit=3)]
        about_alice = audit.recent(session, session.get_one(Member, alice), limit=10)
        named = {member_id: member.name for member_id, member in audit.people(session, about_alice).items()}
    assert latest == ["step.2", "step.3", "step.4"]
    assert [entry.action for entry in about_alice] == ["member.added", "step.0", "step.2", "step.4"]
    assert named == {alice: "Alice", bob: "Bob", chloe: "Chloé"}
