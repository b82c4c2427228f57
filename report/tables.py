"""Benchmark result files as tables and figures, whatever their shape, for any renderer.

The result files differ from one benchmark to the next, so nothing here names a benchmark.
A list of records is a table (nested figures flattened to ``healthy.tx_per_s``, nested
lists of records made tables of their own), a group of plain figures is a set of tiles,
and the columns a reader compares across rows (speed-ups, ratios, rates, times, memory)
are named as the ones worth a chart. The HTML report (``report.bench``) and the generated
``docs/benchmarks.md`` (``benchmarks.document``) render the same blocks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from report.markup import cell

HEADLINE = ("speedup", "score", "ratio", "overhead", "rate", "per_s", "seconds", "_s", "_ms", "_us", "mb")
"""Column-name fragments of the measures worth a chart, most telling first."""

CHARTS_PER_TABLE = 3
LONG_TEXT = 60
"""Characters beyond which text is prose: left out of a row's label, given room in a table."""

Row = dict[str, Any]


@dataclass(frozen=True)
class Tiles:
    """A group's plain figures, by name."""

    title: str
    figures: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Records:
    """A table: its columns, rows, a short name per row, and the columns worth a chart."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    names: tuple[str, ...]
    numeric: tuple[bool, ...]
    charts: tuple[str, ...]


@dataclass(frozen=True)
class Unshaped:
    """A list that is neither figures nor records, shown as it is."""

    title: str
    value: Any


Block = Tiles | Records | Unshaped


def is_leaf(value: Any) -> bool:
    """A figure a cell can show: a scalar, or a list of scalars."""
    scalar = (str, int, float, bool, type(None))
    return isinstance(value, scalar) or (
        isinstance(value, list) and all(isinstance(v, scalar) for v in value)
    )


def is_numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _flatten(record: Row, prefix: str = "") -> tuple[Row, dict[str, list[Row]]]:
    """A record's leaves under dotted names, and its nested lists of records by name."""
    leaves: Row = {}
    nested: dict[str, list[Row]] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if is_leaf(value):
            leaves[name] = value
        elif _is_records(value):
            nested[name] = value
        elif isinstance(value, dict):
            inner, deeper = _flatten(value, f"{name}.")
            leaves.update(inner)
            nested.update(deeper)
    return leaves, nested


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
        and all(is_numeric(row.get(c)) for row in rows)
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


def _records(title: str, records: Sequence[Row]) -> Iterator[Block]:
    """A table of ``records``, then the tables nested in its rows."""
    flat = [_flatten(record) for record in records]
    rows = [leaves for leaves, _ in flat]
    columns = list(dict.fromkeys(column for row in rows for column in row))
    labels = _label_columns(rows, columns)
    names = [
        " ".join(filter(None, (_label_part(row, c) for c in labels))) or f"#{i + 1}"
        for i, row in enumerate(rows)
    ]
    numeric = [all(is_numeric(row.get(c)) or row.get(c) is None for row in rows) for c in columns]
    charts = _chart_columns(rows, columns, labels) if len(rows) > 1 else []
    yield Records(title, tuple(columns), tuple(rows), tuple(names), tuple(numeric), tuple(charts))
    children: dict[str, list[Row]] = {}
    for name, (_, nested) in zip(names, flat, strict=True):
        for key, items in nested.items():
            children.setdefault(key, []).extend({"of": name, **item} for item in items)
    for key, items in children.items():
        yield from _records(f"{title} › {key}", items)


def blocks(value: dict[str, Any], path: str = "") -> Iterator[Block]:
    """Tiles for a group's plain figures, then a table per list of records or sub-group, in file order."""
    figures = tuple((k, v) for k, v in value.items() if is_leaf(v))
    if figures:
        yield Tiles(path, figures)
    for key, item in value.items():
        where = f"{path} › {key}" if path else key
        if _is_records(item):
            yield from _records(where, item)
        elif isinstance(item, dict) and item and all(isinstance(v, dict) for v in item.values()):
            yield from _records(where, [{"": k, **v} for k, v in item.items()])
        elif isinstance(item, dict):
            yield from blocks(item, where)
        elif isinstance(item, list) and not is_leaf(item):
            yield Unshaped(where, item)
