"""The lunch rush's people: what customers, couriers and coordinators type and press, and what they wait for.

`bench/lunch_rush.py` seeds the co-op and runs the bot; this module plays
its members through the fake Bot API, as Telegram users would, and records
when each answer arrived. The fake server (`RushServer`) notes every
message, edit and button answer the bot sends, as it arrives, and hands it
to the driver's event loop, where each step of the script waits for the
answer it expects: a customer's quote, a courier's "It's yours", a ballot.
An answer is recognised by its text, built from the bot's own locale
strings (`shape`), never by position, since notifications for the same
chat arrive in between. Once the rush is over, the checks at the end say
what each person should have read and did not, what they read twice, and
how long replies took while the outbox had a queue.
"""

from __future__ import annotations

import asyncio
import bisect
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bench.telegram_roundtrip import percentile
from coopbot.i18n import entries, parameters, t
from tests.telegram.fake_bot_api import FakeBotApi, FakeUser
from tests.telegram.fake_telegram_rules import Call

ANSWERS = ("sendMessage", "editMessageText", "answerCallbackQuery")
#: How replies are grouped by the outbox's backlog at the moment their update was handed over.
BACKLOG = (("0-9 notifications were waiting", 9), ("10-99 were waiting", 99), ("100 or more were waiting", 10**9))
#: How long a person waits for one answer before the step is counted as unanswered.
PATIENCE = 60.0


def shape(key: str, **fixed: str) -> re.Pattern[str]:
    """The English text of `key` as a pattern: the `fixed` placeholders as given, the others any text."""
    holes = {name: f"\x00{n}\x00" for n, name in enumerate(sorted(parameters(entries("en")[key])))}
    text = re.escape(t("en", key, **{**holes, **fixed}))
    for name, hole in holes.items():
        if name not in fixed:
            text = text.replace(re.escape(hole), ".*?")
    return re.compile(text, re.S)


def about(key: str, job: str) -> re.Pattern[str]:
    """The text of `key`, whatever its placeholders hold, naming `job` (alone or in its line)."""
    return re.compile(rf"(?=.*\b{job}\b){shape(key).pattern}", re.S)


@dataclass(frozen=True)
class Seen:
    """One answer of the bot as it reached the server: when, where, what."""

    method: str
    at: float
    chat: int
    text: str = ""
    message_id: int = 0
    query_id: str = ""
    message: dict[str, Any] = field(default_factory=dict, compare=False)

    def buttons(self) -> list[str]:
        rows = self.message.get("reply_markup", {}).get("inline_keyboard", [])
        return [str(button["callback_data"]) for row in rows for button in row]


@dataclass
class Waiter:
    predicate: Callable[[Seen], bool]
    found: asyncio.Future[Seen]


