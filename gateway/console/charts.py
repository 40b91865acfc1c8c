"""Small charts as inline SVG, drawn on the server: no script, no library, no request for another file.

District offices work over slow mobile data, so a chart is a few hundred bytes of markup in the page. Each chart
is an image with a title and a description that reads out every number, for screen readers; the pages also show
the same numbers in a table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from markupsafe import Markup, escape

# Geometry in SVG user units; the browser scales the whole drawing to the width of the page.
BAR_HEIGHT = 18
BAR_GAP = 6
LABEL_WIDTH = 130  # room for "Mohale's Hoek" and "payment scheduled"
VALUE_WIDTH = 70
PLOT_WIDTH = 400
COLUMN_PLOT_HEIGHT = 120
COLUMN_LABEL_HEIGHT = 34  # two lines of labels under the columns
COLUMN_LABEL_LINE = 14  # from one label line to the next
COLUMN_VALUE_HEIGHT = 14
FONT_SIZE = 12
BAR_COLOUR = "#2b6ca3"  # dark enough for the white page (WCAG contrast > 4.5:1)
TEXT_COLOUR = "#222"
# Width of an average character of the page's sans-serif font at FONT_SIZE, in user units, on the wide side: enough to
# tell whether a label fits under its column. A label that does not fit breaks at its space ("Nov" over "2026"); if
# a part still does not fit, only every few labels are drawn (all of them are in the description and the table).
CHAR_WIDTH = FONT_SIZE * 0.62
LABEL_PADDING = 4  # space kept between neighbouring labels

Item = tuple[str, float | int]


def _chart_id(title: str) -> str:
    return "chart-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "untitled")


def _number(value: float | int) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _open(title: str, width: int, height: int, items: Sequence[Item]) -> str:
    chart_id = _chart_id(title)
    description = "; ".join(f"{label}: {_number(value)}" for label, value in items) or "no data"
    return (
        f'<svg class="chart" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-size="{FONT_SIZE}" fill="{TEXT_COLOUR}" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(description)}</desc>'
    )


def bar_chart(title: str, items: Sequence[Item]) -> Markup:
    """Horizontal bars, one per (label, value), in the order given; for categories (districts, statuses)."""
    largest = max((value for _, value in items), default=0) or 1
    height = max(len(items), 1) * (BAR_HEIGHT + BAR_GAP)
    parts = [_open(title, LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH, height, items)]
    for row, (label, value) in enumerate(items):
        y = row * (BAR_HEIGHT + BAR_GAP)
        length = round(PLOT_WIDTH * value / largest, 1)
        middle = y + BAR_HEIGHT / 2
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{middle}" text-anchor="end" dominant-baseline="middle">'
            f"{escape(label)}</text>"
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR_HEIGHT}" fill="{BAR_COLOUR}"/>'
            f'<text x="{LABEL_WIDTH + length + 4}" y="{middle}" dominant-baseline="middle">{_number(value)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _text_width(text: str) -> float:
    return len(text) * CHAR_WIDTH


def _label_lines(labels: Sequence[str], room: float) -> list[list[str]]:
    """Each label as the lines it is drawn on: whole if every label fits in `room`, else broken at its first space."""
    if all(_text_width(label) <= room for label in labels):
        return [[label] for label in labels]
    return [label.split(" ", 1) for label in labels]


def _every(widest: float, room: float) -> int:
    """Draw every n-th text so that texts `widest` wide never touch in slots `room` wide."""
    return max(1, math.ceil((widest + LABEL_PADDING) / room)) if room > 0 else 1


def column_chart(title: str, items: Sequence[Item]) -> Markup:
    """Vertical columns left to right, one per (label, value); for figures over time.

    Labels and values under and over the columns never overlap: a label too wide for its column is broken into two
    lines, and if that is not enough, only every n-th label (or value) is drawn.
    """
    largest = max((value for _, value in items), default=0) or 1
    slot = PLOT_WIDTH / max(len(items), 1) * 1.5
    width = round(slot * max(len(items), 1))
    height = COLUMN_VALUE_HEIGHT + COLUMN_PLOT_HEIGHT + COLUMN_LABEL_HEIGHT
    room = slot - LABEL_PADDING
    lines = _label_lines([label for label, _ in items], room)
    label_step = _every(max((_text_width(part) for parts in lines for part in parts), default=0), slot)
    value_step = _every(max((_text_width(_number(value)) for _, value in items), default=0), slot)
    baseline = COLUMN_VALUE_HEIGHT + COLUMN_PLOT_HEIGHT + COLUMN_LABEL_LINE
    parts = [_open(title, width, height, items)]
    for column, (_label, value) in enumerate(items):
        x = column * slot
        length = round(COLUMN_PLOT_HEIGHT * value / largest, 1)
        top = COLUMN_VALUE_HEIGHT + COLUMN_PLOT_HEIGHT - length
        centre = round(x + slot / 2, 1)
        parts.append(
            f'<rect x="{round(x + slot * 0.15, 1)}" y="{top}" width="{round(slot * 0.7, 1)}" height="{length}" '
            f'fill="{BAR_COLOUR}"/>'
        )
        if column % value_step == 0:
            parts.append(f'<text x="{centre}" y="{top - 3}" text-anchor="middle">{_number(value)}</text>')
        if column % label_step == 0:
            parts.extend(
                f'<text class="label" x="{centre}" y="{baseline + line * COLUMN_LABEL_LINE}" text-anchor="middle">'
                f"{escape(text)}</text>"
                for line, text in enumerate(lines[column])
            )
    parts.append("</svg>")
    return Markup("".join(parts))
