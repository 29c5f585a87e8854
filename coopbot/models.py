"""The database tables: the co-op's truth.

Times are stored in UTC (`UtcDateTime` gives them back aware on SQLite too).
States and roles are `StrEnum`s stored as the plain strings they always were
(`StateColumn`: no CHECK, no native enum type, so no migration) and read back
as members; a misspelt state is refused when it reaches the database.
Money is integer cents; points and quantities are integer thousandths
("milli") so that nothing is ever a float. Each area of the co-op has its own
section below.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from coopbot.columns import StateColumn, UtcDateTime
from coopbot.states import JobStatus, OfferStatus, PollStatus, Role

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON, list[Any]: JSON}


# --- members -----------------------------------------------------------------


class Member(Base):
    __tablename__ = "member"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(StateColumn(Role), default=Role.MEMBER)
    language: Mapped[str | None] = mapped_column(String(5))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    joined_at: Mapped[datetime]
    left_at: Mapped[datetime | None]
    #: Where private notifications go when linked on several platforms.
    notify: Mapped[str] = mapped_column(String(10), default="both")
    mute_announcements: Mapped[bool] = mapped_column(Boolean, default=False)
    hide_in_charts: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Named on the public page (`/public on`); shown as "member #N" otherwise.
    public_name: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # dispatch
    available: Mapped[bool] = mapped_column(Boolean, default=False)
    available_since: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    last_job_at: Mapped[datetime | None]
    idle_asked_at: Mapped[datetime | None]
    #: A customer's default pickup address, used when an order gives none.
    address: Mapped[str | None] = mapped_column(String(500))
    #: Where a customer's order steps are POSTed (`coopbot customer webhook`), and the secret
    #: they are signed with, sealed with the server key (`services.dispatch.webhooks`).
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret: Mapped[str | None] = mapped_column(String(200))
    iban_sealed: Mapped[str | None] = mapped_column(String(200))  #: sealed like it (`money.payouts`)
    #: The college the member votes in, in a co-op with `[colleges]` (None: the default one).
    college: Mapped[str | None] = mapped_column(String(30))

    identities: Mapped[list[Identity]] = relationship(
        back_populates="member", order_by="Identity.id", cascade="all, delete-orphan"
    )


class Identity(Base):
    """One account on one platform; a member may have several."""

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    platform: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    #: The private chat to reach this identity (Telegram: the user id; Matrix: a DM room).
    private_chat_id: Mapped[str | None] = mapped_column(String(255))
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    unreachable_since: Mapped[datetime | None]
    created_at: Mapped[datetime]

    member: Mapped[Member] = relationship(back_populates="identities")


class Invite(Base):
    __tablename__ = "invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(StateColumn(Role))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(ForeignKey("member.id"))


class LinkCode(Base):
    """A short-lived code that joins a second platform identity to a member."""

    __tablename__ = "link_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Every privileged action, readable by every member (`/audit`)."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    action: Mapped[str] = mapped_column(String(50))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Setting(Base):
    """A governed setting's value from `effective_at` on (history kept)."""

    __tablename__ = "setting"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(50), index=True)
    value: Mapped[str] = mapped_column(Text)
    effective_at: Mapped[datetime]
    set_by: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    poll_id: Mapped[int | None] = mapped_column(ForeignKey("poll.id"))


