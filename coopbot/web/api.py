"""The shops' orders API: `/api/v1/orders`, the chat's `/order`, `/confirm`, `/why`,
`/cancel` and `/orders` for a shop's software.

Every route is a thin layer, like a chat handler: read the request, call
the services the chat calls (`orders.quote`, `orders.confirm`,
`orders.cancel`, `jobs.history`), and write the answer as JSON. Refusals are
the services' own exceptions, made problems in one place
(`coopbot.web.problems`).

Database work runs in a worker thread (`asyncio.to_thread`), one
transaction per request: the way `CoopBot.handle` runs a command on
PostgreSQL, or on SQLite while another writer holds the lock. The chat's
in-loop shortcut on SQLite (`LoopSessions`) belongs to the router's
exactly-once receipts; an API request has none, and may wait on a lock, so
it never holds the event loop that Telegram, Matrix and the outbox share.

`add(app, bot)` is the route adder the web server calls. POSTs accept an
`Idempotency-Key` (`services.dispatch.idempotency`): a retry returns the
first answer, `Idempotent-Replayed: true` in its headers, and creates
nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiohttp import web
from sqlalchemy.orm import Session

from coopbot.db import transaction
from coopbot.errors import NotFound, UsageError
from coopbot.models import Member
from coopbot.services.dispatch import idempotency, jobs, orders, proof_photos, shop_orders
from coopbot.services.dispatch.idempotency import Answer, Replayed
from coopbot.services.dispatch.parsing import job_code, parse_job_ref
from coopbot.services.members import api_keys
from coopbot.states import JOB_STATES, JobStatus
from coopbot.web.api_auth import RATE_PER_MINUTE, RateLimiter, bearer_key, wrong_key
from coopbot.web.api_json import BASE, history_json, order_json, read_object
from coopbot.web.openapi import document
from coopbot.web.problems import api_problems, language
from coopbot.web.server import BOT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from coopbot.app import CoopBot

ORDER_FIELDS = {"pickup": False, "dropoff": True, "deadline": False, "note": False, "external_ref": False}
CANCEL_FIELDS = {"reason": False}
DEFAULT_LIMIT = 50
REPLAYED = "Idempotent-Replayed"
LIMITER: web.AppKey[RateLimiter] = web.AppKey("coopbot.api.limiter")

Work = Callable[[Session, Member], Answer]


def add(app: web.Application, bot: CoopBot) -> None:
    """The web server's route adder: the API at the rate the configuration gives."""
    add_api(app, bot, rate_per_minute=bot.config.web.api_rate_per_minute)


def add_api(app: web.Application, bot: CoopBot, *, rate_per_minute: int = RATE_PER_MINUTE) -> None:
    app[BOT] = bot
    app[LIMITER] = RateLimiter(bot.clock, rate_per_minute)
    if api_problems not in app.middlewares:
        app.middlewares.append(api_problems)
    app.router.add_post(BASE, create_order)
    app.router.add_get(BASE, list_orders)
    app.router.add_get(BASE + "/{code}", get_order)
    app.router.add_delete(BASE + "/{code}", cancel_order)
    app.router.add_post(BASE + "/{code}/confirm", confirm_order)
    app.router.add_get(BASE + "/{code}/proof", proof_photo)
    app.router.add_get("/api/v1/openapi.json", openapi)


async def _run(request: web.Request, work: Work, *, print_: str | None = None) -> web.Response:
    """Authenticate, rate-limit, and do `work` in one transaction, off the event loop.

    With an Idempotency-Key (POSTs give `print_`, the request's fingerprint),
    a repeat answers with the first answer, and a concurrent twin loses to it.
    """
    bot, limiter = request.app[BOT], request.app[LIMITER]
    key = bearer_key(request)
    header = request.headers.get("Idempotency-Key")
    idem = idempotency.check_key(header) if header is not None and print_ is not None else None

    def in_thread() -> tuple[Answer, bool]:
        try:
            with transaction(bot.sessions) as session:
                customer = api_keys.customer_of(session, key)
                if customer is None:
                    raise wrong_key()
                limiter.take(f"customer:{customer.id}")
                if idem is None or print_ is None:
                    return work(session, customer), False
                first = idempotency.recalled(session, customer, idem, print_)
                if first is not None:
                    return first, True
                answer = work(session, customer)
                idempotency.remember(session, customer, idem, print_, answer, bot.clock.now())
                return answer, False
        except Replayed as replayed:
            return replayed.answer, True

    answer, replayed = await asyncio.to_thread(in_thread)
    headers = {REPLAYED: "true"} if replayed else {}
    if answer.status == 201:
        headers["Location"] = answer.body["links"]["self"]
    return web.json_response(answer.body, status=answer.status, headers=headers,
                             dumps=lambda data: json.dumps(data, ensure_ascii=False))  # fmt: skip


def _code(request: web.Request) -> int:
    """The order in the URL; a malformed code names no order of theirs either."""
    text = request.match_info["code"]
    try:
        return parse_job_ref(text)
    except UsageError:
        raise NotFound("orders.no_such_order", job=text[:20]) from None


