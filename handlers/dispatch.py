"""Jobs in chat: riding or not, posting, taking, moving, and asking why.

Every command here is a thin layer over `coopbot.services.dispatch` (`jobs`:
posting, taking, moving; `offers`: riding or not, who is offered what): it
reads the job reference, calls the service, and words the answer. `/why` is
worded here from the job's events, so what members read is exactly what was
stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from babel.dates import format_date
from babel.lists import format_list

from coopbot.chat import Outgoing
from coopbot.errors import CoopError, UsageError
from coopbot.models import Job, JobEvent
from coopbot.models_rosters import SlotOffer
from coopbot.money import format_milli, format_money
from coopbot.services.dispatch import jobs as svc
from coopbot.services.dispatch import offers, order_notices, orders, price_rules
from coopbot.services.dispatch.events import describe
from coopbot.services.dispatch.parsing import BadLine, job_code, parse_job_ref, parse_jobs, when
from coopbot.services.members.accounts import find_member, is_customer
from coopbot.services.polls.texts import code as poll_code
from coopbot.services.rosters import fairness, slots
from coopbot.services.text import typed
from coopbot.states import JobStatus, Role
from handlers.registry import Context, Reply, command, parse

MAX_CANDIDATES_SHOWN = 20
#: A job's code in the bot's message a photo replies to.
JOB_IN_TEXT = re.compile(r"\bJ-[0-9]+\b")


def _job_id(ctx: Context, fallback: Callable[[], list[Job]] | None = None) -> int:
    """The job named in the first word; with no word, the only job that fits, if just one."""
    if ctx.args:
        return parse_job_ref(ctx.args[0])
    if fallback is not None:
        jobs = fallback()
        if len(jobs) == 1:
            return jobs[0].id
    raise ctx.usage()


def _describe(ctx: Context, job: Job) -> str:
    return describe(job, ctx.config, ctx.lang, ctx.now)


# --- availability --------------------------------------------------------------------


@command("available", area="dispatch", aliases=("dispo",))
def available(ctx: Context) -> Reply:
    ctx.expect_args(0, 0)
    already, offered = offers.set_available(ctx.session, ctx.config, ctx.me, ctx.now)
    if already:
        return ctx.t("dispatch.still_available_ok")
    text = ctx.t("dispatch.now_available")
    if offered:
        text += "\n" + ctx.t("dispatch.waiting_offered", count=offered)
    return text


@command("away", area="dispatch", aliases=("absent",))
def away(ctx: Context) -> Reply:
    ctx.expect_args(0, 0)
    held = offers.set_away(ctx.session, ctx.config, ctx.me, ctx.now)
    text = ctx.t("dispatch.now_away")
    if held:
        text += "\n" + ctx.t("dispatch.still_holding", jobs=", ".join(job_code(j.id) for j in held), count=len(held))
    return text


# --- posting -----------------------------------------------------------------------------


@command("newjob", area="dispatch", role=Role.COORDINATOR)
def newjob(ctx: Context) -> Reply:
    try:
        specs = parse_jobs(ctx.rest, ctx.now, ctx.config.coop.tz)
    except BadLine as err:
        problem = ctx.t("dispatch.bad_line", line=err.line, problem=ctx.t(err.problem.key, **err.problem.params))
        raise UsageError("dispatch.newjob_form", problem=problem) from None
    except UsageError as err:
        raise UsageError("dispatch.newjob_form", problem=ctx.t(err.key, **err.params)) from None
    lines = []
    for job, outcome in svc.post_jobs(ctx.session, ctx.config, ctx.me, specs, ctx.now):
        if outcome.kind == "rotation":
            how = ctx.t("dispatch.posted_rotation", name=outcome.names[0])
        elif outcome.kind == "broadcast":
            how = ctx.t("dispatch.posted_broadcast", count=len(outcome.names))
        else:
            how = ctx.t("dispatch.posted_waiting")
        lines.append(ctx.t("dispatch.posted", job=_describe(ctx, job), how=how))
    return "\n".join(lines)


# --- taking an offer ------------------------------------------------------------------------


@command("accept", area="dispatch")
def accept(ctx: Context) -> Reply:
    """A refused tap (the job taken already, a race lost) wrote nothing: its refusal is answered
    here rather than raised, so the router commits the tap's receipt in its one transaction."""
    job_id = _job_id(ctx, lambda: svc.offered_to(ctx.session, ctx.me))
    job = svc.claim(ctx.session, ctx.config, ctx.me, job_id, ctx.now)
    if isinstance(job, CoopError):
        return ctx.t(job.key, **job.params)
    return Outgoing(ctx.t("dispatch.yours", job=_describe(ctx, job)), buttons=svc.work_buttons(ctx.lang, job))


