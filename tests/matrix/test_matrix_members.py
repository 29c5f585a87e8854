"""Joining and talking to the co-op's bot from Matrix, as a member using Element would.

A newcomer opens an encrypted direct chat with the bot, types `!join CODE`,
and from then on every command works as on the console and on Telegram.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.matrix.members import MatrixCoop, NioMember

MakeMember = Callable[[str], Awaitable[NioMember]]


async def test_a_newcomer_opens_an_encrypted_chat_joins_with_a_code_and_asks_help_and_whoami(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    await matrix_coop.start()
    code = matrix_coop.invite_code("member")
    dana = await make_member("Dana")
    dm = await dana.create_room([matrix_coop.user_id], direct=True, encrypted=True)
    await dana.wait_joined(dm, matrix_coop.user_id)

    mark = dana.mark()
    await dana.say(dm, "!whoami")
    refusal = await dana.next_message(after=mark, sender=matrix_coop.user_id, room_id=dm)
    assert "!join CODE" in refusal.body

    mark = dana.mark()
    await dana.say(dm, f"!join {code}")
    welcome = await dana.next_message(after=mark, sender=matrix_coop.user_id, room_id=dm)
    assert "Dana" in welcome.body and welcome.encrypted

    mark = dana.mark()
    await dana.say(dm, "!help")
    helped = await dana.next_message(after=mark, sender=matrix_coop.user_id, room_id=dm)
    assert "!whoami" in helped.body and helped.encrypted

    mark = dana.mark()
    await dana.say(dm, "/whoami")
    me = await dana.next_message(after=mark, sender=matrix_coop.user_id, room_id=dm)
    assert "Dana" in me.body and "Matrix" in me.body
    assert dana.undecryptable == []


async def test_in_a_group_room_answers_stay_there_and_private_ones_go_to_a_new_direct_chat(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    await matrix_coop.start()
    carla = await make_member("Carla")
    matrix_coop.add_member("Carla", "coordinator", carla.user_id)
    room = await carla.create_room([matrix_coop.user_id], direct=False, encrypted=False, name="Coop")
    await carla.wait_joined(room, matrix_coop.user_id)

    mark = carla.mark()
    await carla.say(room, "!whoami")
    me = await carla.next_message(after=mark, sender=matrix_coop.user_id, room_id=room)
    assert "Carla" in me.body

    mark = carla.mark()
    await carla.say(room, "!invite member")
    note = await carla.next_message(after=mark, sender=matrix_coop.user_id, room_id=room)
    assert "private" in note.body
    code = await carla.next_message(after=mark, sender=matrix_coop.user_id, contains="code")
    assert code.room_id != room and code.encrypted
    assert not any("code" in m.body for m in carla.messages(after=mark, room_id=room))
    dm = carla.client.rooms[code.room_id]
    assert set(dm.users) == {carla.user_id, matrix_coop.user_id}


async def test_the_bot_refuses_group_rooms_from_strangers_but_talks_to_them_in_a_direct_chat(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    await matrix_coop.start()
    eve = await make_member("Eve")
    room = await eve.create_room([matrix_coop.user_id], direct=False, encrypted=False, name="Not the co-op")

    def invite_gone() -> bool:
        return matrix_coop.user_id not in eve.client.rooms[room].users

    await eve.wait_for(invite_gone, "the bot to refuse the invite")
    dm = await eve.create_room([matrix_coop.user_id], direct=True, encrypted=True)
    await eve.wait_joined(dm, matrix_coop.user_id)
    mark = eve.mark()
    await eve.say(dm, "hello?")
    answer = await eve.next_message(after=mark, sender=matrix_coop.user_id, room_id=dm)
    assert "!join CODE" in answer.body


async def test_the_bot_does_not_answer_what_was_said_in_a_room_before_it_joined(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    await matrix_coop.start()
    carla = await make_member("Carla")
    matrix_coop.add_member("Carla", "coordinator", carla.user_id)
    room = await carla.create_room([], direct=False, encrypted=False, name="Coop")
    await carla.say(room, "!help")
    await carla.invite(room, matrix_coop.user_id)
    await carla.wait_joined(room, matrix_coop.user_id)

    mark = carla.mark()
    await carla.say(room, "!whoami")
    await carla.next_message(after=mark, sender=matrix_coop.user_id, room_id=room)
    answers = carla.messages(sender=matrix_coop.user_id, room_id=room)
    assert [("Carla" in a.body) for a in answers] == [True]


async def test_a_message_the_bot_cannot_decrypt_gets_a_request_to_send_it_again(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    await matrix_coop.start()
    dana = await make_member("Dana")
    dm = await dana.create_room([matrix_coop.user_id], direct=True, encrypted=True)
    await dana.wait_joined(dm, matrix_coop.user_id)

    mark = dana.mark()
    garbage = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "sender_key": "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28",
        "session_id": "bm8gc3VjaCBzZXNzaW9u",
        "device_id": dana.account.device_id,
        "ciphertext": "bm90IHJlYWxseSBjaXBoZXJ0ZXh0",
    }
    path = f"/_matrix/client/v3/rooms/{dm}/send/m.room.encrypted/garbage1"
    await asyncio.to_thread(dana.server.request, "PUT", path, garbage, dana.account.access_token)

    note = await dana.next_message(after=mark, sender=matrix_coop.user_id, room_id=dm)
    assert "send it again" in note.body
