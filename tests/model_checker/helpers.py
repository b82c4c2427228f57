"""Test helpers: models from explicit graphs, a brute-force liveness oracle, a lasso validator."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import combinations, pairwise
from typing import Any, NamedTuple

import pytest
from hypothesis import strategies as st

from model_checker import engine
from model_checker.checker import CheckResult
from model_checker.model import Action, Fairness, Label, Model, Property
from model_checker.trace import Trace


class Point(NamedTuple):
    """A NamedTuple among generated values."""

    x: Any
    y: Any


def nested_values(
    atoms: st.SearchStrategy[Any], *containers: st.SearchStrategy[Any], max_leaves: int
) -> st.SearchStrategy[Any]:
    """``atoms`` nested in tuples, frozensets, Points and ``containers``."""
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5).map(tuple),
            st.lists(inner, max_size=5).map(frozenset),  # no uniqueness filter, whose retries repr it
            st.tuples(inner, inner).map(lambda pair: Point(*pair)),
            *containers,
        ),
        max_leaves=max_leaves,
    )


Edges = Mapping[int, Sequence[tuple[str, int]]]
"""state -> [(action name, target)]; the action's parameter is the target."""

ACTIONS = ("A", "B")


def graph_model(
    edges: Edges,
    initial: Sequence[int],
    *,
    properties: Sequence[Property[int]] = (),
    fairness: Sequence[Fairness] = (),
    invariants: Mapping[str, Any] | None = None,
) -> Model[int]:
    """A model whose states are ints and whose transitions are exactly ``edges``."""

    def family(name: str) -> Any:
        def step(state: int) -> Iterator[tuple[tuple[int], int]]:
            for action, target in edges.get(state, ()):
                if action == name:
                    yield (target,), target

        return step

    return Model(
        name="graph",
        init=lambda: iter(initial),
        actions=tuple(Action(name, family(name), ("to",)) for name in ACTIONS),
        invariants=dict(invariants or {}),
        properties=tuple(properties),
        fairness=tuple(fairness),
        fields=lambda s: {"node": s},
    )


def reachable_levels(edges: Edges, initial: Sequence[int], within: set[int] | None = None) -> dict[int, int]:
    """Naive BFS: state -> level (0 for initial states), optionally staying inside ``within``."""
    level = {s: 0 for s in initial if within is None or s in within}
    frontier = list(level)
    while frontier:
        following = []
        for state in frontier:
            for _, target in edges.get(state, ()):
                if target not in level and (within is None or target in within):
                    level[target] = level[state] + 1
                    following.append(target)
        frontier = following
    return level


# -- fairness, by brute force ------------------------------------------------


def _obligations(model: Model[int], edges: Edges) -> list[tuple[str, set[tuple[str, int]]]]:
    """(kind, set of (action, parameter) labels it covers) per fairness obligation."""
    all_labels = {(a, t) for outs in edges.values() for a, t in outs}
    result: list[tuple[str, set[tuple[str, int]]]] = []
    for fair in model.fairness:
        mine = {label for label in all_labels if fair.admits(label[0], [("to", label[1])])}
        if fair.per_instance:
            result.extend((fair.kind, {label}) for label in sorted(mine))
        else:
            result.append((fair.kind, mine))
    return result


def _enabled(edges: Edges, state: int, labels: set[tuple[str, int]]) -> bool:
    return any((a, t) in labels and t != state for a, t in edges.get(state, ()))


def is_fair_set(model: Model[int], edges: Edges, states: set[int]) -> bool:
    """Whether a behaviour can visit exactly ``states`` infinitely often, fairly (TLA+ semantics)."""
    if len(states) > 1:
        for start in states:
            if set(reachable_levels(edges, [start], states)) != states:
                return False
    for kind, labels in _obligations(model, edges):
        taken = any((a, t) in labels and t in states and t != s for s in states for a, t in edges.get(s, ()))
        enabled = [_enabled(edges, s, labels) for s in states]
        if kind == "weak" and not taken and all(enabled):
            return False
        if kind == "strong" and not taken and any(enabled):
            return False
    return True


def oracle_violated(model: Model[int], edges: Edges, initial: Sequence[int], prop: Property[int]) -> bool:
    """Does some fair behaviour violate ``prop``? By enumerating every candidate infinity set."""
    reachable = set(reachable_levels(edges, initial))

    def fair_sets(universe: set[int]) -> Iterator[set[int]]:
        items = sorted(universe)
        for size in range(1, len(items) + 1):
            for subset in combinations(items, size):
                if is_fair_set(model, edges, set(subset)):
                    yield set(subset)

    p = {s for s in reachable if prop.p(s)}
    if prop.kind == "eventually":
        region = set(reachable_levels(edges, initial, reachable - p))
        return any(True for _ in fair_sets(region))
    if prop.kind == "always_eventually":
        return any(True for _ in fair_sets(reachable - p))
    if prop.kind == "leads_to":
        assert prop.q is not None
        not_q = {s for s in reachable if not prop.q(s)}
        region = set(reachable_levels(edges, sorted(p & not_q), not_q))
        return any(True for _ in fair_sets(region))
    return any(x - p for x in fair_sets(reachable))


