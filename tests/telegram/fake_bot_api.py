"""A small Telegram Bot API server for tests, speaking the real wire format.

The bot under test is the real python-telegram-bot stack (httpx, Updater,
Application) pointed here with `api_base_url`. The fake plays Telegram: it
holds the members' updates until getUpdates confirms them (or posts them to a
webhook), keeps every message the bot sent, checks the HTML the bot writes,
enforces the flood limits Telegram publishes, and can be told to fail the way
Telegram fails (429 with retry_after, 500, 403 for one chat, a request that
hangs). Every call is recorded with its arrival time so tests can assert what
reached "Telegram", how often and how fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

SEND_METHODS = ("sendMessage", "sendPhoto", "sendDocument")
ALLOWED_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
}
TAG = re.compile(r"<(/?)([a-zA-Z-]+)((?:\s+[^>]*)?)>")
ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class ApiError(Exception):
    """An answer Telegram gives instead of a result."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(markup: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML parse mode: plain text and entities, or a 400 like Telegram's."""
    out: list[str] = []
    stack: list[tuple[str, int, str]] = []
    entities: list[dict[str, Any]] = []
    pos = 0
    while pos < len(markup):
        char = markup[pos]
        if char == "<":
            match = TAG.match(markup, pos)
            if not match or match.group(2).lower() not in ALLOWED_TAGS:
                raise ApiError(400, f"Bad Request: can't parse entities: unsupported start tag at {pos}")
            closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3)
            if closing:
                if not stack or stack[-1][0] != name:
                    raise ApiError(400, f"Bad Request: can't parse entities: unmatched end tag {name}")
                _, start, url = stack.pop()
                entity: dict[str, Any] = {"type": ALLOWED_TAGS[name], "offset": start}
                entity["length"] = utf16_len("".join(out)) - start
                if url:
                    entity["url"] = url
                entities.append(entity)
            else:
                href = re.search(r'href="([^"]*)"', attrs)
                stack.append((name, utf16_len("".join(out)), href.group(1) if href else ""))
            pos = match.end()
        elif char == "&":
            match = ENTITY.match(markup, pos)
            if not match:
                raise ApiError(400, f"Bad Request: can't parse entities: unescaped & at byte offset {pos}")
            ref = match.group(1)
            out.append(NAMED.get(ref) or chr(int(ref[2:], 16) if ref[1] == "x" else int(ref[1:])))
            pos = match.end()
        elif char == ">":
            raise ApiError(400, f"Bad Request: can't parse entities: unescaped > at byte offset {pos}")
        else:
            out.append(char)
            pos += 1
    if stack:
        raise ApiError(400, f"Bad Request: can't parse entities: unclosed tag {stack[-1][0]}")
    return "".join(out), sorted(entities, key=lambda e: e["offset"])


@dataclass(frozen=True)
class FakeUser:
    id: int
    first_name: str
    username: str | None = None
    language_code: str | None = "en"

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass(frozen=True)
class FakeChat:
    id: int
    type: str
    title: str = ""

    def as_json(self) -> dict[str, Any]:
        if self.type == "private":
            return {"id": self.id, "type": "private", "first_name": self.title or str(self.id)}
        return {"id": self.id, "type": self.type, "title": self.title}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    chat_id: int | None = None
    outcome: str = "pending"


@dataclass
class FloodLimits:
    """Telegram's published limits; `private_burst` > 1 tolerates short bursts as Telegram does."""

    per_second: int = 30
    private_interval: float = 1.0
    private_burst: int = 3
    group_per_minute: int = 20
    #: Arrival jitter forgiven, in seconds (requests travel through a real socket).
    tolerance: float = 0.05


@dataclass
class Failures:
    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500")
    retry_after: int = 1
    hang_next: int = 0


@dataclass
class _Chat:
    chat: FakeChat
    next_message_id: int = 1
    arrivals: deque[float] = field(default_factory=deque)
    tokens: float = 0.0
    refilled_at: float = 0.0
    blocked_until: float = 0.0


