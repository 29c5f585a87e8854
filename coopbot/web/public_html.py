"""The public page as HTML: one column, plain markup, no script, every text escaped.

Written with f-strings and `html.escape` rather than a template engine: the
page is one small document, and a template engine would be a new dependency
of the running bot for it. Every text that comes from the co-op (its name,
a poll's title, a rule's value) passes through `esc`, so nothing a member
typed can become markup. The stylesheet is a file of its own
(`static/style.css`): the Content-Security-Policy allows no inline style or
script, and the page needs neither to be read on a phone, by a screen reader
or without JavaScript.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from coopbot.i18n import LANGUAGES, t
from coopbot.services.public.page import Page, Rule
from coopbot.services.public.periods import PeriodFigures
from coopbot.services.public.records import Fairness

STYLESHEET = "/static/style.css"
#: How each language calls itself, in the language switcher.
LANGUAGE_NAMES = {"en": "English", "fr": "Français"}
POLL_CODE = re.compile(r"\bP-([0-9]+)\b")


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def chart_url(label: str, lang: str) -> str:
    return f"/periods/{quote(label, safe='')}/shares.png?lang={lang}"


def linked(text: str, polls: set[int]) -> str:
    """Escaped text where each poll code shown on the page links to its result."""

    def link(match: re.Match[str]) -> str:
        number = int(match.group(1))
        return f'<a href="#P-{number}">{match.group(0)}</a>' if number in polls else match.group(0)

    return POLL_CODE.sub(link, esc(text))


def render(page: Page) -> str:
    """The whole document: a heading for the co-op, then one section per part it publishes."""
    lang = page.lang
    polls = {poll.poll_id for poll in page.polls}
    sections = []
    if page.shown["rules"]:
        sections.append(_rules(page, polls))
    if page.shown["polls"]:
        sections.append(_polls(page))
    if page.shown["periods"]:
        sections.append(_periods(page))
    if page.shown["fairness"] and page.fairness is not None:
        sections.append(_fairness(lang, page.fairness))
    if page.shown["audit"]:
        sections.append(_audit(page, polls))
    switcher = " · ".join(
        f'<a href="/{code}" hreflang="{code}" lang="{code}"'
        + (' aria-current="page"' if code == lang else "")
        + f">{LANGUAGE_NAMES.get(code, code)}</a>"
        for code in LANGUAGES
    )
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(t(lang, "public.page_title", coop=page.coop))}</title>
<link rel="stylesheet" href="{STYLESHEET}">
</head>
<body>
<header>
<nav aria-label="{esc(t(lang, "public.languages"))}">{switcher}</nav>
<h1>{esc(page.coop)}</h1>
<p>{esc(t(lang, "public.what", coop=page.coop))}</p>
<p>{esc(t(lang, "public.sections_by_vote"))}</p>
</header>
<main>
{"".join(sections)}</main>
<footer>
<p>{esc(t(lang, "public.footer"))}</p>
</footer>
</body>
</html>
"""


def _section(name: str, title: str, body: str) -> str:
    heading = f'<h2 id="{name}-title">{esc(title)}</h2>'
    return f'<section id="{name}" aria-labelledby="{name}-title">\n{heading}\n{body}</section>\n'


def _paragraphs(lines: list[str] | tuple[str, ...], polls: set[int]) -> str:
    return "".join(f"<p>{linked(line, polls)}</p>\n" for line in lines if line)


def _rule_row(rule: Rule, polls: set[int]) -> str:
    return (
        f'<tr><th scope="row">{esc(rule.label)} <code>{esc(rule.key)}</code></th>'
        f"<td>{esc(rule.value)}</td><td>{linked(rule.source, polls)}</td></tr>\n"
    )


def _rules(page: Page, polls: set[int]) -> str:
    lang = page.lang
    rows = "".join(_rule_row(rule, polls) for rule in page.rules)
    body = (
        f"<p>{esc(t(lang, 'public.rules_intro'))}</p>\n"
        '<div class="scroll"><table>\n'
        f'<thead><tr><th scope="col">{esc(t(lang, "public.rule"))}</th>'
        f'<th scope="col">{esc(t(lang, "public.value"))}</th>'
        f'<th scope="col">{esc(t(lang, "public.source"))}</th></tr></thead>\n'
        f"<tbody>\n{rows}</tbody>\n</table></div>\n"
        f'<h3 id="prices">{esc(t(lang, "public.prices_title"))}</h3>\n'
        f"{_paragraphs(page.prices, polls)}"
    )
    return _section("rules", t(lang, "public.rules_title"), body)


