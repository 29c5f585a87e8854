"""A shop's server, as the webhook tests need one: a real aiohttp server on 127.0.0.1 that
records every request it gets, answers with the statuses a test scripts, and checks a
signature the way a shop would (`verify`, the README's own example)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDictProxy


def verify(secret: str, body: bytes, header: str) -> bool:
    """What the README tells a shop to run on each request."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


@dataclass
class Received:
    headers: CIMultiDictProxy[str]
    body: bytes
    #: What the server answered.
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each request with the next of `statuses` (200 once they run out)."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        status = self.statuses.pop(0) if self.statuses else 200
        self.received.append(Received(request.headers, await request.read(), status))
        async with self._changed:
            self._changed.notify_all()
        return web.Response(status=status, text="ok" if status < 300 else "no such hook")

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Until `count` requests have arrived (they may have already)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.received) >= count), timeout)
        return self.received

    def delivered(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]


async def receiving(path: str = "/coopbot-hook") -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post(path, receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
    try:
        yield receiver
    finally:
        await runner.cleanup()
