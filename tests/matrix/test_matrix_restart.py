"""Restarts: the bot remembers how far it read, and never replays old history.

A member who typed while the bot was down gets each answer once; what was
already answered is not answered again; and a brand new bot does not
answer a room's backlog from before it existed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.matrix.members import MatrixCoop, NioMember

MakeMember = Callable[[str], Awaitable[NioMember]]


async def test_after_a_restart_the_bot_answers_what_it_missed_once_and_nothing_twice(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    await matrix_coop.start()
    dana = await make_member("Dana")
    matrix_coop.add_member("Dana", "member", dana.user_id)
    dm = await dana.create_room([matrix_coop.user_id], direct=True, encrypted=True)
    await dana.wait_joined(dm, matrix_coop.user_id)
    await dana.say(dm, "!whoami")
    await dana.next_message(after=0, sender=matrix_coop.user_id, room_id=dm, contains="Dana")

    await matrix_coop.stop()
    mark = dana.mark()
    await dana.say(dm, "!members")
    await dana.say(dm, "!lang fr")
    await matrix_coop.start()
    await dana.say(dm, "!moi")

    await dana.next_message(after=mark, sender=matrix_coop.user_id, room_id=dm, contains="Langue\u00a0:")
    answers = dana.messages(after=mark, sender=matrix_coop.user_id, room_id=dm)
    assert len(answers) == 3, [a.body for a in answers]
    members_list, language_set, whoami_fr = (a.body for a in answers)
    assert "Dana" in members_list
    assert "français" in language_set.lower()
    assert "Dana" in whoami_fr and "Langue\u00a0:" in whoami_fr
    assert all(a.encrypted for a in answers)


async def test_a_new_bot_does_not_answer_the_backlog_of_a_room_it_is_configured_for(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    carla = await make_member("Carla")
    room = await carla.create_room([], direct=False, encrypted=False, name="Coop")
    await carla.say(room, "!help")
    await carla.say(room, "!whoami")
    await carla.invite(room, matrix_coop.user_id)
    matrix_coop.rooms = [room]

    await matrix_coop.start()
    matrix_coop.add_member("Carla", "coordinator", carla.user_id)
    await carla.wait_joined(room, matrix_coop.user_id)

    mark = carla.mark()
    await carla.say(room, "!whoami")
    await carla.next_message(after=mark, sender=matrix_coop.user_id, room_id=room)
    answers = carla.messages(sender=matrix_coop.user_id, room_id=room)
    assert len(answers) == 1 and "Carla" in answers[0].body
