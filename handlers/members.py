"""Joining, linking platforms, roles, language: who is who in the co-op."""

from __future__ import annotations

from coopbot import platforms
from coopbot.chat import Outgoing
from coopbot.errors import NotFound
from coopbot.models import Member
from coopbot.services.members import accounts as svc
from coopbot.states import Role
from handlers.registry import Context, Reply, command


@command("start", area="members", role=None)
def start(ctx: Context) -> Reply:
    coop = ctx.config.coop.name
    if ctx.member is None:
        return ctx.t("registry.how_to_join", coop=coop)
    return ctx.t("members.welcome_back", name=ctx.member.name, coop=coop)


@command("help", area="members", role=None, aliases=("aide",))
def help_(ctx: Context) -> Reply:
    if ctx.args:
        name = ctx.args[0].lstrip("/!").lower()
        cmd = ctx.commands.lookup(name)
        if cmd is None or not cmd.allowed(ctx.member):
            raise NotFound("members.help_unknown", command=name[:30])
        return ctx.t("members.help_one", command=cmd.name, form=ctx.t(cmd.usage_key), text=ctx.t(cmd.help_key))
    lines = [ctx.t("members.help_title", coop=ctx.config.coop.name)]
    lines += [f"/{cmd.name} — {ctx.t(cmd.help_key)}" for cmd in ctx.commands.for_member(ctx.member)]
    lines.append(ctx.t("members.help_footer"))
    return "\n".join(lines)


@command("join", area="members", role=None, aliases=("rejoindre",))
def join(ctx: Context) -> Reply:
    if ctx.member is not None:
        return ctx.t("members.already_member")
    code = ctx.expect_args(1, 1)[0]
    incoming = ctx.incoming
    name = incoming.display_name or incoming.user_id
    member = svc.redeem_invite(ctx.session, code, incoming.platform, incoming.user_id, name, ctx.now)
    ctx.member = member
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


@command("whoami", area="members", aliases=("moi",))
def whoami(ctx: Context) -> Reply:
    me = ctx.me
    accounts = "\n".join(
        ctx.t("members.account_line", platform=platforms.label(i.platform), account=i.display_name or i.external_id)
        + ("" if i.reachable else f" ({ctx.t('members.unreachable')})")
        for i in me.identities
    )
    return ctx.t(
        "members.whoami",
        name=me.name,
        number=me.id,
        role=ctx.t(f"roles.{me.role}"),
        lang=me.language or ctx.lang,
        accounts=accounts,
    )


@command("members", area="members", aliases=("membres",))
def members(ctx: Context) -> Reply:
    everyone = svc.active_members(ctx.session)
    lines = [ctx.t("members.list_title", count=len(everyone))]
    lines += [f"#{m.id} {m.name} — {ctx.t(f'roles.{m.role}')}" for m in everyone]
    return "\n".join(lines)


@command("invite", area="members", role=Role.COORDINATOR, private=True, aliases=("inviter",))
def invite(ctx: Context) -> Reply:
    role = ctx.expect_args(0, 1)[0] if ctx.args else Role.MEMBER
    code = svc.create_invite(ctx.session, ctx.me, svc.check_role(role), ctx.now)
    days = svc.INVITE_TTL.days
    return Outgoing(ctx.t("members.invite_code", code=code, role=ctx.t(f"roles.{role.lower()}"), days=days))


@command("role", area="members", role=Role.ADMIN)
def role(ctx: Context) -> Reply:
    who, new_role = ctx.expect_args(2, 2)
    target = svc.find_member(ctx.session, who)
    svc.set_role(ctx.session, ctx.me, target, new_role, ctx.now)
    return ctx.t("members.role_set", name=target.name, role=ctx.t(f"roles.{target.role}"))


@command("lang", area="members", aliases=("langue",))
def lang(ctx: Context) -> Reply:
    choice = ctx.expect_args(1, 1)[0]
    svc.set_language(ctx.me, choice)
    ctx.lang = ctx.me.language or ctx.lang
    return ctx.t("members.lang_set")


def _platforms(member: Member) -> str:
    return ", ".join(sorted({platforms.label(i.platform) for i in member.identities}))
