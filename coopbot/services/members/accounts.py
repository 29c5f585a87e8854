"""Members, customers, their platform identities, invites, link codes and roles.

A member is a person; an identity is one of their accounts. Votes, jobs and
points belong to the member, so linking Telegram and Matrix never gives
anyone two voices. Invite and link codes are random, single use, expiring,
and stored only as hashes: a copy of the database cannot be used to join.

A customer (a shop, a restaurant, a person who orders deliveries) is an
account of the co-op stored in the same table, so that orders, messages,
/mydata and /leave work for them as for members; but a customer is not a
member. Every query that means "the co-op's members" (offers, quorums,
ballots, announcements, shares, /members) filters with `IS_MEMBER`, and
`active_members` does so by default: a customer is never counted, offered
work, sent a ballot or given a share.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session, selectinload

from coopbot import platforms
from coopbot.config import Config
from coopbot.errors import Conflict, NotAllowed, NotFound, UsageError
from coopbot.i18n import t
from coopbot.models import Identity, Invite, LinkCode, Member, OutboxMessage
from coopbot.services.audit import record
from coopbot.services.refs import member_number
from coopbot.states import ROLES, Role

INVITE_TTL = timedelta(days=7)
LINK_TTL = timedelta(minutes=15)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
#: `str` keys so a role named in a command (`@command(role=...)`) is looked up as it is.
ROLE_RANK: dict[str, int] = {Role.MEMBER: 1, Role.COORDINATOR: 2, Role.ADMIN: 3}
MAX_NAME = 60
#: As long as the column holds (models.Member.address).
MAX_ADDRESS = 500
#: Every role an account can hold: the members' roles, and a customer's.
ACCOUNT_ROLES = (*ROLES, Role.CUSTOMER)
#: The rows that are the co-op's members: a customer is never one.
IS_MEMBER: ColumnElement[bool] = Member.role.in_(ROLES)


#: What a former member is called once their data is erased (coopbot.services.data.leaving).
PSEUDONYM_PREFIX = "former member #"


def pseudonym(number: int) -> str:
    return f"{PSEUDONYM_PREFIX}{number}"


def is_erased(member: Member) -> bool:
    return member.name == pseudonym(member.id)


def pseudonym_shown(member: Member, lang: str) -> str:
    """The pseudonym in the reader's language: a former customer is not called a former member."""
    key = "data.former_customer" if member.role == Role.CUSTOMER else "data.former_member"
    return t(lang, key, number=member.id)


def shown_name(member: Member, lang: str) -> str:
    """A member's name as a reader sees it; a former member's pseudonym in the reader's language."""
    return pseudonym_shown(member, lang) if is_erased(member) else member.name


