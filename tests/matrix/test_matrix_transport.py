"""The Matrix transport's promises to the core, checked against real Synapse.

Buttons become reactions and a member's reaction comes back as the command,
even after a restart; a retried send is never shown twice; the server's rate
limit becomes a retry the outbox honours; someone who cannot be reached is
reported as such instead of being pestered with new chats; and a reply one of
whose messages fails still delivers the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from nio import RoomLeaveResponse
from sqlalchemy import select

from coopbot.chat import Address, Button, Incoming, Outgoing, TransientSendError, UnreachableError
from coopbot.db import transaction
from coopbot.models import Identity, OutboxMessage
from coopbot.outbox import queue
from tests.matrix.members import MatrixCoop, NioMember

MakeMember = Callable[[str], Awaitable[NioMember]]

OFFER = Outgoing(
    "J-7: from the bakery to 12 rue Haute, before 11:00.",
    buttons=(Button("Accept", "/accept J-7", "✅"), Button("Decline", "/decline J-7", "❌")),
)


class Recorder:
    """Stands in for the core: keeps what the transport hands over."""

    def __init__(self) -> None:
        self.incoming: list[Incoming] = []
        self._changed = asyncio.Event()

    async def __call__(self, incoming: Incoming) -> None:
        self.incoming.append(incoming)
        self._changed.set()

    async def wait(self, count: int) -> list[Incoming]:
        async with asyncio.timeout(30):
            while len(self.incoming) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.incoming


async def test_an_offer_carries_reactions_and_a_members_reaction_is_the_command_even_after_a_restart(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    recorder = Recorder()
    transport = await matrix_coop.start_transport(recorder)
    dana = await make_member("Dana")
    matrix_coop.add_member("Dana", "member", dana.user_id)

    offer_id = await transport.send(Address("matrix", dana.user_id, private=True), OFFER, "offer:J-7:dana")

    shown = await dana.next_message(after=0, sender=matrix_coop.user_id, contains="J-7")
    assert shown.event_id == offer_id and shown.encrypted
    assert "✅ Accept · !accept J-7" in shown.body and "❌ Decline · !decline J-7" in shown.body
    await dana.wait_for(lambda: len([r for r in dana.reactions if r.reacts_to == offer_id]) == 2, "the buttons")
    assert {r.key for r in dana.reactions if r.reacts_to == offer_id} == {"✅", "❌"}
    with transaction(matrix_coop.bot.sessions) as session:
        identity = session.scalars(select(Identity).where(Identity.external_id == dana.user_id)).one()
        assert identity.private_chat_id == shown.room_id

    await dana.react(shown.room_id, offer_id, "✅")
    (pressed,) = await recorder.wait(1)
    assert pressed.button == "/accept J-7" and pressed.message_ref == offer_id
    assert pressed.user_id == dana.user_id and pressed.is_private

    await matrix_coop.stop()
    recorder = Recorder()
    await matrix_coop.start_transport(recorder)
    await dana.react(shown.room_id, offer_id, "❌")
    await dana.say(shown.room_id, "!jobs")
    got = await recorder.wait(2)
    assert [(i.button, i.text) for i in got] == [("/decline J-7", ""), (None, "!jobs")]


async def test_a_retried_send_with_the_same_key_is_shown_once(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    transport = await matrix_coop.start_transport(Recorder())
    dana = await make_member("Dana")
    address = Address("matrix", dana.user_id, private=True)

    first = await transport.send(address, Outgoing("Meeting on Friday at 18:00."), "announce:A-1:dana")
    again = await transport.send(address, Outgoing("Meeting on Friday at 18:00."), "announce:A-1:dana")
    await transport.send(address, Outgoing("And bring snacks."), "announce:A-2:dana")

    await dana.next_message(after=0, sender=matrix_coop.user_id, contains="snacks")
    assert first == again
    assert [m.body for m in dana.messages(sender=matrix_coop.user_id)] == [
        "Meeting on Friday at 18:00.",
        "And bring snacks.",
    ]


async def test_the_servers_rate_limit_is_a_retry_for_the_outbox_and_every_message_arrives_once(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    bot = await matrix_coop.start()
    carla = await make_member("Carla")
    room = await carla.create_room([matrix_coop.user_id], direct=False, encrypted=False, name="Coop")
    matrix_coop.add_member("Carla", "coordinator", carla.user_id)
    await carla.wait_joined(room, matrix_coop.user_id)
    await asyncio.to_thread(matrix_coop.server.override_ratelimit, matrix_coop.user_id, 1, 1)
    try:
        with pytest.raises(TransientSendError) as limited:
            for number in range(5):
                await matrix_coop.transport.send(Address("matrix", room, False), Outgoing(f"n{number}"), f"t:{number}")
        assert limited.value.retry_after is not None and limited.value.retry_after > 0
        assert limited.value.scope == "all"

        mark = carla.mark()
        with transaction(bot.sessions) as session:
            for number in range(3):
                queue(
                    session,
                    key=f"notice:{number}",
                    address=Address("matrix", room, private=False),
                    message=Outgoing(f"Notice {number}"),
                    now=bot.clock.now(),
                )
        bot.outbox.poke()

        def notices() -> list[str]:  # a room's waiting lines may arrive as one message
            return sorted(line for m in carla.messages(after=mark, sender=matrix_coop.user_id)
                          for line in m.body.splitlines())  # fmt: skip

        await carla.wait_for(lambda: len(notices()) >= 3, "three notices")
        assert notices() == [f"Notice {n}" for n in range(3)]
        with transaction(bot.sessions) as session:
            rows = session.scalars(select(OutboxMessage).where(OutboxMessage.key.like("notice:%"))).all()
            assert {row.status for row in rows} == {"sent"}
            assert any(row.attempts > 1 for row in rows), "the rate limit never bit"
    finally:
        await asyncio.to_thread(matrix_coop.server.clear_ratelimit, matrix_coop.user_id)


async def test_someone_who_cannot_be_reached_is_reported_not_pestered(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    transport = await matrix_coop.start_transport(Recorder())
    with pytest.raises(UnreachableError):
        await transport.send(Address("matrix", "@nobody:localhost", True), Outgoing("hello"), "k:nobody")

    dana = await make_member("Dana")
    await transport.send(Address("matrix", dana.user_id, True), Outgoing("first"), "k:dana:1")
    first = await dana.next_message(after=0, sender=matrix_coop.user_id)
    left = await dana.client.room_leave(first.room_id)
    assert isinstance(left, RoomLeaveResponse), left

    async def still_reachable() -> bool:
        try:
            await transport.send(Address("matrix", dana.user_id, True), Outgoing("again"), "k:dana:2")
        except UnreachableError:
            return False
        return True

    async def next_sync() -> None:
        async with transport._synced:  # notified after each sync the transport has read
            await transport._synced.wait()

    async with asyncio.timeout(30):
        while True:
            synced = asyncio.ensure_future(next_sync())  # listening before trying: no sync is missed
            if not await still_reachable():
                synced.cancel()
                break
            await synced  # Dana's leave reaches the bot with one of its syncs
    assert [m.body for m in dana.messages(sender=matrix_coop.user_id)] == ["first"]


async def test_the_bot_can_log_in_with_an_access_token_instead_of_a_password(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    matrix_coop.use_access_token()
    transport = await matrix_coop.start_transport(Recorder())
    assert transport.client.device_id == matrix_coop.account.device_id

    dana = await make_member("Dana")
    await transport.send(Address("matrix", dana.user_id, True), Outgoing("Welcome to the co-op."), "k:welcome")
    got = await dana.next_message(after=0, sender=matrix_coop.user_id)
    assert got.body == "Welcome to the co-op." and got.encrypted


async def test_an_attachment_reaches_the_member_encrypted_and_intact(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    from nio import DownloadResponse, RoomEncryptedFile
    from nio.crypto.attachments import decrypt_attachment

    transport = await matrix_coop.start_transport(Recorder())
    dana = await make_member("Dana")
    data = "member,points\nDana,12.5\nÉlise,9\n".encode()
    export = Outgoing("Your data, as you asked.", attachment=("my-data.csv", data, "text/csv"))

    await transport.send(Address("matrix", dana.user_id, True), export, "k:export")

    await dana.wait_for(lambda: bool(dana.files), "the file")
    (sent,) = dana.files
    assert isinstance(sent, RoomEncryptedFile) and sent.body == "my-data.csv"
    downloaded = await dana.client.download(mxc=sent.url)
    assert isinstance(downloaded, DownloadResponse), downloaded
    assert decrypt_attachment(downloaded.body, sent.key["k"], sent.hashes["sha256"], sent.iv) == data
    assert [m.body for m in dana.messages(sender=matrix_coop.user_id)] == ["Your data, as you asked."]


async def test_a_reply_message_that_fails_is_logged_and_the_next_still_arrives(
    matrix_coop: MatrixCoop, make_member: MakeMember, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    transport = await matrix_coop.start_transport(Recorder())
    dana = await make_member("Dana")
    room = await transport.private_room(dana.user_id)
    client = transport.client
    real_send = client.room_send
    failed: list[str] = []

    async def room_send(room_id: str, kind: str, content: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if content.get("body") == "First answer" and not failed:
            failed.append(content["body"])
            raise ValueError("an answer nio cannot read")
        return await real_send(room_id, kind, content, *args, **kwargs)

    monkeypatch.setattr(client, "room_send", room_send)
    asked = Incoming("matrix", dana.user_id, room, True, text="!help", event_id="mx:$asked")
    with caplog.at_level(logging.WARNING):
        await transport.reply(asked, [Outgoing("First answer"), Outgoing("Second answer")])
    await dana.next_message(after=0, sender=matrix_coop.user_id, room_id=room, contains="Second answer")
    assert [m.body for m in dana.messages(sender=matrix_coop.user_id, room_id=room)] == ["Second answer"]
    assert failed == ["First answer"]
    assert f"a reply in {room} failed" in caplog.text
