"""Announcements from coordinators, and how each member wants to receive them.

`/announce` reads the whole message, not the router's shortened copy: an
announcement is the one command where the text itself is the point, and
cutting it silently would be worse than refusing it.
"""

from __future__ import annotations

import re

from coopbot import platforms
from coopbot.errors import UsageError
from coopbot.models import Announcement
from coopbot.services.announcements import announce as svc
from coopbot.services.members.accounts import at_least
from coopbot.services.refs import echo
from coopbot.states import Role
from handlers.registry import Context, Reply, command, parse

URGENT_WORDS = {"urgent", "urgente", "urgence"}
TO_WORDS = {"to", "à", "aux", "pour"}
#: Words that may stand between "to" and the group: "to all coordinators", "à tous les membres".
FILLERS = {"all", "the", "tous", "toutes", "les", "tout", "le"}
STATUS_WORDS = {"status", "statut", "état", "etat"}
#: A word after "to" naming who receives it; "" means everyone (the default).
ROLE_WORDS: dict[str, str] = {
    "everyone": "",
    "everybody": "",
    "monde": "",
    "member": Role.MEMBER,
    "members": Role.MEMBER,
    "membre": Role.MEMBER,
    "membres": Role.MEMBER,
    "coordinator": Role.COORDINATOR,
    "coordinators": Role.COORDINATOR,
    "coordinateur": Role.COORDINATOR,
    "coordinateurs": Role.COORDINATOR,
    "coordinatrice": Role.COORDINATOR,
    "coordinatrices": Role.COORDINATOR,
    "coordination": Role.COORDINATOR,
    "admin": Role.ADMIN,
    "admins": Role.ADMIN,
    "administrateur": Role.ADMIN,
    "administrateurs": Role.ADMIN,
    "administratrice": Role.ADMIN,
    "administratrices": Role.ADMIN,
}
ON_WORDS = {"on", "oui", "yes", "1", "true", "activer"}
OFF_WORDS = {"off", "non", "no", "0", "false", "désactiver", "desactiver"}
EVERY_WORDS = {"both", "all", "les deux", "deux", "tous", "toutes"}
LEADING_WORD = re.compile(r"(\S+)(?:\s+|$)")
SNIPPET = 80


def full_rest(ctx: Context) -> str:
    """The text after the command, as the member typed it (newlines kept, not truncated)."""
    parsed = parse(ctx.incoming.command_text)
    return parsed[1] if parsed else ctx.rest


def read_options(rest: str) -> tuple[str, str | None, bool]:
    """`urgent to coordinators TEXT` → (TEXT, "coordinator", True); options in any order.

    A leading "to" must name a group: a mistyped one (`to coordinatrs`) is refused rather than
    read as text, because reading it as text would send a coordinators' note to everyone.
    """
    target: str | None = None
    chosen = urgent = False
    while True:
        first = LEADING_WORD.match(rest)
        if first is None:
            break
        word = first.group(1).lower().rstrip(":,")
        if word in URGENT_WORDS and not urgent:
            urgent, rest = True, rest[first.end() :]
            continue
        if word in TO_WORDS and not chosen:
            target, at = _group_after(rest, first.end())
            chosen, rest = True, rest[at:]
            continue
        break
    return re.sub(r"^[:,–—-]\s*", "", rest).strip(), target, urgent


def _group_after(rest: str, at: int) -> tuple[str | None, int]:
    """The group named after "to" (None for everyone) and where the text resumes."""
    fillers = []
    while (match := LEADING_WORD.match(rest, at)) is not None:
        word = match.group(1).lower().rstrip(":,")
        if word in ROLE_WORDS:
            return ROLE_WORDS[word] or None, match.end()
        if word not in FILLERS:
            break
        fillers.append(word)
        at = match.end()
    if fillers and fillers[-1] in ("all", "tous", "toutes"):
        return None, at  # "to all: ...", "à tous : ..."
    if match is None:
        raise UsageError("announce.target_missing")
    raise UsageError("announce.bad_target", target=echo(match.group(1).rstrip(":,")))


def members_count(ctx: Context, count: int) -> str:
    return svc.members_count(ctx.lang, count)


def when(ctx: Context, announcement: Announcement) -> str:
    return announcement.created_at.astimezone(ctx.config.coop.tz).strftime("%d/%m %H:%M")


def target_label(ctx: Context, announcement: Announcement) -> str:
    return ctx.t(f"announce.target_{announcement.target_role or 'all'}")