class SeenEvent(Base):
    """An incoming update already handled, so a restart never handles it twice."""

    __tablename__ = "seen_event"
    __table_args__ = (UniqueConstraint("platform", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime]


class TransportState(Base):
    """Small durable values a transport needs across restarts (offsets, tokens)."""

    __tablename__ = "transport_state"

    platform: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# --- outbox ------------------------------------------------------------------


class OutboxMessage(Base):
    """A message owed to someone; sent once, whatever crashes in between."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    platform: Mapped[str] = mapped_column(String(20))
    chat_id: Mapped[str] = mapped_column(String(255))
    private: Mapped[bool] = mapped_column(Boolean)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), index=True)
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identity.id"))
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[Any]] = mapped_column(default=list)
    attachment_name: Mapped[str | None] = mapped_column(String(255))
    attachment: Mapped[bytes | None]
    attachment_mime: Mapped[str | None] = mapped_column(String(100))
    #: pending → sent | dead (unreachable, or the member left) | failed (its attempts ran
    #: out: set aside for `coopbot outbox failed` and `coopbot outbox retry`)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: When the platform first said "try later" (429, 5xx, no network): the transient bound runs from here.
    failing_since: Mapped[datetime | None]
    #: Failures nobody expected (an answer that cannot be read, a transport or renderer bug):
    #: each may have reached the person, so few are allowed.
    unexpected_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: For a failed message: which bound ran out ("transient" or "unexpected"), and when.
    failure_kind: Mapped[str | None] = mapped_column(String(20))
    failed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    sent_ref: Mapped[str | None] = mapped_column(String(255))
    announcement_id: Mapped[int | None] = mapped_column(ForeignKey("announcement.id"), index=True)
    #: "name:argument" of a renderer that writes the message when it is sent
    #: (`coopbot.outbox.renderer`); `text` is then empty.
    render: Mapped[str | None] = mapped_column(String(100))


# --- dispatch ------------------------------------------------------------------


class Job(Base):
    __tablename__ = "job"

    id: Mapped[int] = mapped_column(primary_key=True)
    pickup: Mapped[str] = mapped_column(String(500))
    dropoff: Mapped[str] = mapped_column(String(500))
    deadline: Mapped[datetime | None]
    price_cents: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(String(1000), default="")
    #: `str` until the dispatch services write `JobStatus` members (read back, it is one).
    status: Mapped[JobStatus] = mapped_column(StateColumn(JobStatus), default=JobStatus.OPEN, index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    policy: Mapped[str] = mapped_column(String(20), default="broadcast")
    #: The rotation round: which candidate in `Offer.rank` order is current.
    round: Mapped[int] = mapped_column(Integer, default=0)
    #: The customer who ordered it (None for a coordinator's job).
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), index=True)
    #: How the price was reached: the terms, the zones found, the rules and votes cited.
    quote: Mapped[dict[str, Any] | None]
    quote_expires_at: Mapped[datetime | None]
    #: Proof of delivery: the recipient's code (hashed), wrong tries, the photo's file.
    proof_code_hash: Mapped[str | None] = mapped_column(String(64))
    proof_tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    proof_photo: Mapped[str | None] = mapped_column(String(300))
    #: The shop's own reference for an order placed through the API (its order number).
    external_ref: Mapped[str | None] = mapped_column(String(100))

    customer: Mapped[Member | None] = relationship(foreign_keys=[customer_id])


class JobEvent(Base):
    """One change of a job: who, when, what, why. `/why J` reads these."""

    __tablename__ = "job_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"), index=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    kind: Mapped[str] = mapped_column(String(30))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Offer(Base):
    __tablename__ = "offer"
    __table_args__ = (UniqueConstraint("job_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    #: `str` until the dispatch services write `OfferStatus` members (read back, it is one).
    status: Mapped[OfferStatus] = mapped_column(StateColumn(OfferStatus), default=OfferStatus.OPEN)
    offered_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    rank: Mapped[int] = mapped_column(Integer, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiKey(Base):
    """A customer's key to the shops' API: one per customer, a new one replaces the old.

    Only the SHA-256 of the secret part is kept; `lookup` is the key's public
    first part, which finds the row without comparing secrets in SQL
    (`services.members.api_keys`).
    """

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("member.id"), unique=True)
    lookup: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class IdempotentRequest(Base):
    """The first answer to a shop's POST sent with an `Idempotency-Key`: a retry gets it back.

    Unique per customer and key, so two concurrent retries cannot both create
    an order: the second one's insert fails and it answers with the first's.
    """

    __tablename__ = "idempotent_request"
    __table_args__ = (UniqueConstraint("customer_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    key: Mapped[str] = mapped_column(String(255))
    #: SHA-256 of the method, path and body: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(index=True)


# --- polls -----------------------------------------------------------------------


class Poll(Base):
    __tablename__ = "poll"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    #: proposal | single | multiple | ranked
    kind: Mapped[str] = mapped_column(String(20))
    options: Mapped[list[Any]] = mapped_column(default=list)
    secret: Mapped[bool] = mapped_column(Boolean, default=False)
    live_results: Mapped[bool] = mapped_column(Boolean, default=False)
    quorum_pct: Mapped[int] = mapped_column(Integer)
    threshold_pct: Mapped[int] = mapped_column(Integer)
    proposer_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    created_at: Mapped[datetime]
    closes_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[PollStatus] = mapped_column(StateColumn(PollStatus), default=PollStatus.OPEN, index=True)
    closed_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    sets_key: Mapped[str | None] = mapped_column(String(50))
    sets_value: Mapped[str | None] = mapped_column(String(200))
    #: A ranked poll: how many options win (one: Schulze; more: Meek STV). Other polls: none.
    seats: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Vote(Base):
    """An open (non-secret) vote: who chose what. The latest one counts."""

    __tablename__ = "vote"
    __table_args__ = (UniqueConstraint("poll_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("poll.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    choices: Mapped[list[Any]] = mapped_column(default=list)
    at: Mapped[datetime]


class Voter(Base):
    """Secret polls: that a member voted, never what (turnout, reminders, `/polls`)."""

    __tablename__ = "voter"
    __table_args__ = (UniqueConstraint("poll_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("poll.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))


class Proxy(Base):
    """A member's vote given to another member: for one poll, or until revoked (`services.polls.proxies`)."""

    __tablename__ = "proxy"

    id: Mapped[int] = mapped_column(primary_key=True)
    giver_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    #: None: every poll until revoked.
    poll_id: Mapped[int | None] = mapped_column(ForeignKey("poll.id"))
    given_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class ProxyVote(Base):
    """That a giver's ballot in a poll was cast by their proxy's holder (never what it says).

    `cancelled` once the giver voted themselves: their own vote counts, and
    the holder may no longer vote for them in this poll.
    """

    __tablename__ = "proxy_vote"
    __table_args__ = (UniqueConstraint("poll_id", "giver_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("poll.id"))
    giver_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    holder_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime]


class BallotBox(Base):
    """Secret polls, while open: every ballot of the poll, sealed together under the poll's own key.

    One row per poll, rewritten whole with fresh random bytes at every vote, so
    neither the rows, the pages nor the order of writes in the database's log
    say what anyone chose; deleted at the close, its key destroyed
    (`services.polls.ballot_box`).
    """

    __tablename__ = "ballot_box"

    poll_id: Mapped[int] = mapped_column(ForeignKey("poll.id"), primary_key=True)
    sealed: Mapped[bytes]


# --- announcements ---------------------------------------------------------------


class Announcement(Base):
    __tablename__ = "announcement"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    text: Mapped[str] = mapped_column(Text)
    target_role: Mapped[str | None] = mapped_column(String(20))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    receipt_sent_at: Mapped[datetime | None]
    #: Set when queued: {"muted": how many had muted it, "unreachable": ids of
    #: targeted members with no reachable account at that moment}.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


# The money tables live in their own module; importing them here registers them
# on `Base.metadata` for Alembic and keeps `from coopbot.models import Period` working.
from coopbot.models_money import (  # noqa: E402
    Allocation,
    Contribution,
    FundSpending,
    LedgerEntry,
    Period,
    Shift,
)

__all__ = [
    "Allocation",
    "Contribution",
    "FundSpending",
    "LedgerEntry",
    "Period",
    "Shift",
]

# The roster tables (`coopbot.services.rosters`), registered on `Base.metadata` the same way.
from coopbot.models_rosters import CalendarFeed, Slot, SlotOffer, SlotSignup  # noqa: E402, F401