@command("decline", area="dispatch")
def decline(ctx: Context) -> Reply:
    job_id = _job_id(ctx, lambda: svc.offered_to(ctx.session, ctx.me))
    job = svc.decline(ctx.session, ctx.config, ctx.me, job_id, ctx.now)
    return ctx.t("dispatch.declined", job=job_code(job.id))


# --- moving a job one holds ---------------------------------------------------------------


@command("pickup", area="dispatch")
def pickup(ctx: Context) -> Reply:
    job_id = _job_id(ctx, lambda: offers.held_jobs(ctx.session, ctx.me))
    job = svc.pickup(ctx.session, ctx.config, ctx.me, job_id, ctx.now)
    return Outgoing(ctx.t("dispatch.picked_up", job=_describe(ctx, job)), buttons=svc.work_buttons(ctx.lang, job))


@command("deliver", area="dispatch")
def deliver(ctx: Context) -> Reply:
    """`/deliver J-14 4821`: a customer's order may ask for the code its recipient was given.

    Or a photo of the delivery, with `/deliver J-14` as its caption, in reply to
    the job's message, or alone when the courier carries just one parcel.
    """
    photo = ctx.incoming.photo
    if photo is not None and not ctx.args:
        job_id = _photo_job(ctx)
    else:
        job_id = _job_id(ctx, lambda: offers.held_jobs(ctx.session, ctx.me))
    code = ctx.args[1] if len(ctx.args) > 1 else None
    job = svc.get_job(ctx.session, job_id)
    if photo is not None and parse(ctx.incoming.text) is None and not order_notices.takes_photo(ctx.config, job):
        raise UsageError("orders.photo_not_proof", job=job_code(job_id))
    tries = order_notices.wrong_code(ctx.session, ctx.config, job, code, ctx.now)
    if tries is not None:
        return ctx.t("orders.code_wrong_counted", job=job_code(job_id), tries=tries)
    job, points = svc.deliver(ctx.session, ctx.config, ctx.me, job_id, ctx.now, code, photo)
    text = ctx.t("dispatch.delivered", job=job_code(job.id), points=format_milli(points, ctx.lang))
    return text + ("\n" + ctx.t("orders.photo_sent") if job.proof_photo else "")


def _photo_job(ctx: Context) -> int:
    """The job a photo proves: named in the message it replies to, else the one parcel carried."""
    named = JOB_IN_TEXT.search(ctx.incoming.reply_text)
    if named is not None:
        return parse_job_ref(named.group(0))
    carried = [job for job in offers.held_jobs(ctx.session, ctx.me) if job.status == JobStatus.PICKED_UP]
    if len(carried) == 1:
        return carried[0].id
    raise UsageError("orders.photo_which_job")


@command("release", area="dispatch")
def release(ctx: Context) -> Reply:
    job_id = _job_id(ctx, lambda: offers.held_jobs(ctx.session, ctx.me))
    job, _ = svc.release(ctx.session, ctx.config, ctx.me, job_id, ctx.now)
    return ctx.t("dispatch.released", job=job_code(job.id))


@command("fail", area="dispatch")
def fail(ctx: Context) -> Reply:
    if len(ctx.args) < 2:
        raise ctx.usage()
    reason = ctx.rest.split(None, 1)[1]
    job = svc.fail(ctx.session, ctx.config, ctx.me, parse_job_ref(ctx.args[0]), reason, ctx.now)
    return ctx.t("dispatch.failed", job=job_code(job.id), reason=typed(reason, svc.MAX_REASON))


# --- coordinators -------------------------------------------------------------------------------


