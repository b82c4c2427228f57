"""The explored state graph as a file graph viewers and tools open: DOT, GraphML or GEXF.

Nodes are the states, by id in breadth-first order, with each field as a string
attribute, formatted as traces print it (a field named like one of the marks
below or a Graphviz node attribute gets a trailing ``_``). Edges carry the
action ``label``. Marks, present only where they apply: ``initial`` on initial
states; ``violates`` on states where checked invariants are false (or that
deadlock), naming them; ``unexpanded`` on states the constraint or a bound left
unexpanded; ``lasso`` on the states and edges of a temporal property's
counterexample, naming the property. The DOT file also draws them: a node
labelled with its fields, initial states with a double border, violations in
red, lassos in bold blue.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pydot

from model_checker.checker import CheckResult
from model_checker.engine import fingerprint
from model_checker.graph import StateGraph
from model_checker.trace import Trace, format_value

GRAPH_STATE_LIMIT = 10_000
"""The most states a graph file holds: past that, viewers no longer show a readable picture."""

MARKS = ("initial", "violates", "unexpanded", "lasso")
_TAKEN = {*MARKS, "label", *pydot.NODE_ATTRIBUTES}
"""Attribute names a state field may not use as they are."""


def graph_format(path: str | Path) -> str:
    """The format ``path``'s suffix names (``.dot``, ``.graphml`` or ``.gexf``); ``ValueError`` otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in _WRITERS:
        raise ValueError(f"{path}: the file name must end in .dot, .graphml or .gexf")
    return suffix


def write_graph(path: str | Path, result: CheckResult) -> None:
    """Write ``result``'s state graph (``check(record_graph=True)``) in the format its suffix names."""
    _WRITERS[graph_format(path)](state_graph(result), path)


def state_graph(result: CheckResult) -> nx.MultiDiGraph:
    """``result``'s state graph as a networkx multigraph, with fields, labels and marks."""
    if result.graph is None:
        raise ValueError("the check did not record its state graph (check(record_graph=True))")
    graph, model = result.graph, result.model
    invariants = [(p.name, model.invariants[p.name]) for p in result.properties if p.kind == "invariant"]
    deadlocks = any(p.kind == "deadlock" for p in result.properties)
    initial = set(graph.initial_ids.tolist())
    out_degree = np.diff(graph.indptr)
    drawn = nx.MultiDiGraph()
    for state_id, state in enumerate(graph.states()):
        fields = {_field_name(name): format_value(value) for name, value in model.record(state).items()}
        expanded = bool(graph.expanded[state_id])
        violated = [name for name, holds in invariants if not holds(state)]
        if deadlocks and expanded and out_degree[state_id] == 0:
            violated.append("deadlock")
        marks = {"initial": state_id in initial, "violates": ",".join(violated), "unexpanded": not expanded}
        drawn.add_node(state_id, **fields, **{mark: value for mark, value in marks.items() if value})
    labels = [str(graph.label(label_id)) for label_id in range(len(graph.label_keys))]
    edges = zip(graph.sources.tolist(), graph.targets.tolist(), graph.labels.tolist(), strict=True)
    for source, target, label_id in edges:
        if target >= 0:  # -1: a bound dropped the target
            drawn.add_edge(source, target, label=labels[label_id])
    _mark_lassos(drawn, graph, [p.counterexample for p in result.properties if p.counterexample])
    return drawn


def _field_name(name: str) -> str:
    return f"{name}_" if name in _TAKEN else name


def _mark_lassos(drawn: nx.MultiDiGraph, graph: StateGraph[Any], traces: list[Trace[Any]]) -> None:
    """Name each lasso's property on its states and on the edges it takes."""
    ids = {fp: state_id for state_id, fp in enumerate(graph.fingerprints.tolist())}
    on_node: defaultdict[int, list[str]] = defaultdict(list)
    on_edge: defaultdict[tuple[int, int, Any], list[str]] = defaultdict(list)
    for trace in traces:
        if trace.loop is None:
            continue
        path = [ids[fingerprint(graph.model, step.state)] for step in trace.steps]
        for state_id in dict.fromkeys(path):
            on_node[state_id].append(trace.property)
        for edge in dict.fromkeys(_lasso_edges(drawn, trace, path)):
            on_edge[edge].append(trace.property)
    for state_id, names in on_node.items():
        drawn.nodes[state_id]["lasso"] = ",".join(names)
    for (source, target, key), names in on_edge.items():
        drawn.edges[source, target, key]["lasso"] = ",".join(names)


def _lasso_edges(
    drawn: nx.MultiDiGraph, trace: Trace[Any], path: list[int]
) -> Iterator[tuple[int, int, Any]]:
    """The ``(source, target, key)`` of each step of the lasso, the one closing its cycle included."""
    taken = zip(pairwise(path), trace.steps[1:], strict=True)
    steps = [(source, target, str(step.label)) for (source, target), step in taken]
    if trace.loop is not None and not trace.stutters:
        steps.append((path[-1], path[trace.loop], str(trace.loop_label)))
    for source, target, label in steps:
        yield next(
            (source, target, key)
            for key, data in drawn.get_edge_data(source, target).items()
            if data["label"] == label
        )


def _write_dot(drawn: nx.MultiDiGraph, path: str | Path) -> None:
    """DOT through pydot, every value quoted (pydot leaves quoting to the caller), marks drawn."""
    dot = nx.MultiDiGraph()
    for state_id, data in drawn.nodes(data=True):
        fields = [f"{name} = {value}" for name, value in data.items() if name not in MARKS]
        style: dict[str, Any] = {"label": "\n".join([f"#{state_id}", *fields])}
        if "initial" in data:
            style["peripheries"] = 2
        if "lasso" in data:
            style.update(color="blue", penwidth=2)
        if "violates" in data:
            style.update(color="red", fontcolor="red")
        dot.add_node(state_id, **_quoted({**data, **style}))
    for source, target, data in drawn.edges(data=True):
        style = {"color": "blue", "penwidth": 2} if "lasso" in data else {}
        dot.add_edge(source, target, **_quoted({**data, **style}))
    nx.nx_pydot.write_dot(dot, path)


def _quoted(attributes: dict[str, Any]) -> dict[str, str]:
    """DOT quoted strings: backslashes and quotes escaped, line breaks as DOT's ``\\n``."""
    return {name: f'"{_escaped(str(value))}"' for name, value in attributes.items()}


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_WRITERS: dict[str, Callable[[nx.MultiDiGraph, str | Path], None]] = {
    ".dot": _write_dot,
    ".graphml": nx.write_graphml,
    ".gexf": nx.write_gexf,
}
