"""Which Matrix events deserve an answer, and what each one asks of the bot.

nio hands over everything a sync brings: the bot's own messages, the backlog
of a room it has just joined, edits, reactions, invites, people leaving. A
member expects one answer per thing they said to the bot and none to old
conversations, so the sorting happens here, once, before anything is acted
on. The callbacks only collect: they run inside nio's sync, and the
transport's worker must handle a whole sync's events before it saves the
sync token, or a crash could skip some.

Whether a room is a direct chat decides whether answers there are private,
so the rule lives here too, next to the sets of rooms it depends on.

A photo (`m.image`, a courier's proof of delivery) is only noted during the
sync; the worker downloads it (and decrypts it, in an encrypted room) before
handing it on (`Image.fetch`), so a slow download never holds up the sync.
Photos in group rooms are chatter unless their caption is a command.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from nio import (
    AsyncClient,
    InviteMemberEvent,
    MatrixRoom,
    MegolmEvent,
    MemoryDownloadResponse,
    ReactionEvent,
    RoomEncryptedImage,
    RoomMemberEvent,
    RoomMessageImage,
    RoomMessageText,
    UnknownEvent,
)
from nio.crypto.attachments import decrypt_attachment

from coopbot.chat import Incoming, Photo
from coopbot.transports.matrix import polls
from coopbot.transports.matrix.state import MATRIX

log = logging.getLogger(__name__)

#: How long after joining a group room its events count as history (seconds).
HISTORY_GRACE = 120.0


def strip_reply_fallback(body: str) -> str:
    """A reply in Element starts with the quoted message ("> ...") and a blank line."""
    lines = body.split("\n")
    if not lines or not lines[0].startswith("> "):
        return body
    while lines and lines[0].startswith(">"):
        lines.pop(0)
    return "\n".join(lines).strip()


@dataclass(frozen=True)
class Invite:
    room_id: str
    inviter: str
    direct: bool


@dataclass(frozen=True)
class Reaction:
    room_id: str
    sender: str
    display_name: str
    private: bool
    reacts_to: str
    key: str
    event_id: str

    def press(self, command: str) -> Incoming:
        """A reaction on a bot message with buttons is that button pressed, to the core."""
        return Incoming(
            platform=MATRIX,
            user_id=self.sender,
            chat_id=self.room_id,
            is_private=self.private,
            display_name=self.display_name,
            button=command,
            event_id=f"mx:{self.event_id}",
            message_ref=self.reacts_to,
        )


@dataclass(frozen=True)
class Undecryptable:
    room_id: str
    sender: str
    event: MegolmEvent


@dataclass(frozen=True)
class Left:
    room_id: str
    user_id: str


@dataclass(frozen=True)
class Image:
    """A photo someone sent: `incoming` without it yet, and where to fetch it."""

    incoming: Incoming
    url: str
    mime: str
    #: In an encrypted room: what decrypts the file (the key's "k", its sha256 hash, the iv).
    secret: tuple[str, str, str] | None = None

    async def fetch(self, client: AsyncClient) -> Incoming:
        """The message with its photo; without it (and a line in the log) if it cannot be had."""
        try:
            answer = await client.download(mxc=self.url)
            if not isinstance(answer, MemoryDownloadResponse):
                raise ValueError(f"the homeserver answered {answer}")
            data = answer.body if self.secret is None else decrypt_attachment(answer.body, *self.secret)
        except Exception as exc:  # the network, the homeserver, a file that does not decrypt
            log.warning("matrix: could not fetch the photo %s (%s)", self.url, exc)
            return self.incoming
        return replace(self.incoming, photo=Photo(bytes(data), self.mime))


Item = Incoming | Image | Invite | Reaction | Undecryptable | Left


class EventReader:
    """Collects one sync's events worth acting on, in the order they came."""

    def __init__(self) -> None:
        self.user_id = ""
        self.group_rooms: set[str] = set()
        self.direct_rooms: set[str] = set()
        #: True during the very first sync, whose timeline is all old history.
        self.skip_timeline = False
        self._history_until_join: dict[str, float] = {}
        self._invites_seen: set[str] = set()
        self._batch: list[Item] = []

    def attach(self, client: AsyncClient) -> None:
        self.user_id = client.user_id
        client.add_event_callback(self._on_text, RoomMessageText)
        client.add_event_callback(self._on_reaction, ReactionEvent)
        client.add_event_callback(self._on_image, (RoomMessageImage, RoomEncryptedImage))
        client.add_event_callback(self._on_undecryptable, MegolmEvent)
        client.add_event_callback(self._on_member, RoomMemberEvent)
        client.add_event_callback(self._on_invite, InviteMemberEvent)
        client.add_event_callback(self._on_other, UnknownEvent)

    def take(self) -> list[Item]:
        batch, self._batch = self._batch, []
        return batch

    def joining(self, room_id: str) -> None:
        """The bot is about to join a group room: what was said there before is not for it to answer."""
        self._history_until_join[room_id] = time.monotonic()

    def invite_answered(self, room_id: str) -> None:
        """A later invite to the same room (after leaving it, say) is a new question."""
        self._invites_seen.discard(room_id)

    def is_private(self, room: MatrixRoom) -> bool:
        """A direct chat: two people, and opened as one (or unnamed, as Element's are)."""
        if room.room_id in self.group_rooms or room.member_count > 2:
            return False
        return room.room_id in self.direct_rooms or not room.is_named

    def _live(self, room: MatrixRoom, sender: str) -> bool:
        """Whether an event should be answered: not ours, not old history."""
        if sender == self.user_id or self.skip_timeline:
            return False
        started = self._history_until_join.get(room.room_id)
        if started is None:
            return True
        if time.monotonic() - started > HISTORY_GRACE:
            self._history_until_join.pop(room.room_id, None)
            return True
        return False

    async def _on_text(self, room: MatrixRoom, event: RoomMessageText) -> None:
        content = event.source.get("content", {})
        relation = content.get("m.relates_to") or {}
        if not self._live(room, event.sender) or relation.get("rel_type") == "m.replace":
            return
        self._batch.append(
            Incoming(
                platform=MATRIX,
                user_id=event.sender,
                chat_id=room.room_id,
                is_private=self.is_private(room),
                text=strip_reply_fallback(event.body),
                display_name=room.user_name(event.sender) or event.sender,
                event_id=f"mx:{event.event_id}",
            )
        )

    async def _on_image(self, room: MatrixRoom, event: RoomMessageImage | RoomEncryptedImage) -> None:
        """A photo in a direct chat, or captioned with a command anywhere (`body` is its caption)."""
        caption = event.body.strip() if event.body.strip().startswith(("/", "!")) else ""
        private = self.is_private(room)
        if not self._live(room, event.sender) or not (private or caption):
            return
        incoming = Incoming(
            platform=MATRIX,
            user_id=event.sender,
            chat_id=room.room_id,
            is_private=private,
            text=caption,
            display_name=room.user_name(event.sender) or event.sender,
            event_id=f"mx:{event.event_id}",
        )
        if isinstance(event, RoomEncryptedImage):
            secret = (str(event.key.get("k", "")), str(event.hashes.get("sha256", "")), event.iv)
            self._batch.append(Image(incoming, event.url, event.mimetype or "image/jpeg", secret))
        else:
            info = event.source.get("content", {}).get("info") or {}
            self._batch.append(Image(incoming, event.url, str(info.get("mimetype") or "image/jpeg")))

    async def _on_reaction(self, room: MatrixRoom, event: ReactionEvent) -> None:
        if not self._live(room, event.sender):
            return
        self._batch.append(
            Reaction(
                room.room_id,
                event.sender,
                room.user_name(event.sender) or event.sender,
                self.is_private(room),
                event.reacts_to,
                event.key,
                event.event_id,
            )
        )

    async def _on_other(self, room: MatrixRoom, event: UnknownEvent) -> None:
        """An answer to one of our native polls counts as pressing its vote (`matrix.polls`)."""
        answer = polls.answer_of(event.type, event.source.get("content", {}))
        if answer is None or not answer[1] or not self._live(room, event.sender):
            return
        start, chosen = answer
        self._batch.append(
            Reaction(room.room_id, event.sender, room.user_name(event.sender) or event.sender,
                     self.is_private(room), start, polls.ANSWER + ",".join(chosen), event.event_id)
        )  # fmt: skip

    async def _on_undecryptable(self, room: MatrixRoom, event: MegolmEvent) -> None:
        if self._live(room, event.sender):
            self._batch.append(Undecryptable(room.room_id, event.sender, event))

    async def _on_member(self, room: MatrixRoom, event: RoomMemberEvent) -> None:
        if event.state_key == self.user_id and event.membership == "join":
            self._history_until_join.pop(room.room_id, None)
        elif (
            event.membership in ("leave", "ban")
            and event.state_key != self.user_id
            and not self.skip_timeline
            and room.room_id not in self.group_rooms
            and (room.room_id in self.direct_rooms or not room.is_named)
            and room.member_count <= 1
        ):
            self._batch.append(Left(room.room_id, event.state_key))

    async def _on_invite(self, room: MatrixRoom, event: InviteMemberEvent) -> None:
        if event.state_key != self.user_id or event.membership != "invite":
            return
        if room.room_id in self._invites_seen:
            return
        self._invites_seen.add(room.room_id)
        self._batch.append(Invite(room.room_id, event.sender, bool(event.content.get("is_direct"))))
