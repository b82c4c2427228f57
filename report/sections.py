"""The body of each kind of document: what a person looks for first, then the detail.

Each function takes the parsed JSON document and an id unique on the page. Fields are read
with ``.get``: a document from an older or newer producer renders what it has.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from report.itf import explorer
from report.markup import badge, esc, facts, figure, meter, panel, table


def check(data: dict[str, Any], ident: str) -> str:
    """``pot check``: its figures, properties, coverage, counterexample, then each companion's."""
    companions: list[dict[str, Any]] = data.get("companions") or []
    parts = [_search_figures(data), _properties(data.get("properties") or [])]
    parts += _search_detail(data, f"{ident}-0")
    for index, part in enumerate(companions, start=1):
        figures = _search_figures(part)
        detail = "".join(_search_detail(part, f"{ident}-{index}"))
        title = f"Companion: {part.get('model', '?')}"
        verdict = str(part.get("verdict", "?"))
        parts.append(f'<div class="companion"><h3>{esc(title)} {badge(verdict)}</h3>{figures}{detail}</div>')
    return "".join(parts)


def _search_figures(data: dict[str, Any]) -> str:
    memory = data.get("memory") or {}
    collisions = data.get("fingerprint_collisions") or {}
    pairs = [
        ("search", esc(data.get("mode", "?"))),
        ("distinct states", figure(data.get("distinct_states"))),
        ("generated states", figure(data.get("generated_states"))),
        ("depth", figure(data.get("depth"))),
        ("time", f"{figure(data.get('seconds_total', data.get('seconds')))} s"),
        ("states / s", figure(data.get("states_per_second"))),
    ]
    per_state = (memory.get("bytes_per_state") or {}).get("total")
    if per_state is not None:
        pairs.append(("memory / state", f"{figure(per_state)} B"))
    if collisions.get("optimistic") is not None:
        pairs.append(("collision chance", esc(f"{collisions['optimistic']:.1e}")))
    pairs += [
        (name.replace("_", " "), figure(data[name])) for name in ("graph_edges", "sccs") if name in data
    ]
    constants = data.get("constants") or {}
    html = facts(pairs)
    if constants:
        html += (
            '<p class="constants">'
            + " ".join(
                f'<code><span class="key">{esc(k)}</span>={esc(_constant(v))}</code>'
                for k, v in constants.items()
            )
            + "</p>"
        )
    reason = data.get("incomplete_reason")
    if reason and data.get("verdict") == "violation":
        html += f'<p class="note">Not explored to the end: {esc(reason)}.</p>'
    elif reason:
        html += f'<p class="callout warn">Not decided: {esc(reason)}.</p>'
    return html


