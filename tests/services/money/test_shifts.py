"""Shifts: a shift left open is closed at the limit, pending, and its rider sets it right."""

from __future__ import annotations

from sqlalchemy import select

from coopbot.models import Contribution
from tests.conftest import Coop


async def test_a_shift_left_open_is_closed_at_the_limit_and_the_rider_asked(coop: Coop) -> None:
    chloe = coop.member("Chloé")
    assert "Shift started at 09:00" in await coop.say(chloe, "/shift start")
    await coop.tick(hours=13)
    (notice,) = [m.text for m in coop.inbox(chloe) if "still running" in m.text]
    assert "closed it at 21:00" in notice
    with coop.session() as session:
        entry = session.scalars(select(Contribution)).one()
        assert (entry.status, entry.quantity_milli) == ("pending", 12_000)
    reply = await coop.say(chloe, "/shift end 17:45")
    assert "now ends at 17:45: 8.75 h, 8.75 points" in reply
    with coop.session() as session:
        entry = session.scalars(select(Contribution)).one()
        assert (entry.status, entry.quantity_milli, entry.points_milli) == ("approved", 8_750, 8_750)
