"""The week's plan as a picture: days across, hours down, each slot a block, the short ones hatched.

Posted with the weekly plan's text for those who read a grid faster than a
list; the text stays, with its buttons, and is the whole plan in words.
`week_image` also gives a one-sentence description naming the short slots,
for wherever an image needs words of its own.

Drawn like the share chart (`coopbot.charts`): matplotlib's object-oriented
API on the Agg backend, no display, imported on the first picture (not when
the bot starts), under the charts' lock (matplotlib's font cache is shared
by every figure), with the DejaVu fonts matplotlib ships, so nothing is
fetched. Sized for a phone: 1200 × 800 pixels, which a chat shows at the
screen's width, with text no smaller than 8 points in a block.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date

from coopbot.charts import _lock as drawing_lock
from coopbot.i18n import t
from coopbot.services.rosters.slots import Seats, code, when

FULL, SHORT, EMPTY = "#2a9d8f", "#f4a261", "#e76f51"
WIDTH, HEIGHT, DPI = 12.0, 8.0, 100
GAP = 0.06
#: The plot's share of the figure (`subplots_adjust` below), for the room a block's text has.
PLOT_WIDTH, PLOT_HEIGHT = 0.93, 0.83
#: Text in a block, in points: no larger than the day names, no smaller than a phone can show.
LARGEST, SMALLEST = 11.0, 6.5


@dataclass(frozen=True)
class WeekImage:
    png: bytes
    #: The picture in one sentence: the week, and each slot short of riders.
    alt: str


@dataclass(frozen=True)
class Block:
    """A slot's place in the grid: its day's column, its lane in it, its hours on the clock."""

    seats: Seats
    day: int
    top: float
    bottom: float
    lane: int = 0
    lanes: int = 1


def hours(moment: datetime) -> float:
    return moment.hour + moment.minute / 60


def blocks(week: list[Seats], monday: date, tz: ZoneInfo) -> list[Block]:
    """Each slot in its day's column; a night slot is drawn to midnight (its text gives the end)."""
    placed = []
    for one in week:
        starts, ends = one.slot.starts_at.astimezone(tz), one.slot.ends_at.astimezone(tz)
        bottom = 24.0 if ends.date() > starts.date() else hours(ends)
        placed.append(Block(one, (starts.date() - monday).days, hours(starts), bottom))
    return lanes(placed)


def lanes(placed: list[Block]) -> list[Block]:
    """Slots at the same hours on one day side by side, each in a lane of its own."""
    laid: list[Block] = []
    for day in range(7):
        column = sorted((b for b in placed if b.day == day), key=lambda b: (b.top, b.seats.slot.id))
        ends: list[float] = []
        chosen = []
        for block in column:
            lane = next((n for n, end in enumerate(ends) if end <= block.top), len(ends))
            ends[lane : lane + 1] = [block.bottom]
            chosen.append((block, lane))
        laid += [Block(b.seats, b.day, b.top, b.bottom, lane, max(1, len(ends))) for b, lane in chosen]
    return laid


def short_of(week: list[Seats]) -> list[Seats]:
    return [one for one in week if one.free]


def alt_text(week: list[Seats], monday: date, lang: str, tz: ZoneInfo) -> str:
    day = format_date(monday, "EEEE d MMMM", locale=lang)
    short = short_of(week)
    if not short:
        return t(lang, "calendar.image_none_short", day=day)
    named = ", ".join(t(lang, "calendar.image_short", slot=f"{code(one.slot)} {when(one.slot, lang, tz)}",
                        taken=one.taken, seats=one.slot.seats) for one in short)  # fmt: skip
    return t(lang, "calendar.image_alt", day=day, count=len(short), short=named)


