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
from coopbot.i18n import catalogue, placeholders, render, term
from coopbot.models import AuditEntry, Member
from coopbot.money import format_milli, format_money
from coopbot.services import audit as audit_trail
from coopbot.services.data import leaving
from coopbot.services.data.export import export_zip
from coopbot.services.members.accounts import find_member, is_customer, member_by_ref, pseudonym_shown, shown_name
from coopbot.services.polls import settings
from coopbot.states import Role
from handlers.registry import Context, Reply, command

AUDIT_LINES = 20
CONFIRM_WORDS = ("confirm", "confirmer", "yes", "oui")
#: Never shown from an audit entry's details, whoever wrote them: a secret ballot stays secret
#: (and a pseudonym is already the subject's name).
NEVER_SHOWN = {"choice", "choices", "ballot", "ballot_key", "vote", "pseudonym"}
MAX_DETAIL = 80
#: Details whose value is a name the co-op stores in English, and where its words are.
VOCABULARIES = {"kind": "polls.kind", "outcome": "data.outcome", "target": "data.target"}


@command("mydata", area="data", private=True, aliases=("mesdonnees",), customers=True)
def mydata(ctx: Context) -> Reply:
    ctx.expect_args(0, 0)
    export = export_zip(ctx.session, ctx.me, ctx.now, ctx.config)
    counts = export.counts
    if is_customer(ctx.me):
        text = ctx.t("customers.export_ready", coop=ctx.config.coop.name, orders=counts["orders"])
        return Outgoing(text, attachment=export.attachment)
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


@command("leave", area="data", private=True, aliases=("quitter",), customers=True)
def leave(ctx: Context) -> Reply:
    """Two steps, so a slip of the finger never erases a membership (or a customer's account)."""
    args = ctx.expect_args(0, 1)
    me = ctx.me
    leaving.check_can_leave(ctx.session, me)
    coop = ctx.config.coop.name
    if not args:
        button = Button(ctx.t("data.leave_button"), "/leave confirm", "✅")
        area = "customers" if is_customer(me) else "data"
        text = ctx.t(f"{area}.leave_confirm", coop=coop, pseudonym=pseudonym_shown(me, ctx.lang))
        return Outgoing(text, buttons=(button,))
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
    """`2026-11-02 09:00 · Alice: changed the role of Bob: member → coordinator`, and the
    details no sentence names in brackets, each by its name in words."""
    when = entry.at.astimezone(ctx.config.coop.tz).strftime("%Y-%m-%d %H:%M")
    actor = people.get(entry.actor_id, f"#{entry.actor_id}") if entry.actor_id else ctx.t("data.the_bot")
    subject = people.get(entry.subject_id, f"#{entry.subject_id}") if entry.subject_id else "—"
    raw = entry.details or {}
    setting = str(raw["key"]) if entry.action.startswith("setting.") and "key" in raw else None
    details = {k: _value(ctx, k, v, setting) for k, v in raw.items() if k not in NEVER_SHOWN}
    key = "data.action." + entry.action.replace(".", "_")
    template = catalogue(ctx.lang).get(key) or catalogue("en").get(key)
    if template is None:
        used: set[str] = set()
        sentence = entry.action + ("" if entry.subject_id is None else f" {subject}")
    else:
        used = placeholders(template)
        params = {name: details.get(name, "—") for name in used} | {"subject": subject}
        sentence = render(ctx.lang, template, **params)
    rest = [ctx.t("data.audit_detail", name=k, value=v) for k, v in details.items() if k not in used and v != "—"]
    line = ctx.t("data.audit_line", when=when, actor=actor, action=sentence)
    return ctx.t("data.audit_details", action=line, details=", ".join(rest)) if rest else line


def _value(ctx: Context, key: str, value: Any, setting: str | None = None) -> str:
    """A detail as a reader wants it: money in the currency, roles, kinds and settings in
    words, a setting's value as a vote shows it, short."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return ctx.t("data.yes") if value else ctx.t("data.no")
    currency = ctx.config.coop.currency
    if setting is not None and key in ("old", "new", "value"):
        return settings.describe(setting, str(value), ctx.lang, currency)
    if key == "sets" and isinstance(value, str) and "=" in value:
        name, _, given = value.partition("=")
        return ctx.t("data.audit_sets", key=name, value=settings.describe(name, given, ctx.lang, currency))
    if key.endswith("_cents") and isinstance(value, int):
        return format_money(value, currency, ctx.lang)
    if key == "points_milli" and isinstance(value, int):
        return ctx.t("ledger.points", points=format_milli(value, ctx.lang))
    if key in ("role", "old", "new", "target") and value in tuple(Role):
        return ctx.t(f"roles.{value}")
    if key in VOCABULARIES:
        return term(ctx.lang, VOCABULARIES[key], value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"