def _polls(page: Page) -> str:
    lang = page.lang
    if not page.polls:
        body = f"<p>{esc(t(lang, 'public.polls_none'))}</p>\n"
    else:
        body = f"<p>{esc(t(lang, 'public.polls_intro'))}</p>\n" + "".join(
            f'<article id="P-{poll.poll_id}">\n<h3>{esc(poll.lines[0])}</h3>\n<ul>\n'
            + "".join(f"<li>{esc(line)}</li>\n" for line in poll.lines[1:] if line)
            + "</ul>\n</article>\n"
            for poll in page.polls
        )
    return _section("polls", t(lang, "public.polls_title"), body)


def _period(lang: str, period: PeriodFigures) -> str:
    title, *lines = period.lines
    figure = ""
    if period.chart_alt:
        figure = (
            f'<figure>\n<img src="{esc(chart_url(period.label, lang))}" alt="{esc(period.chart_alt)}">\n</figure>\n'
        )
    anchor = esc(f"period-{period.label}")
    return f'<article id="{anchor}">\n<h3>{esc(title)}</h3>\n{_paragraphs(lines, set())}{figure}</article>\n'


def _periods(page: Page) -> str:
    lang = page.lang
    if not page.periods:
        body = f"<p>{esc(t(lang, 'public.periods_none'))}</p>\n"
    else:
        body = f"<p>{esc(t(lang, 'public.periods_intro'))}</p>\n" + "".join(_period(lang, p) for p in page.periods)
    return _section("periods", t(lang, "public.periods_title"), body)


def _spread(lang: str, caption: str, column: str, spread: list[tuple[int, int]]) -> str:
    rows = "".join(f"<tr><td>{count}</td><td>{riders}</td></tr>\n" for count, riders in spread)
    return (
        f"<table>\n<caption>{esc(t(lang, caption))}</caption>\n"
        f'<thead><tr><th scope="col">{esc(t(lang, column))}</th>'
        f'<th scope="col">{esc(t(lang, "public.riders_column"))}</th></tr></thead>\n'
        f"<tbody>\n{rows}</tbody>\n</table>\n"
    )


def _named(lang: str, named: list[tuple[str, int, int]]) -> str:
    """The riders who chose to be named, each with their own figures; nothing when none did."""
    if not named:
        return ""
    rows = "".join(f"<tr><th scope=\"row\">{esc(name)}</th><td>{offers}</td><td>{jobs}</td></tr>\n"
                   for name, offers, jobs in named)  # fmt: skip
    return (
        f"<table>\n<caption>{esc(t(lang, 'public.named_caption'))}</caption>\n"
        f'<thead><tr><th scope="col">{esc(t(lang, "public.name_column"))}</th>'
        f'<th scope="col">{esc(t(lang, "public.offers_column"))}</th>'
        f'<th scope="col">{esc(t(lang, "public.jobs_column"))}</th></tr></thead>\n'
        f"<tbody>\n{rows}</tbody>\n</table>\n"
    )


def _fairness(lang: str, fairness: Fairness) -> str:
    if not fairness.riders:
        body = f"<p>{esc(t(lang, 'public.fairness_none', period=fairness.period))}</p>\n"
    else:
        intro = t(
            lang,
            "public.fairness_intro",
            period=fairness.period,
            offers=fairness.offers,
            jobs=fairness.jobs,
            riders=fairness.riders,
        )
        body = (
            f"<p>{esc(intro)}</p>\n<p>{esc(fairness.jobs_summary)}</p>\n"
            + _spread(lang, "public.jobs_caption", "public.jobs_column", fairness.jobs_spread)
            + _spread(lang, "public.offers_caption", "public.offers_column", fairness.offers_spread)
            + _named(lang, fairness.named)
        )
    return _section("fairness", t(lang, "public.fairness_title"), body)


def _audit(page: Page, polls: set[int]) -> str:
    lang = page.lang
    if not page.audit:
        body = f"<p>{esc(t(lang, 'data.audit_empty'))}</p>\n"
    else:
        items = "".join(f"<li>{linked(line, polls)}</li>\n" for line in page.audit)
        body = f"<p>{esc(t(lang, 'public.audit_intro'))}</p>\n<ol>\n{items}</ol>\n"
    return _section("audit", t(lang, "public.audit_title"), body)
