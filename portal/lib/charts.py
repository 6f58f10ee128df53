"""Server-rendered SVG charts: no script, nothing inline to allow in the CSP, readable without
colour (each series also has a table beside its chart, which is what screen readers use).

Colours come from classes in static/css (`series-1` … `series-6`, `heat-*`), so the charts
follow the stylesheet, dark mode included. Each chart is an `<svg role="img">` named by its
title; the numbers are in the page's table, not repeated to assistive technology here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    css: str = "series-1"


@dataclass(frozen=True)
class Reference:
    """A horizontal line across the chart, e.g. a target or an average."""

    value: float
    label: str


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times 10^n that is at least `value` (the top of the axis)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def time_series(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    stacked: bool = False,
    reference: Reference | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """Lines (one per series), or bars stacked in series order when `stacked`."""
    count = len(labels)
    totals = [sum(s.values[i] for s in series) for i in range(count)] if stacked else []
    peak = max([*totals, *(v for s in series for v in s.values), reference.value if reference else 0, 0])
    top = nice_ceiling(peak)
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    step = plot_w / max(count, 1)

    def y(value: float) -> float:
        return TOP + plot_h - value / top * plot_h

    def x(index: int) -> float:
        return LEFT + step * index + step / 2

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in range(5):
        value = top * tick / 4
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
            f"{_number(value)}</text>"
        )
    every = max(1, math.ceil(count / 6))
    for index in range(0, count, every):
        parts.append(
            f'<text class="axis" x="{x(index):.1f}" y="{height - 8}" text-anchor="middle">'
            f"{escape(labels[index])}</text>"
        )
    if stacked:
        bar = max(step * 0.8, 1)
        for index in range(count):
            base = 0.0
            for s in series:
                value = s.values[index]
                if value:
                    parts.append(
                        f'<rect class="{s.css}" x="{x(index) - bar / 2:.1f}" y="{y(base + value):.1f}" '
                        f'width="{bar:.1f}" height="{y(base) - y(base + value):.1f}"/>'
                    )
                base += value
    else:
        for s in series:
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(s.values))
            parts.append(f'<polyline class="line {s.css}" points="{points}"/>')
    if reference is not None:
        ref_y = y(reference.value)
        parts.append(
            f'<line class="reference" x1="{LEFT}" x2="{width - RIGHT}" y1="{ref_y:.1f}" y2="{ref_y:.1f}"/>'
            f'<text class="reference-label" x="{width - RIGHT - 4}" y="{ref_y - 4:.1f}" text-anchor="end">'
            f"{escape(reference.label)}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text in it went through escape()


@dataclass(frozen=True)
class Cell:
    label: str  # shown on hover, e.g. "203.0.113.9: listed on SBL, exempted"
    css: str  # e.g. "heat-abuse"
    mark: str = ""  # a character drawn in the cell, so the state reads without colour


def heatmap(*, title: str, cells: Sequence[Cell], columns: int = 16, size: int = 24) -> SafeString:
    """A grid of cells left to right, top to bottom (a /24 is 16 by 16)."""
    rows = math.ceil(len(cells) / columns)
    width, height = columns * size + 1, rows * size + 1
    parts = [
        f'<svg class="heatmap" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for index, cell in enumerate(cells):
        cx, cy = index % columns * size, index // columns * size
        parts.append(
            f"<g><title>{escape(cell.label)}</title>"
            f'<rect class="{escape(cell.css)}" x="{cx + 1}" y="{cy + 1}" '
            f'width="{size - 2}" height="{size - 2}" rx="2"/>'
        )
        if cell.mark:
            parts.append(
                f'<text class="heat-mark" x="{cx + size / 2:.1f}" y="{cy + size / 2 + 4:.1f}" '
                f'text-anchor="middle">{escape(cell.mark)}</text>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text in it went through escape()
