"""A courier proves a delivery with a Matrix photo (`m.image`), in an encrypted direct chat or not."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from coopbot.db import transaction
from coopbot.models import Job, Member
from tests.conftest import ZONES
from tests.matrix.members import MatrixCoop, NioMember

MakeMember = Callable[[str], Awaitable[NioMember]]
#: Not a real PNG: the homeserver and the bot pass the bytes on as they are.
PHOTO = b"\x89PNG\r\n\x1a\n the parcel on the doorstep of 12 rue de Paris " * 30


async def send_image(member: NioMember, room_id: str, data: bytes, caption: str = "photo.png") -> None:
    """What Element does: upload the file (encrypted in an encrypted room), then send `m.image`."""
    from nio import RoomSendResponse, UploadResponse

    encrypted = member.client.rooms[room_id].encrypted
    uploaded, keys = await member.client.upload(
        io.BytesIO(data), content_type="image/png", filename="photo.png", encrypt=encrypted, filesize=len(data)
    )
    assert isinstance(uploaded, UploadResponse), uploaded
    content: dict[str, Any] = {"msgtype": "m.image", "body": caption, "info": {"mimetype": "image/png",
                                                                              "size": len(data)}}
    if encrypted:
        content["file"] = {"url": uploaded.content_uri, **(keys or {})}
    else:
        content["url"] = uploaded.content_uri
    response = await member.client.room_send(room_id, "m.room.message", content, ignore_unverified_devices=True)
    assert isinstance(response, RoomSendResponse), response


async def ask(member: NioMember, room: str, coop: MatrixCoop, text: str, contains: str = "") -> str:
    mark = member.mark()
    await member.say(room, text)
    return (await member.next_message(after=mark, sender=coop.user_id, room_id=room, contains=contains)).body


async def picked_up_order(coop: MatrixCoop, make_member: MakeMember, *, encrypted: bool) -> tuple[NioMember, str,
                                                                                                   NioMember, str]:
    """Martin (a customer) orders J-1; Ana (a courier) takes it and picks it up. Their direct chats."""
    coop.extra = {
        "orders": {"proof": "photo", "photo_folder": str(coop.directory / "proof-photos")},
        "prices": {"base": 4.0, "crossing": 2.5, "zones": ZONES},
    }
    bot = await coop.start()
    ana, martin = await make_member("Ana"), await make_member("Martin")
    coop.add_member("Ana", "member", ana.user_id)
    number = coop.add_member("Martin", "customer", martin.user_id)
    with transaction(bot.sessions) as session:
        session.get_one(Member, number).address = "3 rue Paul Bert, 75011"
    rooms = []
    for member in (ana, martin):
        room = await member.create_room([coop.user_id], direct=True, encrypted=encrypted)
        await member.wait_joined(room, coop.user_id)
        rooms.append(room)
    ana_dm, martin_dm = rooms
    await ask(ana, ana_dm, coop, "!available")
    await ask(martin, martin_dm, coop, "!order 75011 -> 75002")
    await ask(martin, martin_dm, coop, "!confirm J-1")
    await ask(ana, ana_dm, coop, "!accept J-1", contains="J-1")
    await ask(ana, ana_dm, coop, "!pickup J-1", contains="J-1")
    return ana, ana_dm, martin, martin_dm


def stored_photo(coop: MatrixCoop) -> bytes | None:
    with transaction(coop.bot.sessions) as session:
        name = session.scalars(select(Job.proof_photo).where(Job.id == 1)).one()
    return (Path(coop.directory / "proof-photos") / name).read_bytes() if name else None


async def test_a_photo_in_an_encrypted_direct_chat_delivers_the_job_and_reaches_the_customer(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    ana, ana_dm, martin, martin_dm = await picked_up_order(matrix_coop, make_member, encrypted=True)
    mark = ana.mark()
    await send_image(ana, ana_dm, PHOTO)
    answer = await ana.next_message(after=mark, sender=matrix_coop.user_id, room_id=ana_dm, contains="J-1 delivered")
    assert answer.encrypted
    assert stored_photo(matrix_coop) == PHOTO
    await martin.next_message(after=0, sender=matrix_coop.user_id, room_id=martin_dm,
                              contains="✅ J-1 is delivered, by Ana.")
    await martin.wait_for(lambda: any(f.sender == matrix_coop.user_id for f in martin.files), "the photo")
    assert await photo_received(martin) == PHOTO


async def photo_received(member: NioMember) -> bytes:
    """The photo the bot sent this member, downloaded and decrypted as their client would."""
    from nio import MemoryDownloadResponse, RoomEncryptedMedia
    from nio.crypto.attachments import decrypt_attachment

    [sent] = [f for f in member.files if f.body.endswith("-proof.png")]
    answer = await member.client.download(mxc=sent.url)
    assert isinstance(answer, MemoryDownloadResponse), answer
    if isinstance(sent, RoomEncryptedMedia):
        return bytes(decrypt_attachment(answer.body, sent.key["k"], sent.hashes["sha256"], sent.iv))
    return bytes(answer.body)


async def test_a_photo_captioned_deliver_in_a_plain_direct_chat_delivers_the_job(
    matrix_coop: MatrixCoop, make_member: MakeMember
) -> None:
    ana, ana_dm, _, _ = await picked_up_order(matrix_coop, make_member, encrypted=False)
    mark = ana.mark()
    await send_image(ana, ana_dm, PHOTO, caption="!deliver J-1")
    await ana.next_message(after=mark, sender=matrix_coop.user_id, room_id=ana_dm, contains="J-1 delivered")
    assert stored_photo(matrix_coop) == PHOTO