def block_text(block: Block, lang: str, tz: ZoneInfo) -> str:
    """Code, zone, hours, riders; in a lane shared with another slot, the riders in figures only."""
    one = block.seats
    starts, ends = one.slot.starts_at.astimezone(tz), one.slot.ends_at.astimezone(tz)
    riders = f"{one.taken}/{one.slot.seats}"
    if block.lanes == 1:
        riders = t(lang, "calendar.image_seats", taken=one.taken, seats=one.slot.seats)
    lines = [code(one.slot), f"{starts:%H:%M}–{ends:%H:%M}", riders]
    if one.slot.zone:
        lines.insert(1, t(lang, "rosters.zone", zone=one.slot.zone))
    if one.free:
        lines.append(t(lang, "calendar.image_needs", count=one.free))
    return "\n".join(lines)


def week_image(week: list[Seats], monday: date, lang: str, tz: ZoneInfo) -> WeekImage:
    """The week's slots (`slots.week`, cancelled ones already left out) as a PNG grid, and its words."""
    placed = blocks(week, monday, tz)
    first = math.floor(min((b.top for b in placed), default=8.0))
    last = math.ceil(max((b.bottom for b in placed), default=20.0))
    with drawing_lock:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
        axes = figure.subplots()
        axes.set_xlim(0, 7)
        axes.set_ylim(last, first)  # morning at the top, as a diary reads
        days = [format_date(monday + timedelta(days=n), "EEE d MMM", locale=lang) for n in range(7)]
        axes.set_xticks([n + 0.5 for n in range(7)], days, fontsize=11)
        axes.xaxis.tick_top()
        axes.set_yticks(range(first, last + 1), [f"{h % 24:02d}:00" for h in range(first, last + 1)], fontsize=9)
        axes.grid(axis="y", color="#dddddd", linewidth=0.6)
        for n in range(1, 7):
            axes.axvline(n, color="#bbbbbb", linewidth=0.8)
        axes.set_axisbelow(True)
        for block in placed:
            draw_block(axes, block, lang, tz, last - first)
        axes.set_title(t(lang, "calendar.image_title", day=format_date(monday, "EEEE d MMMM", locale=lang)),
                       fontsize=14, pad=28)  # fmt: skip
        figure.text(0.01, 0.01, t(lang, "calendar.image_legend"), fontsize=10, color="#444444")
        figure.subplots_adjust(left=0.06, right=0.06 + PLOT_WIDTH, top=0.88, bottom=0.88 - PLOT_HEIGHT)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return WeekImage(buffer.getvalue(), alt_text(week, monday, lang, tz))


def room(block: Block, lines: str, span: int) -> tuple[float, float]:
    """The largest font size (points) at which `lines` fit the block's height, and its width
    (DejaVu Sans is about 0.6 em a character, a line about 1.3 em high)."""
    rows = lines.split("\n")
    height = (block.bottom - block.top) / span * HEIGHT * PLOT_HEIGHT * 72
    width = (1 - 2 * GAP) / block.lanes / 7 * WIDTH * PLOT_WIDTH * 72
    return height / (1.3 * len(rows) + 0.6), width / (0.6 * max(len(row) for row in rows) + 0.6)


def draw_block(axes: Any, block: Block, lang: str, tz: ZoneInfo, span: int) -> None:
    """One slot: filled by how full it is, hatched while riders are missing, its words inside."""
    from matplotlib.patches import Rectangle

    one = block.seats
    width = (1 - 2 * GAP) / block.lanes
    left = block.day + GAP + block.lane * width
    colour = FULL if not one.free else EMPTY if one.taken == 0 else SHORT
    patch = Rectangle((left, block.top), width, block.bottom - block.top, facecolor=colour,
                      edgecolor="#333333", linewidth=1.0, hatch="//" if one.free else None)  # fmt: skip
    axes.add_patch(patch)
    lines = block_text(block, lang, tz)
    size = max(SMALLEST, min(LARGEST, *room(block, lines, span)))
    axes.text(left + width / 2, (block.top + block.bottom) / 2, lines, ha="center", va="center",
              fontsize=size, bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.5})  # fmt: skip
