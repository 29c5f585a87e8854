"""Posts the shops' webhooks: the outbox's sender for its `webhook` rows.

The outbox delivers each of its rows to `bot.transports[row.platform]`, so
the shops' servers get a sender it treats like a transport: the same keys,
pacing, retries with growing delays, failures set aside for the operator,
and the crash bound (`coopbot.outbox`). It is not a chat platform: nothing
arrives through it, nobody has an account on it, `/notify` and `/help`
never name it, and it is not in `coopbot.platforms`.

What a shop's server receives, for each step of an order
(`coopbot.services.dispatch.webhooks` writes the body):

    POST <the customer's webhook URL>
    Content-Type: application/json
    X-Coopbot-Event: order.picked_up
    X-Coopbot-Delivery: webhook:12:ev57
    X-Coopbot-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the secret>

    {"id": "webhook:12:ev57", "event": "order.picked_up", "at": "...", "order": {...}}

No timestamp header: the body is written once, when the step happens, and
holds its time (`at`) and its id under the signature; a retry sends the very
same bytes, so a shop drops a repeat by its id and a stale replay by `at`.

How answers are read: 2xx is delivered; 408, 429 and 5xx, a timeout or a
connection that fails are "try again later" (`TransientSendError`, with the
server's Retry-After when it gives one); any other answer (404, 410, 401, a
redirect, which is never followed with a signed body) is a refusal for good
(`RefusedError`): set aside at once, for `coopbot outbox retry` once the
shop has fixed its end. A customer with no webhook any more (`--off`, or
gone) is unreachable: the row is dropped.

aiohttp's client is imported at the first send, and its session made then:
a bot whose customers have no webhook never loads it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from coopbot.chat import (
    Address,
    Incoming,
    IncomingHandler,
    Outgoing,
    Pacing,
    RefusedError,
    TransientSendError,
    UnreachableError,
)
from coopbot.config import Config
from coopbot.services.dispatch import webhooks

if TYPE_CHECKING:
    from aiohttp import ClientSession

#: Seconds a shop's server has to answer: past it the step is retried later.
TIMEOUT = 10.0
#: The longest Retry-After obeyed: a server asking for more is asked again within the hour.
MAX_RETRY_AFTER = 3600.0
#: How much of a refusal's answer is kept as the row's error, for `coopbot outbox failed`.
ANSWER_KEPT = 200
#: Names the sender in the shop's server logs.
USER_AGENT = "coopbot-webhooks/1"


def retry_after(value: str | None) -> float | None:
    """A Retry-After in seconds (the HTTP-date form is not used by the servers we post to)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return None if seconds is None or seconds < 0 else min(seconds, MAX_RETRY_AFTER)


def signed_headers(secret: str, body: bytes, key: str, event: str) -> dict[str, str]:
    """The headers of one delivery; the signature covers the raw body, exactly as sent."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Coopbot-Event": event,
        "X-Coopbot-Delivery": key,
        "X-Coopbot-Signature": webhooks.signature(secret, body),
    }


class WebhookSender:
    """The outbox's transport for the `webhook` platform: one POST per row."""

    platform = webhooks.WEBHOOK
    #: Nothing to connect to before the first send: `/readyz` never waits on it.
    connected = True

    def __init__(self, sessions: sessionmaker[Session], config: Config, *, timeout: float = TIMEOUT) -> None:
        self.sessions = sessions
        self.config = config
        self.timeout = timeout
        self._client: ClientSession | None = None

    async def start(self, on_incoming: IncomingHandler) -> None:
        """Nothing arrives through webhooks: there is nothing to listen to."""

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def reply(self, incoming: Incoming, messages: list[Outgoing]) -> None:
        raise RuntimeError("nothing arrives through webhooks, so nothing is answered through them")

    def pacing(self) -> Pacing:
        """Each shop's server gets its steps one at a time, in order (the outbox holds a
        recipient's next message until the last is answered); no interval beyond that."""
        return Pacing(per_second=50.0, private_chat_interval=0.0, group_per_minute=60)

    def _target(self, customer_id: int) -> tuple[str, str] | None:
        with self.sessions() as session:
            return webhooks.target_of(session, self.config, customer_id)

    def _session(self) -> ClientSession:
        import aiohttp

        if self._client is None or self._client.closed:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._client

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        """POST the row's body, signed; returns the answer's status ("200")."""
        import aiohttp

        target = await asyncio.to_thread(self._target, int(address.chat_id))
        if target is None:
            raise UnreachableError(f"customer #{address.chat_id} has no webhook any more")
        url, secret = target
        body = message.text.encode()
        headers = signed_headers(secret, body, key, webhooks.event_of(message.text))
        try:
            async with self._session().post(url, data=body, headers=headers, allow_redirects=False) as answer:
                status, wait = answer.status, retry_after(answer.headers.get("Retry-After"))
                said = (await answer.content.read(ANSWER_KEPT)).decode(errors="replace")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientSendError(f"{url}: {type(exc).__name__}: {exc}") from exc
        if 200 <= status < 300:
            return str(status)
        error = f"{url} answered {status}: {' '.join(said.split())}".strip()
        if status in (408, 429) or status >= 500:
            raise TransientSendError(error, retry_after=wait)
        raise RefusedError(error)
