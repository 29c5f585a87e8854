"""The JSON of the shops' API: requests read strictly, orders written out in full.

Requests: one JSON object, with only the fields the route knows. An unknown
field is refused rather than ignored, because it is most often a typo
(`drop_off`) that would otherwise quietly become an order without it.

Orders: what the chat tells the customer, as data. The price in cents and as
a decimal string (never a float), each term of its sum with its label and
cents, the zones found, the votes that set the rules (code and date), the
sentence the chat shows (`explanation`), and until when the quote holds. The
history is the steps a customer reads in `/why` (the co-op's offers to its
couriers are not theirs to read), with the courier by first name, as the
chat shows them. Nothing here holds a chat account, a member's number or
another customer's anything.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.errors import UsageError
from coopbot.i18n import t
from coopbot.models import Job, JobEvent, Member
from coopbot.money import plain_amount
from coopbot.services.dispatch import price_rules
from coopbot.services.dispatch.order_notices import courier_shown
from coopbot.services.dispatch.parsing import job_code
from coopbot.services.polls.texts import code as poll_code
from coopbot.web.problems import ApiProblem
from handlers.dispatch import CUSTOMER_STEPS

JSON_TYPES = ("application/json", "application/problem+json")
#: What an order's event may tell a customer beyond its kind and time.
SHOWN_DETAILS = ("reason", "proof")
PRICED_DETAILS = ("price", "before")
BASE = "/api/v1/orders"


async def read_object(request: web.Request, fields: dict[str, bool], *, optional: bool = False) -> dict[str, Any]:
    """The body as an object of string fields (`fields`: name → required); `optional`: no body is `{}`."""
    raw = await request.read()
    if not raw.strip() and optional:
        return {}
    if request.content_type not in JSON_TYPES:
        raise ApiProblem(415, "api.not_json")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        error = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise ApiProblem(400, "api.bad_json", error=error) from None
    if not isinstance(body, dict):
        raise ApiProblem(400, "api.not_an_object")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise UsageError("api.unknown_fields", fields=", ".join(unknown[:10]), known=", ".join(fields))
    for name, required in fields.items():
        value = body.get(name)
        if value is None:
            if required:
                raise UsageError("api.field_missing", field=name)
            continue
        if not isinstance(value, str):
            raise UsageError("api.field_type", field=name, kind=t("en", "api.kind_string"))
    return body


def money(cents: int, currency: str) -> dict[str, Any]:
    return {"cents": cents, "amount": plain_amount(cents), "currency": currency}


def iso(moment: datetime | None, config: Config) -> str | None:
    """ISO 8601 in the co-op's time zone, with its offset: the time the chat shows, unambiguous."""
    return moment.astimezone(config.coop.tz).isoformat() if moment is not None else None


def price_of(record: dict[str, Any], config: Config, lang: str) -> dict[str, Any]:
    """A quote's record (`price_rules.record_of`) as data, and as the sentence the chat prints."""
    currency = config.coop.currency
    terms = [
        # The catalogue puts each term's amount last: without it, the term's label remains.
        {"key": term["key"].removeprefix("prices.term."),
         "label": t(lang, term["key"], amount="", **term["params"]).strip(), **money(int(term["cents"]), currency)}
        for term in record.get("terms", [])
    ]  # fmt: skip
    citations = [
        {"rule": entry["key"], "vote": poll_code(entry["poll"]) if entry["poll"] is not None else None,
         "date": entry["at"][:10] if entry["at"] else None}
        for entry in record.get("cited", [])
    ]  # fmt: skip
    pickup, dropoff = (record.get("zones") or [None, None])[:2]
    return {
        **money(int(record["total"]), currency),
        "terms": terms,
        "zones": {"pickup": pickup, "dropoff": dropoff},
        "citations": citations,
        "explanation": price_rules.explain(lang, record, currency),
    }


def order_json(job: Job, config: Config, lang: str) -> dict[str, Any]:
    """An order as a shop's software reads it, without its history."""
    code = job_code(job.id)
    links = {"self": f"{BASE}/{code}"}
    if job.proof_photo:
        links["proof"] = f"{BASE}/{code}/proof"
    quote = price_of(job.quote, config, lang) if job.quote else None
    price = money(job.price_cents, config.coop.currency) if job.price_cents is not None else None
    return {
        "code": code,
        "state": str(job.status),
        "pickup": job.pickup,
        "dropoff": job.dropoff,
        "deadline": iso(job.deadline, config),
        "note": job.note,
        "external_ref": job.external_ref,
        "price": price,
        "quote": quote,
        "valid_until": iso(job.quote_expires_at, config),
        "created_at": iso(job.created_at, config),
        "links": links,
    }


def history_json(session: Session, config: Config, lang: str, customer: Member,
                 events: list[JobEvent]) -> list[dict[str, Any]]:  # fmt: skip
    """The order's steps a customer may read, each with who took it as the chat names them."""
    shown: dict[int, str] = {customer.id: customer.name}

    def who(member_id: int | None) -> str | None:
        if member_id is None:
            return None
        if member_id not in shown:
            shown[member_id] = courier_shown(config, lang, session.get(Member, member_id))
        return shown[member_id]

    steps = []
    for event in events:
        if event.kind not in CUSTOMER_STEPS:
            continue
        details = event.details or {}
        step: dict[str, Any] = {"step": event.kind, "at": iso(event.at, config),
                                "by": who(event.member_id) or who(event.actor_id)}  # fmt: skip
        step.update({name: details[name] for name in SHOWN_DETAILS if details.get(name) is not None})
        step.update({name: money(int(details[name]), config.coop.currency)
                     for name in PRICED_DETAILS if details.get(name) is not None})  # fmt: skip
        steps.append(step)
    return steps
