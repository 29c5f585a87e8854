"""What a customer is told about their order, and the proof that it was delivered.

The customer follows each step in their own language: taken by a courier,
picked up, delivered with its proof, failed or cancelled with the reason, a
price changed by a coordinator. They see the courier's first name only (or
"a courier", as the co-op sets it), never an account on a chat platform.

Proof by code: at confirmation the customer receives four digits to give the
recipient, and the courier finishes with `/deliver J-14 4821`. Only a hash is
kept. A wrong code is refused and counted, and at the fifth wrong try the
coordinators are told, once: someone may be guessing.

Proof by photo (`proof_photos`): the courier sends a photo of the delivery,
which the customer's "delivered" message then carries. With
`photo_or_code` either proves it. Only a customer's order asks for proof.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from coopbot.chat import Outgoing
from coopbot.config import Config
from coopbot.errors import UsageError
from coopbot.i18n import t
from coopbot.models import Job, JobEvent, Member
from coopbot.money import format_money
from coopbot.outbox import queue_rendered, queue_to_coordinators, queue_to_member
from coopbot.services.dispatch.parsing import job_code
from coopbot.services.dispatch.webhooks import post_to_shop

CODE = re.compile(r"^[0-9]{4}$")
TRIES_BEFORE_ALERT = 5
#: The renderer (in `proof_photos`) of a message carrying a delivery's photo.
PHOTO_MESSAGE = "proof-photo"


def needs_code(config: Config) -> bool:
    return config.orders.proof in ("code", "photo_or_code")


def takes_photo(config: Config, job: Job) -> bool:
    """Whether a photo proves this job's delivery: a customer's order, in a co-op that asks for photos."""
    return config.orders.proof in ("photo", "photo_or_code") and job.customer_id is not None


def hash_delivery_code(job_id: int, code: str) -> str:
    """Salted by the job, so one code's hash says nothing about another order's."""
    return hashlib.sha256(f"delivery:{job_id}:{code}".encode()).hexdigest()


def courier_shown(config: Config, lang: str, courier: Member | None) -> str:
    """The courier as the customer sees them: a first name, or just "a courier"."""
    if courier is None or config.orders.courier_name == "none":
        return t(lang, "orders.a_courier")
    return courier.name.split()[0]


#: What a customer reads of their order's history: its steps, not the co-op's offers to its members.
CUSTOMER_STEPS = ("quoted", "confirmed", "lapsed", "accepted", "assigned", "picked_up", "delivered", "failed",
                  "released", "cancelled", "price_set")  # fmt: skip


def as_customer_reads(session: Session, config: Config, lang: str, customer: Member, job: Job,
                      events: list[JobEvent]) -> tuple[list[JobEvent], dict[int, str]]:  # fmt: skip
    """An order's history as its customer reads it, in the chat (/why) and over the API alike: its
    steps only, and everyone in them (and its holder) as `courier_shown` names them."""
    steps = [event for event in events if event.kind in CUSTOMER_STEPS]
    people = {i for event in steps for i in (event.member_id, event.actor_id) if i is not None}
    people |= {job.assignee_id} if job.assignee_id is not None else set()
    names = {i: courier_shown(config, lang, session.get(Member, i)) for i in people}
    names[customer.id] = customer.name
    return steps, names


def tell_customer(session: Session, config: Config, job: Job, event: JobEvent, step: str, now: datetime, *,
                  courier: Member | None = None, **params: Any) -> None:  # fmt: skip
    """One message to the customer for one step of their order, once (keyed by the job's event),
    and its webhook to the shop's server when they gave one: the one place both are queued."""
    if job.customer_id is None:
        return
    post_to_shop(session, config, job, event, now)
    customer = session.get(Member, job.customer_id)
    if customer is None or not customer.active:
        return
    lang = customer.language or config.coop.default_language
    if "price" in params:
        params["price"] = format_money(params["price"], config.coop.currency, lang)
    key = f"order:{job.id}:ev{event.id}"
    if step == "delivered" and job.proof_photo:
        # Written when sent, with the photo read from disk then: the row never holds it.
        only_them = select(Member.id).where(Member.id == customer.id)
        queue_rendered(session, only_them, key, f"{PHOTO_MESSAGE}:{job.id}", now)
        return
    text = t(lang, f"orders.told_{step}", job=job_code(job.id), courier=courier_shown(config, lang, courier), **params)
    queue_to_member(session, customer, key, Outgoing(text), now)


def wrong_code(session: Session, config: Config, job: Job, code: str | None, now: datetime) -> int | None:
    """The count of wrong tries when `code` is wrong, else None (right, or no code asked).

    Returns instead of raising: the try must be counted, and a refusal rolls back
    everything its command wrote. A missing code is the caller's usage error.
    """
    if job.customer_id is None or job.proof_code_hash is None or code is None:
        return None
    if CODE.match(code) and hmac.compare_digest(hash_delivery_code(job.id, code), job.proof_code_hash):
        return None
    job.proof_tries += 1
    if job.proof_tries == TRIES_BEFORE_ALERT:
        queue_to_coordinators(session, config, f"job:{job.id}:code-tries", "orders.note_code_tries", now,
                              job=job_code(job.id), tries=job.proof_tries)  # fmt: skip
    return job.proof_tries


def check_proof(config: Config, job: Job, code: str | None, photo: bool) -> str | None:
    """The proof this delivery carries ("photo" or "code"), or None when its job asks for none.

    A delivery that needs proof is refused without it, saying what to send instead.
    """
    by_photo, by_code = takes_photo(config, job), job.proof_code_hash is not None
    if photo and by_photo:
        return "photo"
    if by_code and code is not None:
        if not CODE.match(code) or not hmac.compare_digest(hash_delivery_code(job.id, code), job.proof_code_hash or ""):
            raise UsageError("orders.code_wrong", job=job_code(job.id))
        return "code"
    if by_photo and by_code:
        raise UsageError("orders.proof_missing", job=job_code(job.id))
    if by_photo:
        raise UsageError("orders.photo_missing", job=job_code(job.id))
    if by_code:
        raise UsageError("orders.code_missing", job=job_code(job.id))
    return None
