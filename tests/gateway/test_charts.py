"""The server-drawn charts: labels under the columns never overlap, however many columns and however long the labels."""

from __future__ import annotations

import re

import pytest

from gateway.console.charts import CHAR_WIDTH, column_chart

LABEL = re.compile(r'<text class="label" x="([0-9.]+)" y="([0-9.]+)" text-anchor="middle">([^<]*)</text>')
MONTHS = [
    f"{month} 2026" for month in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
]


def label_extents(svg: str) -> list[tuple[float, float, float, str]]:
    """(left, right, baseline, text) of each drawn label, with the chart's own estimate of text width."""
    extents = []
    for x, y, text in LABEL.findall(svg):
        half = len(text) * CHAR_WIDTH / 2
        extents.append((float(x) - half, float(x) + half, float(y), text))
    return extents


def assert_apart(extents) -> None:
    for line in {baseline for _, _, baseline, _ in extents}:
        row = sorted((left, right) for left, right, baseline, _ in extents if baseline == line)
        assert all(right < next_left for (_, right), (next_left, _) in zip(row, row[1:], strict=False)), row


def test_twelve_month_labels_break_into_two_lines_rather_than_overlap():
    svg = column_chart("Registrations per month", [(month, 10) for month in MONTHS])
    extents = label_extents(svg)
    assert [text for *_, text in extents][:4] == ["Jan", "2026", "Feb", "2026"] and len(extents) == 24
    assert_apart(extents)


@pytest.mark.parametrize("count", [3, 12, 31, 60])
def test_labels_never_overlap_and_the_description_keeps_every_figure(count):
    items = [(f"Week {number:02d} of the programme", number) for number in range(count)]
    svg = column_chart("Registrations per week", items)
    assert_apart(label_extents(svg))
    assert all(f"{label}: {value}" in svg for label, value in items)


def test_few_short_labels_stay_on_one_line():
    extents = label_extents(column_chart("Registrations per week", [("23 Nov", 1), ("30 Nov", 2)]))
    assert [text for *_, text in extents] == ["23 Nov", "30 Nov"]
