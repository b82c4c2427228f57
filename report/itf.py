"""ITF traces as a step-by-step explorer, with each state's changes marked.

Values read as ``pot check`` prints them, in TLA+ notation: tuples and sequences as
``<<a, b>>``, sets as ``{a, b}``, records and maps as ``[k ↦ v]``; ``#bigint`` and plain JSON
numbers alike. Collections of records with the same fields (PBFT's replicas, say) become a
small table, one row per element, because a row per replica is what a reader compares.

Every step is rendered here, visible; the page's script then shows one step at a time. The
page therefore still reads, as a list of steps, where scripts do not run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from report.markup import esc

UNCHANGED: Any = object()
"""``before`` of a value with nothing to compare against: rendered without marks."""

DIFF_DEPTH = 4
"""How deep a change is located (``replicas[1].prepares``) before the whole value is named."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _tag(value: Any) -> str | None:
    """The ITF type of a JSON value: ``#tup``, ``#set``, ``#map``, ``#bigint``, ``record``, ``list``."""
    if isinstance(value, list):
        return "list"
    if not isinstance(value, dict):
        return None
    special: list[str] = [key for key in value if key.startswith("#")]
    return special[0] if len(value) == 1 and special else "record"


def _items(value: Any) -> list[tuple[Any, Any]]:
    """A sequence's (index, item) or a map's (key, value) pairs."""
    tag = _tag(value)
    if tag == "list":
        return list(enumerate(value))
    if tag == "#tup":
        return list(enumerate(value["#tup"]))
    return [(key, item) for key, item in value["#map"]]


def _grid_fields(value: Any) -> list[str] | None:
    """The shared fields when ``value`` is a non-empty sequence or map of records, else None."""
    if _tag(value) not in ("list", "#tup", "#map"):
        return None
    items = [item for _, item in _items(value)]
    if not items or any(_tag(item) != "record" for item in items):
        return None
    fields = list(items[0])
    return fields if all(list(item) == fields for item in items) else None


