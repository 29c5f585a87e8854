"""Matrix front end on matrix-nio: the same commands as Telegram and the console.

Many co-ops run their own homeserver and use Element, which makes direct
chats end-to-end encrypted by default, so the bot is a full E2EE client whose
keys live in `store_path`. Three choices follow from what a member sees:

* Nothing is answered twice and nothing is lost across a restart: events are
  handled first and the sync token is saved after, so a crash replays a few
  events, which the core recognises by `event_id` and ignores.
* Old history is never replayed: the very first start skips the backlog, and
  a group room the bot just joined only counts from the bot's own join.
* Buttons are reactions on the bot's message, remembered durably so that a
  reaction after a restart still means its command. Typing it always works.

A member's private chat is a direct room the bot finds or creates; a stranger
may open one (that is how a new member reaches the bot to `!join`), but the
bot only joins group rooms it is configured for or invited to by a member.

Which events count lives in `events`, sending in `send`, what survives a
restart in `state`; this module runs the connection and acts on each event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    JoinError,
    LocalProtocolError,
    LoginResponse,
    MatrixRoom,
    ProfileGetDisplayNameResponse,
    ProfileGetError,
    RoomCreateError,
    RoomPreset,
    RoomResolveAliasResponse,
    SyncError,
    WhoamiResponse,
)
from sqlalchemy.orm import Session, sessionmaker

from coopbot.chat import Address, Incoming, IncomingHandler, Outgoing, Pacing, TransientSendError, UnreachableError
from coopbot.clock import Clock, SystemClock
from coopbot.config import Config
from coopbot.errors import ConfigError
from coopbot.i18n import t
from coopbot.transports.matrix.events import EventReader, Image, Invite, Item, Left, Reaction, Undecryptable
from coopbot.transports.matrix.send import MatrixSender, button_emojis, send_error
from coopbot.transports.matrix.state import MATRIX, MatrixState

if TYPE_CHECKING:
    from coopbot.app import CoopBot

log = logging.getLogger(__name__)

ENCRYPTION_STATE = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
SYNC_FILTER = {
    "presence": {"not_types": ["*"]},
    "room": {"timeline": {"limit": 100}, "ephemeral": {"not_types": ["*"]}},
}
ROOM_WAIT = 15.0
READY_WAIT = 30.0
STOP_WAIT = 10.0


def build_matrix_transport(config: Config, bot: CoopBot) -> MatrixTransport:
    return MatrixTransport(config, bot.sessions, bot.clock)


class MatrixTransport:
    platform = MATRIX

    def __init__(self, config: Config, sessions: sessionmaker[Session], clock: Clock | None = None, *,
                 sync_timeout_ms: int = 30000) -> None:  # fmt: skip
        self.config = config
        self.settings = config.matrix
        self.sessions = sessions
        self.clock: Clock = clock or SystemClock()
        self.sync_timeout_ms = sync_timeout_ms
        self.client: AsyncClient | None = None
        self._state = MatrixState(sessions, self.clock, config.coop.default_language)
        self._events = EventReader()
        self._sender = MatrixSender(self._client, self._state)
        self._on_incoming: IncomingHandler | None = None
        self._dm_rooms: dict[str, str] = {}
        self._dm_locks: dict[str, asyncio.Lock] = {}
        self._refused: set[str] = set()
        self._aliases: dict[str, str] = {}
        self._stopping = False
        self._queue: asyncio.Queue[tuple[list[Item], str | None]] = asyncio.Queue()
        self._ready = asyncio.Event()
        self._synced = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def connected(self) -> bool:  # since the first sync succeeded, until stopped (`/readyz`)
        return self._ready.is_set()

    @property
    def user_id(self) -> str:
        return self.client.user_id if self.client is not None else self.settings.user_id

    def pacing(self) -> Pacing:
        # Synapse's default is 0.2 message/s with bursts of 10; operators exempt
        # the bot (see README), and a 429 pauses the whole transport anyway.
        return Pacing(per_second=5.0, private_chat_interval=0.2, group_per_minute=60)

    @staticmethod
    def button_emojis(message: Outgoing) -> list[tuple[str, str, str]]:
        """On the transport so callers need not know which module picks the emojis."""
        return button_emojis(message)

    def is_private(self, room: MatrixRoom) -> bool:
        """A direct chat: two people, and opened as one (or unnamed, as Element's are)."""
        return self._events.is_private(room)

    # --- start and stop ------------------------------------------------------------

    async def start(self, on_incoming: IncomingHandler) -> None:
        self._on_incoming = on_incoming
        try:
            self.client = await self._login()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ConfigError(
                f"matrix: cannot reach the homeserver {self.settings.homeserver} ({exc}); check matrix.homeserver"
            ) from exc
        client = self.client
        if client.should_upload_keys:
            await client.keys_upload()
        await self._introduce()
        await self._resolve_configured_rooms()
        self._events.attach(client)
        await asyncio.to_thread(self._state.prune_buttons)
        self._dm_rooms = await asyncio.to_thread(self._state.known_dms)
        self._events.direct_rooms.update(self._dm_rooms.values())
        self._refused = await asyncio.to_thread(self._state.left_users)
        since = await asyncio.to_thread(self._state.since) or client.loaded_sync_token or None
        self._events.skip_timeline = since is None
        first = await client.sync(timeout=0, since=since, full_state=True, sync_filter=SYNC_FILTER)
        if isinstance(first, SyncError):
            raise ConfigError(f"matrix: the first sync with {self.settings.homeserver} failed: {first}")
        self._events.skip_timeline = False
        await self._join_configured_rooms()
        self._queue.put_nowait((self._events.take(), first.next_batch))
        self._ready.set()
        self._tasks = [asyncio.create_task(self._sync_loop()), asyncio.create_task(self._work())]

    async def stop(self) -> None:
        """Stop reading, finish what was read (so its sync token is saved), then close."""
        if self._tasks:
            # Keep syncing while the last batch finishes: its answers may wait for a new room.
            self._stopping = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout=STOP_WAIT)
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks = []
        self._stopping = False
        self._ready.clear()
        if self.client is not None:
            await self.client.close()

    async def _login(self) -> AsyncClient:
        """Token from the environment if given, else the password; the device stays the same."""
        settings = self.settings
        store = Path(settings.store_path)
        store.mkdir(mode=0o700, parents=True, exist_ok=True)
        client_config = AsyncClientConfig(
            encryption_enabled=settings.encryption,
            store_sync_tokens=True,
            max_limit_exceeded=0,
            max_timeouts=2,
            request_timeout=30,
        )
        client = AsyncClient(settings.homeserver, settings.user_id, store_path=str(store), config=client_config)
        token = os.environ.get(settings.access_token_env, "")
        if token:
            client.access_token = token
            who = await client.whoami()
            if not isinstance(who, WhoamiResponse) or not who.device_id:
                await client.close()
                raise ConfigError(
                    f"matrix: the access token in {settings.access_token_env} was refused ({who}); "
                    "make a new one or use matrix.password_env"
                )
            client.restore_login(who.user_id, who.device_id, token)
            return client
        password = os.environ.get(settings.password_env, "")
        if not password:
            await client.close()
            raise ConfigError(
                f"matrix: set the bot's password in {settings.password_env} "
                f"(or an access token in {settings.access_token_env})"
            )
        credentials = store / "credentials.json"
        saved = _read_json(credentials)
        if saved.get("user_id") == settings.user_id and saved.get("device_id"):
            client.device_id = saved["device_id"]
        answer = await client.login(password, device_name=settings.device_name)
        if not isinstance(answer, LoginResponse):
            await client.close()
            raise ConfigError(
                f"matrix: logging in as {settings.user_id} failed ({answer}); check {settings.password_env}"
            )
        credentials.write_text(json.dumps({"user_id": answer.user_id, "device_id": answer.device_id}))
        return client

    async def _introduce(self) -> None:
        """Members should see the co-op's name, not `@coopbot:server`, unless the operator chose one."""
        client = self._client()
        with contextlib.suppress(Exception):
            current = await client.get_displayname()
            if isinstance(current, ProfileGetDisplayNameResponse) and not current.displayname:
                await client.set_displayname(self.config.coop.name)

    async def _resolve_configured_rooms(self) -> None:
        """The co-op's rooms are never direct chats, whatever their size."""
        client = self._client()
        for ref in [*self.settings.rooms, *self.settings.coordinator_rooms]:
            room_id = ref
            if ref.startswith("#"):
                resolved = await client.room_resolve_alias(ref)
                if not isinstance(resolved, RoomResolveAliasResponse):
                    log.error("matrix: cannot resolve the room alias %s (%s)", ref, resolved)
                    continue
                room_id = resolved.room_id
                self._aliases[ref] = room_id
            self._events.group_rooms.add(room_id)

    async def _join_configured_rooms(self) -> None:
        client = self._client()
        for room_id in sorted(self._events.group_rooms - set(client.rooms)):
            self._events.joining(room_id)
            joined = await client.join(room_id)
            if isinstance(joined, JoinError):
                log.error("matrix: cannot join the configured room %s (%s)", room_id, joined)

    # --- receiving -----------------------------------------------------------------

    async def _sync_loop(self) -> None:
        client = self._client()
        failures = 0
        while True:
            try:
                response = await client.sync(timeout=self.sync_timeout_ms, sync_filter=SYNC_FILTER)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                response = None
                log.warning("matrix: sync failed (%s); retrying", exc)
            if isinstance(response, SyncError) or response is None:
                failures += 1
                wait = min(60.0, 0.5 * 2**failures)
                if isinstance(response, SyncError):
                    log.warning("matrix: the homeserver refused a sync (%s); retrying", response)
                    wait = response.retry_after_ms / 1000 if response.retry_after_ms else wait
                await asyncio.sleep(wait)
                continue
            failures = 0
            batch = (self._events.take(), response.next_batch)
            if not self._stopping:
                # When stopping, a batch is dropped unsaved: the next start reads it again.
                self._queue.put_nowait(batch)
            async with self._synced:
                self._synced.notify_all()
            await self._keys_housekeeping()

    async def _keys_housekeeping(self) -> None:
        client = self._client()
        with contextlib.suppress(LocalProtocolError):
            if client.should_upload_keys:
                await client.keys_upload()
            if client.should_query_keys:
                await client.keys_query()
            if client.should_claim_keys:
                await client.keys_claim(client.get_users_for_key_claiming())
            await client.send_to_device_messages()

    async def _work(self) -> None:
        """Handle each sync's events in order, then remember how far we got."""
        while True:
            batch, token = await self._queue.get()
            try:
                for item in batch:
                    try:
                        await self._handle(item)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("matrix: handling %r failed", item)
                if token:
                    await asyncio.to_thread(self._state.save_since, token)
            finally:
                self._queue.task_done()

    async def _handle(self, item: Item) -> None:
        if isinstance(item, Image):
            item = await item.fetch(self._client())
        if isinstance(item, Incoming):
            await self._welcome_back(item.user_id)
            assert self._on_incoming is not None
            await self._on_incoming(item)
        elif isinstance(item, Reaction):
            incoming = await self._reaction_incoming(item)
            if incoming is not None and self._on_incoming is not None:
                await self._on_incoming(incoming)
        elif isinstance(item, Invite):
            await self._answer_invite(item)
        elif isinstance(item, Undecryptable):
            await self._ask_to_resend(item)
        else:
            await self._forget_dm(item)

    async def _reaction_incoming(self, reaction: Reaction) -> Incoming | None:
        command = await self._sender.command_for(reaction.reacts_to, reaction.key)
        return reaction.press(command) if command is not None else None

    async def _ask_to_resend(self, item: Undecryptable) -> None:
        """A message we cannot read still deserves an answer: ask for it again."""
        client = self._client()
        first = await asyncio.to_thread(self._state.first_time, f"mx:{item.event.event_id}")
        if not first:
            return
        with contextlib.suppress(Exception):
            await client.request_room_key(item.event)
        lang = await asyncio.to_thread(self._state.language_of, item.sender)
        note = Outgoing(t(lang, "matrix.undecryptable"))
        await self._sender.deliver(item.room_id, note, f"undecryptable:{item.event.event_id}")

    # --- invites, rooms, direct chats ----------------------------------------------------

    async def _answer_invite(self, invite: Invite) -> None:
        """Join configured rooms, anything a member asks, and direct chats from anyone."""
        client = self._client()
        try:
            if invite.room_id in client.rooms:
                return
            known = await asyncio.to_thread(self._state.is_member, invite.inviter)
            if not (invite.room_id in self._events.group_rooms or known or invite.direct):
                log.info("matrix: refusing a group-room invite from %s, who is not a member", invite.inviter)
                await client.room_leave(invite.room_id)
                return
            if not invite.direct:
                self._events.joining(invite.room_id)
            answer = await client.join(invite.room_id)
            if isinstance(answer, JoinError):
                log.warning("matrix: could not join %s (%s)", invite.room_id, answer)
            elif invite.direct:
                self._events.direct_rooms.add(invite.room_id)
                self._dm_rooms[invite.inviter] = invite.room_id
                await self._welcome_back(invite.inviter)
        finally:
            self._events.invite_answered(invite.room_id)

    async def _welcome_back(self, user_id: str) -> None:
        if user_id in self._refused:
            self._refused.discard(user_id)
            await asyncio.to_thread(self._state.set_left, user_id, False)

    async def _forget_dm(self, left: Left) -> None:
        """Someone left our direct chat: leave it too, and do not pester them with a new one."""
        client = self._client()
        if self._dm_rooms.get(left.user_id) == left.room_id:
            del self._dm_rooms[left.user_id]
            self._refused.add(left.user_id)
            await asyncio.to_thread(self._state.set_left, left.user_id, True)
        with contextlib.suppress(Exception):
            await client.room_leave(left.room_id)
            await client.room_forget(left.room_id)

    def _dm_is_usable(self, room_id: str | None, user_id: str) -> bool:
        room = self._client().rooms.get(room_id) if room_id else None
        return room is not None and {user_id, self.user_id} <= set(room.users) and room.member_count <= 2

    async def private_room(self, user_id: str) -> str:
        """The direct chat with `user_id`: remembered, found, or created (encrypted)."""
        async with self._dm_locks.setdefault(user_id, asyncio.Lock()):
            stored = await asyncio.to_thread(self._state.load_dm, user_id)
            candidates = [self._dm_rooms.get(user_id), stored]
            candidates += [rid for rid, room in self._client().rooms.items() if self.is_private(room)]
            room_id = next((rid for rid in candidates if rid and self._dm_is_usable(rid, user_id)), None)
            if room_id is None:
                if user_id in self._refused:
                    raise UnreachableError(f"{user_id} left the direct chat with the bot")
                room_id = await self._create_dm(user_id)
            self._dm_rooms[user_id] = room_id
            self._events.direct_rooms.add(room_id)
            if stored != room_id:
                await asyncio.to_thread(self._state.save_dm, user_id, room_id)
            return str(room_id)

    async def _create_dm(self, user_id: str) -> str:
        client = self._client()
        if not user_id.startswith("@") or ":" not in user_id:
            raise UnreachableError(f"matrix: {user_id!r} is not a Matrix user id")
        try:
            profile = await client.get_profile(user_id)
            # Synapse happily invites accounts that do not exist; their profile tells.
            if isinstance(profile, ProfileGetError) and _http_status(profile) == 404:
                raise UnreachableError(f"matrix: there is no account {user_id}")
            created = await client.room_create(
                is_direct=True,
                invite=[user_id],
                preset=RoomPreset.trusted_private_chat,
                initial_state=[ENCRYPTION_STATE] if self.settings.encryption else [],
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientSendError(f"matrix: creating a direct chat failed: {exc}") from exc
        if isinstance(created, RoomCreateError):
            raise send_error(created, f"cannot open a direct chat with {user_id}")
        room_id = str(created.room_id)

        def invited() -> bool:
            # The invite may reach us a sync after the room itself; until it has,
            # nio would not know whose devices need the room's encryption key.
            room = client.rooms.get(room_id)
            return room is not None and user_id in room.users

        await self._wait_for(invited, f"the new direct chat {room_id}")
        return room_id

    async def _wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + ROOM_WAIT
        async with self._synced:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransientSendError(f"matrix: waited too long for {what}", retry_after=5.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._synced.wait(), timeout=remaining)

    # --- sending ---------------------------------------------------------------------

    async def reply(self, incoming: Incoming, messages: list[Outgoing]) -> None:
        """Answer in the room; a message that fails is logged and the next one still goes."""
        base, room = incoming.event_id or f"adhoc:{uuid.uuid4()}", incoming.chat_id
        for number, message in enumerate(messages):
            reply_to = incoming.message_ref if message.edit else None
            try:
                await self._sender.deliver_reply(room, message, f"answer:{base}:{number}", reply_to)
            except UnreachableError as exc:
                log.warning("matrix: room %s cannot be reached; reply dropped: %s", room, exc)
                return
            except TransientSendError as exc:
                log.warning("matrix: a reply in %s was not delivered: %s", room, exc)
            except Exception:  # an answer nio cannot read, a bug: the next message still goes
                log.exception("matrix: a reply in %s failed", room)

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        if not self._ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout=READY_WAIT)
            if not self._ready.is_set():
                raise TransientSendError("matrix: not connected yet", retry_after=5.0)
        if address.private:
            room_id = await self.private_room(address.chat_id)
        else:
            room_id = self._aliases.get(address.chat_id, address.chat_id)
        return await self._sender.deliver(room_id, message, key)

    def _client(self) -> AsyncClient:
        if self.client is None:
            raise TransientSendError("matrix: not started", retry_after=5.0)
        client: AsyncClient = self.client
        return client


def _http_status(answer: ErrorResponse) -> int | None:
    response = getattr(answer, "transport_response", None)
    status = getattr(response, "status", None)
    return status if isinstance(status, int) else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
