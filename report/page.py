"""The page: one HTML file holding its style, script and charts, so it opens anywhere, offline.

A Content-Security-Policy of ``default-src 'none'`` makes the browser refuse any fetch the
page might attempt; what it shows is exactly what the file holds, on an air-gapped auditor's
machine as on a CI artefact server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import PurePath
from typing import Any

from report import bench, sections
from report.documents import Document
from report.markup import badge, esc, section

RENDERERS: dict[str, tuple[str, Callable[[dict[str, Any], str], str]]] = {
    "check": ("Model check", sections.check),
    "conform": ("Conformance", sections.conform),
    "audit": ("Audit", sections.audit),
    "error": ("Failed run", sections.error),
    "trace": ("Counterexample trace", sections.trace),
    "benchmark": ("Benchmark", bench.benchmark),
}
"""Per kind of document: its label, and the function rendering its section."""

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _asset(name: str) -> str:
    return resources.files("report").joinpath("assets", name).read_text(encoding="utf-8")


def title(document: Document) -> str:
    """What the document is about: the model, the change, the benchmark, or the file."""
    data = document.data
    if document.kind == "check":
        return str(data.get("model", "model"))
    if document.kind == "conform":
        return f"{data.get('model', 'model')} · {data.get('mode', '')}"
    if document.kind == "audit":
        return str(data.get("change") or "change")
    if document.kind == "trace":
        meta = data.get("#meta") or {}
        return str(meta.get("source") or PurePath(document.source).name)
    if document.kind == "error":
        schema = str(data.get("schema", ""))
        command = schema.split("/")[0].removeprefix("pot-")
        return f"pot {command}" if command else PurePath(document.source).name
    return str(data.get("benchmark") or PurePath(document.source).stem)


def _verdict(document: Document) -> str | None:
    verdict = document.verdict
    return verdict.upper() if document.kind == "audit" and verdict else verdict


def _board(documents: Sequence[Document]) -> str:
    """One card per document, verdict first: the answer before the evidence."""
    cards = []
    for index, document in enumerate(documents):
        label = RENDERERS[document.kind][0]
        verdict = _verdict(document)
        shown = badge(verdict, big=True) if verdict else '<span class="badge neutral big">results</span>'
        cards.append(
            f'<a class="card" href="#doc-{index}"><div class="kind">{esc(label)}</div>'
            f'<div class="card-title">{esc(title(document))}</div>{shown}'
            f'<div class="source">{esc(document.source)}</div></a>'
        )
    return f'<nav class="board">{"".join(cards)}</nav>'


def render(documents: Sequence[Document]) -> str:
    """The whole page for ``documents``, in the order given."""
    bodies = []
    for index, document in enumerate(documents):
        label, body = RENDERERS[document.kind]
        bodies.append(
            section(
                title(document),
                body(document.data, f"doc-{index}"),
                label,
                _verdict(document),
                f"doc-{index}",
            )
        )
    names = ", ".join(title(d) for d in documents)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PoT report: {esc(names)}</title>
<style>{_asset("report.css")}</style></head>
<body><header class="page-head"><div class="brand">PoT verification report</div>
<div class="note">{len(documents)} document{"s" if len(documents) != 1 else ""}: {esc(names)}</div></header>
<main>{_board(documents)}{"".join(bodies)}</main>
<script>{_asset("report.js")}</script></body></html>
"""
