"""What a shop's software reads of its orders: the order as data, and the webhooks that post
each step of it to the shop's own server.

The order as data (`order_json`) is what the chat tells the customer: the
price in cents and as a decimal string (never a float), each term of its sum
with its label and cents, the zones found, the votes that set the rules, the
sentence the chat shows (`explanation`), and until when the quote holds.
Nothing holds a chat account, a courier's name or a member's number. The
orders API answers with it (`coopbot.web.api_json`) and every webhook
carries it, so a shop reads one shape. It lives here, not beside the API,
because webhooks are written by services in every bot: this module needs no
aiohttp, and a bot without the web door never loads its server side.

A webhook (`coopbot customer webhook NAME URL`) is one outbox row per step
of an order (confirmed, taken, picked up, delivered, failed, released,
cancelled, price set, lapsed), queued in the transaction of the step itself
and keyed by its job event: nothing lost if the bot stops, nothing sent
twice for one change, retried with growing delays (`coopbot.outbox`), and
in the order the steps happened (the outbox sends one message at a time to
each recipient). The row's platform is `WEBHOOK`, its chat the customer's
number, its text the JSON body, written at queue time: the body says what
happened at that step, and a retry sends the very same bytes. The sender
(`coopbot.webhook_sender`) reads the URL and the secret when it sends, so a
new secret or `--off` applies to what is still queued.

The secret. The shop checks each request with it, and the bot must sign
with it, so it cannot be kept as a hash like the API key. It is sealed
instead (AES-256-GCM, `coopbot.secrets`) with a key derived from the
server key (`[coop] secret_env`, else the key file), bound to the customer's
number: whoever reads a backup of the database alone cannot forge a webhook
to a shop. If the server key is lost, sending fails and the message is set
aside; `coopbot customer webhook NAME URL` again gives a new secret.

The URL: https, or http to this machine only (localhost, 127.0.0.1, ::1),
for a shop's script on the same host or a test: anything else would send
the order and its addresses over the network in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from coopbot.chat import Address, Outgoing
from coopbot.config import Config
from coopbot.errors import UsageError
from coopbot.i18n import t
from coopbot.models import Job, JobEvent, Member
from coopbot.money import plain_amount
from coopbot.outbox_rows import outbox_row, store_new
from coopbot.services.dispatch import price_rules
from coopbot.services.dispatch.parsing import job_code
from coopbot.services.members.accounts import is_customer
from coopbot.services.polls.texts import code as poll_code

#: The outbox's name for the shops' servers: a recipient, not a chat platform (no accounts, no
#: `/notify`, no rooms). `coopbot.webhook_sender` is its transport.
WEBHOOK = "webhook"
#: Key prefix of the webhook rows: the `X-Coopbot-Delivery` a shop drops a repeat by.
KEY_PREFIX = "webhook:"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MAX_URL = 2000
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Events named as the shop reads them: a courier taking the order is "taken" however it happened.
EVENT_NAMES = {"accepted": "taken", "assigned": "taken"}
_SEAL_LABEL = b"coopbot webhook-secret seal v1"

#: Where the API serves orders: the links an order carries.
BASE = "/api/v1/orders"


# --- the order as data -----------------------------------------------------------


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


# --- the webhook -----------------------------------------------------------------


def check_url(url: str) -> str:
    """The URL, if a webhook may go there: https, or http to this machine only."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise UsageError("api.webhook_bad_url", url=url[:200]) from None
    local = host in LOCAL_HOSTS
    if len(url) > MAX_URL or not host or parts.username or parts.password or parts.fragment:
        raise UsageError("api.webhook_bad_url", url=url[:200])
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise UsageError("api.webhook_not_https", url=url[:200])
    return url


def set_webhook(session: Session, config: Config, customer: Member, url: str) -> str:
    """Post `customer`'s order steps to `url` from now on; returns the new secret, the only time
    it is seen whole. Each call makes a new one: the old stops signing at once."""
    from coopbot.secrets import seal

    if not is_customer(customer) or not customer.active:
        raise UsageError("api.webhook_for_customers", name=customer.name)
    customer.webhook_url = check_url(url)
    secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    customer.webhook_secret = seal(config, _SEAL_LABEL, _owner(customer.id), secret.encode())
    session.flush()
    return secret


def clear_webhook(session: Session, customer: Member) -> bool:
    """No more webhooks for `customer` (what is still queued is not sent); False if there were none."""
    had = customer.webhook_url is not None
    customer.webhook_url = customer.webhook_secret = None
    session.flush()
    return had


def target_of(session: Session, config: Config, customer_id: int) -> tuple[str, str] | None:
    """Where a webhook for `customer_id` goes now, and the secret it is signed with; None without one."""
    from coopbot.secrets import unseal

    customer = session.get(Member, customer_id)
    if customer is None or not customer.active or not customer.webhook_url or not customer.webhook_secret:
        return None
    lost = (f"the webhook secret of customer #{customer_id} does not open with the server key: was "
            f"{config.coop.secret_env} or the key file changed? `coopbot customer webhook` makes a new one")
    secret = unseal(config, _SEAL_LABEL, _owner(customer_id), customer.webhook_secret, lost=lost)
    return customer.webhook_url, secret.decode()


def _owner(customer_id: int) -> str:
    """The sealed secret opens for its own customer only: copied to another row, it does not."""
    return f"webhook:{customer_id}"


def signature(secret: str, body: bytes) -> str:
    """The `X-Coopbot-Signature` of a body: HMAC-SHA256 of its raw bytes, keyed by the whole secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_to_shop(session: Session, config: Config, job: Job, event: JobEvent, now: datetime) -> bool:
    """Queue the webhook of one step of a customer's order, once per job event; True if queued.

    Nothing for a coordinator's job, or a customer without a webhook or no longer active.
    """
    if job.customer_id is None:
        return False
    customer = session.get(Member, job.customer_id)
    if customer is None or not customer.active or not customer.webhook_url:
        return False
    key = f"{KEY_PREFIX}{job.id}:ev{event.id}"
    lang = customer.language or config.coop.default_language
    body: dict[str, Any] = {"id": key, "event": f"order.{EVENT_NAMES.get(event.kind, event.kind)}",
                            "at": iso(event.at, config), "order": order_json(job, config, lang)}  # fmt: skip
    reason = (event.details or {}).get("reason")
    if reason:
        body["reason"] = reason
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    address = Address(WEBHOOK, str(customer.id), private=True)
    return store_new(session, [outbox_row(key, address, Outgoing(text), now, customer.id, None, None)]) == 1


def event_of(body: str) -> str:
    """The `X-Coopbot-Event` of a queued body."""
    try:
        found = json.loads(body).get("event")
    except (ValueError, AttributeError):
        found = None
    return found if isinstance(found, str) else "order"