class FakeBotApi:
    """Start with `await start()`; point the bot at `base_url`."""

    def __init__(
        self,
        token: str = "123456:TEST-fake-token",
        *,
        bot_username: str = "coopbot_test_bot",
        limits: FloodLimits | None = None,
        seed: int = 0,
    ) -> None:
        self.token = token
        self.bot_user = {
            "id": int(token.split(":", maxsplit=1)[0]),
            "is_bot": True,
            "first_name": "Coopbot",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.limits = limits if limits is not None else FloodLimits()
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
        self._rng = random.Random(seed)
        self._chats: dict[int, _Chat] = {}
        self._started_private: set[int] = set()
        self._updates: list[dict[str, Any]] = []
        self._history: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._issued_callbacks: set[str] = set()
        self._global: deque[float] = deque()
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._webhook_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._webhook_task: asyncio.Task[None] | None = None
        self.port = 0

    # --- lifecycle --------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._webhook_task = asyncio.create_task(self._webhook_worker())

    async def stop(self) -> None:
        self._stopping.set()
        async with self._changed:
            self._changed.notify_all()
        if self._webhook_task:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
        if self._runner:
            await self._runner.cleanup()

    # --- people, chats and what they do ------------------------------------

    def user(
        self, user_id: int, first_name: str, username: str | None = None, language_code: str | None = "en"
    ) -> FakeUser:
        self._chat(FakeChat(user_id, "private", first_name))
        return FakeUser(user_id, first_name, username, language_code)

    def group(self, chat_id: int, title: str, kind: str = "supergroup") -> FakeChat:
        return self._chat(FakeChat(chat_id, kind, title)).chat

    def say(self, user: FakeUser, text: str, chat: FakeChat | None = None) -> dict[str, Any]:
        """`user` types `text` in `chat` (their private chat with the bot by default)."""
        target = chat or self._chat(FakeChat(user.id, "private", user.first_name)).chat
        if target.type == "private":
            self._started_private.add(user.id)
        state = self._chat(target)
        message: dict[str, Any] = {
            "message_id": state.next_message_id,
            "from": user.as_json(),
            "chat": target.as_json(),
            "date": int(time.time()),
            "text": text,
        }
        state.next_message_id += 1
        command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
        if command:
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command.group(0))}]
        return self.offer({"message": message})

    def press(
        self, user: FakeUser, message: dict[str, Any], *, data: str | None = None, label: str | None = None
    ) -> dict[str, Any]:
        """`user` presses a button of `message` (as the bot left it), chosen by data or label."""
        current = self.messages[(message["chat"]["id"], message["message_id"])]
        rows = current.get("reply_markup", {}).get("inline_keyboard", [])
        buttons = [button for row in rows for button in row]
        chosen = [b for b in buttons if b["callback_data"] == data or b["text"] == label]
        if not chosen:
            raise AssertionError(f"no such button on the message: {data or label!r} in {buttons}")
        query_id = str(next(self._callback_ids))
        self._issued_callbacks.add(query_id)
        query = {
            "id": query_id,
            "from": user.as_json(),
            "message": current,
            "chat_instance": str(current["chat"]["id"]),
            "data": chosen[0]["callback_data"],
        }
        return self.offer({"callback_query": query})

    def offer(self, update: dict[str, Any]) -> dict[str, Any]:
        """Give the bot an update, by getUpdates or by the webhook, as configured."""
        update = {"update_id": next(self._update_ids), **update}
        update["offered_at"] = time.monotonic()
        self._history.append(update)
        if self.webhook:
            self._webhook_queue.put_nowait(update)
        else:
            self._updates.append(update)
            asyncio.get_running_loop().create_task(self._notify())
        return update

    def replay_unconfirmed(self, since_update_id: int) -> None:
        """As if the bot crashed before confirming: offer again every update from that id on."""
        known = {u["update_id"] for u in self._updates}
        again = [
            u for u in self._history if u["update_id"] >= since_update_id and u["update_id"] not in known
        ]
        self._updates = sorted(self._updates + again, key=lambda u: u["update_id"])

    async def post_webhook(self, update: dict[str, Any], secret: str | None) -> int:
        """POST one update to the bot's webhook as Telegram does; returns the HTTP status."""
        assert self.webhook is not None, "the bot has not set a webhook"
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        body = json.dumps({k: v for k, v in update.items() if k != "offered_at"})
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.webhook["url"], data=body, headers=headers) as response,
        ):
            return response.status

    # --- failure injection ---------------------------------------------------

    def fail(
        self, method: str, rate: float, kinds: tuple[str, ...] = ("429", "500"), retry_after: int = 1
    ) -> None:
        self.failures[method] = Failures(
            rate, kinds, retry_after, self.failures.get(method, Failures()).hang_next
        )

    def hang(self, method: str, times: int = 1) -> None:
        self.failures.setdefault(method, Failures()).hang_next += times

    def block(self, chat_id: int) -> None:
        self.forbidden.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self.forbidden.discard(chat_id)

    # --- what the tests read ---------------------------------------------------

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for m in self.delivered if m["chat"]["id"] == chat_id]

    def current(self, message: dict[str, Any]) -> dict[str, Any]:
        return self.messages[(message["chat"]["id"], message["message_id"])]

    def count(self, method: str, outcome: str | None = None) -> int:
        return sum(1 for c in self.calls if c.method == method and (outcome is None or c.outcome == outcome))

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        async def waiting() -> Any:
            async with self._changed:
                while not (result := predicate()):
                    await self._changed.wait()
                return result

        return await asyncio.wait_for(waiting(), timeout)

    async def wait_message(
        self, chat_id: int, contains: str = "", after: int = 0, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first message to `chat_id` containing `contains`, among those after the first `after`."""

        def found() -> dict[str, Any] | None:
            candidates = self.sent_to(chat_id)[after:]
            return next((m for m in candidates if contains in m.get("text", m.get("caption", ""))), None)

        result: dict[str, Any] = await self.wait_for(found, timeout)
        return result

    # --- the server ---------------------------------------------------------------

    def _chat(self, chat: FakeChat) -> _Chat:
        if chat.id not in self._chats:
            self._chats[chat.id] = _Chat(chat, tokens=float(self.limits.private_burst))
        return self._chats[chat.id]

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                params[key] = value if isinstance(value, web.FileField) else _decode(key, str(value))
        params.update({k: _decode(k, v) for k, v in request.query.items()})
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            result = await self._dispatch(method, params, call)
        except ApiError as error:
            call.outcome = f"error {error.code}"
            body: dict[str, Any] = {"ok": False, "error_code": error.code, "description": error.description}
            if error.retry_after is not None:
                body["parameters"] = {"retry_after": error.retry_after}
            await self._notify()
            return web.json_response(body, status=error.code)
        call.outcome = "ok"
        await self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _dispatch(self, method: str, params: dict[str, Any], call: Call) -> Any:
        failure = self.failures.get(method)
        if failure and failure.hang_next > 0:
            failure.hang_next -= 1
            call.outcome = "hang"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 60)
            raise ApiError(500, "Internal Server Error: hung")
        if method in SEND_METHODS:
            call.chat_id = int(params["chat_id"])
            self._check_flood(call)
            if failure and self._rng.random() < failure.rate:
                kind = self._rng.choice(failure.kinds)
                if kind == "429":
                    self._chat(self._known_chat(call.chat_id)).blocked_until = call.at + failure.retry_after
                    raise ApiError(
                        429, f"Too Many Requests: retry after {failure.retry_after}", failure.retry_after
                    )
                raise ApiError(500, "Internal Server Error")
            return self._send(method, params, call.chat_id)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            raise ApiError(404, "Not Found")
        return await handler(params)

    def _known_chat(self, chat_id: int) -> FakeChat:
        if chat_id not in self._chats:
            raise ApiError(400, "Bad Request: chat not found")
        return self._chats[chat_id].chat

    def _check_flood(self, call: Call) -> None:
        """Count this request against Telegram's limits; a breach is recorded and answered 429."""
        assert call.chat_id is not None
        limits, now = self.limits, call.at
        state = self._chat(self._known_chat(call.chat_id))
        problems = []
        if now < state.blocked_until - limits.tolerance:
            problems.append(f"chat {call.chat_id}: sent {state.blocked_until - now:.2f}s before retry_after")
        while self._global and self._global[0] <= now - 1.0 + limits.tolerance:
            self._global.popleft()
        if len(self._global) >= limits.per_second:
            problems.append(f"more than {limits.per_second} messages in one second")
        self._global.append(now)
        if state.chat.type == "private":
            elapsed = now - state.refilled_at if state.refilled_at else 0.0
            state.tokens = min(
                limits.private_burst, state.tokens + (elapsed + limits.tolerance) / limits.private_interval
            )
            state.refilled_at = now
            if state.tokens < 1:
                problems.append(f"chat {call.chat_id}: more than one message per {limits.private_interval}s")
            state.tokens = max(0.0, state.tokens - 1)
        else:
            while state.arrivals and state.arrivals[0] <= now - 60.0 + limits.tolerance:
                state.arrivals.popleft()
            if len(state.arrivals) >= limits.group_per_minute:
                problems.append(
                    f"group {call.chat_id}: more than {limits.group_per_minute} messages a minute"
                )
            state.arrivals.append(now)
        if problems:
            self.violations.extend(problems)
            raise ApiError(429, "Too Many Requests: retry after 1", 1)

    def _send(self, method: str, params: dict[str, Any], chat_id: int) -> dict[str, Any]:
        chat = self._known_chat(chat_id)
        if chat_id in self.forbidden:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat.type == "private" and chat_id not in self._started_private:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        message = self._new_message(chat)
        if method == "sendMessage":
            message.update(self._text(params["text"], params.get("parse_mode"), 4096))
        else:
            kind = "photo" if method == "sendPhoto" else "document"
            upload = params.get(kind)
            if not isinstance(upload, web.FileField):
                raise ApiError(400, f"Bad Request: there is no {kind} in the request")
            size = len(upload.file.read())
            file_id = f"file-{chat_id}-{message['message_id']}"
            if kind == "photo":
                message["photo"] = [
                    {
                        "file_id": file_id,
                        "file_unique_id": file_id,
                        "width": 800,
                        "height": 600,
                        "file_size": size,
                    }
                ]
            else:
                message["document"] = {
                    "file_id": file_id,
                    "file_unique_id": file_id,
                    "file_name": upload.filename,
                    "mime_type": upload.content_type,
                    "file_size": size,
                }
            if "caption" in params:
                caption = self._text(params["caption"], params.get("parse_mode"), 1024)
                message["caption"] = caption["text"]
                if caption.get("entities"):
                    message["caption_entities"] = caption["entities"]
        if "reply_markup" in params:
            message["reply_markup"] = self._markup(params["reply_markup"])
        self.messages[(chat_id, message["message_id"])] = message
        self.delivered.append(message)
        return message

    def _new_message(self, chat: FakeChat) -> dict[str, Any]:
        state = self._chat(chat)
        message = {
            "message_id": state.next_message_id,
            "from": self.bot_user,
            "chat": chat.as_json(),
            "date": int(time.time()),
        }
        state.next_message_id += 1
        return message

    @staticmethod
    def _text(text: str, parse_mode: str | None, limit: int) -> dict[str, Any]:
        plain, entities = parse_html(text) if parse_mode == "HTML" else (text, [])
        if not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > limit:
            raise ApiError(400, "Bad Request: message is too long")
        result: dict[str, Any] = {"text": plain, "html": text}
        if entities:
            result["entities"] = entities
        return result

    @staticmethod
    def _markup(markup: Any) -> dict[str, Any]:
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            raise ApiError(400, "Bad Request: unsupported reply markup")
        for row in markup["inline_keyboard"]:
            for button in row:
                data = button.get("callback_data", "")
                if not data or len(data.encode()) > 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return dict(markup)

    # --- the rest of the Bot API the bot uses -------------------------------------------

    async def _api_getMe(self, params: dict[str, Any]) -> Any:
        return self.bot_user

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _api_setWebhook(self, params: dict[str, Any]) -> Any:
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {"url": params["url"], "secret_token": secret}
        return True

    async def _api_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _api_setMyCommands(self, params: dict[str, Any]) -> Any:
        commands = params["commands"]
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command["command"]) or not command["description"]:
                raise ApiError(400, f"Bad Request: BOT_COMMAND_INVALID {command}")
        self.commands[params.get("language_code") or ""] = commands
        return True

    async def _api_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset, limit = int(params.get("offset") or 0), int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout > 0:
            with contextlib.suppress(TimeoutError):
                await self.wait_for(lambda: self._updates or self._stopping.is_set(), timeout)
        return [{k: v for k, v in u.items() if k != "offered_at"} for u in self._updates[:limit]]

    async def _api_editMessageText(self, params: dict[str, Any]) -> Any:
        message = self._editable(params)
        new = self._text(params["text"], params.get("parse_mode"), 4096)
        markup = self._markup(params["reply_markup"]) if "reply_markup" in params else None
        if new["html"] == message.get("html") and markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified")
        message.pop("entities", None)
        message.update(new, edit_date=int(time.time()))
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        return message

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        message = self._editable(params)
        markup = self._markup(params["reply_markup"]) if "reply_markup" in params else None
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

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        query_id = str(params["callback_query_id"])
        if query_id in self.callback_answers or query_id not in self._issued_callbacks:
            raise ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        if len(str(params.get("text", ""))) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers[query_id] = params
        return True

    async def _api_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    async def _webhook_worker(self) -> None:
        while True:
            update = await self._webhook_queue.get()
            if self.webhook:
                self.webhook_statuses.append(await self.post_webhook(update, self.webhook["secret_token"]))


STRING_PARAMS = {
    "text",
    "caption",
    "parse_mode",
    "callback_query_id",
    "url",
    "secret_token",
    "language_code",
    "ip_address",
}


def _decode(key: str, value: str) -> Any:
    """PTB sends string parameters as they are and every other value JSON-encoded."""
    if key in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def counts_by_chat(calls: list[Call], method: str = "sendMessage") -> Counter[int]:
    return Counter(c.chat_id for c in calls if c.method == method and c.chat_id is not None)