@command("cancel", area="dispatch", role=Role.COORDINATOR, customers=True)
def cancel(ctx: Context) -> Reply:
    """A coordinator cancels any job; a customer their own order, until pickup."""
    job_id = _job_id(ctx)
    parts = ctx.rest.split(None, 1)
    reason = parts[1].strip() if len(parts) > 1 else ""
    if is_customer(ctx.me):
        job = orders.cancel(ctx.session, ctx.config, ctx.me, job_id, reason, ctx.now)
        return ctx.t("orders.cancelled", job=job_code(job.id))
    job = svc.cancel(ctx.session, ctx.config, ctx.me, job_id, reason, ctx.now)
    return ctx.t("dispatch.cancelled", job=job_code(job.id))


@command("assign", area="dispatch", role=Role.COORDINATOR)
def assign(ctx: Context) -> Reply:
    if len(ctx.args) < 2:
        raise ctx.usage()
    job_id = parse_job_ref(ctx.args[0])
    target = find_member(ctx.session, " ".join(ctx.args[1:]))
    job = svc.assign(ctx.session, ctx.config, ctx.me, job_id, target, ctx.now)
    return ctx.t("dispatch.assigned", job=job_code(job.id), name=target.name)


# --- reading ---------------------------------------------------------------------------------------


@command("jobs", area="dispatch")
def jobs(ctx: Context) -> Reply:
    ctx.expect_args(0, 0)
    me = ctx.me
    if svc.is_coordinator(me):
        live = svc.live_jobs(ctx.session)
        if not live:
            return ctx.t("dispatch.no_jobs")
        lines = [ctx.t("dispatch.jobs_all", count=len(live))]
        lines += [f"• {_describe(ctx, job)} — {_state(ctx, job)}" for job in live]
        return "\n".join(lines)
    offered, held = svc.offered_to(ctx.session, me), offers.held_jobs(ctx.session, me)
    lines = []
    if offered:
        lines.append(ctx.t("dispatch.jobs_offered"))
        lines += [f"• {_describe(ctx, job)}" for job in offered]
    if held:
        lines.append(ctx.t("dispatch.jobs_mine"))
        lines += [f"• {_describe(ctx, job)} — {_state(ctx, job)}" for job in held]
    if not lines:
        lines.append(ctx.t("dispatch.no_jobs_for_you"))
    if not me.available:
        lines.append(ctx.t("dispatch.you_are_away"))
    return "\n".join(lines)


def _state(ctx: Context, job: Job, shown: str | None = None) -> str:
    """The job's state; `shown` is the holder as a customer may read them (a first name)."""
    name = svc.member_name(ctx.session, job.assignee_id) if job.assignee_id is not None else ""
    return ctx.t(f"dispatch.state_{job.status}", name=name if shown is None else shown)


@command("why", area="dispatch", aliases=("pourquoi",), customers=True)
def why(ctx: Context) -> Reply:
    """Every step of a job and why; a customer reads their own order's, with couriers by first name.
    A slot (`/why S-31`) tells its own story: who was offered it in turn, and why them."""
    if ctx.args and slots.is_ref(ctx.args[0]) and not is_customer(ctx.me):
        return _slot_story(ctx, fairness.story(ctx.session, ctx.config, slots.get(ctx.session, ctx.args[0]), ctx.now))
    job_id = _job_id(ctx)
    customer = is_customer(ctx.me)
    if customer:
        orders.own_order(ctx.session, ctx.me, job_id)
    job, events, names = svc.history(ctx.session, job_id)
    if customer:
        events, names = order_notices.as_customer_reads(ctx.session, ctx.config, ctx.lang, ctx.me, job, events)
    state = _state(ctx, job, names.get(job.assignee_id or 0, "") if customer else None)
    lines = [ctx.t("dispatch.why_title", job=_describe(ctx, job), state=state)]
    lines += [_why_line(ctx, event, names) for event in events]
    return "\n".join([*lines, *_price_lines(ctx, job)])


def _price_lines(ctx: Context, job: Job) -> list[str]:
    """How an order's price was reached: each term, the rules and votes cited, the zones found."""
    if not job.quote:
        return []
    pickup, dropoff = job.quote.get("zones", ["", ""])
    explained = price_rules.explain(ctx.lang, job.quote, ctx.config.coop.currency)
    return [ctx.t("orders.why_price", price=explained), ctx.t("orders.why_zones", pickup=pickup, dropoff=dropoff)]



