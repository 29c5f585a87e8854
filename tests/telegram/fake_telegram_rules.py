"""What the fake Telegram checks, and the shape of what it holds: Telegram's rules, not its server.

Telegram refuses HTML it cannot parse, text over its limits, buttons whose
`callback_data` is not 1-64 bytes, and a chat flooded past its published
limits (counted as requests arrive, with a little tolerance for network
jitter). Each refusal is the `ApiError` Telegram would answer with. The
server in `fake_bot_api` applies these rules to every request.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "s": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "tg-spoiler": "spoiler",
    "blockquote": "blockquote",
}
TAG = re.compile(r"<(/?)([a-zA-Z-]+)((?:\s+[^>]*)?)>")
ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
#: Parameters PTB sends as plain strings; every other value arrives JSON-encoded.
STRING_PARAMS = {"text", "caption", "parse_mode", "callback_query_id", "url", "secret_token", "language_code"}


class ApiError(Exception):
    """An answer Telegram gives instead of a result."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(markup: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML parse mode: the plain text and its entities, or Telegram's 400."""
    out: list[str] = []
    stack: list[tuple[str, int]] = []
    entities: list[dict[str, Any]] = []
    pos = 0
    while pos < len(markup):
        char = markup[pos]
        if char == "<":
            match = TAG.match(markup, pos)
            if not match or match.group(2).lower() not in TAGS:
                raise ApiError(400, f"Bad Request: can't parse entities: unsupported start tag at {pos}")
            name = match.group(2).lower()
            if not match.group(1):
                stack.append((name, utf16_len("".join(out))))
            elif not stack or stack[-1][0] != name:
                raise ApiError(400, f"Bad Request: can't parse entities: unmatched end tag {name}")
            else:
                start = stack.pop()[1]
                entities.append({"type": TAGS[name], "offset": start, "length": utf16_len("".join(out)) - start})
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
    """One request as it reached the server (`at`: time.monotonic() on arrival)."""

    method: str
    at: float
    params: dict[str, Any] = field(default_factory=dict)
    chat_id: int | None = None
    outcome: str = "pending"
    answered_at: float = 0.0


@dataclass
class FloodLimits:
    """Telegram's published limits; `private_burst` > 1 tolerates short bursts as Telegram does."""

    per_second: int = 30
    private_interval: float = 1.0
    private_burst: int = 3
    group_per_minute: int = 20
    #: Arrival jitter forgiven on one chat's limits, in seconds: Telegram counts loosely, and two
    #: requests sent 1 s apart may reach a server a few tens of milliseconds closer than that.
    #: The overall `per_second` forgives nothing: it is counted over every full second.
    tolerance: float = 0.1


@dataclass
class Failures:
    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500")
    retry_after: int = 1
    hang_next: int = 0
    #: Answers still to give as "ok" with a result PTB cannot read (a message without its fields).
    garble_next: int = 0


@dataclass
class ChatState:
    """A chat as the server keeps it: its messages' numbering and its flood accounting."""

    chat: FakeChat
    next_message_id: int = 1
    arrivals: deque[float] = field(default_factory=deque)
    tokens: float = 0.0
    refilled_at: float = 0.0
    blocked_until: float = 0.0


def check_flood(limits: FloodLimits, recent: deque[float], call: Call, state: ChatState) -> list[str]:
    """Count this request against Telegram's limits (`recent`: every chat's last second); the breaches."""
    now = call.at
    problems = []
    if now < state.blocked_until - limits.tolerance:
        problems.append(f"chat {call.chat_id}: sent {state.blocked_until - now:.2f}s before retry_after")
    # The overall limit is counted exactly as named: any full second holds at most `per_second`
    # requests. Forgiving jitter here would let a bot through at 1/(1 - tolerance) of the limit.
    while recent and recent[0] <= now - 1.0:
        recent.popleft()
    if len(recent) >= limits.per_second:
        problems.append(f"more than {limits.per_second} messages in one second")
    recent.append(now)
    if state.chat.type == "private":
        refill = (now - state.refilled_at + limits.tolerance) / limits.private_interval if state.refilled_at else 0
        state.tokens, state.refilled_at = min(limits.private_burst, state.tokens + refill), now
        if state.tokens < 1:
            problems.append(f"chat {call.chat_id}: more than one message per {limits.private_interval}s")
        state.tokens = max(0.0, state.tokens - 1)
    else:
        while state.arrivals and state.arrivals[0] <= now - 60.0 + limits.tolerance:
            state.arrivals.popleft()
        if len(state.arrivals) >= limits.group_per_minute:
            problems.append(f"group {call.chat_id}: more than {limits.group_per_minute} a minute")
        state.arrivals.append(now)
    return problems


def checked_text(text: str, parse_mode: str | None, limit: int) -> dict[str, Any]:
    """A message's text as Telegram stores it (plain, the HTML sent, entities), or its 400."""
    plain, entities = parse_html(text) if parse_mode == "HTML" else (text, [])
    if not plain.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if utf16_len(plain) > limit:
        raise ApiError(400, "Bad Request: message is too long")
    return {"text": plain, "html": text, **({"entities": entities} if entities else {})}


def checked_content(method: str, params: dict[str, Any], file_id: str) -> dict[str, Any]:
    """What a sendMessage, sendPhoto or sendDocument shows, as Telegram returns it, or its 400."""
    if method == "sendMessage":
        content = checked_text(params["text"], params.get("parse_mode"), 4096)
    else:
        kind = "photo" if method == "sendPhoto" else "document"
        upload = params.get(kind)
        if not isinstance(upload, web.FileField):
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        file = {"file_id": file_id, "file_unique_id": "u", "file_size": len(upload.file.read())}
        content = {
            kind: [{**file, "width": 800, "height": 600}]
            if kind == "photo"
            else {**file, "file_name": upload.filename, "mime_type": upload.content_type}
        }
        if "caption" in params:
            content["caption"] = checked_text(params["caption"], params.get("parse_mode"), 1024)["text"]
    if "reply_markup" in params:
        content["reply_markup"] = checked_markup(params["reply_markup"])
    return content


def checked_markup(markup: Any) -> dict[str, Any]:
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        raise ApiError(400, "Bad Request: unsupported reply markup")
    for button in (b for row in markup["inline_keyboard"] for b in row):
        if not 1 <= len(button.get("callback_data", "").encode()) <= 64:
            raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return dict(markup)


def decode_param(key: str, value: str) -> Any:
    """A request parameter as PTB meant it: some are plain strings, the rest JSON."""
    if key in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
