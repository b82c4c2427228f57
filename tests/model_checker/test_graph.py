"""The explicit state graph and the transition cover for conformance testing."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checker.examples.two_phase import two_phase
from model_checker.graph import explore, transition_cover
from model_checker.model import Label
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
    assert hash(graph.state(state_id)) == int(graph.fingerprints[state_id])


_TWO_PHASE_GRAPH = explore(two_phase(3))