def _why_line(ctx: Context, event: JobEvent, names: dict[int, str]) -> str:
    details: dict[str, Any] = event.details or {}
    params: dict[str, Any] = {
        "at": when(event.at, ctx.now, ctx.config.coop.tz),
        "actor": names.get(event.actor_id or 0, ""),
        "name": names.get(event.member_id or 0, ""),
        "policy": details.get("policy", ""),
        "reason": details.get("reason", ""),
    }
    kind = event.kind
    if kind == "offered" and details.get("policy") == "rotation":
        params["minutes"] = format_milli(int(details.get("timeout", 0)) * 1000 // 60, ctx.lang, 1)
        candidates = details.get("candidates", [])
        params["ranking"] = _ranking(ctx, candidates)
        # The rule names riders on a running slot only when one was among them: otherwise it changed nothing.
        if not details.get("prefer_on_duty") or not any("on_duty" in c for c in candidates):
            return ctx.t("dispatch.why_rotation", **params)
        line = ctx.t("dispatch.why_rotation_duty", **params)
        duty = candidates[0].get("on_duty")
        if duty is None:
            return line
        return line + "\n" + ctx.t("dispatch.why_first_on_duty", name=candidates[0]["name"], slot=slots.code(duty))
    if kind in ("offered", "fallback"):
        people = [c["name"] for c in details.get("candidates", [])]
        params["count"] = len(people)
        params["names"] = _names(ctx, people)
        key = "why_late" if details.get("late") else f"why_{kind}"
        return ctx.t(f"dispatch.{key}", **params)
    if kind == "delivered" and details.get("proof") in ("photo", "code"):
        return ctx.t(f"orders.why_delivered_{details['proof']}", **params)
    if kind == "declined" and details.get("reason") in ("away", "idle", "left"):
        return ctx.t(f"dispatch.why_declined_{details['reason']}", **params)
    if kind == "unclaimed":
        params["passed"] = details.get("passed", 0)
    if kind in ("quoted", "price_set"):
        currency = ctx.config.coop.currency
        params["price"] = format_money(int(details.get("price", 0)), currency, ctx.lang)
        before = details.get("before")
        params["before"] = format_money(int(before), currency, ctx.lang) if before is not None else "—"
    return ctx.t(f"dispatch.why_{kind}", **params)


def _ranking(ctx: Context, candidates: list[dict[str, Any]]) -> str:
    shown = []
    for position, c in enumerate(candidates[:MAX_CANDIDATES_SHOWN], start=1):
        idle = c.get("idle_minutes")
        said = ctx.t("dispatch.why_candidate", rank=position, name=c["name"],
                     points=format_milli(int(c["points_milli"]), ctx.lang), idle="?" if idle is None else idle)
        duty = c.get("on_duty")
        shown.append(said if duty is None else said + ctx.t("dispatch.why_on_duty", slot=slots.code(int(duty))))
    text = "; ".join(shown)
    if len(candidates) > MAX_CANDIDATES_SHOWN:
        text += " " + ctx.t("dispatch.why_more", count=len(candidates) - MAX_CANDIDATES_SHOWN)
    return text


# --- /why S-31 ------------------------------------------------------------------------------------


def _slot_story(ctx: Context, story: fairness.Story) -> str:
    """The slot's story: published, the rule that found it unpopular, every offer in turn with the
    ranking that chose its member, the settings in force and the votes that set them."""
    slot, tz = story.slot, ctx.config.coop.tz
    lines = [ctx.t("fairness.why_title", slot=slots.describe(slot, ctx.lang, tz), taken=len(story.riders),
                   seats=slot.seats),
             ctx.t("fairness.why_published", at=when(slot.created_at, ctx.now, tz), name=story.publisher,
                   seats=slot.seats)]  # fmt: skip
    if slot.cancelled_at is not None:
        lines.append(ctx.t("fairness.why_cancelled", reason=slot.cancel_reason or ""))
    lines.append(_slot_rule(ctx, story))
    rules = story.rules
    lines.append(ctx.t("fairness.why_fair", hours=rules.hours, minutes=rules.minutes) if rules.policy == fairness.FAIR
                 else ctx.t("fairness.why_off"))  # fmt: skip
    shown = [_slot_setting(ctx, story, key) for key in fairness.KEYS]
    lines.append(ctx.t("fairness.why_settings", settings=ctx.t("fairness.separator").join(shown)))
    for offer in story.offers:
        lines += _slot_offer(ctx, offer, story.names.get(offer.member_id, ""))
    lines.append(ctx.t("fairness.why_riders", names=_names(ctx, story.riders)) if story.riders
                 else ctx.t("fairness.why_nobody"))  # fmt: skip
    return "\n".join(lines)


def _slot_rule(ctx: Context, story: fairness.Story) -> str:
    rule = story.rules.rule_text
    if not rule:
        return ctx.t("fairness.why_no_rule")
    if not story.reasons:
        return ctx.t("fairness.why_popular", rule=rule)
    starts = story.slot.starts_at.astimezone(ctx.config.coop.tz)
    reasons = [ctx.t("fairness.reason_day", day=format_date(starts.date(), "EEEE", locale=ctx.lang)) if reason == "day"
               else ctx.t(f"fairness.reason_{reason}", time=value) for reason, value in story.reasons]  # fmt: skip
    return ctx.t("fairness.why_unpopular", rule=rule, reasons=format_list(reasons, locale=ctx.lang))


def _slot_setting(ctx: Context, story: fairness.Story, key: str) -> str:
    """`fill_policy = fair (vote P-3, 2026-11-02)`: the value and where it comes from."""
    rules, change = story.rules, story.rules.changes.get(key)
    value = {fairness.RULE_KEY: rules.rule_text or "none", fairness.POLICY_KEY: rules.policy,
             fairness.HOURS_KEY: str(rules.hours), fairness.MINUTES_KEY: str(rules.minutes)}[key]  # fmt: skip
    if change is None:
        source = ctx.t("fairness.source_default")
    else:
        date = change.effective_at.astimezone(ctx.config.coop.tz).date().isoformat()
        source = (ctx.t("fairness.source_vote", poll=poll_code(change.poll_id), date=date) if change.poll_id
                  else ctx.t("fairness.source_changed", date=date))  # fmt: skip
    return ctx.t("fairness.why_setting", key=key, value=value, source=source)


def _slot_offer(ctx: Context, offer: SlotOffer, name: str) -> list[str]:
    """One offer: to whom, when, their turn and the ranking that chose them, then its answer."""
    tz = ctx.config.coop.tz
    details: dict[str, Any] = offer.details or {}
    shown = [ctx.t("fairness.why_candidate", rank=position, name=c["name"], count=int(c["unpopular"]),
                   hours=format_milli(int(c["minutes"]) * 1000 // 60, ctx.lang, 1))
             for position, c in enumerate(details.get("candidates", [])[:MAX_CANDIDATES_SHOWN], start=1)]  # fmt: skip
    ranking = ctx.t("fairness.separator").join(shown)
    if len(details.get("candidates", [])) > MAX_CANDIDATES_SHOWN:
        ranking += " " + ctx.t("dispatch.why_more", count=len(details["candidates"]) - MAX_CANDIDATES_SHOWN)
    lines = [ctx.t("fairness.why_offer", at=when(offer.offered_at, ctx.now, tz), name=name, rank=offer.rank,
                   minutes=details.get("minutes", ""), period=details.get("period", ""), ranking=ranking)]  # fmt: skip
    if offer.answer is None:
        lines.append(ctx.t("fairness.why_open", name=name, at=when(offer.expires_at, ctx.now, tz)))
    else:
        lines.append(ctx.t(f"fairness.why_{offer.answer}", name=name,
                           at=when(offer.answered_at or offer.offered_at, ctx.now, tz)))  # fmt: skip
    return lines


def _names(ctx: Context, people: list[str]) -> str:
    text = ", ".join(people[:MAX_CANDIDATES_SHOWN])
    if len(people) > MAX_CANDIDATES_SHOWN:
        text += " " + ctx.t("dispatch.why_more", count=len(people) - MAX_CANDIDATES_SHOWN)
    return text
