"""A small Telegram Bot API server for tests, speaking the real wire format.

The bot under test is the real python-telegram-bot stack (httpx, Bot,
Application) pointed here with `api_base_url`. The fake plays Telegram: it
holds the members' updates until getUpdates confirms them (or posts them to
the webhook), keeps every message the bot sent, checks it by Telegram's rules
(`fake_telegram_rules`: HTML, limits, flood counts), and fails the way
Telegram fails when told to (429 with retry_after, 500, 403 for one chat, a
request that hangs, an answer PTB cannot read).

It runs in its own thread with its own event loop, as a real server would:
the times it records are when requests reach it, not when the bot's busy
event loop gets round to reading them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from tests.telegram.fake_telegram_rules import (
    ApiError,
    Call,
    ChatState,
    Failures,
    FakeChat,
    FakeUser,
    FloodLimits,
    check_flood,
    checked_content,
    checked_markup,
    checked_text,
    decode_param,
)

__all__ = ["FakeBotApi", "FakeChat", "FakeUser", "FloodLimits"]

SEND_METHODS = ("sendMessage", "sendPhoto", "sendDocument")
#: How often `wait_for` looks again without news from the server: a predicate may read the bot's state.
RECHECK = 0.05


class FakeBotApi:
    """`await start()`, point the bot at `base_url`, then play the members."""

    def __init__(
        self, token: str = "123456:TEST-fake-token", *, bot_username: str = "coopbot_test_bot", seed: int = 0
    ) -> None:
        self.token = token
        self.bot_user = {
            "id": int(token.split(":", maxsplit=1)[0]),
            "is_bot": True,
            "first_name": "Coopbot",
            "username": bot_username,
            "can_join_groups": True,
        }
        self.limits = FloodLimits()
        self.failures: dict[str, Failures] = {}
        self.forbidden: set[int] = set()
        self.calls: list[Call] = []
        self.violations: list[str] = []
        #: (chat_id, message_id) → the message as Telegram would return it now.
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.delivered: list[dict[str, Any]] = []
        self.commands: dict[str, list[dict[str, str]]] = {}
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.webhook: dict[str, Any] | None = None
        self.webhook_statuses: list[int] = []
        #: update_id → when the bot answered its webhook POST.
        self.webhook_answered_at: dict[int, float] = {}
        #: update_id → when the bot was first handed it (getUpdates answer or webhook POST).
        self.handed_at: dict[int, float] = {}
        self.port = 0
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._chats: dict[int, ChatState] = {}
        self._started_private: set[int] = set()
        self._updates: list[dict[str, Any]] = []
        self._history: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._issued_callbacks: set[str] = set()
        #: file_id → (file_path, bytes): what members sent, for getFile and the file download.
        self.files: dict[str, tuple[str, bytes]] = {}
        self._file_ids = itertools.count(1)
        self._global: deque[float] = deque()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._new_updates: asyncio.Event | None = None
        self._webhook_queue: asyncio.Queue[dict[str, Any]] | None = None
        #: The tests' `wait_for`s: their loop and the event to set when the server records something.
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    # --- lifecycle ----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="fake-bot-api", daemon=True)
        self._thread.start()
        if not await asyncio.to_thread(self._ready.wait, 10):
            raise RuntimeError("the fake Bot API did not start")

    async def stop(self) -> None:
        if self._loop and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake_all)
        if self._thread:
            await asyncio.to_thread(self._thread.join, 10)

    def _wake_all(self) -> None:
        assert self._stopping and self._new_updates
        self._stopping.set()
        self._new_updates.set()

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        loop.run_until_complete(self._run())
        loop.close()

    async def _run(self) -> None:
        self._stopping, self._new_updates = asyncio.Event(), asyncio.Event()
        self._webhook_queue = asyncio.Queue()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        worker = asyncio.create_task(self._webhook_worker())
        self._ready.set()
        await self._stopping.wait()
        worker.cancel()
        await runner.cleanup()

    # --- people, chats and what they do ----------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str,
        username: str | None = None,
        language_code: str | None = "en",
        *,
        started: bool = False,
    ) -> FakeUser:
        """A Telegram account; `started` means it once opened a private chat with the bot."""
        with self._lock:
            self._chat(FakeChat(user_id, "private", first_name))
            if started:
                self._started_private.add(user_id)
        return FakeUser(user_id, first_name, username, language_code)

    def group(self, chat_id: int, title: str, kind: str = "supergroup") -> FakeChat:
        with self._lock:
            return self._chat(FakeChat(chat_id, kind, title)).chat

    def say(self, user: FakeUser, text: str, chat: FakeChat | None = None) -> dict[str, Any]:
        """`user` types `text` in `chat` (their private chat with the bot by default)."""
        return self.offer(self.typed(user, text, chat))

    def typed(self, user: FakeUser, text: str, chat: FakeChat | None = None) -> dict[str, Any]:
        """The update `say` would offer, without offering it (to forge one)."""
        with self._lock:
            state = self._chat(chat or FakeChat(user.id, "private", user.first_name))
            if state.chat.type == "private":
                self._started_private.add(user.id)
            message: dict[str, Any] = {
                "message_id": state.next_message_id,
                "from": user.as_json(),
                "chat": state.chat.as_json(),
                "date": int(time.time()),
                "text": text,
            }
            state.next_message_id += 1
        command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
        if command:
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command.group(0))}]
        return {"message": message}

    def send_photo(
        self, user: FakeUser, data: bytes, caption: str = "", *, reply_to: dict[str, Any] | None = None,
        chat: FakeChat | None = None,
    ) -> dict[str, Any]:
        """`user` sends a photo (with `caption`, in reply to `reply_to` if given), as Telegram
        delivers one: several sizes of the same picture, each fetched with getFile."""
        update = self.typed(user, caption, chat)
        message = update["message"]
        del message["text"]
        if caption:
            message["caption"] = caption
            if "entities" in message:
                message["caption_entities"] = message.pop("entities")
        else:
            message.pop("entities", None)
        sizes = []
        with self._lock:
            for width, height, content in ((90, 67, data[: max(1, len(data) // 4)]), (1280, 960, data)):
                file_id = f"photo-{next(self._file_ids)}"
                self.files[file_id] = (f"photos/{file_id}.jpg", content)
                sizes.append({"file_id": file_id, "file_unique_id": f"u{file_id}", "width": width,
                              "height": height, "file_size": len(content)})
        message["photo"] = sizes
        if reply_to is not None:
            message["reply_to_message"] = json.loads(json.dumps(self.current(reply_to)))
        return self.offer(update)

    def press(self, user: FakeUser, message: dict[str, Any], *, label: str) -> dict[str, Any]:
        """`user` presses the button labelled `label` on `message`, as the bot left it."""
        with self._lock:
            current = self.current(message)
            rows = current.get("reply_markup", {}).get("inline_keyboard", [])
            chosen = [button for row in rows for button in row if button["text"] == label]
            if not chosen:
                raise AssertionError(f"no button {label!r} on the message: {rows}")
            query_id = str(next(self._callback_ids))
            self._issued_callbacks.add(query_id)
        query = {
            "id": query_id,
            "from": user.as_json(),
            "message": json.loads(json.dumps(current)),
            "chat_instance": str(current["chat"]["id"]),
            "data": chosen[0]["callback_data"],
        }
        return self.offer({"callback_query": query})

    def offer(self, update: dict[str, Any]) -> dict[str, Any]:
        """Give the bot an update, through getUpdates or the webhook, whichever it set up."""
        with self._lock:
            if "update_id" not in update:
                update = {"update_id": next(self._update_ids), **update}
            self._history.append(update)
            webhook = self.webhook is not None
            if not webhook:
                self._updates.append(update)
        assert self._loop and self._new_updates and self._webhook_queue
        if webhook:
            self._loop.call_soon_threadsafe(self._webhook_queue.put_nowait, update)
        else:
            self._loop.call_soon_threadsafe(self._new_updates.set)
        return update

    def replay_unconfirmed(self, since_update_id: int) -> None:
        """As if the bot crashed before confirming: offer again every update from that id on."""
        with self._lock:
            known = {u["update_id"] for u in self._updates}
            again = [u for u in self._history if u["update_id"] >= since_update_id and u["update_id"] not in known]
            self._updates = sorted(self._updates + again, key=lambda u: u["update_id"])
        assert self._loop and self._new_updates
        self._loop.call_soon_threadsafe(self._new_updates.set)

    async def post_webhook(self, update: dict[str, Any], secret: str | None) -> int:
        """POST one update to the bot's webhook as Telegram does; returns the HTTP status."""
        assert self.webhook is not None, "the bot has not set a webhook"
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        async with aiohttp.ClientSession() as http:
            self.handed_at.setdefault(update["update_id"], time.monotonic())
            async with http.post(self.webhook["url"], data=json.dumps(update), headers=headers) as response:
                with self._lock:
                    self.webhook_answered_at.setdefault(update["update_id"], time.monotonic())
                return response.status

    # --- failure injection -----------------------------------------------------------------

    def fail(self, method: str, rate: float, kinds: tuple[str, ...] = ("429", "500"), retry_after: int = 1) -> None:
        with self._lock:
            hang = self.failures.get(method, Failures()).hang_next
            self.failures[method] = Failures(rate, kinds, retry_after, hang)

    def hang(self, method: str, times: int = 1) -> None:
        with self._lock:
            self.failures.setdefault(method, Failures()).hang_next += times

    def garble(self, method: str, times: int = 1) -> None:
        """The next answers to `method` say "ok" but carry nothing PTB can read (and do nothing)."""
        with self._lock:
            self.failures.setdefault(method, Failures()).garble_next += times

    def block(self, chat_id: int) -> None:
        with self._lock:
            self.forbidden.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        with self._lock:
            self.forbidden.discard(chat_id)

    # --- what tests read -----------------------------------------------------------------------

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.delivered if m["chat"]["id"] == chat_id]

    def current(self, message: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self.messages[(message["chat"]["id"], message["message_id"])]

    def count(self, method: str, outcome: str | None = None, chat_id: int | None = None) -> int:
        """Requests for `method` that reached the server, overall or to one chat, by outcome if given."""
        with self._lock:
            calls = [c for c in self.calls if c.method == method and chat_id in (None, c.chat_id)]
            return sum(1 for c in calls if outcome in (None, c.outcome))

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Until `predicate` (run under the server's lock) is truthy: checked each time the server
        answers a request, and every RECHECK seconds for a predicate on the bot's own state."""
        changed = asyncio.Event()
        waiter = (asyncio.get_running_loop(), changed)
        deadline = time.monotonic() + timeout
        with self._lock:
            self._waiters.append(waiter)
        try:
            while True:
                changed.clear()
                with self._lock:
                    result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the fake Telegram never saw {predicate}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout=min(remaining, RECHECK))
        finally:
            with self._lock:
                self._waiters.remove(waiter)

    def _changed(self) -> None:
        """Wake whoever waits for something the server records (from the server's thread)."""
        with self._lock:
            waiters = list(self._waiters)
        for loop, changed in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(changed.set)

    async def wait_message(
        self, chat_id: int, contains: str = "", after: int = 0, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first message to `chat_id` containing `contains`, past the first `after` ones."""

        def found() -> dict[str, Any] | None:
            candidates = self.sent_to(chat_id)[after:]
            return next((m for m in candidates if contains in m.get("text", m.get("caption", ""))), None)

        result: dict[str, Any] = await self.wait_for(found, timeout)
        return result

    # --- the server ------------------------------------------------------------------------------

    def _chat(self, chat: FakeChat) -> ChatState:
        if chat.id not in self._chats:
            self._chats[chat.id] = ChatState(chat, tokens=float(self.limits.private_burst))
        return self._chats[chat.id]

    async def _handle(self, request: web.Request) -> web.Response:
        """Answer, and only then wake the waiting tests: the bot may be reading the answer."""
        try:
            response = await self._answer(request)
            # A bot that stopped while its long poll was open has gone: nobody to answer.
            with contextlib.suppress(ConnectionResetError):
                await response.prepare(request)
                await response.write_eof()
            return response
        finally:
            self._changed()

    async def _answer(self, request: web.Request) -> web.Response:
        call = Call(request.match_info["method"], time.monotonic())
        with self._lock:
            self.calls.append(call)
        self._changed()
        form = await request.post() if request.can_read_body else {}
        for key, value in [*form.items(), *request.query.items()]:
            call.params[key] = value if isinstance(value, web.FileField) else decode_param(key, str(value))
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            result = await self._dispatch(call)
        except ApiError as error:
            body: dict[str, Any] = {"ok": False, "error_code": error.code, "description": error.description}
            if error.retry_after is not None:
                body["parameters"] = {"retry_after": error.retry_after}
            call.outcome = "hang" if call.outcome == "hang" else f"error {error.code}"
            call.answered_at = time.monotonic()
            return web.json_response(body, status=error.code)
        call.outcome = "ok" if call.outcome == "pending" else call.outcome
        call.answered_at = time.monotonic()
        return web.json_response({"ok": True, "result": result})

    async def _dispatch(self, call: Call) -> Any:
        method, params = call.method, call.params
        with self._lock:
            failure = self.failures.get(method)
            hang = bool(failure and failure.hang_next > 0)
            garble = bool(failure and not hang and failure.garble_next > 0)
            if failure and hang:
                failure.hang_next -= 1
            if failure and garble:
                failure.garble_next -= 1
        if garble:
            call.outcome = "garbled"
            call.chat_id = int(params["chat_id"]) if "chat_id" in params else None
            return {}  # "ok", with a result PTB cannot read; nothing was done
        if hang:
            call.outcome = "hang"
            assert self._stopping
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 60)
            raise ApiError(500, "Internal Server Error: hung")
        if method == "getUpdates":
            return await self._get_updates(params)
        with self._lock:
            if method in SEND_METHODS:
                call.chat_id = int(params["chat_id"])
                problems = check_flood(self.limits, self._global, call, self._known_chat(call.chat_id))
                if problems:
                    self.violations.extend(problems)
                    raise ApiError(429, "Too Many Requests: retry after 1", 1)
                if failure and self._rng.random() < failure.rate:
                    if self._rng.choice(failure.kinds) == "429":
                        self._chats[call.chat_id].blocked_until = call.at + failure.retry_after
                        raise ApiError(
                            429, f"Too Many Requests: retry after {failure.retry_after}", failure.retry_after
                        )
                    raise ApiError(500, "Internal Server Error")
                return self._send(method, params, call.chat_id)
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            return handler(params)

    def _known_chat(self, chat_id: int) -> ChatState:
        if chat_id not in self._chats:
            raise ApiError(400, "Bad Request: chat not found")
        return self._chats[chat_id]

    def _send(self, method: str, params: dict[str, Any], chat_id: int) -> dict[str, Any]:
        state = self._known_chat(chat_id)
        if chat_id in self.forbidden:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if state.chat.type == "private" and chat_id not in self._started_private:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        message: dict[str, Any] = {
            "message_id": state.next_message_id,
            "from": self.bot_user,
            "chat": state.chat.as_json(),
            "date": int(time.time()),
        }
        file_id = f"f{chat_id}-{state.next_message_id}"
        message.update(checked_content(method, params, file_id))
        upload = params.get("photo", params.get("document"))
        if isinstance(upload, web.FileField):  # kept, so a test can read what the bot sent
            upload.file.seek(0)
            self.files[file_id] = (f"sent/{file_id}", upload.file.read())
        replied = params.get("reply_parameters", {}).get("message_id")
        if replied is not None:
            message["reply_to_message"] = {"message_id": replied, "chat": state.chat.as_json(), "date": 0}
        state.next_message_id += 1
        self.messages[(chat_id, state.next_message_id - 1)] = message
        self.delivered.append(message)
        return message

    # --- the rest of the Bot API the bot uses ---------------------------------------------------------

    async def _get_updates(self, params: dict[str, Any]) -> Any:
        """Long polling: confirm everything below `offset` (on arrival, as Telegram does, so a poll
        still waiting when the bot died confirms nothing more later), then answer at once or when
        an update comes."""
        assert self._new_updates and self._stopping
        offset, limit = int(params.get("offset") or 0), int(params.get("limit") or 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        with self._lock:
            if self.webhook:
                raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        while True:
            with self._lock:
                batch = [u for u in self._updates if u["update_id"] >= offset][:limit]
                if batch or self._stopping.is_set() or time.monotonic() >= deadline:
                    for update in batch:
                        self.handed_at.setdefault(update["update_id"], time.monotonic())
                    return batch
                self._new_updates.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_updates.wait(), max(0.0, deadline - time.monotonic()))

    def _api_getFile(self, params: dict[str, Any]) -> Any:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        path, content = self.files[file_id]
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(content), "file_path": path}

    async def _download(self, request: web.Request) -> web.Response:
        """The Bot API's file download: `/file/bot<token>/<file_path>`, as getFile named it."""
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        with self._lock:
            found = [content for path, content in self.files.values() if path == request.match_info["path"]]
        return web.Response(body=found[0]) if found else web.Response(status=404)

    def _api_getMe(self, params: dict[str, Any]) -> Any:
        return self.bot_user

    def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _api_setWebhook(self, params: dict[str, Any]) -> Any:
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {"url": params["url"], "secret_token": secret}
        return True

    def _api_setMyCommands(self, params: dict[str, Any]) -> Any:
        for command in params["commands"]:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command["command"]) or not command["description"]:
                raise ApiError(400, f"Bad Request: BOT_COMMAND_INVALID {command}")
        self.commands[params.get("language_code") or ""] = params["commands"]
        return True

    def _api_editMessageText(self, params: dict[str, Any]) -> Any:
        message = self._editable(params)
        new = checked_text(params["text"], params.get("parse_mode"), 4096)
        markup = checked_markup(params["reply_markup"]) if "reply_markup" in params else None
        if new["html"] == message.get("html") and markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified")
        for key in ("entities", "reply_markup"):
            message.pop(key, None)
        message.update(new, edit_date=int(time.time()), **({"reply_markup": markup} if markup else {}))
        return message

    def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        message = self._editable(params)
        markup = checked_markup(params["reply_markup"]) if "reply_markup" in params else None
        if markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified")
        message.pop("reply_markup", None)
        if markup and markup["inline_keyboard"]:
            message["reply_markup"] = markup
        return message

    def _editable(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self.messages:
            raise ApiError(400, "Bad Request: message to edit not found")
        return self.messages[key]

    def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        query_id = str(params["callback_query_id"])
        if query_id in self.callback_answers or query_id not in self._issued_callbacks:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        if len(str(params.get("text", ""))) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers[query_id] = params
        return True

    async def _webhook_worker(self) -> None:
        """Telegram's side of webhook mode: POST each update, in order, with the secret."""
        assert self._webhook_queue
        while True:
            update = await self._webhook_queue.get()
            if self.webhook:
                status = await self.post_webhook(update, self.webhook["secret_token"])
                with self._lock:
                    self.webhook_statuses.append(status)
                self._changed()
