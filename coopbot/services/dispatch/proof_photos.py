"""Proof of delivery by photo: where the photos live, who sees them, and when they go.

With `[orders] proof = "photo"` (or `"photo_or_code"`) a courier proves a
customer's delivery with a photo of the parcel at the door. A photo is a
picture of someone's doorstep, often of someone: it is kept as a file in the
bot's data folder (`[orders] photo_folder`), never in the database, and only
for `proof_retention_days`. `Job.proof_photo` holds the file's name, made of
the job and a random token so that it names no one and cannot be guessed.

The customer's "delivered" message and the coordinators' copy carry the
photo, but the outbox rows do not: they are written when sent (`@renderer`),
reading the file from disk then. A row sent after the photo was deleted still
goes, saying the photo has expired.

Data rights: a photo names nobody, and nothing personal links a file to a
person but the job. When a courier or a customer leaves and is erased, the
photos of their deliveries are not erased with them: like everyone's, they
simply go when their retention is over (the `orders.photos` sweep).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from coopbot.chat import Outgoing, Photo
from coopbot.config import Config
from coopbot.i18n import t
from coopbot.models import Job, JobEvent, Member, OutboxMessage
from coopbot.outbox import queue_rendered, queue_to_rooms, renderer, room_addresses
from coopbot.scheduler import SweepContext, sweep
from coopbot.services.dispatch.order_notices import PHOTO_MESSAGE, courier_shown
from coopbot.services.dispatch.parsing import job_code
from coopbot.states import Role

log = logging.getLogger(__name__)

SUFFIXES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif"}
MIMES = {suffix: mime for mime, suffix in SUFFIXES.items()}
EXPIRE_BATCH = 200


def folder(config: Config) -> Path:
    return Path(config.orders.photo_folder)


def keep(config: Config, job_id: int, photo: Photo) -> str:
    """Write the photo to the data folder; returns the file name `Job.proof_photo` stores.

    Called inside the delivery's transaction, before it commits, so that a
    committed delivery always has its file. A transaction that then fails
    leaves an orphan file at worst; the `orders.photos` sweep deletes it once
    it is as old as the retention allows.
    """
    directory = folder(config)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{job_code(job_id)}-{secrets.token_hex(12)}{SUFFIXES.get(photo.mime, '.jpg')}"
    with open(directory / name, "xb") as file:
        file.write(photo.data)
        file.flush()
        os.fsync(file.fileno())
    return name


def read(config: Config, name: str) -> bytes | None:
    """The photo's bytes, or None once it is gone (expired, or the folder was cleared)."""
    try:
        return (folder(config) / Path(name).name).read_bytes()
    except OSError:
        return None


def show_coordinators(session: Session, config: Config, job: Job, now: datetime) -> None:
    """The photo for the coordinators: in their rooms, else to each of them privately."""
    key, render = f"job:{job.id}:photo", f"{PHOTO_MESSAGE}:{job.id}"
    if room_addresses(config, coordinators_only=True):
        queue_to_rooms(session, config, key, Outgoing(""), now, coordinators_only=True, render=render)
        return
    ids = select(Member.id).where(Member.role.in_((Role.COORDINATOR, Role.ADMIN)))
    queue_rendered(session, ids, key, render, now)


@renderer(PHOTO_MESSAGE)
def _photo_message(session: Session, config: Config, argument: str, row: OutboxMessage) -> Outgoing:
    """The customer's "delivered" message, or the coordinators' copy, with the photo read now."""
    job = session.get_one(Job, int(argument))
    reader = session.get(Member, row.member_id) if row.member_id is not None else None
    lang = (reader.language if reader is not None else None) or config.coop.default_language
    courier = session.get(Member, job.assignee_id) if job.assignee_id is not None else None
    code = job_code(job.id)
    if reader is not None and reader.id == job.customer_id:
        text = t(lang, "orders.told_delivered", job=code, courier=courier_shown(config, lang, courier))
    else:
        text = t(lang, "orders.note_photo", job=code, name=courier.name if courier is not None else "?")
    data = read(config, job.proof_photo) if job.proof_photo else None
    if data is None:
        return Outgoing(text + "\n" + t(lang, "orders.photo_expired", days=config.orders.proof_retention_days))
    suffix = Path(job.proof_photo or "").suffix
    return Outgoing(text, attachment=(f"{code}-proof{suffix}", data, MIMES.get(suffix, "image/jpeg")))


# --- retention ---------------------------------------------------------------------------


@sweep("orders.photos")
def expire_photos(ctx: SweepContext) -> None:
    """Photos older than `proof_retention_days` are deleted, and their jobs no longer name them."""
    cutoff = ctx.now - timedelta(days=ctx.config.orders.proof_retention_days)
    query = (
        select(Job.id)
        .join(JobEvent, (JobEvent.job_id == Job.id) & (JobEvent.kind == "delivered"))
        .where(Job.proof_photo.is_not(None), JobEvent.at <= cutoff)
        .order_by(Job.id)
        .limit(EXPIRE_BATCH)
    )
    resting = ctx.resting()
    if resting:
        query = query.where(Job.id.not_in(resting))
    with ctx.sessions() as session:
        due = list(session.scalars(query))
    ctx.each(due, job_code, lambda session, job_id: _expire(session, ctx.config, job_id))
    _delete_orphans(ctx, cutoff)


def _expire(session: Session, config: Config, job_id: int) -> None:
    """Unlinked before the commit: if the commit fails, the job names a missing file, which the
    next tick clears; the other order could leave a file nobody names."""
    name = session.scalar(select(Job.proof_photo).where(Job.id == job_id))
    if name is None:
        return
    (folder(config) / Path(name).name).unlink(missing_ok=True)
    session.execute(update(Job).where(Job.id == job_id, Job.proof_photo == name).values(proof_photo=None))


def _delete_orphans(ctx: SweepContext, cutoff: datetime) -> None:
    """Files past the retention that no job names (left by a delivery whose transaction failed)."""
    old = {path.name: path for path in _files_older_than(folder(ctx.config), cutoff.timestamp())}
    if not old:
        return
    with ctx.sessions() as session:
        named = set(session.scalars(select(Job.proof_photo).where(Job.proof_photo.in_(list(old)))))
    for name, path in old.items():
        if name not in named:
            path.unlink(missing_ok=True)
            log.info("deleted the proof photo %s, which no delivery names, at the end of its retention", name)


def _files_older_than(directory: Path, moment: float) -> Iterator[Path]:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_file() and entry.stat().st_mtime <= moment:
            yield Path(entry.path)
