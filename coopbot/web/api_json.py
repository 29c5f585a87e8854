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
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.errors import UsageError
from coopbot.i18n import t
from coopbot.models import Job, JobEvent, Member
from coopbot.services.dispatch.order_notices import as_customer_reads
from coopbot.services.dispatch.webhooks import BASE, iso, money, order_json, price_of
from coopbot.web.problems import ApiProblem

JSON_TYPES = ("application/json", "application/problem+json")
#: What an order's event may tell a customer beyond its kind and time.
SHOWN_DETAILS = ("reason", "proof")
PRICED_DETAILS = ("price", "before")
#: Written in `services.dispatch.webhooks`, which the shops' webhooks share without aiohttp.
__all__ = ["BASE", "history_json", "iso", "money", "order_json", "price_of", "read_object"]


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


def history_json(session: Session, config: Config, lang: str, customer: Member, job: Job,
                 events: list[JobEvent]) -> list[dict[str, Any]]:  # fmt: skip
    """The order's steps a customer may read, each with who took it as the chat names them."""
    shown, names = as_customer_reads(session, config, lang, customer, job, events)

    def who(member_id: int | None) -> str | None:
        return None if member_id is None else names[member_id]

    steps = []
    for event in shown:
        details = event.details or {}
        step: dict[str, Any] = {"step": event.kind, "at": iso(event.at, config),
                                "by": who(event.member_id) or who(event.actor_id)}  # fmt: skip
        step.update({name: details[name] for name in SHOWN_DETAILS if details.get(name) is not None})
        step.update({name: money(int(details[name]), config.coop.currency)
                     for name in PRICED_DETAILS if details.get(name) is not None})  # fmt: skip
        steps.append(step)
    return steps
