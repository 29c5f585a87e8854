"""Native polls in Element: a disclosed poll is posted to the co-op's room as an MSC3381 poll,
members' answers from their own clients count as votes, and the close ends the poll.

Against the real homeserver, with members' answers sent as Element sends them
(the unstable event type) and as a client of the stable specification does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from coopbot.db import transaction
from coopbot.models import Vote
from tests.matrix.members import MatrixCoop, NioMember

MakeMember = Callable[[str], Awaitable[NioMember]]
START = "org.matrix.msc3381.poll.start"


@pytest.fixture(autouse=True)
def ballot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COOPBOT_SECRET", "matrix-polls-key-0123456789abcdef")


async def ask(member: NioMember, room: str, coop: MatrixCoop, text: str, contains: str = "") -> str:
    mark = member.mark()
    await member.say(room, text)
    return (await member.next_message(after=mark, sender=coop.user_id, room_id=room, contains=contains)).body


def started(member: NioMember, room: str) -> tuple[str, dict[str, Any]]:
    found = [(event_id, content) for room_id, kind, event_id, content in member.others
             if room_id == room and kind == START]  # fmt: skip
    assert found, "no poll started"
    return found[-1]


def votes(coop: MatrixCoop) -> dict[int, list[Any]]:
    with transaction(coop.bot.sessions) as session:
        return {vote.member_id: list(vote.choices) for vote in session.scalars(select(Vote))}


async def test_a_native_poll_is_answered_in_element_and_ended_at_the_close(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    carla, dana, eve = await make_member("Carla"), await make_member("Dana"), await make_member("Eve")
    room = await carla.create_room([], direct=False, encrypted=False, name="Coop Vélo")
    for member in (dana, eve):
        await carla.invite(room, member.user_id)
        await carla.wait_joined(room, member.user_id)
    await carla.invite(room, matrix_coop.user_id)
    matrix_coop.rooms = [room]
    await matrix_coop.start()
    carla_id = matrix_coop.add_member("Carla", "coordinator", carla.user_id)
    dana_id = matrix_coop.add_member("Dana", "member", dana.user_id)
    eve_id = matrix_coop.add_member("Eve", "member", eve.user_id)
    await carla.wait_joined(room, matrix_coop.user_id)
    carla_dm = await carla.create_room([matrix_coop.user_id], direct=True, encrypted=True)
    await carla.wait_joined(carla_dm, matrix_coop.user_id)

    await ask(carla, carla_dm, matrix_coop, '!propose Summer party? --options "June|July" --closes 2d', "P-1")
    await dana.wait_for(lambda: any(kind == START for _, kind, _, _ in dana.others), "the native poll")
    start_id, content = started(dana, room)
    assert content[START]["question"]["org.matrix.msc1767.text"] == "Summer party?"
    assert [a["org.matrix.msc1767.text"] for a in content[START]["answers"]] == ["June", "July"]
    assert [a["m.id"] for a in content["m.poll"]["answers"]] == ["1", "2"]

    relation = {"rel_type": "m.reference", "event_id": start_id}
    await dana.send_event(room, "org.matrix.msc3381.poll.response",
                          {"m.relates_to": relation, "org.matrix.msc3381.poll.response": {"answers": ["2"]}})
    await eve.send_event(room, "m.poll.response", {"m.relates_to": relation, "m.selections": ["1"]})
    await dana.wait_for(lambda: votes(matrix_coop).keys() >= {dana_id, eve_id}, "both answers counted")
    assert votes(matrix_coop) == {dana_id: [2], eve_id: [1]}

    await ask(carla, carla_dm, matrix_coop, "!vote P-1 2", "recorded")
    assert votes(matrix_coop)[carla_id] == [2]
    await ask(carla, carla_dm, matrix_coop, "!closepoll P-1", "P-1")
    await dana.wait_for(
        lambda: any(kind == "org.matrix.msc3381.poll.end" and c["m.relates_to"]["event_id"] == start_id
                    for _, kind, _, c in dana.others),
        "the poll's end",
    )  # fmt: skip
    result = await dana.next_message(after=0, sender=matrix_coop.user_id, room_id=room, contains="P-1 is closed")
    assert "Result: 2. July." in result.body


async def test_a_secret_poll_is_never_native(matrix_coop: MatrixCoop, make_member: MakeMember) -> None:
    carla = await make_member("Carla")
    room = await carla.create_room([], direct=False, encrypted=False, name="Coop Vélo")
    await carla.invite(room, matrix_coop.user_id)
    matrix_coop.rooms = [room]
    await matrix_coop.start()
    matrix_coop.add_member("Carla", "coordinator", carla.user_id)
    await carla.wait_joined(room, matrix_coop.user_id)
    carla_dm = await carla.create_room([matrix_coop.user_id], direct=True, encrypted=True)
    await carla.wait_joined(carla_dm, matrix_coop.user_id)
    await ask(carla, carla_dm, matrix_coop, '!propose Hire? --options "Dana|Eli" --secret --closes 2d', "P-1")
    await carla.next_message(after=0, sender=matrix_coop.user_id, room_id=room, contains="opened P-1")
    assert not any(kind == START for _, kind, _, _ in carla.others)