# -- lasso validation ----------------------------------------------------------


def successors(model: Model[Any], state: Any) -> list[tuple[Label, Any]]:
    """Every (label, successor) of a state, straight from the model."""
    return [
        (action.label(values), successor)
        for action in model.actions
        for values, successor in action.step(state)
    ]


def assert_valid_lasso(model: Model[Any], trace: Trace[Any]) -> None:
    """Every step is a real transition, the loop closes, the cycle is fair, the property fails on it."""
    steps = trace.steps
    assert trace.loop is not None and 0 <= trace.loop < len(steps)
    for before, after in pairwise(steps):
        assert (after.label, after.state) in successors(model, before.state)
    cycle = [step.state for step in steps[trace.loop :]]
    moves: list[tuple[Any, Label, Any]] = []
    if trace.stutters:
        assert trace.loop == len(steps) - 1
    else:
        assert trace.loop_label is not None
        assert (trace.loop_label, steps[trace.loop].state) in successors(model, steps[-1].state)
        labels = [step.label for step in steps[trace.loop + 1 :] if step.label is not None]
        labels.append(trace.loop_label)
        moves = [(cycle[i], labels[i], cycle[(i + 1) % len(cycle)]) for i in range(len(cycle))]
    for fair in model.fairness:

        def covers(label: Label, fair: Fairness = fair) -> bool:
            return fair.admits(label.action, label.args)

        instances: list[Any] = [None]
        if fair.per_instance:
            instances = sorted(
                {lab.args for s in cycle for lab, t in successors(model, s) if covers(lab) and t != s}
            )
        for instance in instances:

            def matches(label: Label, instance: Any = instance) -> bool:
                return covers(label) and (instance is None or label.args == instance)

            taken = any(matches(lab) and s != t for s, lab, t in moves)
            enabled = [any(matches(lab) and t != s for lab, t in successors(model, s)) for s in cycle]
            if fair.kind == "weak":
                assert taken or not all(enabled), f"WF({fair.action}) violated on the cycle"
            else:
                assert taken or not any(enabled), f"SF({fair.action}) violated on the cycle"
    prop = next(p for p in model.properties if p.name == trace.property)
    states = [step.state for step in steps]
    if prop.kind == "eventually":
        assert not any(prop.p(s) for s in states)
    elif prop.kind == "always_eventually":
        assert not any(prop.p(s) for s in cycle)
    elif prop.kind == "leads_to":
        assert prop.q is not None
        q = prop.q
        assert any(
            prop.p(states[i]) and not any(q(s) for s in states[i:] + cycle) for i in range(len(states))
        )
    else:
        assert any(not prop.p(s) for s in cycle)


def search_figures(result: CheckResult) -> tuple[Any, ...]:
    """What must not depend on how a search ran: verdict, counts, coverage, statuses, the trace."""
    coverage = [(c.name, c.enabled, c.generated, c.new) for c in result.coverage]
    statuses = [(p.name, p.status) for p in result.properties]
    example = result.counterexample
    steps = None if example is None else [(str(step.label), step.state) for step in example.steps]
    return (
        result.verdict,
        result.distinct_states,
        result.generated_states,
        result.depth,
        coverage,
        statuses,
        steps,
    )


def graph_figures(result: CheckResult) -> tuple[Any, ...]:
    """The recorded graph as plain data: edges by source, their label ids, and the labels."""
    graph = result.graph
    assert graph is not None
    labels = [graph.label(i) for i in range(len(graph.label_keys))]
    return (graph.indptr.tolist(), graph.targets.tolist(), graph.labels.tolist(), labels)


class Interrupted(Exception):
    """What ``interrupt_after`` stops a search with."""


def interrupt_after(checkpoints: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop the search, as Ctrl-C or a lost machine would, once it has written ``checkpoints``
    checkpoints (whatever it did after the last one is lost either way)."""
    written = engine.Explorer._checkpoint
    count = 0

    def then_stop(explorer: engine.Explorer[Any], *args: Any) -> None:
        nonlocal count
        written(explorer, *args)
        count += 1
        if count == checkpoints:
            raise Interrupted

    monkeypatch.setattr(engine.Explorer, "_checkpoint", then_stop)
