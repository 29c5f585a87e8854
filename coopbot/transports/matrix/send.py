"""How one outgoing message becomes Matrix events, and what its reactions mean later.

Matrix has no buttons, so a message with buttons is sent with the bot's own
reactions under it, one emoji per button, for the member to tap; each button
is also written out as the command to type, which always works (past the
tenth keycap, or in a client that cannot react). The emoji → command map is
kept in memory and in the database, so a tap after a restart still works.

Every event gets a transaction id derived from the outbox key: when the
outbox retries after a timeout, Synapse recognises the retry and the member
does not see the message twice. Errors are sorted into "try again later"
and "this recipient cannot be reached", the two answers the outbox acts on.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from collections.abc import Callable
from typing import Any

import aiohttp
from nio import (
    AsyncClient,
    ErrorResponse,
    LocalProtocolError,
    RoomSendResponse,
    SendRetryError,
    UploadResponse,
)

from coopbot.chat import NativePoll, Outgoing, TransientSendError, UnreachableError
from coopbot.transports.matrix import polls
from coopbot.transports.matrix.state import MatrixState

#: A reply is tried this many times more when the server asks to try later.
REPLY_RETRIES = 3
REPLY_MAX_WAIT = 30.0
#: Reactions for buttons that come without an emoji of their own, in order.
KEYCAPS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟")


def tx_id(key: str) -> str:
    """The same outbox key always gives the same transaction id, so a retry is never shown twice."""
    return "coopbot-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def same_emoji(key: str) -> str:
    """Clients differ on the variation selector (✅ vs ✅\ufe0f); compare without it."""
    return key.replace("\ufe0f", "").strip()


def button_emojis(message: Outgoing) -> list[tuple[str, str, str]]:
    """(emoji, label, command) per button, each emoji once; a button without one gets a keycap.

    Past ten buttons without emojis the emoji is "": the command is shown to type, not to react.
    """
    chosen: list[tuple[str, str, str]] = []
    used: set[str] = set()
    for button in message.buttons:
        emoji = button.emoji
        if not emoji or same_emoji(emoji) in used:
            emoji = next((k for k in KEYCAPS if same_emoji(k) not in used), "")
        used.add(same_emoji(emoji))
        chosen.append((emoji, button.label, button.command))
    return chosen


def typed(command: str) -> str:
    """Element swallows `/`, so show commands as members type them there."""
    return "!" + command[1:] if command.startswith("/") else command


#: A command named in a sentence ("Type /myslots to see…"): a `/` that starts a word, after a
#: space, the start of a line or an opening mark; not inside an address, a date or "1/2".
COMMAND_IN_TEXT = re.compile(r"(?<![^\s(«“\"'])/(?=[^\W\d_])")


def typed_in_text(text: str) -> str:
    """The sentences name commands as `/cmd`, the same words on every platform; on Matrix they
    are shown as members can type them in Element (`!cmd`), or following a hint would open
    Element's "unknown command" prompt instead of reaching the bot."""
    return COMMAND_IN_TEXT.sub("!", text)


def send_error(answer: ErrorResponse, what: str) -> TransientSendError | UnreachableError:
    code = answer.status_code or ""
    if code == "M_LIMIT_EXCEEDED":
        wait = (answer.retry_after_ms or 5000) / 1000
        return TransientSendError(f"matrix: {what}: rate limited", retry_after=wait, scope="all")
    if code in ("M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN_USER", "M_INVALID_PARAM", "M_BAD_JSON"):
        return UnreachableError(f"matrix: {what}: {answer}")
    return TransientSendError(f"matrix: {what}: {answer}")