def snippet(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= SNIPPET else line[: SNIPPET - 1].rstrip() + "…"


@command("announce", area="announce", role=Role.COORDINATOR, aliases=("annonce", "annoncer"))
def announce(ctx: Context) -> Reply:
    rest = full_rest(ctx)
    words = rest.split()
    if not words:
        raise ctx.usage()
    if words[0].lower() in STATUS_WORDS:
        if len(words) != 2:
            raise UsageError("announce.status_usage")  # never broadcast "status A-1 please" to everyone
        return status(ctx, words[1])
    text, target, urgent = read_options(rest)
    queued = svc.announce(ctx.session, ctx.config, ctx.me, text, ctx.now, target_role=target, urgent=urgent)
    ref = svc.ref(queued.announcement.id)
    lines = [ctx.t("announce.queued", ref=ref, members=members_count(ctx, queued.members))]
    if queued.rooms:
        lines.append(ctx.t("announce.queued_rooms", rooms=queued.rooms))
    if queued.muted:
        lines.append(ctx.t("announce.queued_muted", muted=queued.muted))
    if queued.unreachable:
        names = svc.names(ctx.session, queued.unreachable)
        lines.append(ctx.t("announce.queued_unreachable", count=len(queued.unreachable), names=names))
    lines.append(ctx.t("announce.queued_receipt", ref=ref))
    return "\n".join(lines)


def status(ctx: Context, ref_text: str) -> Reply:
    announcement = svc.get(ctx.session, ref_text)
    done = svc.delivery(ctx.session, announcement)
    author = svc.author_name(ctx.session, announcement)
    lines = [
        ctx.t(
            "announce.status_head",
            ref=svc.ref(announcement.id),
            name=author,
            when=when(ctx, announcement),
            target=target_label(ctx, announcement),
        )
        + (" " + ctx.t("announce.urgent_mark") if announcement.urgent else ""),
        f"“{snippet(announcement.text)}”",
        ctx.t(
            "announce.status_counts",
            delivered=done.delivered,
            pending=done.pending,
            unreachable=done.unreachable,
            muted=done.muted,
        ),
    ]
    if done.unreachable:
        lines.append(ctx.t("announce.status_unreachable", names=svc.names(ctx.session, done.unreachable_ids)))
    if done.rooms:
        lines.append(ctx.t("announce.status_rooms", sent=done.rooms_sent, rooms=done.rooms))
    if announcement.receipt_sent_at is not None:
        finished = announcement.receipt_sent_at.astimezone(ctx.config.coop.tz).strftime("%d/%m %H:%M")
        lines.append(ctx.t("announce.status_done", when=finished))
    else:
        lines.append(ctx.t("announce.status_running"))
    return "\n".join(lines)


@command("announcements", area="announce", aliases=("annonces",))
def announcements(ctx: Context) -> Reply:
    """Coordinators see every announcement with its counts; a member re-reads theirs."""
    me = ctx.me
    coordinating = at_least(me, Role.COORDINATOR)
    if ctx.args:
        announcement = svc.get(ctx.session, ctx.expect_args(1, 1)[0], None if coordinating else me)
        author = svc.author_name(ctx.session, announcement)
        return "\n\n".join(
            [
                ctx.t("announce.read_head", ref=svc.ref(announcement.id), name=author, when=when(ctx, announcement)),
                announcement.text,
            ]
        )
    found = svc.recent(ctx.session, me, everything=coordinating)
    if not found:
        return ctx.t("announce.list_empty")
    counts = svc.deliveries(ctx.session, found) if coordinating else {}
    authors = svc.author_names(ctx.session, found)
    lines = [ctx.t("announce.list_title")]
    for item in found:
        head = f"{svc.ref(item.id)} · {when(ctx, item)} · {authors.get(item.id, '?')} · {target_label(ctx, item)}"
        if item.urgent:
            head += " · " + ctx.t("announce.urgent_mark")
        if coordinating:
            done = counts[item.id]
            head += " — " + ctx.t(
                "announce.list_counts",
                delivered=done.delivered,
                total=done.delivered + done.pending + done.unreachable,
                unreachable=done.unreachable,
                pending=done.pending,
            )
        lines.append(head)
        lines.append(f"   “{snippet(item.text)}”")
    lines.append(ctx.t("announce.list_footer", ref=svc.ref(found[0].id)))
    return "\n".join(lines)


@command("notify", area="announce", aliases=("notifier", "notifications"), customers=True)
def notify(ctx: Context) -> Reply:
    me = ctx.me
    if not ctx.args:
        where = svc.notify_where(ctx.lang, me.notify)
        return ctx.t("announce.notify_current", where=where, choices=svc.notify_choices())
    choice = notify_choice(" ".join(ctx.args))
    svc.set_notify(me, choice)
    return ctx.t("announce.notify_set", where=svc.notify_where(ctx.lang, choice))


def notify_choice(words: str) -> str:
    """What `/notify WORDS` chooses: a platform (by its name or a word it declares) or every platform."""
    if words.lower() in EVERY_WORDS:
        return platforms.EVERY
    platform = platforms.by_word(words)
    if platform is None:
        raise svc.notify_usage()
    return platform.name


@command("mute", area="announce", aliases=("sourdine",))
def mute(ctx: Context) -> Reply:
    me = ctx.me
    if not ctx.args:
        return ctx.t("announce.mute_state_on" if me.mute_announcements else "announce.mute_state_off")
    word = ctx.expect_args(1, 1)[0].lower()
    if word not in ON_WORDS | OFF_WORDS:
        raise UsageError("announce.mute_usage")
    muted = word in ON_WORDS
    svc.set_mute(ctx.session, me, muted, ctx.now)
    return ctx.t("announce.muted" if muted else "announce.unmuted")