class RushServer(FakeBotApi):
    """The fake Telegram, telling the driver's loop of every answer the bot sends as it arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.driver: asyncio.AbstractEventLoop | None = None
        self.seen: dict[int, list[Seen]] = defaultdict(list)
        self.sends: dict[tuple[int, int], Seen] = {}
        self.query_chat: dict[str, int] = {}
        self.waiters: dict[int, list[Waiter]] = defaultdict(list)
        self.watchers: list[Callable[[Seen], None]] = []

    async def _dispatch(self, call: Call) -> Any:
        result = await super()._dispatch(call)
        if call.method in ANSWERS and self.driver is not None:
            self.driver.call_soon_threadsafe(self._arrive, self._seen(call, result))
        return result

    def _seen(self, call: Call, result: Any) -> Seen:
        params = call.params
        if call.method == "answerCallbackQuery":
            query = str(params["callback_query_id"])
            return Seen(call.method, call.at, 0, query_id=query)
        message = dict(result)
        return Seen(call.method, call.at, int(message["chat"]["id"]), str(message.get("text", "")),
                    int(message["message_id"]), message=message)  # fmt: skip

    def _arrive(self, seen: Seen) -> None:
        if seen.query_id:
            seen = replace(seen, chat=self.query_chat.get(seen.query_id, 0))
        self.seen[seen.chat].append(seen)
        if seen.method == "sendMessage":
            self.sends[(seen.chat, seen.message_id)] = seen
        for watcher in self.watchers:
            watcher(seen)
        for waiter in list(self.waiters[seen.chat]):
            if not waiter.found.done() and waiter.predicate(seen):
                waiter.found.set_result(seen)
                self.waiters[seen.chat].remove(waiter)

    def expect(self, chat: int, predicate: Callable[[Seen], bool]) -> asyncio.Future[Seen]:
        """A future for the next answer to `chat` that `predicate` accepts (register before acting)."""
        found: asyncio.Future[Seen] = asyncio.get_running_loop().create_future()
        self.waiters[chat].append(Waiter(predicate, found))
        return found

    def press_data(self, user: FakeUser, message: dict[str, Any], prefix: str) -> dict[str, Any]:
        """`user` presses the button whose command starts with `prefix`, as the bot left the message."""
        with self._lock:
            current = self.current(message)
            rows = current.get("reply_markup", {}).get("inline_keyboard", [])
            labels = [b["text"] for row in rows for b in row if str(b["callback_data"]).startswith(prefix)]
        if not labels:
            raise Stuck(f"no button {prefix!r} on the message {current.get('text', '')[:80]!r}")
        update = self.press(user, message, label=labels[0])
        self.query_chat[update["callback_query"]["id"]] = user.id
        return update


class Stuck(Exception):
    """A step of the script did not get the answer a person would wait for."""


@dataclass
class Tally:
    """Reply latencies per command kind, and the steps that got no answer."""

    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    stuck: list[str] = field(default_factory=list)
    update_ids: set[int] = field(default_factory=set)
    #: (when the update was handed over, on the server's clock; its latency) for every answer.
    handed: list[tuple[float, float]] = field(default_factory=list)


class Rush:
    """The script: orders, races, pickups and deliveries, the announcement, the poll."""

    def __init__(self, api: RushServer, couriers: list[FakeUser], customers: list[FakeUser],
                 coordinator: FakeUser, racers: int, seed: int = 20) -> None:  # fmt: skip
        self.api, self.couriers, self.customers, self.coordinator = api, couriers, customers, coordinator
        self.racers = racers
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.turns = {c.id: asyncio.Lock() for c in customers}
        self.offers: dict[str, asyncio.Queue[Seen]] = defaultdict(asyncio.Queue)
        self.ballots: dict[int, asyncio.Future[Seen]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.offer_text = re.compile(r"^" + re.escape(t("en", "dispatch.offer", job="")) + r"(J-\d+) ")
        api.watchers.append(self._watch)

    def _watch(self, seen: Seen) -> None:
        """Offers and ballots are notices, not answers: whoever receives one is told here."""
        if seen.method != "sendMessage":
            return
        offer = self.offer_text.match(seen.text)
        if offer and any(b.startswith("/accept") for b in seen.buttons()):
            self.offers[offer.group(1)].put_nowait(seen)
        elif seen.text.startswith("🗳 ") and any(b.startswith("/vote") for b in seen.buttons()):
            waiting = self.ballots.get(seen.chat)
            if waiting is not None and not waiting.done():
                waiting.set_result(seen)

    # --- one step: act, then wait for the answer ------------------------------------------

    async def step(self, kind: str, user: FakeUser, act: Callable[[], dict[str, Any]],
                   answer: Callable[[Seen], bool], what: str) -> Seen:  # fmt: skip
        """Do `act` as `user` and wait for the answer `answer` accepts; its latency counts as `kind`."""
        found = self.api.expect(user.id, answer)
        update = act()
        update_id = int(update["update_id"])
        self.tally.update_ids.add(update_id)
        query = update.get("callback_query", {}).get("id")
        toast = self.api.expect(user.id, lambda s: s.query_id == query) if query else None
        try:
            seen = await asyncio.wait_for(found, PATIENCE)
            done = seen.at
            if toast is not None:
                done = max(done, (await asyncio.wait_for(toast, PATIENCE)).at)
        except TimeoutError:
            self.tally.stuck.append(f"{kind}: {what}: no answer in {PATIENCE:g} s")
            raise Stuck(what) from None
        handed = self.api.handed_at[update_id]
        self.tally.latency[kind].append(done - handed)
        self.tally.handed.append((handed, done - handed))
        return seen

    def say(self, kind: str, user: FakeUser, text: str, answer: Callable[[Seen], bool]) -> Any:
        return self.step(kind, user, lambda: self.api.say(user, text), answer, f"{user.first_name}: {text}")

    def press(self, kind: str, user: FakeUser, message: Seen, prefix: str, answer: Callable[[Seen], bool]) -> Any:
        return self.step(kind, user, lambda: self.api.press_data(user, message.message, prefix), answer,
                         f"{user.first_name} presses {prefix} on {message.text[:40]!r}")  # fmt: skip

    @staticmethod
    def sent_like(pattern: re.Pattern[str]) -> Callable[[Seen], bool]:
        """A new message whose text has `pattern`."""
        return lambda s: s.method == "sendMessage" and bool(pattern.search(s.text))

    @staticmethod
    def edit_of(message: Seen, pattern: re.Pattern[str]) -> Callable[[Seen], bool]:
        """The pressed message edited to `pattern`, or the same answer sent as a new message."""
        return lambda s: (
            s.method in ("editMessageText", "sendMessage")
            and bool(pattern.search(s.text))
            and (s.method == "sendMessage" or s.message_id == message.message_id)
        )

    async def pause(self, most: float) -> None:
        await asyncio.sleep(self.rng.uniform(0, most))

    # --- an order, start to finish --------------------------------------------------------

    async def order(self, number: int, think: float) -> None:
        customer = self.customers[number % len(self.customers)]
        try:
            async with self.turns[customer.id]:
                quote = await self.say(
                    "/order",
                    customer,
                    f"/order 12 rue de Paris, 93100 Montreuil note lunch {number}",
                    self.sent_like(re.compile(r"/confirm J-")),
                )
                code = re.search(r"/confirm (J-\d+)", quote.text)
                assert code is not None
                job = code.group(1)
                self.jobs[job] = {"customer": customer.id, "number": number}
                await self.pause(think)
                confirmed = await self.press(
                    "confirm (button)",
                    customer,
                    quote,
                    "/confirm",
                    lambda s: bool(re.search(rf"\b{job}\b.*\n.*\b(\d{{4}})\b", s.text)),
                )
            delivery_code = re.findall(r"\b(\d{4})\b", confirmed.text.split("\n", 1)[1])[0]
            winner, message = await self.race(job, think)
            await self.pause(think)
            picked = about("dispatch.picked_up", job)
            await self.press("picked up (button)", winner, message, "/pickup", self.edit_of(message, picked))
            await self.pause(think)
            delivered = about("dispatch.delivered", job)
            await self.say(
                "/deliver J CODE",
                winner,
                f"/deliver {job} {delivery_code}",
                self.sent_like(delivered),
            )
            self.jobs[job]["delivered"] = True
        except Stuck:
            return

    async def race(self, job: str, think: float) -> tuple[FakeUser, Seen]:
        """Broadcast: the first couriers to see the offer press Accept at once. Rotation: the one
        offered it accepts (every fifth declines first, and the next one accepts)."""
        by_id = {c.id: c for c in self.couriers}
        first = await self._next_offer(job)
        yours = about("dispatch.yours", job)
        if "\n" in first.text:  # a rotation offer says how long the worker has
            self.jobs[job]["policy"] = "rotation"
            offer = first
            if self.jobs[job]["number"] % 5 == 0:
                declined = about("dispatch.declined", job)
                await self.press(
                    "decline (button)", by_id[offer.chat], offer, "/decline", self.edit_of(offer, declined)
                )
                offer = await self._next_offer(job)
            await self.pause(think)
            courier = by_id[offer.chat]
            await self.press("accept (rotation)", courier, offer, "/accept", self.edit_of(offer, yours))
            return courier, offer
        self.jobs[job]["policy"] = "broadcast"
        seen = [first]
        while len(seen) < self.racers:
            seen.append(await self._next_offer(job))
        await self.pause(think)
        taken = about("dispatch.already_taken", job)
        answer = re.compile(f"{yours.pattern}|{taken.pattern}", re.S)
        presses = [self.press("accept (race)", by_id[o.chat], o, "/accept", self.edit_of(o, answer)) for o in seen]
        results = await asyncio.gather(*presses, return_exceptions=True)
        winners = [
            (by_id[o.chat], r)
            for o, r in zip(seen, results, strict=True)
            if isinstance(r, Seen) and yours.search(r.text)
        ]
        self.jobs[job]["winners"] = len(winners)
        if len(winners) != 1:
            self.tally.stuck.append(f"race for {job}: {len(winners)} couriers were told it is theirs")
            raise Stuck(job)
        return winners[0][0], winners[0][1]

    async def _next_offer(self, job: str) -> Seen:
        try:
            return await asyncio.wait_for(self.offers[job].get(), PATIENCE)
        except TimeoutError:
            self.tally.stuck.append(f"offer for {job}: no courier was offered it within {PATIENCE:g} s")
            raise Stuck(job) from None

    # --- the coordinator speaks to everyone ---------------------------------------------------

    async def announce(self, text: str) -> None:
        queued = shape("announce.queued", ref="A-1")
        try:
            await self.say(
                "/announce",
                self.coordinator,
                f"/announce {text}",
                self.sent_like(queued),
            )
        except Stuck:
            return

    async def poll(self, voters: list[FakeUser], spread: float) -> None:
        """A proposal, a ballot to everyone, a wave of votes as ballots land, then the early close."""
        loop = asyncio.get_running_loop()
        for voter in voters:
            self.ballots[voter.id] = loop.create_future()
        try:
            opened = await self.say(
                "/propose",
                self.coordinator,
                "/propose Extra evening shift on Friday? --closes 1d",
                self.sent_like(re.compile(r"^P-\d+ ")),
            )
            ref = opened.text.split(" ", 1)[0]
            recorded = shape("polls.voted", poll=ref)
            await asyncio.gather(*(self._vote(v, ref, recorded, spread) for v in voters), return_exceptions=True)
            closed = shape("polls.closed_now", poll=ref)
            await self.say(
                "/closepoll",
                self.coordinator,
                f"/closepoll {ref}",
                self.sent_like(closed),
            )
        except Stuck:
            return

    async def _vote(self, voter: FakeUser, ref: str, recorded: re.Pattern[str], spread: float) -> None:
        try:
            ballot = await asyncio.wait_for(self.ballots[voter.id], PATIENCE)
        except TimeoutError:
            self.tally.stuck.append(f"ballot {ref}: {voter.first_name} got none within {PATIENCE:g} s")
            return
        await self.pause(spread)
        await self.press("vote (button)", voter, ballot, f"/vote {ref} agree", self.edit_of(ballot, recorded))


# --- what people read, checked once the rush is over -------------------------------------------


def behind_the_outbox(tally: Tally, sends: list[tuple[float, float]], shift: float) -> list[str]:
    """Replies split by how many notifications were waiting to be sent when their update was handed over."""
    queued, arrived = sorted(c for c, _ in sends), sorted(a for _, a in sends)
    buckets: dict[str, list[float]] = {}
    for handed, latency in tally.handed:
        t = handed + shift
        waiting = bisect.bisect_right(queued, t) - bisect.bisect_right(arrived, t)
        label = next(name for name, most in BACKLOG if waiting <= most)
        buckets.setdefault(label, []).append(latency)
    return [
        f"replies while {label}: {len(values)}, p50 {percentile(values, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(values, 0.99) * 1000:.1f} ms"
        for label, _ in BACKLOG
        if (values := buckets.get(label))
    ]


def outbox_kind(key: str) -> str:
    """`job:12:offer:m3:1` → `job offer`; `announce:1:m3:part1:telegram` → `announce`."""
    parts = key.split(":")
    if parts[0] == "job" and len(parts) > 2:
        return "job " + re.sub(r"^ev\d+$", "coordinators' line", parts[2])
    return parts[0]


def expected_missing(api: RushServer, script: Rush, offers: list[tuple[int, int, str]],
                     identities: dict[int, str], members: list[FakeUser], announced: int | None,
                     polled: int | None) -> Counter[str]:  # fmt: skip
    """What the script knows each person should have read, and did not."""

    def got(chat: int, pattern: re.Pattern[str]) -> bool:
        return any(s.method == "sendMessage" and pattern.search(s.text) for s in api.seen.get(chat, []))

    missing: Counter[str] = Counter()
    for job, facts in script.jobs.items():
        if facts.get("delivered"):
            for key in ("orders.told_taken", "orders.told_picked_up", "orders.told_delivered"):
                missing[f"customer {key.split('.')[1]}"] += not got(facts["customer"], about(key, job))
    for job_id, member_id, status in offers:
        chat, job = int(identities[member_id]), f"J-{job_id}"
        missing["offer"] += not got(chat, re.compile(rf"^New job: {job} "))
        if status == "closed":
            missing["offer closed"] += not got(chat, about("dispatch.taken_by", job))
    for member in members:
        if announced is not None:
            missing["announcement"] += not got(member.id, re.compile(r"^📣 Announcement A-\d+ from"))
        if polled is not None:
            missing["ballot"] += not got(member.id, re.compile(rf"^🗳 P-{polled} "))
    return Counter({kind: count for kind, count in missing.items() if count})


def duplicates_of(api: RushServer, since: float) -> int:
    """The same text twice in one chat since the rush began: none of its replies or notices is due twice."""
    texts = Counter(
        (s.chat, s.text) for seen in api.seen.values() for s in seen if s.method == "sendMessage" and s.at >= since
    )
    return sum(count - 1 for count in texts.values() if count > 1)


def monotonic_to_wall() -> float:
    """Add this to the server's `time.monotonic()` stamps to compare them with the database's times."""
    return time.time() - time.monotonic()