def hash_code(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def new_code(groups: int = 2) -> str:
    parts = ["".join(secrets.choice(CODE_ALPHABET) for _ in range(4)) for _ in range(groups)]
    return "-".join(parts)


def clean_name(name: str) -> str:
    """A display name fit for a member list: one line, printable, not too long."""
    cleaned = " ".join("".join(ch for ch in name if ch.isprintable()).split())
    if not cleaned:
        raise UsageError("members.name_empty")
    return cleaned[:MAX_NAME]


def clean_address(address: str) -> str:
    """A customer's default pickup address: one line, printable, as long as the column holds."""
    cleaned = " ".join("".join(ch for ch in address if ch.isprintable()).split())
    if not cleaned:
        raise UsageError("customers.address_empty")
    if len(cleaned) > MAX_ADDRESS:
        raise UsageError("customers.address_too_long", most=MAX_ADDRESS)
    return cleaned


def check_role(role: str, allowed: tuple[Role, ...] = ROLES) -> Role:
    """`role` as one of `allowed`: the members' roles unless the caller also accepts a customer."""
    role = role.lower()
    if role not in allowed:
        raise UsageError("members.bad_role", role=role[:30], roles=", ".join(allowed))
    return Role(role)


def language_of(config: Config, member: Member) -> str:
    """The language a member reads the bot in: their own choice, else the co-op's."""
    return member.language or config.coop.default_language


def is_customer(member: Member | None) -> bool:
    """A shop or a person who orders: outside the members' ranks (None: a stranger, not a customer)."""
    return member is not None and member.role == Role.CUSTOMER


def at_least(member: Member, role: Role) -> bool:
    """Whether `member` holds `role` or one above it: an admin may do what a coordinator may.
    A customer holds none of the members' roles."""
    return ROLE_RANK.get(member.role, 0) >= ROLE_RANK[role]


def create_member(
    session: Session,
    name: str,
    role: str,
    now: datetime,
    *,
    actor: Member | None = None,
    language: str | None = None,
    audited: bool = True,
) -> Member:
    """Add a member (or a customer); `audited` is False when the caller records a more precise entry."""
    member = Member(name=clean_name(name), role=check_role(role, ACCOUNT_ROLES), joined_at=now, language=language)
    session.add(member)
    session.flush()
    if audited:
        record(session, now, "member.added", actor=actor, subject=member, role=member.role)
    return member


def create_customer(
    session: Session,
    name: str,
    now: datetime,
    *,
    address: str | None = None,
    language: str | None = None,
    actor: Member | None = None,
) -> Member:
    """Add a customer; `address` is where their orders are picked up when they give none."""
    shop = create_member(session, name, Role.CUSTOMER, now, actor=actor, audited=False)
    if language is not None:
        set_language(shop, language)
    shop.address = clean_address(address) if address is not None else None
    record(session, now, "member.added", actor=actor, subject=shop, role=shop.role)
    return shop


def add_identity(
    session: Session, member: Member, platform: str, external_id: str, now: datetime, display_name: str = ""
) -> Identity:
    existing = identity_of(session, platform, external_id)
    if existing is not None:
        if existing.member_id == member.id:
            return existing
        raise Conflict("members.identity_taken", platform=platform)
    identity = Identity(
        member=member,
        platform=platform,
        external_id=external_id,
        display_name=display_name[:255],
        created_at=now,
    )
    session.add(identity)
    session.flush()
    return identity


def identity_of(session: Session, platform: str, external_id: str) -> Identity | None:
    return session.scalars(
        select(Identity).where(Identity.platform == platform, Identity.external_id == external_id)
    ).one_or_none()


def member_of(session: Session, platform: str, external_id: str) -> Member | None:
    """The active member behind an account, or None for strangers and former members."""
    identity = identity_of(session, platform, external_id)
    if identity is None or not identity.member.active:
        return None
    return identity.member


def active_members(session: Session, role: str | None = None) -> list[Member]:
    """The co-op's active members (of `role`, if given): never a customer, who is not a member."""
    query = select(Member).where(Member.active.is_(True), IS_MEMBER).order_by(Member.id)
    if role is not None:
        query = query.where(Member.role == role)
    return list(session.scalars(query))


def active_customers(session: Session) -> list[Member]:
    """The customers who can order now, with their accounts."""
    return list(session.scalars(
        select(Member).where(Member.active.is_(True), Member.role == Role.CUSTOMER)
        .options(selectinload(Member.identities)).order_by(Member.id)
    ))  # fmt: skip


def coordinators(session: Session) -> list[Member]:
    return list(
        session.scalars(
            select(Member)
            .where(Member.active.is_(True), Member.role.in_((Role.COORDINATOR, Role.ADMIN)))
            .order_by(Member.id)
        )
    )


def every_member(session: Session) -> list[Member]:
    """Every member ever added, former members included, with their accounts (customers apart)."""
    return _everyone(session, IS_MEMBER)


def every_customer(session: Session) -> list[Member]:
    """Every customer ever added, former customers included, with their accounts."""
    return _everyone(session, Member.role == Role.CUSTOMER)


def _everyone(session: Session, which: ColumnElement[bool]) -> list[Member]:
    return list(session.scalars(
        select(Member).where(which).options(selectinload(Member.identities)).order_by(Member.id)
    ))  # fmt: skip


def name_key(name: str) -> str:
    """What two spellings of one name share: `Élodie`, `ÉLODIE`, and `E` + combining accent alike.

    Unicode's canonical caseless match (NFD, case folding, NFD again; NFC
    is as good for equality) with runs of spaces as one, as `clean_name`
    stores them. SQL's lower() cannot do this: SQLite's folds ASCII only,
    PostgreSQL's depends on the database's collation, and neither composes
    accents.
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", " ".join(name.split())).casefold())


def find_member(session: Session, ref: str) -> Member:
    """A member by `#12`, `M-12`, name (any case, any alphabet), or a platform id.

    Names are compared in Python (`name_key`): a co-op has at most a few
    thousand members (5,000 names are read and compared in under 20 ms on
    SQLite), and naming a member is rare (/role, /audit, chat --as), while a
    folded column would need a migration and would have to be kept right by
    every write of a name (joining, erasure).
    """
    ref = ref.strip()
    if ":" not in ref:
        ref = ref.lstrip("@")
    if not ref:
        raise UsageError("members.member_ref_missing")
    number = member_number(ref)
    if number is not None:
        member = session.get(Member, number)
        if member is not None and member.active:
            return member
        raise NotFound("members.no_such_member", ref=ref[:40])
    by_identity = session.scalars(
        select(Identity).where(Identity.external_id == ref).order_by(Identity.id)
    ).first()
    if by_identity is not None and by_identity.member.active:
        return by_identity.member
    wanted = name_key(ref)
    names = session.execute(select(Member.id, Member.name).where(Member.active.is_(True)).order_by(Member.id))
    matches = [member_id for member_id, name in names if name_key(name) == wanted]
    if len(matches) == 1:
        return session.get_one(Member, matches[0])
    if len(matches) > 1:
        listed = ", ".join(f"#{member_id}" for member_id in matches)
        raise UsageError("members.ambiguous_name", name=ref[:40], ids=listed)
    raise NotFound("members.no_such_member", ref=ref[:40])


def member_by_ref(session: Session, ref: str) -> Member:
    """`#17` finds any member, even one who left; names and ids find active members."""
    number = member_number(ref)
    if number is not None:
        member = session.get(Member, number)
        if member is None:
            raise NotFound("members.no_such_member", ref=ref.strip()[:40])
        return member
    return find_member(session, ref)


# --- invites -------------------------------------------------------------------


def create_invite(session: Session, actor: Member | None, role: str, now: datetime) -> str:
    """Make a one-time code; `actor` None means the operator's command line.

    Any coordinator may invite a customer: a customer gets no say in the co-op."""
    role = check_role(role, ACCOUNT_ROLES)
    if actor is not None:
        if not at_least(actor, Role.COORDINATOR):
            raise NotAllowed("members.cannot_invite")
        if role != Role.CUSTOMER and (not at_least(actor, role) or (role == Role.ADMIN and actor.role != Role.ADMIN)):
            raise NotAllowed("members.cannot_grant", role=role)
    code = new_code()
    session.add(
        Invite(
            code_hash=hash_code(code),
            role=role,
            created_by=actor.id if actor else None,
            created_at=now,
            expires_at=now + INVITE_TTL,
        )
    )
    session.flush()
    record(session, now, "invite.created", actor=actor, role=role)
    return code


def redeem_invite(
    session: Session, code: str, platform: str, external_id: str, display_name: str, now: datetime,
    language: str | None = None,
) -> Member:
    """Join with an invite. A customer keeps `language` (their chat's): their order notices and
    statements are written later, outside any chat, and must come in the language they use."""
    if not normalise_code(code):
        raise UsageError("members.join_usage")
    if identity_of(session, platform, external_id) is not None and member_of(
        session, platform, external_id
    ):
        raise Conflict("members.already_member")
    # The conditional UPDATE makes a code single-use even when two people race for it.
    claimed = session.execute(
        update(Invite)
        .where(Invite.code_hash == hash_code(code), Invite.used_at.is_(None), Invite.expires_at > now)
        .values(used_at=now)
        .returning(Invite.id, Invite.role)
    ).one_or_none()
    if claimed is None:
        raise NotFound("members.bad_invite")
    invite_id, role = claimed
    former = identity_of(session, platform, external_id)
    if former is not None:
        # A former member coming back gets a fresh member; the old account is detached,
        # and messages still owed to it keep their address but lose the link.
        session.execute(update(OutboxMessage).where(OutboxMessage.identity_id == former.id).values(identity_id=None))
        session.delete(former)
        session.flush()
    kept = language if role == Role.CUSTOMER else None
    member = create_member(session, display_name or "member", role, now, audited=False, language=kept)
    add_identity(session, member, platform, external_id, now, display_name)
    session.execute(update(Invite).where(Invite.id == invite_id).values(used_by=member.id))
    record(session, now, "member.joined", actor=member, subject=member, role=role)
    return member


# --- linking a second platform ----------------------------------------------------


def create_link_code(session: Session, member: Member, now: datetime) -> str:
    code = new_code()
    session.add(
        LinkCode(code_hash=hash_code(code), member_id=member.id, created_at=now, expires_at=now + LINK_TTL)
    )
    session.flush()
    return code


def redeem_link_code(
    session: Session, code: str, platform: str, external_id: str, display_name: str, now: datetime
) -> Member:
    current = member_of(session, platform, external_id)
    claimed = session.execute(
        update(LinkCode)
        .where(LinkCode.code_hash == hash_code(code), LinkCode.used_at.is_(None), LinkCode.expires_at > now)
        .values(used_at=now)
        .returning(LinkCode.member_id)
    ).one_or_none()
    if claimed is None:
        raise NotFound("members.bad_link_code")
    member = session.get_one(Member, claimed[0])
    if current is not None:
        if current.id == member.id:
            raise Conflict("members.already_linked")
        raise Conflict("members.identity_taken", platform=platforms.label(platform))
    on = platforms.find(platform)
    if on.one_account_each and any(identity.platform == platform for identity in member.identities):
        raise Conflict("members.platform_already_linked", platform=on.label)
    add_identity(session, member, platform, external_id, now, display_name)
    record(session, now, "member.linked", actor=member, subject=member, platform=platform)
    return member


# --- roles and preferences ------------------------------------------------------


def set_role(session: Session, actor: Member | None, target: Member, role: str, now: datetime) -> Member:
    """An admin changes a member's role. A customer never becomes a member this way, nor a member a
    customer: joining the co-op is an invite and its own account, and a member's work, votes and
    shares must never end up on a customer's account (nor a customer's orders on a worker's)."""
    if actor is not None and actor.role != Role.ADMIN:
        raise NotAllowed("members.only_admin_roles")
    if is_customer(target) or role.lower() == Role.CUSTOMER:
        raise NotAllowed("customers.role_fixed", name=target.name)
    role = check_role(role)
    if target.role == Role.ADMIN and role != Role.ADMIN:
        admins = active_members(session, Role.ADMIN)
        if len(admins) <= 1:
            raise Conflict("members.last_admin")
    old = target.role
    target.role = role
    record(session, now, "member.role", actor=actor, subject=target, old=old, new=role)
    return target


def set_language(member: Member, language: str) -> None:
    language = language.lower()
    if language not in ("en", "fr"):
        raise UsageError("members.lang_usage")
    member.language = language
