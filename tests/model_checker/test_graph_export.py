"""`pot check --graph-out`: the state graph as DOT, GraphML and GEXF, read back with networkx."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from model_checker import export
from model_checker.checker import check
from model_checker.examples.liveness import mutex
from model_checker.examples.two_phase import two_phase
from model_checker.export import state_graph
from model_checker.graph import explore
from model_checker.model import Action, Model
from model_checker.trace import format_value
from pot.cli import main

BUGGY = "model_checker.examples.two_phase:two_phase"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pydot.dot_parser")  # its pyparsing calls
READERS: dict[str, Callable[[Path], Any]] = {
    ".dot": nx.nx_pydot.read_dot,
    ".graphml": nx.read_graphml,
    ".gexf": nx.read_gexf,
}


def _read(path: Path) -> nx.MultiDiGraph:
    """The graph file as networkx reads it, DOT's quotes removed."""
    graph = READERS[path.suffix](path)
    if path.suffix == ".dot":
        attributes = [data for _, data in graph.nodes(data=True)]
        attributes += [data for _, _, data in graph.edges(data=True)]
        for data in attributes:
            data.update({name: value.strip('"') for name, value in data.items()})
    return graph


def _marked(graph: nx.MultiDiGraph, mark: str) -> dict[Any, str]:
    return {node: data[mark] for node, data in graph.nodes(data=True) if mark in data}


@pytest.mark.parametrize("suffix", list(READERS))
def test_each_format_reads_back_with_every_state_and_transition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    target = tmp_path / f"mutex{suffix}"
    assert main(["check", "mutex", "--graph-out", str(target)]) == 0
    assert f"state graph written to {target}" in capsys.readouterr().err
    drawn = _read(target)
    expected = explore(mutex())
    assert drawn.number_of_nodes() == expected.num_states == 5
    assert drawn.number_of_edges() == expected.num_edges == 8
    labels = Counter(str(expected.label(label_id)) for label_id in expected.labels.tolist())
    assert Counter(data["label"] for _, _, data in drawn.edges(data=True)) == labels
    assert list(_marked(drawn, "initial")) == ["0"]
    initial = next(iter(mutex().init()))
    fields = {name: format_value(value) for name, value in mutex().record(initial).items()}
    assert {name: drawn.nodes["0"][name] for name in fields} == fields
    assert not _marked(drawn, "violates") and not _marked(drawn, "lasso")


def test_states_violating_an_invariant_are_marked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "buggy.graphml"
    argv = ["check", BUGGY, "--const", "commit_needs_all_prepared=False", "--graph-out", str(target)]
    assert main(argv) == 1
    model = two_phase(3, commit_needs_all_prepared=False)
    trace = check(model).counterexample
    assert trace is not None and trace.property == "TCConsistent"
    last = {name: format_value(value) for name, value in model.record(trace.steps[-1].state).items()}
    drawn = _read(target)
    violating = _marked(drawn, "violates")
    assert violating and set(violating.values()) == {"TCConsistent"}
    assert any(all(drawn.nodes[node][name] == value for name, value in last.items()) for node in violating)
    assert "0" not in violating


def test_a_liveness_counterexample_is_marked_as_a_lasso(tmp_path: Path) -> None:
    result = check(mutex(enter="weak"), record_graph=True)
    trace = result.counterexample
    assert trace is not None and trace.loop is not None and not trace.stutters
    drawn = state_graph(result)
    lasso_nodes = _marked(drawn, "lasso")
    assert len(lasso_nodes) == len(trace.steps) and set(lasso_nodes.values()) == {trace.property}
    lasso_edges = [data["label"] for _, _, data in drawn.edges(data=True) if "lasso" in data]
    taken = [str(step.label) for step in trace.steps[1:]] + [str(trace.loop_label)]
    assert Counter(lasso_edges) == Counter(taken)

    target = tmp_path / "mutex.dot"
    assert main(["check", "mutex", "--const", "enter=weak", "--graph-out", str(target)]) == 1
    written = _read(target)
    assert {node for node, data in written.nodes(data=True) if data.get("color") == "blue"} == {
        str(node) for node in lasso_nodes
    }
    assert sum(data.get("color") == "blue" for _, _, data in written.edges(data=True)) == len(taken)


def test_a_bounded_search_marks_the_states_it_left_unexpanded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "bounded.gexf"
    assert main(["check", "two-phase", "--max-states", "50", "--graph-out", str(target)]) == 0
    drawn = _read(target)
    assert drawn.number_of_nodes() == 50
    assert _marked(drawn, "unexpanded") and not _marked(drawn, "violates")


def test_a_field_named_like_a_mark_or_a_graphviz_attribute_is_renamed() -> None:
    model: Model[int] = Model(
        name="m",
        init=lambda: iter([0]),
        actions=(Action("Stay", lambda s: iter([((), s)])),),
        fields=lambda s: {"color": s, "lasso": s, "x": s},
    )
    drawn = state_graph(check(model, record_graph=True))
    assert drawn.nodes[0] == {"color_": "0", "lasso_": "0", "x": "0", "initial": True}


def test_a_graph_past_the_limit_is_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "GRAPH_STATE_LIMIT", 100)
    target = tmp_path / "g.graphml"
    assert main(["check", "two-phase", "--graph-out", str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not target.exists()
    assert captured.err.count("\n") == 1 and "more than 100 states" in captured.err
    assert main(["check", "two-phase", "--graph-out", str(target), "--max-states", "100"]) == 0
    assert _read(target).number_of_nodes() == 100


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--graph-out", "g.png"], "g.png: the file name must end in .dot, .graphml or .gexf"),
        (["--graph-out", "g"], "g: the file name must end in"),
        (["--graph-out", "g.dot", "--max-states", "10001"], "at most 10,000 states"),
        (["--graph-out", "g.dot", "--simulate", "3"], "not of --simulate"),
        (["--graph-out", "no/such/g.dot"], "no such directory"),
    ],
)
def test_graph_options_that_cannot_work_are_refused_before_the_search(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check", "two-phase", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err
    assert list(tmp_path.iterdir()) == []
