"""A member's own data: take it with you (/mydata), leave (/leave), and read
what the privileged hands did (/audit).

The audit log is one log for everyone: coordinators read exactly what
members read. It is rendered here from action codes, so a new action that
has no sentence yet still shows, by its code, rather than disappearing.
"""

from __future__ import annotations

import json
from typing import Any

from coopbot.chat import Button, Outgoing
from coopbot.i18n import catalogue, placeholders, render
from coopbot.models import ROLES, AuditEntry, Member
from coopbot.money import format_money
from coopbot.services import audit as audit_trail
from coopbot.services.data import leaving
from coopbot.services.data.export import export_zip
from coopbot.services.members.accounts import find_member, member_by_ref, shown_name
from handlers.registry import Context, Reply, command

AUDIT_LINES = 20
CONFIRM_WORDS = ("confirm", "confirmer", "yes", "oui")
#: Never shown from an audit entry's details, whoever wrote them: a secret ballot stays secret
#: (and a pseudonym is already the subject's name).
NEVER_SHOWN = {"choice", "choices", "ballot", "ballot_key", "vote", "pseudonym"}
MAX_DETAIL = 80


@command("mydata", area="data", private=True, aliases=("mesdonnees",))
def mydata(ctx: Context) -> Reply:
    ctx.expect_args(0, 0)
    export = export_zip(ctx.session, ctx.me, ctx.now, ctx.config)
    counts = export.counts
    text = ctx.t(
        "data.export_ready",
        coop=ctx.config.coop.name,
        jobs=counts["jobs"],
        contributions=counts["contributions"],
        allocations=counts["allocations"],
        votes=counts["votes"],
        audit=counts["audit"],
    )
    return Outgoing(text, attachment=export.attachment)


@command("leave", area="data", private=True, aliases=("quitter",))
def leave(ctx: Context) -> Reply:
    """Two steps, so a slip of the finger never erases a membership."""
    args = ctx.expect_args(0, 1)
    me = ctx.me
    leaving.check_can_leave(ctx.session, me)
    coop = ctx.config.coop.name
    if not args:
        button = Button(ctx.t("data.leave_button"), "/leave confirm", "✅")
        alias = ctx.t("data.former_member", number=me.id)
        return Outgoing(ctx.t("data.leave_confirm", coop=coop, pseudonym=alias), buttons=(button,))
    if args[0].lower() not in CONFIRM_WORDS:
        raise ctx.usage()
    leaving.start_leave(ctx.session, me, ctx.now, ctx.config, platforms=(ctx.incoming.platform,))
    return ctx.t("data.left", coop=coop)


@command("remove", area="data", aliases=("kick", "exclure"))
def remove(ctx: Context) -> Reply:
    """There is no removing alone: this only says how to put it to a vote."""
    if not ctx.rest:
        return ctx.t("data.remove_by_vote", name="MEMBER", ref="MEMBER")
    target = find_member(ctx.session, ctx.rest)
    return ctx.t("data.remove_by_vote", name=target.name, ref=f"#{target.id}")


@command("audit", area="data", aliases=("journal",))
def audit(ctx: Context) -> Reply:
    who: Member | None = member_by_ref(ctx.session, ctx.rest) if ctx.rest else None
    entries = audit_trail.recent(ctx.session, who, limit=AUDIT_LINES)
    shown = shown_name(who, ctx.lang) if who is not None else ""
    if not entries:
        return ctx.t("data.audit_empty_member", name=shown) if who else ctx.t("data.audit_empty")
    people = {i: shown_name(m, ctx.lang) for i, m in audit_trail.people(ctx.session, entries).items()}
    title = ctx.t("data.audit_title_member", name=shown) if who else ctx.t("data.audit_title")
    return "\n".join([title, *(audit_line(ctx, entry, people) for entry in entries)])


def audit_line(ctx: Context, entry: AuditEntry, people: dict[int, str]) -> str:
    """`2026-11-02 09:00 · Alice: changed the role of Bob: member → coordinator`."""
    when = entry.at.astimezone(ctx.config.coop.tz).strftime("%Y-%m-%d %H:%M")
    actor = people.get(entry.actor_id, f"#{entry.actor_id}") if entry.actor_id else ctx.t("data.the_bot")
    subject = people.get(entry.subject_id, f"#{entry.subject_id}") if entry.subject_id else "—"
    details = {k: _value(ctx, k, v) for k, v in (entry.details or {}).items() if k not in NEVER_SHOWN}
    key = "data.action." + entry.action.replace(".", "_")
    template = catalogue(ctx.lang).get(key) or catalogue("en").get(key)
    if template is None:
        used: set[str] = set()
        sentence = entry.action + ("" if entry.subject_id is None else f" {subject}")
    else:
        used = placeholders(template)
        params = {name: details.get(name, "—") for name in used} | {"subject": subject}
        sentence = render(ctx.lang, template, **params)
    rest = [f"{k}: {v}" for k, v in details.items() if k not in used and v != "—"]
    line = ctx.t("data.audit_line", when=when, actor=actor, action=sentence)
    return line + (f" ({', '.join(rest)})" if rest else "")


def _value(ctx: Context, key: str, value: Any) -> str:
    """A detail as a reader wants it: money in the currency, roles in words, short."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return ctx.t("data.yes") if value else ctx.t("data.no")
    if key.endswith("_cents") and isinstance(value, int):
        return format_money(value, ctx.config.coop.currency, ctx.lang)
    if key in ("role", "old", "new") and value in ROLES:
        return ctx.t(f"roles.{value}")
    if key == "outcome" and f"data.outcome.{value}" in catalogue("en"):
        return ctx.t(f"data.outcome.{value}")
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"