def text(value: Any) -> str:
    """A value as one line of plain text (for keys and titles)."""
    tag = _tag(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if tag is None:
        return str(value)
    if tag == "#bigint":
        return str(value["#bigint"])
    if tag in ("list", "#tup"):
        return "<<" + ", ".join(text(item) for _, item in _items(value)) + ">>"
    if tag == "#set":
        return "{" + ", ".join(text(item) for item in value["#set"]) + "}"
    if tag == "#map":
        return "[" + ", ".join(f"{text(k)} ↦ {text(v)}" for k, v in value["#map"]) + "]"
    if tag == "record":
        return "[" + ", ".join(f"{k} ↦ {text(v)}" for k, v in value.items()) + "]"
    return text(value[tag])  # #unserializable and tags newer than this renderer: their payload


COLLECTIONS = ("list", "#tup", "#set", "#map", "record")
SHORT = 24
"""Characters up to which a collection is kept on one line."""


def render(value: Any, before: Any = UNCHANGED) -> str:
    """``value`` as HTML; where ``before`` is given, what differs from it is marked."""
    tag = _tag(value)
    changed = before is not UNCHANGED and before != value
    if changed and (tag != _tag(before) or tag not in COLLECTIONS):
        return f"{_mark('delta', render(value))} {_mark('was', render(before))}"
    base = before if changed else UNCHANGED
    if tag not in COLLECTIONS:
        return esc(text(value))
    fields = _grid_fields(value)
    if fields is not None and (base is UNCHANGED or _grid_fields(base) == fields):
        return _grid(value, fields, base)
    shown = _set(value, base) if tag == "#set" else _collection(value, base)
    # A short value such as <<0, 1, 1>> reads as one word: never broken across lines.
    return f'<span class="short">{shown}</span>' if len(text(value)) <= SHORT else shown


def _mark(kind: str, inner: str) -> str:
    return f'<span class="{kind}">{inner}</span>'


def _set(value: Any, before: Any) -> str:
    """A set; against ``before``, the elements it gained and (struck through) lost."""
    if before is UNCHANGED:
        return "{" + ", ".join(render(item) for item in value["#set"]) + "}"
    gained, lost = _set_delta(before, value)
    fresh = {_canonical(item) for item in gained}
    parts = [
        _mark("added", render(item)) if _canonical(item) in fresh else render(item) for item in value["#set"]
    ]
    parts += [_mark("removed", render(item)) for item in lost]
    return "{" + ", ".join(parts) + "}"


def _set_delta(before: Any, after: Any) -> tuple[list[Any], list[Any]]:
    """The elements of set ``after`` that ``before`` lacks, and those of ``before`` it lost."""
    old = {_canonical(item) for item in before["#set"]}
    new = {_canonical(item) for item in after["#set"]}
    return (
        [item for item in after["#set"] if _canonical(item) not in old],
        [item for item in before["#set"] if _canonical(item) not in new],
    )


def _pairs(value: Any) -> list[tuple[Any, Any]]:
    """A record's (field, value), a sequence's (index, item) or a map's (key, value)."""
    return list(value.items()) if _tag(value) == "record" else _items(value)


def _matched(value: Any, before: Any) -> list[tuple[str, Any, Any, Any]]:
    """``(status, key, item, old item)`` per entry, matched by key (a sequence's by index): status
    ``same`` (compare with the old item), ``added`` or ``removed``; all ``same`` without ``before``."""
    if before is UNCHANGED:
        return [("same", key, item, UNCHANGED) for key, item in _pairs(value)]
    old = {_canonical(key): item for key, item in _pairs(before)}
    new = {_canonical(key) for key, _ in _pairs(value)}
    entries = [
        ("same", key, item, old[_canonical(key)])
        if _canonical(key) in old
        else ("added", key, item, UNCHANGED)
        for key, item in _pairs(value)
    ]
    return entries + [
        ("removed", key, item, UNCHANGED) for key, item in _pairs(before) if _canonical(key) not in new
    ]


def _collection(value: Any, before: Any) -> str:
    """Sequences, maps and records inline, each entry against the old entry of the same key."""
    tag = _tag(value)
    parts = []
    for status, key, item, was in _matched(value, before):
        shown = render(item, was)
        entry = shown if tag in ("list", "#tup") else f"{_key(key, tag)} ↦ {shown}"
        parts.append(entry if status == "same" else _mark(status, entry))
    opening, closing = ("&lt;&lt;", "&gt;&gt;") if tag in ("list", "#tup") else ("[", "]")
    return opening + ", ".join(parts) + closing


def _key(key: Any, tag: str | None) -> str:
    return f'<span class="key">{esc(key if tag == "record" else text(key))}</span>'


def _grid(value: Any, fields: list[str], before: Any) -> str:
    """A sequence or map of records as a table: one row per element, one column per field."""
    head = "".join(f"<th>{esc(name)}</th>" for name in fields)
    rows = []
    for status, key, record, was in _matched(value, before):
        cells = []
        for name in fields:
            old = was[name] if was is not UNCHANGED else UNCHANGED
            changed = old is not UNCHANGED and old != record[name]
            cells.append(f"<td{' class=changed' if changed else ''}>{render(record[name], old)}</td>")
        css = "" if status == "same" else f' class="{status}-row"'
        rows.append(f'<tr{css}><th class="index">{esc(text(key))}</th>{"".join(cells)}</tr>')
    return (
        f'<table class="grid"><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def changes(before: Any, after: Any, path: str, depth: int = DIFF_DEPTH) -> list[tuple[str, Any, Any]]:
    """``(path, old, new)`` for each changed part, located as deep as ``depth`` allows."""
    if before == after:
        return []
    tag = _tag(after)
    if depth > 0 and tag == _tag(before) and tag in ("record", "#map", "#tup", "list"):
        old, new = _pairs(before), _pairs(after)
        if [_canonical(k) for k, _ in old] == [_canonical(k) for k, _ in new]:
            found = []
            for (key, was), (_, now) in zip(old, new, strict=True):
                where = f"{path}.{key}" if tag == "record" else f"{path}[{text(key)}]"
                found += changes(was, now, where, depth - 1)
            return found
    return [(path, before, after)]


def describe_change(path: str, before: Any, after: Any) -> str:
    """``path`` with what a set gained and lost, or its new value beside the old one."""
    label = f'<code class="path">{esc(path)}</code>'
    if _tag(before) == _tag(after) == "#set":
        gained, lost = _set_delta(before, after)
        parts = [
            _mark(kind, f"{sign} {{{', '.join(render(item) for item in items)}}}")
            for kind, sign, items in (("added", "+", gained), ("removed", "−", lost))
            if items
        ]
        return f"{label} {' '.join(parts)}"
    return f"{label} = {_mark('delta', render(after))} {_mark('was', render(before))}"


def explorer(trace: dict[str, Any], ident: str) -> str:
    """The stepping view of one ITF document (``ident`` keeps several on one page apart)."""
    states: list[dict[str, Any]] = trace.get("states") or []
    if not states:
        return '<p class="note">The trace has no states.</p>'
    names: list[str] = list(trace.get("vars") or [name for name in states[0] if name != "#meta"])
    meta = trace.get("#meta") or {}
    loop = trace.get("loop")
    loop = loop if isinstance(loop, int) and 0 <= loop < len(states) else None
    shape = "trace" if loop is None else "lasso"
    heading = str(meta.get("description") or "trace")
    summary = f"{shape} of {len(states)} states" + ("" if loop is None else f", cycle from step {loop + 1}")
    steps = [_step(states, names, index, loop, meta) for index in range(len(states))]
    timeline = "".join(_timeline_entry(state, index, loop) for index, state in enumerate(states))
    return f"""<div class="explorer" id="{esc(ident)}" data-steps="{len(states)}" tabindex="0">
<div class="explorer-head"><div><div class="kind">counterexample</div>
<h3>{esc(heading[:1].upper() + heading[1:])}</h3>
<div class="note">{esc(summary)} · use ← → to step</div></div>
<div class="controls"><button type="button" data-go="first" title="first step (Home)">« First</button>
<button type="button" data-go="prev" title="previous step (←)">◀ Previous</button>
<span class="position" aria-live="polite">step 1 of {len(states)}</span>
<button type="button" data-go="next" title="next step (→)">Next ▶</button>
<button type="button" data-go="last" title="last step (End)">Last »</button>
<label class="toggle"><input type="checkbox" data-only-changed> only changed fields</label></div></div>
<div class="explorer-body"><ol class="timeline">{timeline}</ol>
<div class="steps">{"".join(steps)}</div></div></div>"""


def _action(state: dict[str, Any], index: int) -> str:
    action = (state.get("#meta") or {}).get("action")
    return str(action) if action is not None else ("Initial state" if index == 0 else "(no action label)")


def _timeline_entry(state: dict[str, Any], index: int, loop: int | None) -> str:
    classes = ["in-cycle"] if loop is not None and index >= loop else []
    if index == loop:
        classes.append("cycle-start")
    marker = '<span class="cycle-mark" title="the cycle starts here">↻</span>' if index == loop else ""
    css = f' class="{" ".join(classes)}"' if classes else ""
    return (
        f'<li{css} data-step="{index}"><button type="button" data-step="{index}">'
        f'<span class="num">{index + 1}</span><span class="label">{esc(_action(state, index))}</span>'
        f"{marker}</button></li>"
    )


def _step(
    states: Sequence[dict[str, Any]], names: Sequence[str], index: int, loop: int | None, meta: dict[str, Any]
) -> str:
    state = states[index]
    previous = states[index - 1] if index else None
    changed = [name for name in names if previous is not None and previous.get(name) != state.get(name)]
    markers = ""
    if index == loop:
        markers += '<span class="badge loop cycle-start-badge">↻ the cycle starts here</span>'
    if loop is not None and index >= loop:
        place = f"step {index - loop + 1} of {len(states) - loop}"
        markers += f'<span class="badge loop in-cycle-badge">in the cycle ({place})</span>'
    rows = []
    for name in names:
        value = render(state.get(name), UNCHANGED if previous is None else previous.get(name))
        css = ' class="changed"' if name in changed else ""
        rows.append(f'<tr{css} data-var="{esc(name)}"><th>{esc(name)}</th><td>{value}</td></tr>')
    if previous is None:
        summary = '<p class="note">The initial state, every field in full.</p>'
    else:
        found = [c for name in changed for c in changes(previous.get(name), state.get(name), name)]
        items = "".join(f"<li>{describe_change(*change)}</li>" for change in found)
        summary = f'<ul class="changes">{items}</ul>' if items else '<p class="note">No field changed.</p>'
    closing = ""
    if loop is not None and index == len(states) - 1:
        by = meta.get("loop_action")
        how = f" by <code>{esc(by)}</code>" if by else ""
        if loop == index and not by:
            closing = '<p class="closing">↻ then stays in this state forever</p>'
        else:
            closing = f'<p class="closing">↻ then back to step {loop + 1}{how}, forever</p>'
    return f"""<article class="step" data-step="{index}">
<h4><span class="num">Step {index + 1}</span> {esc(_action(state, index))} {markers}</h4>
{summary}<table class="state">{"".join(rows)}</table>{closing}</article>"""
