"""Who is calling the shops' API, and whether they are calling too often.

The key arrives as `Authorization: Bearer KEY` and is checked by
`services.members.api_keys` (constant-time comparison of its hash). A missing
or wrong key is 401 with `WWW-Authenticate: Bearer` (RFC 6750), so HTTP
clients know which scheme to offer; the answer never says whether a
customer exists.

Rate limit: a token bucket per key, `rate_per_minute` tokens a minute and as
many in reserve, so a shop may send a burst (a morning's orders at once) but
not more than its rate over time. Over it: 429 with `Retry-After`, the whole
seconds until the next token. The buckets live in this process's memory:
with several `coopbot run` processes behind one address, each allows the
rate, which is fine for a guard against a runaway loop in a shop's software,
and not meant as a quota. They run on the bot's clock, so tests move time
instead of waiting for it.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from coopbot.clock import Clock
from coopbot.web.problems import ApiProblem

REALM = 'Bearer realm="coopbot"'
#: Requests a minute per key where no configuration is at hand (`[web] api_rate_per_minute` otherwise).
RATE_PER_MINUTE = 60
#: Keys whose buckets are remembered: the oldest go first (a full bucket is what a new one is).
MAX_BUCKETS = 10_000


def bearer_key(request: web.Request) -> str:
    """The key the request carries; 401 when it carries none."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiProblem(401, "api.no_key", headers={"WWW-Authenticate": REALM})
    return key.strip()


def wrong_key() -> ApiProblem:
    return ApiProblem(401, "api.wrong_key", headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'})


@dataclass
class Bucket:
    tokens: float
    at: datetime


class RateLimiter:
    """Token buckets per key, in this process's memory (see the module's docstring)."""

    def __init__(self, clock: Clock, rate_per_minute: int = RATE_PER_MINUTE) -> None:
        self.clock = clock
        self.rate = max(1, rate_per_minute)
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one token of `key`'s bucket; 429 with Retry-After when it is empty."""
        with self._lock:
            self._take(key)

    def _take(self, key: str) -> None:
        now = self.clock.now()
        bucket = self.buckets.pop(key, None) or Bucket(float(self.rate), now)
        elapsed = max(0.0, (now - bucket.at).total_seconds())
        bucket.tokens = min(float(self.rate), bucket.tokens + elapsed * self.rate / 60)
        bucket.at = now
        self.buckets[key] = bucket
        while len(self.buckets) > MAX_BUCKETS:
            self.buckets.popitem(last=False)
        if bucket.tokens < 1:
            wait = math.ceil((1 - bucket.tokens) * 60 / self.rate)
            raise ApiProblem(429, "api.rate_limited", headers={"Retry-After": str(max(1, wait))}, rate=self.rate)
        bucket.tokens -= 1