def _constant(value: Any) -> str:
    """A constant as ``--const`` would take it: words bare, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _properties(properties: Sequence[dict[str, Any]]) -> str:
    if not properties:
        return ""
    with_model = any("model" in prop for prop in properties)
    headers = ["property", "kind", "status"] + (["model"] if with_model else [])
    rows = [
        [f"<code>{esc(p.get('name', '?'))}</code>", esc(p.get("kind", "")), badge(str(p.get("status", "?")))]
        + ([esc(p.get("model", ""))] if with_model else [])
        for p in properties
    ]
    violated = sum(1 for p in properties if p.get("status") == "violated")
    note = f"{violated} violated" if violated else f"{len(properties)} checked"
    return panel("Properties", table(headers, rows), note)


def _search_detail(data: dict[str, Any], ident: str) -> list[str]:
    parts = [_coverage(data.get("coverage") or [])]
    if data.get("counterexample"):
        parts.append(explorer(data["counterexample"], f"{ident}-cex"))
    return parts


def _coverage(coverage: Sequence[dict[str, Any]]) -> str:
    """Per action, with a bar for its share of generated states; never-enabled actions flagged."""
    if not coverage:
        return ""
    most = max((int(c.get("generated") or 0) for c in coverage), default=0) or 1
    rows, classes = [], []
    for entry in coverage:
        never = entry.get("never_enabled", entry.get("enabled") == 0)
        bar = f'<span class="bar" style="width:{100 * int(entry.get("generated") or 0) / most:.1f}%"></span>'
        flag = ' <span class="badge bad">never enabled</span>' if never else ""
        rows.append(
            [
                f"<code>{esc(entry.get('action', '?'))}</code>{flag}",
                figure(entry.get("enabled")),
                figure(entry.get("generated")),
                figure(entry.get("new_states")),
                f'<div class="inline-bar">{bar}</div>',
            ]
        )
        classes.append("never" if never else "")
    unused = classes.count("never")
    note = f'<span class="bad-text">{unused} never enabled</span>' if unused else "every action was enabled"
    return panel(
        "Coverage per action",
        table(
            ["action", "enabled", "generated", "new states", ""],
            rows,
            [False, True, True, True, False],
            classes,
        ),
        note,
    )


def conform(data: dict[str, Any], ident: str) -> str:
    """``pot conform``: transitions covered, notes, gaps, divergences, mutants."""
    covered, total = data.get("transitions_covered"), data.get("transitions_total")
    coverage = meter(int(covered or 0), int(total)) if isinstance(total, int) else figure(covered)
    pairs = [
        ("model", esc(data.get("model", "?"))),
        ("mode", esc(data.get("mode", "?"))),
        ("spec steps", figure(data.get("steps"))),
        ("time", f"{figure(data.get('seconds'))} s"),
    ]
    graph = f" of the {esc(data['graph'])} graph" if data.get("graph") else ""
    parts = [facts(pairs), panel("Transitions covered", f'<div class="coverage">{coverage}</div>', graph)]
    if data.get("incomplete_reason"):
        parts.append(f'<p class="callout warn">Not decided: {esc(data["incomplete_reason"])}.</p>')
    parts += [f'<p class="callout warn">{esc(note)}</p>' for note in data.get("notes") or []]
    gaps = data.get("gaps") or []
    if gaps:
        rows = [
            [f"<code>{esc(g.get('action', '?'))}</code>", esc(g.get("reason", "")), figure(g.get("count"))]
            for g in gaps
        ]
        parts.append(
            panel(
                "Gaps",
                table(["action", "reason", "times"], rows, [False, False, True]),
                "spec steps the bridge cannot realise",
            )
        )
    for number_, divergence in enumerate(data.get("divergences") or [], start=1):
        parts.append(divergence_panel(divergence, f"Divergence {number_}"))
    parts.append(_mutants(data.get("mutants") or []))
    return "".join(parts)


def divergence_panel(divergence: dict[str, Any], title: str) -> str:
    """Where spec and implementation parted: the field diff, and the spec trace leading there."""
    step = divergence.get("step")
    head = f'<p class="lead">At step {esc(step)}: <code>{esc(divergence.get("action", "?"))}</code></p>'
    rows = [
        [
            f"<code>{esc(d.get('field', '?'))}</code>",
            f'<code class="spec">{esc(d.get("spec"))}</code>',
            f'<code class="impl">{esc(d.get("impl"))}</code>',
        ]
        for d in divergence.get("diff") or []
    ]
    diff = (
        table(["field", "spec", "implementation"], rows)
        if rows
        else '<p class="note">No field diff recorded.</p>'
    )
    trace: list[str] = divergence.get("trace") or []
    at = step if isinstance(step, int) and 0 <= step < len(trace) else len(trace) - 1
    items = "".join(
        f"<li{' class=diverged' if index == at else ''}><code>{esc(label)}</code></li>"
        for index, label in enumerate(trace)
    )
    path = f'<h4>Spec trace to it</h4><ol class="spec-trace" start="0">{items}</ol>' if trace else ""
    note = f"{divergence['steps_run']} steps run in all" if "steps_run" in divergence else ""
    heading = f'<h3>{esc(title)} <span class="note">{esc(note)}</span></h3>'
    return f'<div class="panel divergence">{heading}{head}{diff}{path}</div>'


def _mutants(mutants: Sequence[dict[str, Any]]) -> str:
    """Planted bugs and whether the suite caught each (``outcome``, or the older ``killed`` flag)."""
    if not mutants:
        return ""
    outcomes = [str(m.get("outcome") or ("killed" if m.get("killed") else "survived")) for m in mutants]
    rows = [
        [
            f"<code>{esc(m.get('name', '?'))}</code>",
            badge(outcome),
            esc(m.get("mode") or ""),
            figure(m.get("steps")),
            esc(m.get("detail") or ""),
        ]
        for m, outcome in zip(mutants, outcomes, strict=True)
    ]
    killed = outcomes.count("killed")
    body = f'<div class="coverage">{meter(killed, len(mutants))}</div>' + table(
        ["mutant", "outcome", "caught by", "steps", "detail"], rows, [False, False, False, True, False]
    )
    return panel("Planted bugs (mutants)", body, f"{killed} of {len(mutants)} killed")


def audit(data: dict[str, Any], ident: str) -> str:
    """``pot audit``: why the verdict, the cases against the base, the tests, the lines nothing ran."""
    touched: list[str] = data.get("touched") or []
    scope = "pot_impl only" if data.get("pot_impl_only") else "touches more than pot_impl"
    base = data.get("base")
    pairs = [
        ("base", f"<code>{esc(str(base)[:12])}</code>" if base else "–"),
        ("files touched", figure(len(touched))),
        ("scope", esc(scope) if touched else "nothing to judge"),
        ("time", f"{figure(data.get('seconds'))} s"),
    ]
    parts = [facts(pairs)]
    reasons: list[str] = data.get("reasons") or []
    if reasons:
        parts.append(
            panel("Why", '<ul class="reasons">' + "".join(f"<li>{esc(r)}</li>" for r in reasons) + "</ul>")
        )
    parts.append(_unexecuted(data.get("changed_statements_not_executed") or [], data.get("verdict")))
    parts.append(_cases(data.get("cases") or [], data.get("base_cases")))
    if data.get("first_divergence"):
        first = data["first_divergence"]
        parts.append(
            divergence_panel(first, f"First divergence: {first.get('model', '?')} {first.get('mode', '')}")
        )
    parts.append(_tests(data.get("tests")))
    if touched:
        files = "".join(f"<li><code>{esc(path)}</code></li>" for path in touched)
        parts.append(
            f'<details class="panel"><summary>Files touched ({len(touched)})</summary>'
            f"<ul>{files}</ul></details>"
        )
    return "".join(parts)


def _unexecuted(statements: Sequence[str], verdict: Any) -> str:
    """``path:line`` entries grouped by file, lines in order."""
    if not statements:
        return (
            ""
            if verdict == "reject"
            else panel("Changed lines", '<p class="note">Every changed line was executed.</p>')
        )
    by_file: dict[str, list[int]] = {}
    for entry in statements:
        path, _, line = entry.rpartition(":")
        by_file.setdefault(path, []).append(int(line) if line.isdigit() else 0)
    rows = [
        [f"<code>{esc(path)}</code>", esc(", ".join(str(n) for n in sorted(lines)))]
        for path, lines in by_file.items()
    ]
    return panel(
        "Changed lines nothing executed",
        table(["file", "lines"], rows),
        f"{len(statements)} statements: nothing judged them",
    )


def _cases(cases: Sequence[dict[str, Any]], base_cases: Sequence[dict[str, Any]] | None) -> str:
    if not cases:
        return ""
    with_base = base_cases is not None
    rows = []
    for index, case in enumerate(cases):
        covered = figure(case.get("transitions_covered"))
        if with_base and base_cases is not None and index < len(base_cases):
            covered += (
                f' <span class="note">base {figure(base_cases[index].get("transitions_covered"))}</span>'
            )
        rows.append(
            [
                esc(case.get("model", "?")),
                esc(case.get("mode", "")),
                badge(str(case.get("verdict", "?"))),
                figure(case.get("steps")),
                covered,
                f"{figure(case.get('seconds'))} s",
            ]
        )
    html = table(
        ["model", "mode", "verdict", "steps", "transitions covered", "time"],
        rows,
        [False, False, False, True, True, True],
    )
    for case in cases:
        if case.get("traceback"):
            html += (
                f"<details><summary>{esc(case.get('model'))} {esc(case.get('mode'))}: "
                f"{esc(case.get('verdict'))}</summary>"
                f"<pre>{esc(case['traceback'])}</pre></details>"
            )
    return panel("Conformance cases", html)


def _tests(tests: dict[str, Any] | None) -> str:
    if not tests:
        return ""
    files: list[str] = tests.get("files") or []
    outcome = badge("passed" if tests.get("passed") else "failed")
    listing = "".join(f"<li><code>{esc(f)}</code></li>" for f in files) or "<li>none import the change</li>"
    failures = (
        f"<details open><summary>Failures</summary><pre>{esc(tests['failures'])}</pre></details>"
        if tests.get("failures")
        else ""
    )
    return panel(
        "Tests importing the change",
        f"<p>{outcome} in {figure(tests.get('seconds'))} s</p><ul>{listing}</ul>{failures}",
    )


def error(data: dict[str, Any], ident: str) -> str:
    """A run that could not be carried out: the message, nothing else exists."""
    return f'<p class="callout bad">{esc(data.get("error", "no message"))}</p>'


def trace(data: dict[str, Any], ident: str) -> str:
    """A bare ITF file (``pot check --trace-out``)."""
    return explorer(data, f"{ident}-cex")
