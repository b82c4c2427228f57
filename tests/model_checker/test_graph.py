"""The explicit state graph and the transition cover for conformance testing."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checker.examples.two_phase import two_phase
from model_checker.fingerprint import fingerprint
from model_checker.graph import explore, transition_cover
from model_checker.model import Action, Label, Model
from tests.model_checker.helpers import Edges, graph_model, reachable_levels, successors
from tests.model_checker.test_engine import random_graphs


def test_two_phase_graph_is_consistent() -> None:
    model = two_phase(3)
    graph = explore(model)
    assert graph.num_states == 288 and graph.num_edges == 1_146 - 1
    assert graph.complete and bool(graph.expanded.all())
    assert len(graph.indptr) == graph.num_states + 1 and graph.indptr[-1] == graph.num_edges
    assert graph.targets.min() >= 0 and graph.targets.max() < graph.num_states
    for state_id in (0, 17, 150, 287):
        state = graph.state(state_id)
        expected = sorted((str(label), s) for label, s in successors(model, state))
        actual = sorted((str(label), graph.state(t)) for label, t in graph.successors(state_id))
        assert actual == expected
        assert len(graph.path(state_id)) == len(graph.trace(graph.path(state_id)))


def test_bytes_per_edge_are_compact() -> None:
    graph = explore(two_phase(3))
    per_edge = (graph.targets.nbytes + graph.labels.nbytes) / graph.num_edges
    assert per_edge == 8


def _assert_cover(edges: Edges, initial: list[int]) -> None:
    model = graph_model(edges, initial)
    behaviours = transition_cover(model)
    reachable = reachable_levels(edges, initial)
    wanted = {(s, action, t) for s in reachable for action, t in edges.get(s, ())}
    covered = set()
    for behaviour in behaviours:
        label, first = behaviour[0]
        assert label is None and first in initial
        for (_, before), (step_label, after) in pairwise(behaviour):
            assert isinstance(step_label, Label)
            assert (step_label.action, after) in edges[before]
            covered.add((before, step_label.action, after))
    assert covered == wanted
    graph = explore(model)
    assert graph.distinct_transitions == len({(s, a, t) for s, a, t in wanted})


def test_cover_of_two_phase_takes_every_transition() -> None:
    model = two_phase(3)
    graph = explore(model)
    behaviours = transition_cover(graph)
    seen = set()
    for behaviour in behaviours:
        assert behaviour[0][1] in list(model.init())
        for (_, before), (label, after) in pairwise(behaviour):
            assert label is not None and (label, after) in successors(model, before)
            seen.add((before, label))
    assert len(seen) == graph.distinct_transitions
    assert len(behaviours) < graph.distinct_transitions  # walks are extended, not one per transition


@settings(max_examples=60, deadline=None)
@given(random_graphs(max_states=12))
def test_cover_takes_every_transition_of_random_graphs(case: tuple[Edges, list[int]]) -> None:
    _assert_cover(*case)


def test_bounded_graph_marks_dropped_targets() -> None:
    graph = explore(two_phase(3), max_states=20)
    assert not graph.complete and graph.num_states == 20
    assert bool((graph.targets == -1).any())


def test_sources_expand_csr_rows() -> None:
    graph = explore(two_phase(3))
    for state_id in (0, 5, 99):
        rows = graph.out_edges(state_id)
        assert bool(np.all(graph.sources[rows.start : rows.stop] == state_id))


@given(st.integers(0, 287))
@settings(max_examples=20, deadline=None)
def test_state_by_id_has_its_fingerprint(state_id: int) -> None:
    graph = _TWO_PHASE_GRAPH
    assert fingerprint(graph.state(state_id)) == int(graph.fingerprints[state_id])


_TWO_PHASE_GRAPH = explore(two_phase(3))


def test_tree_edges_follow_parent_links() -> None:
    graph = _TWO_PHASE_GRAPH
    for state_id in range(graph.num_states):
        edge = int(graph.tree_edges[state_id])
        if state_id in graph.initial_ids:
            assert edge == -1 and graph.depths[state_id] == 0
            continue
        assert int(graph.targets[edge]) == state_id
        assert int(graph.sources[edge]) == int(graph.parents[state_id])
        assert int(graph.depths[state_id]) == len(graph.path(state_id)) - 1


def _tokens() -> Model[tuple[int, int]]:
    """Two interchangeable tokens, each moved up to 2: ``Inc(i)`` is enabled on a member of an
    orbit and not on its mirror image, so a label recorded for one member fails on the other."""

    def inc(s: tuple[int, int]) -> Iterator[tuple[tuple[int], tuple[int, int]]]:
        for i in (0, 1):
            if s[i] < 2:
                yield (i,), (s[0] + 1, s[1]) if i == 0 else (s[0], s[1] + 1)

    return Model(
        "tokens",
        init=lambda: iter([(0, 0)]),
        actions=(Action("Inc", inc, ("i",)),),
        symmetry=lambda s: tuple(sorted(s)),
    )


def test_cover_under_symmetry_takes_real_transitions_of_every_orbit() -> None:
    """On the quotient graph every behaviour is a sequence of real steps of the model, and the
    behaviours take each (orbit, label) transition the graph records."""
    model = _tokens()
    graph = explore(model)
    assert graph.num_states == 6  # {0,0} {0,1} {0,2} {1,1} {1,2} {2,2}
    seen = set()
    for behaviour in transition_cover(graph):
        for (_, before), (label, after) in pairwise(behaviour):
            assert label is not None and (label, after) in successors(model, before)
            seen.add((tuple(sorted(before)), label))
    expected = {
        (tuple(sorted(graph.state(i))), graph.label(int(graph.labels[e])))
        for i in range(graph.num_states)
        for e in graph.out_edges(i)
    }
    assert seen == expected and len(seen) == graph.distinct_transitions
