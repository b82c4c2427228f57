"""Small HTML builders shared by every section: escaping, tables, badges, numbers."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

GOOD = {"ok", "holds", "conforms", "accept", "killed", "passed"}
BAD = {"violation", "violated", "diverges", "reject", "error", "survived", "failed", "crashed", "timed out"}
"""Verdict and status words by tone; both the older (conforms/diverges) and newer (ok/violation)
spellings, so documents from either side of a format change read the same."""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def tone(word: str) -> str:
    """``good``, ``bad`` or ``warn`` (incomplete, unverified, unknown, anything else)."""
    lowered = word.lower()
    return "good" if lowered in GOOD else "bad" if lowered in BAD else "warn"


def badge(word: str, big: bool = False) -> str:
    size = " big" if big else ""
    return f'<span class="badge {tone(word)}{size}">{esc(word)}</span>'


def number(value: float | int) -> str:
    """Integers and large figures with thousands separators, the rest to three or four digits."""
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0 or not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) < 1e-3:
        return f"{value:.2g}"
    return f"{value:.4g}" if abs(value) >= 1 else f"{value:.3g}"


def cell(value: object) -> str:
    """A JSON leaf (or short list of leaves) as table-cell text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return number(value)
    if value is None:
        return "–"
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(value) > 4 and len(numbers) == len(value):
            ordered = sorted(numbers)
            return f"{len(value)} values, median {number(ordered[len(ordered) // 2])}"
        return ", ".join(cell(item) for item in value)
    return str(value)


def figure(value: object) -> str:
    """``cell`` escaped, for HTML."""
    return esc(cell(value))


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: Sequence[bool] | None = None,
    row_classes: Iterable[str] | None = None,
) -> str:
    """A table of already-escaped cells; ``numeric`` columns are right-aligned."""
    align = list(numeric or [False] * len(headers))
    head = "".join(
        f"<th{' class=num' if n else ''}>{esc(h)}</th>" for h, n in zip(headers, align, strict=True)
    )
    classes = iter(row_classes or ())
    body = []
    for row in rows:
        css = next(classes, "")
        cells = "".join(f"<td{' class=num' if n else ''}>{c}</td>" for c, n in zip(row, align, strict=True))
        body.append(f"<tr{f' class={css!r}' if css else ''}>{cells}</tr>")
    table_html = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{table_html}</div>'


def facts(pairs: Iterable[tuple[str, str]]) -> str:
    """Label/value pairs as a compact grid of tiles (values already escaped)."""
    tiles = "".join(f'<div class="fact"><dt>{esc(k)}</dt><dd>{v}</dd></div>' for k, v in pairs)
    return f'<dl class="facts">{tiles}</dl>'


def meter(done: int, total: int) -> str:
    """A progress bar with ``done / total`` and the percentage."""
    share = done / total if total else 0.0
    fill = "good" if done == total else "warn"
    return (
        f'<div class="meter" title="{done} of {total}">'
        f'<div class="meter-fill {fill}" style="width:{share * 100:.1f}%"></div></div>'
        f'<span class="meter-text">{number(done)} / {number(total)} ({share:.0%})</span>'
    )


def section(title: str, body: str, kind: str, verdict: str | None = None, anchor: str = "") -> str:
    """One document's section: a heading with its kind and verdict, then the body."""
    verdict_html = badge(verdict, big=True) if verdict else ""
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return (
        f'<section class="document"{ident}><header class="doc-head"><div><div class="kind">{esc(kind)}</div>'
        f"<h2>{esc(title)}</h2></div>{verdict_html}</header>{body}</section>"
    )


def panel(title: str, body: str, note: str = "") -> str:
    """A titled block inside a section."""
    small = f' <span class="note">{note}</span>' if note else ""
    return f'<div class="panel"><h3>{esc(title)}{small}</h3>{body}</div>'
