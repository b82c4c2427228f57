"""Benchmark results in HTML: every table the file holds (``report.tables``), with bar charts of
its headline measures, because bars are read at a glance where digits are read one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from report.markup import esc, facts, figure, number, panel, table
from report.tables import LONG_TEXT, Block, Records, Tiles, blocks


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float]) -> str:
    """A horizontal bar chart as inline SVG; bars start at zero, so ratios read truly."""
    row, label_width, bar_width, value_width = 24, 260, 340, 80
    low, high = min(0.0, *values), max(0.0, *values)
    span = (high - low) or 1.0
    zero = label_width + bar_width * (-low / span)
    height = row * len(values) + 8
    width = label_width + bar_width + value_width
    bars = []
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 4 + index * row
        x = min(zero, zero + bar_width * value / span)
        length = abs(bar_width * value / span)
        shown = label if len(label) <= 34 else label[:33] + "…"
        bars.append(
            f"<g><title>{esc(label)}: {esc(number(value))}</title>"
            f'<text x="{label_width - 8}" y="{y + 16}" class="chart-label">{esc(shown)}</text>'
            f'<rect x="{x:.1f}" y="{y + 3}" width="{max(length, 1):.1f}" height="{row - 8}" rx="3" '
            'class="chart-bar"/>'
            f'<text x="{max(zero, x + length) + 6:.1f}" y="{y + 16}" class="chart-value">'
            f"{esc(number(value))}</text></g>"
        )
    axis = f'<line x1="{zero:.1f}" y1="0" x2="{zero:.1f}" y2="{height}" class="chart-axis"/>'
    svg = (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{esc(title)}">{axis}{"".join(bars)}</svg>'
    )
    return f'<figure class="chart-box"><figcaption>{esc(title)}</figcaption>{svg}</figure>'


def _table_cell(value: Any) -> str:
    """A figure, with long prose kept readably wide instead of squeezed into a narrow column."""
    prose = isinstance(value, str) and len(value) > LONG_TEXT
    return f'<span class="long">{figure(value)}</span>' if prose else figure(value)


def _records_panel(records: Records) -> str:
    """A table and, for several rows, bar charts of its headline columns."""
    body = table(
        records.columns,
        ([_table_cell(row.get(c)) for c in records.columns] for row in records.rows),
        records.numeric,
    )
    charts = [
        bar_chart(column, records.names, [float(row[column]) for row in records.rows])
        for column in records.charts
    ]
    if charts:
        body += f'<div class="charts">{"".join(charts)}</div>'
    return panel(records.title, body, f"{len(records.rows)} rows")


def _html(block: Block) -> str:
    if isinstance(block, Tiles):
        tiles = facts((k.replace("_", " "), figure(v)) for k, v in block.figures)
        return panel(block.title, tiles) if block.title else tiles
    if isinstance(block, Records):
        return _records_panel(block)
    return panel(block.title, f"<pre>{esc(block.value)}</pre>")


def benchmark(data: dict[str, Any], ident: str) -> str:
    """A benchmark result file, whatever its shape (its name is the section's title)."""
    return "".join(_html(block) for block in blocks({k: v for k, v in data.items() if k != "benchmark"}))