class MatrixSender:
    def __init__(self, client: Callable[[], AsyncClient], state: MatrixState) -> None:
        self._client = client
        self._state = state
        self._buttons: dict[str, dict[str, str]] = {}

    async def deliver(self, room_id: str, message: Outgoing, key: str, reply_to: str | None = None) -> str:
        """Send `message` to a room the bot is in; the id of its text event."""
        text = typed_in_text(message.text)
        if message.poll is not None and not message.poll.ended:
            return await self._start_poll(room_id, message.poll, text, key)
        if message.poll is not None:
            await self._end_poll(room_id, message.poll, text, key)
        buttons = button_emojis(message)
        body = text
        if buttons:
            hints = "\n".join(f"{emoji or '•'} {label} · {typed(command)}" for emoji, label, command in buttons)
            body = f"{body}\n\n{hints}"
        content: dict[str, Any] = {"msgtype": "m.text", "body": body}
        if reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        event_id = await self._room_send(room_id, "m.room.message", content, tx_id(key))
        reactions = [emoji for emoji, _, _ in buttons if emoji]
        if reactions:
            mapping = {same_emoji(emoji): command for emoji, _, command in buttons if emoji}
            self._buttons[event_id] = mapping
            await asyncio.to_thread(self._state.save_buttons, event_id, room_id, mapping)
            for number, emoji in enumerate(reactions):
                relation = {"rel_type": "m.annotation", "event_id": event_id, "key": emoji}
                await self._room_send(room_id, "m.reaction", {"m.relates_to": relation}, tx_id(f"{key}:r{number}"))
        if message.attachment is not None:
            await self._send_file(room_id, message.attachment, tx_id(f"{key}:file"))
        return event_id

    async def deliver_reply(self, room_id: str, message: Outgoing, key: str, reply_to: str | None = None) -> str:
        """`deliver`, retried a little when the server says "later": the member is waiting, and
        the same transaction id each time means a retry is never shown twice."""
        for attempt in range(REPLY_RETRIES):
            try:
                return await self.deliver(room_id, message, key, reply_to)
            except TransientSendError as exc:
                await asyncio.sleep(min(exc.retry_after or 0.5 * 2**attempt, REPLY_MAX_WAIT))
        return await self.deliver(room_id, message, key, reply_to)

    async def _start_poll(self, room_id: str, poll: NativePoll, text: str, key: str) -> str:
        """A native poll, remembered so its answers count, even after a restart."""
        event_id = await self._room_send(room_id, polls.START, polls.start_content(poll, text), tx_id(key))
        await asyncio.to_thread(self._state.save_poll, event_id, room_id, poll.code)
        return event_id

    async def _end_poll(self, room_id: str, poll: NativePoll, text: str, key: str) -> None:
        """The native poll ends; the result itself follows as a message every client shows in full."""
        start = await asyncio.to_thread(self._state.poll_start, room_id, poll.code)
        if start is not None:
            await self._room_send(room_id, polls.END, polls.end_content(start, text), tx_id(f"{key}:end"))

    async def command_for(self, event_id: str, key: str) -> str | None:
        """The command a reaction `key` on our message `event_id` stands for, if any (an answer
        to a native poll travels as a reaction keyed `poll:1,3`)."""
        if key.startswith(polls.ANSWER):
            code = await asyncio.to_thread(self._state.poll_of, event_id)
            return polls.vote_command(code, key.removeprefix(polls.ANSWER).split(",")) if code else None
        buttons = self._buttons.get(event_id)
        if buttons is None:
            buttons = await asyncio.to_thread(self._state.load_buttons, event_id)
            if buttons is None:
                return None
            self._buttons[event_id] = buttons
        return buttons.get(same_emoji(key))

    async def _send_file(self, room_id: str, attachment: tuple[str, bytes, str], txn: str) -> None:
        client = self._client()
        name, data, mime = attachment
        room = client.rooms.get(room_id)
        encrypt = bool(room is not None and room.encrypted)
        try:
            uploaded, keys = await client.upload(
                io.BytesIO(data), content_type=mime, filename=name, encrypt=encrypt, filesize=len(data)
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientSendError(f"matrix: upload failed: {exc}") from exc
        if not isinstance(uploaded, UploadResponse):
            raise send_error(uploaded, "upload failed")
        kind = "m.image" if mime.startswith("image/") else "m.file"
        content: dict[str, Any] = {"msgtype": kind, "body": name, "info": {"mimetype": mime, "size": len(data)}}
        if encrypt and keys is not None:
            content["file"] = {"url": uploaded.content_uri, **keys}
        else:
            content["url"] = uploaded.content_uri
        await self._room_send(room_id, "m.room.message", content, txn)

    async def _room_send(self, room_id: str, kind: str, content: dict[str, Any], txn: str) -> str:
        client = self._client()
        try:
            answer = await client.room_send(room_id, kind, content, tx_id=txn, ignore_unverified_devices=True)
        except LocalProtocolError as exc:
            raise UnreachableError(f"matrix: the bot is not in room {room_id} ({exc})") from exc
        except (aiohttp.ClientError, TimeoutError, SendRetryError) as exc:
            raise TransientSendError(f"matrix: sending failed: {exc}") from exc
        if isinstance(answer, RoomSendResponse):
            return str(answer.event_id)
        raise send_error(answer, f"sending to {room_id} failed")
