"""Roles and the states of jobs, offers, polls, periods and contributions.

Each is a `StrEnum` of the very strings stored, so a row read back compares
equal to the member, a handler can word it from the catalogue
(`states.job.open`), and a typo in a state is a name error, not a silent miss.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a member may do, in rising rank (`services.members.accounts.ROLE_RANK`).

    A customer (a shop, a restaurant, a person who orders deliveries) talks to
    the same bot but is not a member: no vote, no points, no share, no offers.
    """

    MEMBER = "member"
    COORDINATOR = "coordinator"
    ADMIN = "admin"
    CUSTOMER = "customer"


#: The roles a member of the co-op holds (a customer is not a member).
ROLES = (Role.MEMBER, Role.COORDINATOR, Role.ADMIN)


class JobStatus(StrEnum):
    """open → offered → assigned → picked_up → delivered; or failed, or cancelled.

    A customer's order starts as `quoted`: nothing is dispatched until the
    customer confirms the price, and a quote not confirmed in time is `lapsed`.
    """

    QUOTED = "quoted"
    LAPSED = "lapsed"
    OPEN = "open"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    PICKED_UP = "picked_up"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


JOB_STATES = tuple(JobStatus)


class OfferStatus(StrEnum):
    """open → accepted | declined | expired | closed (someone else took the job)."""

    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    CLOSED = "closed"


class PollStatus(StrEnum):
    """open → closed, at the deadline or early once every active member voted."""

    OPEN = "open"
    CLOSED = "closed"


class PeriodStatus(StrEnum):
    """open → closed: a closed period is never rewritten."""

    OPEN = "open"
    CLOSED = "closed"


class ContributionStatus(StrEnum):
    """pending → approved | rejected; the bot's own entries start approved."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
