"""The bot's requests to Telegram (all but getUpdates), each on a connection of its own.

httpx hands every request to httpcore's connection pool, which walks all its
connections on each request and each answer (closed? expired, which asks the
socket? idle?), and which gives one idle connection to every request that starts
in the same turn of the event loop: all but one then fail with
ConnectionNotAvailable and start over, walking the connections again. With the
outbox's eight sends in flight, 2008 sendMessage to the fake Bot API made 2.3
such restarts and 20 socket checks a request; no pool setting avoids it (a pool
of 8 measured as 256). Here a request takes a pool of one connection (an httpx
transport) off a stack of idle ones and gives it back once its answer is read:
nothing to walk, nobody to collide with. That took a third of a send's CPU:
1.7-2.3 ms → 1.1-1.3 ms, 2000 sends 8 at a time to the fake in its own process,
3 runs each alternating, load average 7.5-8.7 on 2 cores.

The most recently used connection goes first, so those in use stay warm; one idle
longer than the keep-alive is closed when next seen at the bottom of the stack,
as httpcore would have. Beyond `limit` connections a request waits, as it would
in httpcore's pool, and fails with httpx's PoolTimeout after the pool timeout.
Behind a proxy named in the environment, httpx's own pool serves instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator

import httpx
from telegram.request import HTTPXRequest

from coopbot.transports.telegram.messages import quiet_direct_calls

#: Connections to Telegram at most, requests in flight (PTB's default pool size).
CONNECTIONS = 256
#: httpx's own default keep-alive.
KEEPALIVE = 5.0
ONE = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=KEEPALIVE)


def bot_request(timeout: float) -> HTTPXRequest:
    """The request object of the bot's calls but getUpdates (which has its own, one connection).

    PTB's advice against `do_api_request` is silenced here, where the Application gets its
    requests: a filter added when a module is imported would not outlive pytest's per-test ones."""
    quiet_direct_calls()
    return HTTPXRequest(
        CONNECTIONS, read_timeout=timeout, write_timeout=timeout, connect_timeout=timeout, pool_timeout=timeout,
        httpx_kwargs={"transport": OwnConnections(CONNECTIONS)},
    )  # fmt: skip


class OwnConnections(httpx.AsyncBaseTransport):
    """An httpx transport lending each request a connection (a one-connection transport)."""

    def __init__(self, limit: int = CONNECTIONS) -> None:
        self.limit = limit
        #: One-connection pools ever made here: a test sees them reused.
        self.opened = 0
        self._idle: list[tuple[float, httpx.AsyncHTTPTransport]] = []
        self._count = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._ssl: ssl.SSLContext | None = None
        #: Bumped by `aclose`: a connection lent before is closed when given back.
        self._generation = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        connection, generation = await self._take(timeouts.get("pool")), self._generation
        try:
            response = await connection.handle_async_request(request)
        except BaseException:
            await self._give_back(connection, generation)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        answer = _Answer(response.stream, self, connection, generation)
        return httpx.Response(response.status_code, headers=response.headers, stream=answer,
                              extensions=response.extensions)  # fmt: skip

    async def aclose(self) -> None:
        """Close the idle connections; those lent out are closed when given back."""
        self._generation += 1
        idle, self._idle = self._idle, []
        self._count -= len(idle)
        for _, connection in idle:
            await connection.aclose()

    async def _take(self, timeout: float | None) -> httpx.AsyncHTTPTransport:
        while True:
            while self._idle and time.monotonic() - self._idle[0][0] > KEEPALIVE:
                _, stale = self._idle.pop(0)
                self._count -= 1
                with contextlib.suppress(Exception):  # not this request's business
                    await stale.aclose()
            if self._idle:
                return self._idle.pop()[1]
            if self._count < self.limit:
                self._count += 1
                self.opened += 1
                if self._ssl is None:
                    self._ssl = httpx.create_ssl_context()
                return httpx.AsyncHTTPTransport(verify=self._ssl, limits=ONE)
            await self._wait(timeout)

    async def _wait(self, timeout: float | None) -> None:
        """Until a connection is given back (then look again), or PoolTimeout."""
        woken = asyncio.get_running_loop().create_future()
        self._waiters.append(woken)
        try:
            async with asyncio.timeout(timeout):
                await woken
        except TimeoutError:
            raise httpx.PoolTimeout("all the connections to Telegram are in use") from None
        finally:
            if woken in self._waiters:
                self._waiters.remove(woken)
            elif not woken.cancelled() and woken.done():
                self._wake()  # woken, but leaving without it: the next one may have it

    async def _give_back(self, connection: httpx.AsyncHTTPTransport, generation: int) -> None:
        if generation != self._generation:
            self._count -= 1
            await connection.aclose()
        else:
            self._idle.append((time.monotonic(), connection))
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            woken = self._waiters.pop(0)
            if not woken.done():
                woken.set_result(None)
                return


class _Answer(httpx.AsyncByteStream):
    """The answer's body; closing it gives the connection back, once."""

    def __init__(
        self, stream: httpx.AsyncByteStream, pool: OwnConnections, connection: httpx.AsyncHTTPTransport,
        generation: int,
    ) -> None:  # fmt: skip
        self._stream, self._pool, self._connection, self._generation = stream, pool, connection, generation
        self._lent = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._lent:
                self._lent = False
                await self._pool._give_back(self._connection, self._generation)
