"""The picture posted with each period's summary: who got what share.

Rendered with matplotlib's Agg backend (no display, safe in a worker thread
and on a server), imported on the first chart drawn: matplotlib, numpy and
Pillow are about half of an idle bot's memory, and most days draw nothing.
Members who asked to be hidden are never drawn: the caller
leaves them out, and the footnote only says how many are not shown. A big
co-op gets its largest shares and one bar for everyone else, so the chart
stays readable at 10,000 members.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MAX_BARS = 25
_lock = threading.Lock()


@dataclass(frozen=True)
class Bar:
    name: str
    #: Share of the period's points, in basis points (1234 = 12.34 %).
    share_bp: int
    #: Text written above the bar (the dividend, formatted for the reader).
    label: str


def shares_png(
    bars: Sequence[Bar],
    *,
    title: str,
    ylabel: str,
    others_label: Callable[[int], str],
    footnote: str = "",
) -> bytes:
    """A PNG bar chart of the shares, largest first."""
    ordered = sorted(bars, key=lambda bar: (-bar.share_bp, bar.name))
    shown = list(ordered[:MAX_BARS])
    rest = ordered[MAX_BARS:]
    if rest:
        shown.append(Bar(others_label(len(rest)), sum(b.share_bp for b in rest), ""))
    width = max(6.0, min(14.0, 1.0 + 0.5 * len(shown)))
    with _lock:  # pyplot-free Figure is thread-safe per figure, fonts are not
        from matplotlib.figure import Figure  # the object-oriented API: no pyplot, no display backend

        figure = Figure(figsize=(width, 4.5), dpi=100)
        axes = figure.subplots()
        heights = [bar.share_bp / 100 for bar in shown]
        names = [bar.name for bar in shown]
        drawn = axes.bar(range(len(shown)), heights, color="#2a9d8f")
        if rest:
            drawn[-1].set_color("#adb5bd")
        for rect, bar in zip(drawn, shown, strict=True):
            if bar.label:
                axes.annotate(
                    bar.label,
                    (rect.get_x() + rect.get_width() / 2, rect.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    rotation=90 if len(shown) > 12 else 0,
                )
        axes.set_xticks(range(len(shown)), names, rotation=30 if len(shown) > 6 else 0, ha="right")
        axes.set_ylabel(ylabel)
        axes.set_title(title)
        axes.spines[["top", "right"]].set_visible(False)
        if footnote:
            figure.text(0.01, 0.01, footnote, fontsize=8, color="#555555")
        # Fixed margins: tight_layout would draw the figure twice to measure it.
        figure.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.3 if len(shown) > 6 else 0.15)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()
