"""Benchmark results: every table the file holds, with bar charts of its headline measures.

The result files differ from one benchmark to the next, so nothing here names a benchmark.
A list of records is a table (nested figures flattened to ``healthy.tx_per_s``, nested
lists of records made tables of their own), a group of plain figures is a row of tiles,
and the columns a reader compares across rows (speed-ups, ratios, rates, times, memory)
are also drawn, because bars are read at a glance where digits are read one by one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from report.markup import cell, esc, facts, figure, number, panel, table

HEADLINE = ("speedup", "score", "ratio", "overhead", "rate", "per_s", "seconds", "_s", "_ms", "_us", "mb")
"""Column-name fragments of the measures worth a chart, most telling first."""

CHARTS_PER_TABLE = 3
LONG_TEXT = 60
"""Characters beyond which text is prose: left out of a row's label, given room in a table."""

Row = dict[str, Any]


def _is_leaf(value: Any) -> bool:
    """A figure a cell can show: a scalar, or a list of scalars."""
    scalar = (str, int, float, bool, type(None))
    return isinstance(value, scalar) or (
        isinstance(value, list) and all(isinstance(v, scalar) for v in value)
    )


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _flatten(record: Row, prefix: str = "") -> tuple[Row, dict[str, list[Row]]]:
    """A record's leaves under dotted names, and its nested lists of records by name."""
    leaves: Row = {}
    nested: dict[str, list[Row]] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if _is_leaf(value):
            leaves[name] = value
        elif _is_records(value):
            nested[name] = value
        elif isinstance(value, dict):
            inner, deeper = _flatten(value, f"{name}.")
            leaves.update(inner)
            nested.update(deeper)
    return leaves, nested


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _label_columns(rows: Sequence[Row], columns: Sequence[str]) -> list[str]:
    """The fewest leading identifying columns (short text, numbers, flags) that tell rows apart."""
    chosen: list[str] = []
    for column in columns:
        values = [row.get(column) for row in rows]
        if any(isinstance(v, list) or (isinstance(v, str) and len(v) > LONG_TEXT) for v in values):
            continue
        chosen.append(column)
        if len({tuple(_label_part(row, c) for c in chosen) for row in rows}) == len(rows) or len(chosen) == 3:
            break
    return chosen


def _label_part(row: Row, column: str) -> str:
    value = row.get(column)
    if value is None or isinstance(value, str):
        return value or ""
    return f"{column.rsplit('.', 1)[-1]}={cell(value)}"


def _chart_columns(rows: Sequence[Row], columns: Sequence[str], labels: Sequence[str]) -> list[str]:
    """Up to ``CHARTS_PER_TABLE`` headline columns, one per fragment of ``HEADLINE`` before a second."""
    candidates = [
        c
        for c in columns
        if c not in labels
        and all(_numeric(row.get(c)) for row in rows)
        and len({row.get(c) for row in rows}) > 1
    ]
    chosen: list[str] = []
    while len(chosen) < CHARTS_PER_TABLE:
        before = len(chosen)
        for fragment in HEADLINE:
            match = next((c for c in candidates if fragment in c.lower() and c not in chosen), None)
            if match is not None and len(chosen) < CHARTS_PER_TABLE:
                chosen.append(match)
        if len(chosen) == before:
            break
    return chosen


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


def _records_panel(title: str, records: Sequence[Row]) -> Iterator[str]:
    """A table of ``records``, its charts, then the tables nested in its rows."""
    flat = [_flatten(record) for record in records]
    rows = [leaves for leaves, _ in flat]
    columns = list(dict.fromkeys(column for row in rows for column in row))
    labels = _label_columns(rows, columns)
    names = [
        " ".join(filter(None, (_label_part(row, c) for c in labels))) or f"#{i + 1}"
        for i, row in enumerate(rows)
    ]
    numeric = [all(_numeric(row.get(c)) or row.get(c) is None for row in rows) for c in columns]
    body = table(columns, ([_table_cell(row.get(c)) for c in columns] for row in rows), numeric)
    if len(rows) > 1:
        charts = [
            bar_chart(column, names, [float(row[column]) for row in rows])
            for column in _chart_columns(rows, columns, labels)
        ]
        if charts:
            body += f'<div class="charts">{"".join(charts)}</div>'
    yield panel(title, body, f"{len(rows)} rows")
    children: dict[str, list[Row]] = {}
    for name, (_, nested) in zip(names, flat, strict=True):
        for key, items in nested.items():
            children.setdefault(key, []).extend({"of": name, **item} for item in items)
    for key, items in children.items():
        yield from _records_panel(f"{title} › {key}", items)


def _blocks(value: dict[str, Any], path: str) -> Iterator[str]:
    """Tiles for a group's plain figures, then a panel per table or sub-group, in file order."""
    figures = {k: v for k, v in value.items() if _is_leaf(v)}
    if figures:
        tiles = facts((k.replace("_", " "), figure(v)) for k, v in figures.items())
        yield panel(path, tiles) if path else tiles
    for key, item in value.items():
        where = f"{path} › {key}" if path else key
        if _is_records(item):
            yield from _records_panel(where, item)
        elif isinstance(item, dict) and item and all(isinstance(v, dict) for v in item.values()):
            yield from _records_panel(where, [{"": k, **v} for k, v in item.items()])
        elif isinstance(item, dict):
            yield from _blocks(item, where)
        elif isinstance(item, list) and not _is_leaf(item):
            yield panel(where, f"<pre>{esc(item)}</pre>")


def benchmark(data: dict[str, Any], ident: str) -> str:
    """A benchmark result file, whatever its shape (its name is the section's title)."""
    return "".join(_blocks({k: v for k, v in data.items() if k != "benchmark"}, ""))
