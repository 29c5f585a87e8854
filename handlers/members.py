"""Joining, linking platforms, roles, language: who is who in the co-op.

A customer joins with an invite too, and keeps the few commands marked for
customers (/help, /lang, /whoami...): they are told what they can do as a
customer, never a member's number or a member's commands.
"""

from __future__ import annotations

from coopbot import platforms
from coopbot.chat import Outgoing
from coopbot.errors import NotFound
from coopbot.models import Member
from coopbot.services.members import accounts as svc
from coopbot.states import Role
from handlers.registry import Context, Reply, command


@command("start", area="members", role=None, customers=True)
def start(ctx: Context) -> Reply:
    coop = ctx.config.coop.name
    if ctx.member is None:
        return ctx.t("registry.how_to_join", coop=coop)
    area = "customers" if svc.is_customer(ctx.member) else "members"
    return ctx.t(f"{area}.welcome_back", name=ctx.member.name, coop=coop)


@command("help", area="members", role=None, aliases=("aide",), customers=True)
def help_(ctx: Context) -> Reply:
    if ctx.args:
        name = ctx.args[0].lstrip("/!").lower()
        cmd = ctx.commands.lookup(name)
        if cmd is None or not cmd.offered_to(ctx.member):
            raise NotFound("members.help_unknown", command=name[:30])
        text = ctx.t(cmd.help_key_for(ctx.member))
        return ctx.t("members.help_one", command=cmd.name, form=ctx.t(cmd.usage_key), text=text)
    lines = [ctx.t("members.help_title", coop=ctx.config.coop.name)]
    lines += [f"/{cmd.name} — {ctx.t(cmd.help_key_for(ctx.member))}" for cmd in ctx.commands.for_member(ctx.member)]
    lines.append(ctx.t("members.help_footer"))
    return "\n".join(lines)


@command("join", area="members", role=None, aliases=("rejoindre",))
def join(ctx: Context) -> Reply:
    if ctx.member is not None:
        return ctx.t("customers.already_customer" if svc.is_customer(ctx.member) else "members.already_member")
    code = ctx.expect_args(1, 1)[0]
    incoming = ctx.incoming
    name = incoming.display_name or incoming.user_id
    member = svc.redeem_invite(ctx.session, code, incoming.platform, incoming.user_id, name, ctx.now, ctx.lang)
    ctx.member = member
    if svc.is_customer(member):
        return ctx.t("customers.joined", name=member.name, coop=ctx.config.coop.name)
    return ctx.t(
        "members.joined", name=member.name, coop=ctx.config.coop.name, role=ctx.t(f"roles.{member.role}")
    )


@command("link", area="members", role=None, private=True, aliases=("lier",))
def link(ctx: Context) -> Reply:
    incoming = ctx.incoming
    if ctx.args:
        code = ctx.expect_args(1, 1)[0]
        name = incoming.display_name or incoming.user_id
        member = svc.redeem_link_code(ctx.session, code, incoming.platform, incoming.user_id, name, ctx.now)
        return ctx.t("members.linked", name=member.name, platforms=_platforms(member))
    code = svc.create_link_code(ctx.session, ctx.me, ctx.now)
    return ctx.t("members.link_code", code=code, minutes=int(svc.LINK_TTL.total_seconds() // 60))


@command("whoami", area="members", aliases=("moi",), customers=True)
def whoami(ctx: Context) -> Reply:
    """A customer is shown no number: the number names a member in shares, votes and /audit."""
    me = ctx.me
    accounts = "\n".join(
        ctx.t("members.account_line", platform=platforms.label(i.platform), account=i.display_name or i.external_id)
        + ("" if i.reachable else f" ({ctx.t('members.unreachable')})")
        for i in me.identities
    )
    about = {"name": me.name, "role": ctx.t(f"roles.{me.role}"), "lang": me.language or ctx.lang, "accounts": accounts}
    if svc.is_customer(me):
        return ctx.t("customers.whoami", address=me.address or ctx.t("customers.no_address"), **about)
    return ctx.t("members.whoami", number=me.id, **about)


@command("members", area="members", aliases=("membres",))
def members(ctx: Context) -> Reply:
    everyone = svc.active_members(ctx.session)
    lines = [ctx.t("members.list_title", count=len(everyone))]
    lines += [f"#{m.id} {m.name} — {ctx.t(f'roles.{m.role}')}" for m in everyone]
    return "\n".join(lines)


@command("invite", area="members", role=Role.COORDINATOR, private=True, aliases=("inviter",))
def invite(ctx: Context) -> Reply:
    role = svc.check_role(ctx.expect_args(0, 1)[0] if ctx.args else Role.MEMBER, svc.ACCOUNT_ROLES)
    code = svc.create_invite(ctx.session, ctx.me, role, ctx.now)
    days = svc.INVITE_TTL.days
    if role == Role.CUSTOMER:
        return Outgoing(ctx.t("customers.invite_code", code=code, days=days))
    return Outgoing(ctx.t("members.invite_code", code=code, role=ctx.t(f"roles.{role}"), days=days))


@command("role", area="members", role=Role.ADMIN)
def role(ctx: Context) -> Reply:
    who, new_role = ctx.expect_args(2, 2)
    target = svc.find_member(ctx.session, who)
    svc.set_role(ctx.session, ctx.me, target, new_role, ctx.now)
    return ctx.t("members.role_set", name=target.name, role=ctx.t(f"roles.{target.role}"))


@command("lang", area="members", aliases=("langue",), customers=True)
def lang(ctx: Context) -> Reply:
    choice = ctx.expect_args(1, 1)[0]
    svc.set_language(ctx.me, choice)
    ctx.lang = ctx.me.language or ctx.lang
    return ctx.t("members.lang_set")


def _platforms(member: Member) -> str:
    return ", ".join(sorted({platforms.label(i.platform) for i in member.identities}))