async def create_order(request: web.Request) -> web.Response:
    """POST /api/v1/orders: a quote, as `/order` gives it; nothing is dispatched yet."""
    body = await read_object(request, ORDER_FIELDS)
    bot, lang = request.app[BOT], language(request)

    def work(session: Session, customer: Member) -> Answer:
        now = bot.clock.now()
        spec = shop_orders.spec_of(customer, bot.config, now, dropoff=body["dropoff"], pickup=body.get("pickup"),
                                   deadline=body.get("deadline"), note=body.get("note"))  # fmt: skip
        job = shop_orders.order(session, bot.config, customer, spec, now, body.get("external_ref"))
        return Answer(201, order_json(job, bot.config, lang))

    return await _run(request, work, print_=idempotency.fingerprint("POST", request.path, body))


async def confirm_order(request: web.Request) -> web.Response:
    """POST /api/v1/orders/{code}/confirm: the quote becomes a job offered to the couriers."""
    await read_object(request, {}, optional=True)
    job_id, bot, lang = _code(request), request.app[BOT], language(request)

    def work(session: Session, customer: Member) -> Answer:
        job, delivery_code = orders.confirm(session, bot.config, customer, job_id, bot.clock.now())
        return Answer(200, {**order_json(job, bot.config, lang), "delivery_code": delivery_code})

    return await _run(request, work, print_=idempotency.fingerprint("POST", request.path, {}))


async def get_order(request: web.Request) -> web.Response:
    """GET /api/v1/orders/{code}: its state, its steps (`/why`), and its proof of delivery."""
    job_id, bot, lang = _code(request), request.app[BOT], language(request)

    def work(session: Session, customer: Member) -> Answer:
        orders.own_order(session, customer, job_id)
        job, events, _ = jobs.history(session, job_id)
        body = order_json(job, bot.config, lang)
        delivered = [event for event in events if event.kind == "delivered"]
        proof = (delivered[-1].details or {}).get("proof") if delivered else None
        body["proof"] = {"kind": proof, "photo": body["links"].get("proof")}
        body["history"] = history_json(session, bot.config, lang, customer, job, events)
        return Answer(200, body)

    return await _run(request, work)


async def cancel_order(request: web.Request) -> web.Response:
    """DELETE /api/v1/orders/{code}: cancelled, until pickup (then 409, as in chat)."""
    body = await read_object(request, CANCEL_FIELDS, optional=True)
    job_id, bot, lang = _code(request), request.app[BOT], language(request)

    def work(session: Session, customer: Member) -> Answer:
        job = orders.cancel(session, bot.config, customer, job_id, body.get("reason") or "", bot.clock.now())
        return Answer(200, order_json(job, bot.config, lang))

    return await _run(request, work)


def _states(text: str) -> list[JobStatus]:
    wanted = [word.strip().lower() for word in text.split(",") if word.strip()]
    unknown = [word for word in wanted if word not in JOB_STATES]
    if unknown:
        raise UsageError("api.bad_state", state=unknown[0][:30], states=", ".join(JOB_STATES))
    return [JobStatus(word) for word in wanted]


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= shop_orders.MAX_LISTED:
        raise UsageError("api.bad_limit", most=shop_orders.MAX_LISTED)
    return int(text)


async def list_orders(request: web.Request) -> web.Response:
    """GET /api/v1/orders?state=open,assigned&limit=50&before=J-40: theirs, newest first."""
    query, bot, lang = request.query, request.app[BOT], language(request)
    states, limit = _states(query.get("state", "")), _limit(query.get("limit"))
    try:
        before = parse_job_ref(query["before"]) if "before" in query else None
    except (UsageError, NotFound):
        raise UsageError("api.bad_before") from None

    def work(session: Session, customer: Member) -> Answer:
        found = shop_orders.orders_in(session, customer, states, limit + 1, before)
        shown = [order_json(job, bot.config, lang) for job in found[:limit]]
        following = None
        if len(found) > limit:
            params = {**query, "before": job_code(found[limit - 1].id)}
            following = str(request.rel_url.with_query(params))
        return Answer(200, {"orders": shown, "next": following})

    return await _run(request, work)


async def proof_photo(request: web.Request) -> web.Response:
    """GET /api/v1/orders/{code}/proof: the photo of the delivery, while it is kept."""
    job_id, bot = _code(request), request.app[BOT]

    def work(session: Session, customer: Member) -> Answer:
        job = orders.own_order(session, customer, job_id)
        if not job.proof_photo:
            raise NotFound("api.no_photo", job=job_code(job.id))
        return Answer(200, {"name": job.proof_photo})

    answer = await _run(request, work)
    name = json.loads(answer.text or "{}")["name"]
    photo = await asyncio.to_thread(proof_photos.read, bot.config, name)
    if photo is None:
        raise NotFound("api.no_photo", job=job_code(job_id))
    mime = proof_photos.MIMES.get("." + name.rsplit(".", 1)[-1], "application/octet-stream")
    return web.Response(body=photo, content_type=mime)


async def openapi(request: web.Request) -> web.Response:
    """GET /api/v1/openapi.json: the document describing all of the above (no key needed)."""
    return web.json_response(document())

